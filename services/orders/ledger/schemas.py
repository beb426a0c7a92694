"""Response schemas of the public ledger and its summary."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..catalogue.schemas import OwnerRefSchema
from ..schema_fields import ID


class LedgerQuerySchema(Schema):
    project = fields.String(validate=ID)
    # Bounded like a 64-bit sequence: a larger number is a 422, never a database overflow.
    after = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**63 - 1))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


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
