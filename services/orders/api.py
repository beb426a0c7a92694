"""Routes of the orders service: thin adapters over workflows.py."""
from __future__ import annotations

import csv
import hashlib
import io
import time

from flask import Response, request, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from sqlalchemy.exc import IntegrityError

from diandian_common.auth import operator_required
from diandian_common.errors import ApiError, NotFound
from diandian_common.outbox import try_relay
from diandian_common.web import db

from . import calculator_client, payments, workflows
from .domain import idempotency, ledger, signatures
from .models import Order, OutboxMessage, Project
from .schemas import (IssuanceCreateSchema, IssuanceSchema, LedgerPageWithVerificationSchema,
                      LedgerQuerySchema, LedgerSummarySchema, OrderCreatedSchema, OrderCreateSchema, OrderListQuerySchema,
                      OrderPageSchema, OrderSchema, PaymentAcceptedSchema, PaymentConfirmSchema,
                      ProjectCreateSchema, ProjectListSchema, ProjectSchema, ProjectUpdateSchema,
                      WebhookAcceptedSchema)
from .tasks import celery

blp = Blueprint("orders", __name__, url_prefix="/api/v1", description="Projects, orders, payments, ledger")

IDEMPOTENCY_HEADER = "Idempotency-Key"
OPERATOR = {"security": [{"ApiKeyAuth": []}]}
CSV_BATCH = 1000


def _relay() -> None:
    try_relay(db(), OutboxMessage, celery)


def _projects(session) -> list[Project]:
    return list(session.scalars(select(Project).options(selectinload(Project.owner)).order_by(Project.code)))


@blp.route("/projects")
class Projects(MethodView):
    @blp.response(200, ProjectListSchema)
    def get(self):
        with db().transaction() as session:
            return {"items": workflows.project_views(session, _projects(session))}

    @operator_required
    @blp.doc(**OPERATOR)
    @blp.arguments(ProjectCreateSchema)
    @blp.response(201, ProjectSchema)
    @blp.alt_response(409, description="project_code_taken")
    def post(self, data):
        """Create a project (operator); its inventory comes from issuances."""
        with db().transaction() as session:
            return workflows.project_view(workflows.add_project(session, **data))


@blp.route("/projects/<string:project_id>")
class ProjectResource(MethodView):
    @blp.response(200, ProjectSchema)
    def get(self, project_id):
        with db().transaction() as session:
            project = session.get(Project, project_id)
            if project is None:
                raise NotFound("project", project_id)
            return workflows.project_view(project)

    @operator_required
    @blp.doc(**OPERATOR)
    @blp.arguments(ProjectUpdateSchema)
    @blp.response(200, ProjectSchema)
    def patch(self, changes, project_id):
        """Change the price or descriptive fields (operator); a new price applies to new
        orders only. Code, registry and vintage name retired serials and never change."""
        with db().transaction() as session:
            return workflows.project_view(workflows.update_project(session, project_id, changes))


@blp.route("/projects/<string:project_id>/issuances", methods=["POST"])
@operator_required
@blp.doc(**OPERATOR)
@blp.arguments(IssuanceCreateSchema)
@blp.response(201, IssuanceSchema)
@blp.alt_response(409, description="serials_overlap")
def create_issuance(data, project_id):
    """Record serials first..last issued to the project by its registry (operator)."""
    with db().transaction() as session:
        block = workflows.record_issuance(session, project_id, data["first"], data["last"])
        return workflows.issuance_view(block)


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
    @operator_required
    @blp.doc(**OPERATOR)
    @blp.arguments(OrderListQuerySchema, location="query")
    @blp.response(200, OrderPageSchema)
    def get(self, args):
        """Orders oldest first, filtered (operator); pass ``next_after`` as ``after`` for the next page."""
        with db().transaction() as session:
            return workflows.list_orders(session, **args)

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


