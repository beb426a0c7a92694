"""Routes of placing and reading orders (on the orders blueprint)."""
from __future__ import annotations

from flask.views import MethodView

from diandian_common.auth import operator_required
from diandian_common.errors import ApiError

from ..blueprint import OPERATOR, blp
from ..wiring import unit_of_work
from . import calculator_client, idempotency, identity, service, views
from .domain.idempotency import request_fingerprint
from .schemas import (
    IdempotencyKeyHeaderSchema,
    MyOrdersPageSchema,
    MyOrdersQuerySchema,
    OrderCreatedSchema,
    OrderCreateSchema,
    OrderListQuerySchema,
    OrderPageSchema,
    OrderSchema,
)


def _scene(slug: str | None) -> dict | None:
    if not slug:
        return None
    scene = calculator_client.scene(slug)
    if scene is None:
        raise ApiError(422, "validation_error", "some fields are invalid", {"scene": [f"unknown scene {slug}"]})
    return scene


def _requested_kg(data: dict):
    if not data.get("estimate_id"):
        return data.get("quantity_kg")
    estimate = calculator_client.estimate(data["estimate_id"])
    if estimate is None:
        raise ApiError(422, "validation_error", "some fields are invalid",
                       {"estimate_id": [f"unknown estimate {data['estimate_id']}"]})
    return estimate["total_kg"]


@blp.route("/orders")
class Orders(MethodView):
    @operator_required
    @blp.doc(**OPERATOR)
    @blp.arguments(OrderListQuerySchema, location="query")
    @blp.response(200, OrderPageSchema)
    def get(self, args):
        """Orders oldest first, filtered (operator); pass ``next_after`` as ``after`` for the next page."""
        with unit_of_work() as uow:
            return views.list_orders(uow.session, **args)

    @blp.arguments(OrderCreateSchema)
    @blp.response(201, OrderCreatedSchema)
    @blp.alt_response(200, schema=OrderCreatedSchema,
                      description="the participant's pending order of the same estimate, asking the same "
                                  "project and kilograms (placed before with another key): that order")
    @blp.alt_response(409, description="insufficient_credits, idempotency_conflict, or unpaid_limit (the "
                                       "participant or the address holds too many kilograms unpaid)")
    @blp.alt_response(503, description="payment_unavailable or calculator_unavailable")
    # Documentation of the header idempotency.key_from_request checks (422 when missing).
    @blp.doc(parameters=[{"in": "header", "schema": IdempotencyKeyHeaderSchema}])
    def post(self, data):
        """Place an order (reserves the kilograms until it is paid or expires).

        The participant is the guest of the browser's cookie; ``participant.id`` is accepted
        only from an operator key with the ``guests`` scope (namespaced by the key).

        One estimate holds kilograms once per participant: an order for an estimate whose
        pending order (unpaid, in its window) asks the same project is that order (200, its
        holder's name as now given); asking another project, or past its window, the pending
        one is cancelled, its kilograms released, and a new order placed (201)."""
        key = idempotency.key_from_request()
        caller = identity.current_caller()
        data = {**data, "participant": identity.ordering_participant(caller, data["participant"])}
        # The participant is part of the request: another guest's retry with the same key is a conflict.
        fingerprint = request_fingerprint(data)
        replay = idempotency.replayed(key, fingerprint)
        if replay:
            return replay
        scene, requested_kg = _scene(data.get("scene")), _requested_kg(data)
        return idempotency.once(key, fingerprint, lambda uow: service.create_order(
            uow, key=key, fingerprint=fingerprint, project_id=data["project_id"], requested_kg=requested_kg,
            participant=data["participant"], scene=scene, estimate_id=data.get("estimate_id"),
            by_operator=caller.operator is not None, address_hash=caller.address_hash))


@blp.route("/orders/<string:order_id>")
class OrderResource(MethodView):
    @blp.response(200, OrderSchema)
    def get(self, order_id):
        """One order. Its participant (their cookie) and operators see it all; anyone else
        sees what the public ledger says (no names, participant id, certificate or payment)."""
        caller = identity.current_caller()
        with unit_of_work() as uow:
            return views.get_order_view(uow.session, order_id, caller.owns)


# Not under /orders: /orders/<id> is one order, so /orders/mine would name an order.
@blp.route("/my-orders")
class MyOrders(MethodView):
    @blp.arguments(MyOrdersQuerySchema, location="query")
    @blp.response(200, MyOrdersPageSchema)
    @blp.alt_response(401, description="no guest: only the gateway, for a browser's cookie, names one")
    def get(self, args):
        """The guest's own orders, newest first, each with its certificate once issued; pass
        ``next_before`` as ``before`` for the next page. Only for the participant the gateway
        vouches for (their cookie): 401 without one."""
        caller = identity.current_caller()
        if caller.participant_id is None:
            raise ApiError(401, "unauthorized",
                           "your orders need the guest's participant cookie (through the gateway)")
        with unit_of_work() as uow:
            return views.participant_orders(uow.session, caller.participant_id, **args)
