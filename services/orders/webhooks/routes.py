"""Outbound webhook routes (operator key): endpoints, their deliveries, re-sending."""
from __future__ import annotations

from flask.views import MethodView

from diandian_common.auth import operator_required
from diandian_common.errors import ApiError
from diandian_common.web import Blueprint

from ..blueprint import OPERATOR
from ..ordering import calculator_client
from ..wiring import unit_of_work
from . import service as webhooks
from .schemas import (
    DeliveryPageSchema,
    DeliveryQuerySchema,
    DeliverySchema,
    WebhookCreatedSchema,
    WebhookCreateSchema,
    WebhookListSchema,
    WebhookSchema,
    WebhookUpdateSchema,
)

blp = Blueprint("webhooks", __name__, url_prefix="/api/v1",
                description="Signed outbound webhooks: order.paid, order.completed, certificate.issued, "
                            "certificate.revoked, project.low_inventory")


def _known_scene(slug: str | None) -> None:
    if slug and calculator_client.scene(slug) is None:
        raise ApiError(422, "validation_error", "some fields are invalid", {"scene": [f"unknown scene {slug}"]})


@blp.route("/webhooks")
class Endpoints(MethodView):
    @operator_required
    @blp.doc(**OPERATOR)
    @blp.response(200, WebhookListSchema)
    def get(self):
        """Every endpoint (secrets are never shown again)."""
        with unit_of_work() as uow:
            return {"items": [webhooks.endpoint_view(e) for e in webhooks.list_endpoints(uow)]}

    @operator_required
    @blp.doc(**OPERATOR)
    @blp.arguments(WebhookCreateSchema)
    @blp.response(201, WebhookCreatedSchema)
    def post(self, data):
        """Register an endpoint for some events, of one scene or of everything. The answer
        holds the ``secret`` that signs every delivery (``Diandian-Signature``), shown
        this once. https only (unless ``WEBHOOK_ALLOW_HTTP``); private and loopback
        addresses are refused unless inside ``WEBHOOK_ALLOWED_NETWORKS``."""
        _known_scene(data.get("scene"))
        with unit_of_work() as uow:
            endpoint, secret = webhooks.create_endpoint(uow, **data)
            return webhooks.endpoint_view(endpoint, secret)


@blp.route("/webhooks/<string:endpoint_id>")
class Endpoint(MethodView):
    @operator_required
    @blp.doc(**OPERATOR)
    @blp.response(200, WebhookSchema)
    def get(self, endpoint_id):
        with unit_of_work() as uow:
            return webhooks.endpoint_view(webhooks.get_endpoint(uow, endpoint_id))

    @operator_required
    @blp.doc(**OPERATOR)
    @blp.arguments(WebhookUpdateSchema)
    @blp.response(200, WebhookSchema)
    def patch(self, changes, endpoint_id):
        """Change the URL, events or description; ``{"active": false}`` disables the
        endpoint (no new events; pending deliveries wait), ``true`` enables it again."""
        with unit_of_work() as uow:
            return webhooks.endpoint_view(webhooks.update_endpoint(uow, endpoint_id, changes))

    @operator_required
    @blp.doc(**OPERATOR)
    @blp.response(204)
    def delete(self, endpoint_id):
        """Delete the endpoint with its deliveries and their log."""
        with unit_of_work() as uow:
            webhooks.delete_endpoint(uow, endpoint_id)


@blp.route("/webhooks/<string:endpoint_id>/deliveries")
class Deliveries(MethodView):
    @operator_required
    @blp.doc(**OPERATOR)
    @blp.arguments(DeliveryQuerySchema, location="query")
    @blp.response(200, DeliveryPageSchema)
    def get(self, args, endpoint_id):
        """Deliveries newest first, each with its log of attempts (time, duration, status
        code or error); pass ``next_after`` as ``after`` for the next page."""
        with unit_of_work() as uow:
            return webhooks.list_deliveries(uow, endpoint_id, **args)


@blp.route("/webhooks/<string:endpoint_id>/deliveries/<int:delivery_id>/resend", methods=["POST"])
@operator_required
@blp.doc(**OPERATOR)
@blp.response(202, DeliverySchema)
@blp.alt_response(409, description="endpoint_disabled or delivery_in_progress")
def resend(endpoint_id, delivery_id):
    """Send the delivery again now, whatever became of it (the same event id and body),
    with a fresh retry schedule."""
    with unit_of_work() as uow:
        body = webhooks.delivery_view(webhooks.resend(uow, endpoint_id, delivery_id))
    return body
