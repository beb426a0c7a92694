"""The message contracts: every task name of the platform with its v1 payload type.

A message is a JSON object ``{"v": 1, ...fields}`` sent by task name to the queue named by
the name's prefix (docs/contract.md, "Messages"). This module is the one place that says
which fields each task takes:

- producers build payloads with :func:`build` (``outbox.enqueue`` and ``celery_app.send``
  check every payload with :func:`check` and refuse a task name that has no contract);
- consumers read them with :func:`load`, which returns the task's typed message.

Producers are strict (a field the contract lacks is refused), consumers lenient (they
ignore fields they do not know, so a v1 message may grow). A payload of another version
raises :class:`UnsupportedMessage`; a v1 payload that breaks its contract raises
:class:`InvalidMessage`. Neither can succeed later, so no task retries them (retries are
for a database or broker that is away).

The field types are in contract_fields.py; contracts_markdown.py writes the "Messages" part
of docs/contract.md from these contracts.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from datetime import date, datetime
from decimal import Decimal

from marshmallow import Schema, ValidationError, fields, validate

from .contract_fields import Flag, Id, Kilograms, Payload, StrOrInt, Text, Timestamp

MESSAGE_VERSION = 1


class UnsupportedMessage(ValueError):
    """A payload of a version this worker does not understand."""


class InvalidMessage(ValueError):
    """A v1 payload that breaks its task's contract (retrying it will not help)."""

    def __init__(self, task_name: str, errors: dict):
        super().__init__(f"{task_name} payload breaks its contract: {errors}")
        self.task_name = task_name
        self.errors = errors


class NoContract(LookupError):
    """A task name with no contract: nothing may send or consume it."""


def check_version(payload) -> dict:
    if not isinstance(payload, dict) or payload.get("v") != MESSAGE_VERSION:
        raise UnsupportedMessage(f"expected a v{MESSAGE_VERSION} payload, got {payload!r}")
    return payload


# --- the messages -----------------------------------------------------------------------

@dataclass(frozen=True)
class Empty:
    """A periodic task's message: ``{"v": 1}``, or no argument at all from beat."""


class EmptySchema(Payload):
    message_type = Empty


@dataclass(frozen=True)
class OrderRef:
    order_id: str


class RetireCreditsSchema(Payload):
    message_type = OrderRef
    order_id = Id(metadata={"description": "the paid order"})


@dataclass(frozen=True)
class CertificateIssued:
    order_id: str
    certificate_id: str
    verify_code: str | None
    verify_url: str | None
    pdf_url: str | None


class CertificateIssuedSchema(Payload):
    message_type = CertificateIssued
    order_id = Id()
    certificate_id = Id()
    verify_code = fields.String(load_default=None, validate=validate.Length(max=100),
                                metadata={"description": "the code printed on the certificate"})
    verify_url = fields.String(load_default=None, metadata={"description": "its verification page"})
    pdf_url = fields.String(load_default=None, metadata={"description": "its PDF"})


@dataclass(frozen=True)
class CertificateRevoked:
    order_id: str
    certificate_id: str
    reason: str
    refund: bool


class CertificateRevokedSchema(Payload):
    message_type = CertificateRevoked
    order_id = Id()
    certificate_id = Id()
    reason = fields.String(required=True, validate=validate.Length(1, 500))
    refund = fields.Boolean(load_default=False, metadata={"description": "refund the payment too"})


@dataclass(frozen=True)
class DeliverWebhook:
    delivery_id: int


class DeliverWebhookSchema(Payload):
    message_type = DeliverWebhook
    delivery_id = fields.Integer(required=True, metadata={"description": "the webhook delivery to attempt"})


@dataclass(frozen=True)
class SendRefund:
    refund_id: int


class SendRefundSchema(Payload):
    message_type = SendRefund
    refund_id = fields.Integer(required=True, metadata={"description": "the booked refund"})


@dataclass(frozen=True)
class ProjectSnapshot:
    id: str | int
    code: str
    name: str
    name_en: str | None
    registry: str
    vintage: str | int


class ProjectSnapshotSchema(Payload):
    message_type = ProjectSnapshot
    id = StrOrInt(required=True)
    code = fields.String(required=True, validate=validate.Length(1, 100))
    name = fields.String(required=True, validate=validate.Length(1, 300))
    name_en = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=300))
    registry = fields.String(required=True, validate=validate.Length(1, 200))
    vintage = StrOrInt(required=True)


@dataclass(frozen=True)
class SceneSnapshot:
    slug: str
    name: str
    name_en: str | None = None