@blp.route("/payments/<string:provider>/webhook", methods=["POST"])
@blp.response(200, WebhookAcceptedSchema)
@blp.alt_response(401, description="signature_missing")
@blp.alt_response(403, description="invalid_signature or stale_signature")
@blp.alt_response(404, description="unknown provider (or not configured), unknown order")
@blp.alt_response(409, description="amount_mismatch, provider_mismatch, event_id_reused")
def payment_webhook(provider):
    """A payment provider's signed notification (see services/orders/README.md).

    Header ``Payment-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``
    with the secret in ``PAYMENT_WEBHOOK_SECRET_<PROVIDER>``. The same event twice gets the
    same answer and changes nothing.
    """
    configured = payments.webhook_provider(provider)
    if configured is None:
        raise NotFound("payment provider", provider)
    adapter, secret = configured
    raw = request.get_data(cache=True)
    try:
        signatures.verify(secret, request.headers.get(adapter.signature_header), raw, time.time(),
                          payments.webhook_tolerance_s())
    except signatures.SignatureError as exc:
        raise ApiError(401 if exc.code == "signature_missing" else 403, exc.code, exc.message) from None
    try:
        note = adapter.notification(raw)
    except payments.InvalidNotification as exc:
        raise ApiError(422, "validation_error", "some fields are invalid", exc.fields) from None
    body_hash = hashlib.sha256(raw).hexdigest()
    try:
        with db().transaction() as session:
            body = workflows.apply_payment_notification(session, adapter.name, note, body_hash)
    except IntegrityError:
        # PostgreSQL: a twin delivery recorded the event first; answer as it did.
        with db().transaction() as session:
            body = workflows.apply_payment_notification(session, adapter.name, note, body_hash)
    _relay()
    return body


def wants_csv() -> bool:
    return request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"


def _ledger_csv(project: str | None, after: int) -> Response:
    """Every entry after ``after`` (no paging), read in batches while streaming."""
    with db().transaction() as session:  # an unknown project is a 404 before streaming starts
        workflows.ledger_entries(session, project=project, after=after, limit=1)

    def lines():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(ledger.CSV_COLUMNS)
        cursor = after
        while True:
            with db().transaction() as session:
                batch = [(e.seq, e.prev_hash, e.hash, e.body) for e in
                         workflows.ledger_entries(session, project=project, after=cursor, limit=CSV_BATCH)]
            for row in batch:
                writer.writerow(ledger.csv_row(*row))
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if len(batch) < CSV_BATCH:
                return
            cursor = batch[-1][0]

    return Response(stream_with_context(lines()), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="diandian-ledger.csv"'})


@blp.route("/ledger")
class Ledger(MethodView):
    @blp.arguments(LedgerQuerySchema, location="query")
    @blp.response(200, LedgerPageWithVerificationSchema)
    @blp.doc(responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}})
    def get(self, args):
        """Retirements in chain order. ``hash = sha256(prev_hash + canonical JSON of the entry
        without seq, prev_hash and hash)``; ``verification`` spells it out. With
        ``Accept: text/csv``: every entry (``after`` and ``project`` apply, not ``limit``) as CSV
        for auditors, with the exact hashed text in ``canonical_body``."""
        if wants_csv():
            return _ledger_csv(args.get("project"), args["after"])
        with db().transaction() as session:
            entries = workflows.ledger_entries(session, project=args.get("project"), after=args["after"],
                                               limit=args["limit"] + 1)
            page = entries[: args["limit"]]
            next_after = page[-1].seq if len(entries) > args["limit"] else None
            return {"items": [workflows.ledger_view(e) for e in page], "next_after": next_after,
                    "verification": ledger.VERIFICATION}


@blp.route("/ledger/summary")
class LedgerSummary(MethodView):
    @blp.response(200, LedgerSummarySchema)
    def get(self):
        """Per project: kilograms retired, the owners' share of what buyers paid (less
        refunds) and the money transferred to the owners so far; ``total`` sums them."""
        with db().transaction() as session:
            items = [{"project_id": v["id"], "project_code": v["code"], "name": v["name"], "name_en": v["name_en"],
                      "owner": v["owner"], "retired_kg": v["retired_kg"], "owner_net_fen": v["owner_net_fen"],
                      "paid_to_owner_fen": v["paid_to_owner_fen"]}
                     for v in workflows.project_views(session, _projects(session))]
        total = {k: sum(item[k] for item in items) for k in ("retired_kg", "owner_net_fen", "paid_to_owner_fen")}
        return {"items": items, "total": total}
