"""Response schemas of the public ledger and its summary."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from marshmallow import Schema, ValidationError, fields, validate

from diandian_common.contract_fields import Visible

from ..catalogue.schemas import OwnerRefSchema
from ..schema_fields import ID


class LedgerQuerySchema(Schema):
    project = fields.String(validate=ID)
    # Bounded like a 64-bit sequence: a larger number is a 422, never a database overflow.
    after = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**63 - 1))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class RegistryAnchorSchema(Schema):
    cancellation_id = fields.String()
    url = fields.String()
    retired_on = fields.String()
    anchored_kg = fields.Integer(metadata={"description": "kilograms of the retirement this record covers"})


class LedgerEntrySchema(Schema):
    seq = fields.Integer()
    order_id = fields.String()
    project_id = fields.String()
    project_code = fields.String()
    registry = fields.String()
    vintage = fields.Integer()
    quantity_kg = fields.Integer()
    serial_ranges = fields.List(fields.String())
    retired_at = fields.String()
    prev_hash = fields.String()
    hash = fields.String()


class LedgerPageSchema(Schema):
    items = fields.List(fields.Nested(LedgerEntrySchema))
    next_after = fields.Integer(allow_none=True)


class LedgerVerificationSchema(Schema):
    algorithm = fields.String()
    body = fields.String()
    canonical_json = fields.String()
    hash = fields.String()
    genesis_prev_hash = fields.String()


class LedgerPageWithVerificationSchema(LedgerPageSchema):
    registry_anchors = fields.Dict(keys=fields.String(),
                                   values=fields.List(fields.Nested(RegistryAnchorSchema)),
                                   metadata={"description": (
                                       "order id → the registry cancellations covering that entry's serials, "
                                       "for the page's entries that have any; beside the entries, never in "
                                       "them, so the hashes are recomputed from the entries as published")})
    verification = fields.Nested(LedgerVerificationSchema,
                                 metadata={"description": "how to recompute every entry's hash"})


class LedgerSummaryItemSchema(Schema):
    project_id = fields.String()
    project_code = fields.String()
    name = fields.String()
    name_en = fields.String()
    owner = fields.Nested(OwnerRefSchema, allow_none=True)
    retired_kg = fields.Integer()
    owner_net_fen = fields.Integer()
    paid_to_owner_fen = fields.Integer()


class LedgerTotalsSchema(Schema):
    retired_kg = fields.Integer()
    owner_net_fen = fields.Integer()
    paid_to_owner_fen = fields.Integer()


class LedgerSummarySchema(Schema):
    items = fields.List(fields.Nested(LedgerSummaryItemSchema))
    total = fields.Nested(LedgerTotalsSchema)


# --- registry anchoring (issue 19) ----------------------------------------------------

MAX_TONNES = 1_000_000
# A day ahead of UTC is still today somewhere (UTC+14): a registry's date is its local one.
LATEST_TIMEZONE_OFFSET = timedelta(hours=14)


def _not_in_the_future(value: date) -> None:
    if value > (datetime.now(timezone.utc) + LATEST_TIMEZONE_OFFSET).date():
        raise ValidationError("must not be in the future")


def _registry_text(**kwargs) -> fields.String:
    return fields.String(required=True, validate=[validate.Length(min=1, max=100), Visible()], **kwargs)


class RegistryRetirementCreateSchema(Schema):
    quantity_t = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_TONNES),
                                metadata={"description": "whole tonnes cancelled at the registry"})
    registry_serial_first = _registry_text(metadata={"description": "the registry's first cancelled serial"})
    registry_serial_last = _registry_text(metadata={"description": "the registry's last cancelled serial"})
    cancellation_id = _registry_text(metadata={"description": "the registry's id of the cancellation; "
                                                              "unique per project"})
    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False,
                     validate=validate.Length(max=500),
                     metadata={"description": "an absolute http(s) URL of the registry's record"})
    retired_on = fields.Date(required=True,
                             validate=[validate.Range(min=date(2000, 1, 1)), _not_in_the_future],
                             metadata={"description": "the day of the cancellation, not in the future"})


class RegistryRetirementSchema(Schema):
    id = fields.String()
    project_id = fields.String()
    quantity_t = fields.Integer()
    quantity_kg = fields.Integer()
    registry_serial_first = fields.String()
    registry_serial_last = fields.String()
    cancellation_id = fields.String()
    url = fields.String()
    retired_on = fields.String()
    recorded_at = fields.String()
    serial_ranges = fields.List(fields.String(),
                                metadata={"description": "the platform's retired serials it covers"})


class RegistryRetirementListSchema(Schema):
    project_id = fields.String()
    items = fields.List(fields.Nested(RegistryRetirementSchema))
    retired_kg = fields.Integer()
    anchored_kg = fields.Integer()
    unanchored_kg = fields.Integer(metadata={"description": "retired kilograms no record covers yet"})


class RegistryCoverageSchema(Schema):
    anchored_kg = fields.Integer()
    complete = fields.Boolean(metadata={"description": "true when every kilogram is anchored"})
    records = fields.List(fields.Nested(RegistryAnchorSchema))