class SceneSnapshotSchema(Payload):
    message_type = SceneSnapshot
    slug = fields.String(required=True, validate=validate.Length(1, 100))
    name = fields.String(required=True, validate=validate.Length(1, 300))
    # Optional: messages sent before issue 21 have no English name (the certificate then prints the one).
    name_en = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=300),
                            metadata={"description": "the scene's English name, when it has one"})


@dataclass(frozen=True)
class RenderCertificate:
    order_id: str
    holder: str
    organization: str | None
    quantity_kg: int
    project: ProjectSnapshot
    serial_range: str
    scene: SceneSnapshot | None
    issued_at: datetime
    ledger_hash: str | None
    mask_holder: bool


class RenderCertificateSchema(Payload):
    message_type = RenderCertificate
    order_id = Id()
    holder = fields.String(required=True, validate=validate.Length(1, 500))
    organization = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=500))
    quantity_kg = fields.Integer(required=True, validate=validate.Range(min=1),
                                 metadata={"description": "whole kilograms retired"})
    project = fields.Nested(ProjectSnapshotSchema, required=True)
    serial_range = fields.String(required=True, validate=validate.Length(1, 4000),
                                 metadata={"description": "the retired serial ranges, comma-separated"})
    scene = fields.Nested(SceneSnapshotSchema, allow_none=True, load_default=None)
    issued_at = Timestamp(required=True, metadata={"description": "when the credits were retired"})
    ledger_hash = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=128),
                                metadata={"description": "hash of the retirement's ledger entry"})
    mask_holder = Flag(load_default=False, metadata={
        "description": "the holder chose to appear masked (张*) wherever the certificate is shown in public"})


@dataclass(frozen=True)
class RegistryRecord:
    cancellation_id: str
    url: str
    retired_on: date
    anchored_kg: int


class RegistryRecordSchema(Payload):
    message_type = RegistryRecord
    cancellation_id = fields.String(required=True, validate=validate.Length(1, 100),
                                    metadata={"description": "the registry's id of the cancellation"})
    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False,
                     validate=validate.Length(max=500), metadata={"description": "the registry's record"})
    retired_on = fields.Date(required=True, metadata={"description": "the day of the cancellation"})
    anchored_kg = fields.Integer(required=True, strict=True, validate=validate.Range(min=1),
                                 metadata={"description": "kilograms of the order this record covers"})


@dataclass(frozen=True)
class RegistryCoverage:
    anchored_kg: int
    complete: bool
    records: list[RegistryRecord]


class RegistryCoverageSchema(Payload):
    message_type = RegistryCoverage
    anchored_kg = fields.Integer(required=True, strict=True, validate=validate.Range(min=1),
                                 metadata={"description": "kilograms of the order anchored, all records"})
    complete = Flag(required=True, metadata={"description": "every kilogram of the order is anchored"})
    records = fields.List(fields.Nested(RegistryRecordSchema), required=True, validate=validate.Length(min=1),
                          metadata={"description": "the records covering the order's serials, lowest first"})


@dataclass(frozen=True)
class ShowRegistry:
    order_id: str
    registry: RegistryCoverage


class ShowRegistrySchema(Payload):
    message_type = ShowRegistry
    order_id = Id(metadata={"description": "the retired order"})
    registry = fields.Nested(RegistryCoverageSchema, required=True, metadata={
        "description": "everything that covers the order now (anchoring only grows: "
                       "more kilograms is newer)"})


@dataclass(frozen=True)
class RecordContribution:
    order_id: str
    participant_id: str
    display_name: str
    organization: str | None
    scene: str | None
    quantity_kg: Decimal
    occurred_at: datetime
    mask_name: bool


RANKING_SLUG = r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$"


class RecordContributionSchema(Payload):
    message_type = RecordContribution
    order_id = Text(128)
    participant_id = Text(128)
    display_name = Text(metadata={"description": "boards show at most 100 characters"})
    organization = fields.String(allow_none=True, load_default=None,
                                 metadata={"description": "blank is none; boards show at most 200 characters"})
    scene = fields.String(allow_none=True, load_default=None, validate=validate.Regexp(RANKING_SLUG),
                          metadata={"description": "the scene's slug"})
    quantity_kg = Kilograms(required=True)
    occurred_at = Timestamp(required=True, metadata={"description": "when the credits were retired"})
    mask_name = Flag(load_default=False, metadata={"description": "show the name masked (张*)"})


class RevokeContributionSchema(Payload):
    message_type = OrderRef
    order_id = Text(128)


class ContributionRecordedSchema(Payload):
    message_type = OrderRef
    order_id = Text(128, metadata={"description": "the order whose contribution ranking holds"})


