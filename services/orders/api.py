"""Routes of the orders service: thin adapters over workflows.py."""
from __future__ import annotations

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from diandian_common.errors import ApiError, NotFound
from diandian_common.outbox import try_relay
from diandian_common.web import db

from . import calculator_client, workflows
from .domain import idempotency
from .models import LedgerEntry, Order, OutboxMessage, Project
from .schemas import (LedgerPageSchema, LedgerQuerySchema, OrderCreatedSchema, OrderCreateSchema,
                      OrderSchema, PaymentAcceptedSchema, PaymentConfirmSchema, ProjectListSchema)
from .tasks import celery

blp = Blueprint("orders", __name__, url_prefix="/api/v1", description="Projects, orders, payments, ledger")

IDEMPOTENCY_HEADER = "Idempotency-Key"


def _relay() -> None:
    try_relay(db(), OutboxMessage, celery)


@blp.route("/projects")
class Projects(MethodView):
    @blp.response(200, ProjectListSchema)
    def get(self):
        with db().transaction() as session:
            projects = session.scalars(select(Project).order_by(Project.code)).all()
            return {"items": [workflows.project_view(p) for p in projects]}


def _idempotency_key() -> str:
    key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if not key or len(key) > idempotency.MAX_KEY_LENGTH:
        raise ApiError(422, "validation_error", "some fields are invalid",
                       {IDEMPOTENCY_HEADER: [f"required header, 1 to {idempotency.MAX_KEY_LENGTH} characters"]})
    return key


def _replayed(key: str, fingerprint: str):
    """The stored response for ``key``, None when new; 409 when reused for another body."""
    with db().transaction() as session:
        record = workflows.find_idempotent(session, key)
        decision = idempotency.replay_decision(record.request_hash if record else None, fingerprint)
        if decision == "conflict":
            raise ApiError(409, "idempotency_conflict",
                           f"{IDEMPOTENCY_HEADER} {key!r} was used for a different request")
        if decision == "replay":
            return record.response_body, record.response_status, {"Idempotent-Replayed": "true"}
    return None


@blp.route("/orders")
class Orders(MethodView):
    @blp.arguments(OrderCreateSchema)
    @blp.response(201, OrderCreatedSchema)
    @blp.alt_response(409, description="insufficient_credits or idempotency_conflict")
    def post(self, data):
        """Place an order (reserves the kilograms until it is paid or expires)."""
        key = _idempotency_key()
        fingerprint = idempotency.request_fingerprint(data)
        replay = _replayed(key, fingerprint)
        if replay:
            return replay
        scene = None
        if data.get("scene"):
            scene = calculator_client.scene(data["scene"])
            if scene is None:
                raise ApiError(422, "validation_error", "some fields are invalid",
                               {"scene": [f"unknown scene {data['scene']}"]})
        requested_kg = data.get("quantity_kg")
        if data.get("estimate_id"):
            estimate = calculator_client.estimate(data["estimate_id"])
            if estimate is None:
                raise ApiError(422, "validation_error", "some fields are invalid",
                               {"estimate_id": [f"unknown estimate {data['estimate_id']}"]})
            requested_kg = estimate["total_kg"]
        try:
            with db().transaction() as session:
                # Checked again under the write lock: a racing twin may have won.
                record = workflows.find_idempotent(session, key)
                if record is None:
                    return workflows.create_order(
                        session, key=key, fingerprint=fingerprint, project_id=data["project_id"],
                        requested_kg=requested_kg, participant=data["participant"], scene=scene,
                        estimate_id=data.get("estimate_id"))
        except IntegrityError:
            pass  # PostgreSQL: the twin inserted the same key first
        replay = _replayed(key, fingerprint)
        if replay:
            return replay
        raise ApiError(409, "idempotency_conflict", "the request raced another with the same key")


@blp.route("/orders/<string:order_id>")
class OrderResource(MethodView):
    @blp.response(200, OrderSchema)
    def get(self, order_id):
        with db().transaction() as session:
            order = session.get(Order, order_id)
            if order is None:
                raise NotFound("order", order_id)
            return workflows.order_view(session, order)


@blp.route("/orders/<string:order_id>/payment")
class OrderPayment(MethodView):
    @blp.arguments(PaymentConfirmSchema, required=False)
    @blp.response(202, PaymentAcceptedSchema)
    def post(self, data, order_id):
        """Sandbox provider's confirmation; paying twice changes nothing."""
        with db().transaction() as session:
            order = workflows.lock_order(session, order_id)
            if order is not None and order.payment_provider != "sandbox":
                raise ApiError(409, "not_a_sandbox_order",
                               f"order {order_id} is paid through {order.payment_provider}")
            order = workflows.confirm_payment(session, order_id, (data or {}).get("reference"))
            body = {"id": order.id, "status": order.status}
        _relay()
        return body


@blp.route("/ledger")
class Ledger(MethodView):
    @blp.arguments(LedgerQuerySchema, location="query")
    @blp.response(200, LedgerPageSchema)
    def get(self, args):
        """Retirements in chain order; recompute ``hash = sha256(prev_hash + canonical JSON)``."""
        with db().transaction() as session:
            query = select(LedgerEntry).where(LedgerEntry.seq > args["after"]).order_by(LedgerEntry.seq)
            if args.get("project"):
                project = session.scalars(select(Project).where(
                    (Project.id == args["project"]) | (Project.code == args["project"]))).first()
                if project is None:
                    raise NotFound("project", args["project"])
                query = query.where(LedgerEntry.project_id == project.id)
            entries = session.scalars(query.limit(args["limit"] + 1)).all()
            page = entries[: args["limit"]]
            next_after = page[-1].seq if len(entries) > args["limit"] else None
            return {"items": [workflows.ledger_view(e) for e in page], "next_after": next_after}