REVOCATION_RECORDERS = ("orders", "ranking")


@dataclass(frozen=True)
class RevocationRecorded:
    order_id: str
    recorded_by: str


class RevocationRecordedSchema(Payload):
    message_type = RevocationRecorded
    order_id = Text(128, metadata={"description": "the order of the revoked certificate"})
    recorded_by = fields.String(required=True, validate=validate.OneOf(REVOCATION_RECORDERS), metadata={
        "description": "the service that applied the revocation: `orders` or `ranking`"})


@dataclass(frozen=True)
class RegistryShown:
    order_id: str
    anchored_kg: int


class RegistryShownSchema(Payload):
    message_type = RegistryShown
    order_id = Id(metadata={"description": "the order whose registry notice certificates holds"})
    anchored_kg = fields.Integer(required=True, strict=True, validate=validate.Range(min=0), metadata={
        "description": "the kilograms anchored in the newest notice it holds for the order"})


@dataclass(frozen=True)
class PrerenderScene:
    slug: str


class PrerenderSceneSchema(Payload):
    message_type = PrerenderScene
    slug = fields.String(required=True, metadata={"description": "the scene's slug"})


# --- the registry -----------------------------------------------------------------------

@dataclass(frozen=True)
class Contract:
    task_name: str
    schema: type[Payload]
    sent_by: str      # who sends it, and when
    does: str         # what the consuming worker does with it

    @property
    def periodic(self) -> bool:
        return self.schema is EmptySchema

    @cached_property
    def validator(self) -> Payload:
        """One schema instance per contract: building a marshmallow schema costs more than a
        load, and a schema keeps no state between loads."""
        return self.schema()


_BEAT = "the service's beat scheduler"

CONTRACTS: dict[str, Contract] = {c.task_name: c for c in (
    Contract("orders.retire_credits", RetireCreditsSchema,
             "orders, when a payment is confirmed (and again for an order stuck in `paid`)",
             "retires the order's kilograms: serial range, ledger entry, then `certificates.render` "
             "and `ranking.record`"),
    Contract("orders.certificate_issued", CertificateIssuedSchema,
             "certificates, when the order's certificate exists (again on every redelivery)",
             "marks the order `completed` and keeps the certificate's links"),
    Contract("orders.certificate_revoked", CertificateRevokedSchema,
             "certificates, when an operator revokes a certificate (and again until orders "
             "acknowledges it)",
             "marks the order's certificate revoked, announces it, and refunds when asked, then "
             "sends `certificates.revocation_recorded`"),
    Contract("orders.deliver_webhook", DeliverWebhookSchema,
             "orders, when a webhook event is due for an endpoint (first try, retries, resend)",
             "makes one attempt to POST the delivery"),
    Contract("orders.send_refund", SendRefundSchema,
             "orders, when it books the refund of an order's payment",
             "asks the payment provider for the refund (once: the refund id is the provider's "
             "idempotency key) and keeps its reference"),
    Contract("orders.relay_outbox", EmptySchema, _BEAT, "publishes unsent outbox rows"),
    Contract("orders.expire_unpaid", EmptySchema, _BEAT,
             "cancels orders whose payment window closed and releases their reservation"),
    Contract("orders.reconcile_payments", EmptySchema, _BEAT,
             "asks the providers about unpaid orders' trades (confirming those paid whose "
             "notification was lost), closes the trades of orders whose payment window passed "
             "before cancelling them, and confirms refunds the providers finished"),
    Contract("orders.resend_stuck", EmptySchema, _BEAT,
             "sends the step that moves an order on again for orders stuck in `paid` "
             "(`orders.retire_credits`) or `retired` (`certificates.render`)"),
    Contract("orders.audit_pipeline", EmptySchema, _BEAT,
             "sends `ranking.record` again for retired orders whose contribution ranking has not "
             "acknowledged (`orders.contribution_recorded`), and `certificates.show_registry` for "
             "orders whose registry records certificates has not acknowledged (`orders.registry_shown`)"),
    Contract("orders.registry_shown", RegistryShownSchema,
             "certificates, after it noted an order's registry records (again on every redelivery)",
             "notes how much of the order's registry coverage certificates holds, so the pipeline "
             "audit stops sending it"),
    Contract("orders.contribution_recorded", ContributionRecordedSchema,
             "ranking, after it recorded the order's contribution (again on every redelivery)",
             "notes that ranking holds the order's contribution, so the pipeline audit stops asking"),
    Contract("orders.purge_idempotency_keys", EmptySchema, _BEAT, "forgets idempotency keys past their TTL"),
    Contract("orders.dispatch_webhooks", EmptySchema, _BEAT, "queues the webhook deliveries that are due"),
    Contract("certificates.render", RenderCertificateSchema,
             "orders, once the order's credits are retired (and again for an order stuck in `retired`)",
             "issues the order's certificate once (PDF, verification code), then sends "
             "`orders.certificate_issued`"),
    Contract("certificates.show_registry", ShowRegistrySchema,
             "orders, in the transaction that records a registry cancellation, for every order "
             "whose serials it covers (and again until certificates acknowledges it)",
             "shows the registry records on the order's certificate (kept until the certificate is "
             "issued if it is not yet) and renders its PDF again; an older or repeated message "
             "changes nothing; then sends `orders.registry_shown`"),
    Contract("certificates.relay_outbox", EmptySchema, _BEAT, "publishes unsent outbox rows"),
    Contract("certificates.revocation_recorded", RevocationRecordedSchema,
             "orders and ranking, after they applied a certificate's revocation (again on every "
             "redelivery)",
             "notes that the service applied the revocation, so the revocation audit stops sending it"),
    Contract("certificates.audit_revocations", EmptySchema, _BEAT,
             "sends `orders.certificate_revoked` and `ranking.revoke` again for revoked certificates "
             "whose revocation orders or ranking has not acknowledged (`certificates.revocation_recorded`)"),
    Contract("ranking.record", RecordContributionSchema,
             "orders, once the order's credits are retired (and again until ranking acknowledges it)",
             "counts the order's kilograms once on every board it belongs to, then sends "
             "`orders.contribution_recorded`"),
    Contract("ranking.revoke", RevokeContributionSchema,
             "certificates, when a certificate is revoked (and again until ranking acknowledges it)",
             "takes the order's kilograms off every board once, then sends "
             "`certificates.revocation_recorded`"),
    Contract("ranking.reconcile", EmptySchema, _BEAT,
             "compares the boards with the database and repairs what differs"),
    Contract("calculator.prerender_scene", PrerenderSceneSchema,
             "calculator, when a scene is created or changed",
             "draws the scene's QR code and poster into the render cache"),
)}


def contract(task_name: str) -> Contract:
    try:
        return CONTRACTS[task_name]
    except KeyError:
        raise NoContract(f"no message contract for task {task_name!r} "
                         f"(add it to diandian_common/contracts.py)") from None


def _unknown_fields(schema: Schema, data: dict, prefix: str = "") -> list[str]:
    found = [prefix + key for key in data if key not in schema.fields]
    for name, field in schema.fields.items():
        if isinstance(field, fields.Nested) and isinstance(data.get(name), dict):
            found += _unknown_fields(field.schema, data[name], f"{prefix}{name}.")
    return found


def check(task_name: str, payload: dict) -> dict:
    """A producer's payload checked against its contract; returned with ``"v": 1``.

    Raises :class:`NoContract`, :class:`UnsupportedMessage` (a ``v`` other than 1) or
    :class:`InvalidMessage` (a field missing, malformed, or not in the contract)."""
    schema = contract(task_name).validator
    if not isinstance(payload, dict):
        raise InvalidMessage(task_name, {"_schema": ["must be a JSON object"]})
    if payload.get("v", MESSAGE_VERSION) != MESSAGE_VERSION:
        raise UnsupportedMessage(f"{task_name}: cannot send v{payload.get('v')}, only v{MESSAGE_VERSION}")
    fields_only = {k: v for k, v in payload.items() if k != "v"}
    errors = {name: ["not in the contract"] for name in _unknown_fields(schema, fields_only)}
    try:
        schema.load(fields_only)
    except ValidationError as exc:
        errors.update(exc.normalized_messages())
    if errors:
        raise InvalidMessage(task_name, errors)
    return {"v": MESSAGE_VERSION, **fields_only}


def build(task_name: str, **message_fields) -> dict:
    """The payload of ``task_name`` with these fields (JSON values), checked, with ``"v": 1``."""
    return check(task_name, message_fields)


def load(task_name: str, payload):
    """The typed message of a received payload (a periodic task's may be absent: None).

    Raises :class:`UnsupportedMessage` for another version, :class:`InvalidMessage` for a
    v1 payload that breaks the contract, :class:`NoContract` for an unknown task name."""
    found = contract(task_name)
    if payload is None and found.periodic:
        return Empty()
    check_version(payload)
    try:
        return found.validator.load({k: v for k, v in payload.items() if k != "v"})
    except ValidationError as exc:
        raise InvalidMessage(task_name, exc.normalized_messages()) from None
