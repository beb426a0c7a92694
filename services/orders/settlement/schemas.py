"""Request and response schemas of owners, statements, payouts and reconciliation."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..schema_fields import ID, text
from ..settlement.domain import rules as settlement_rules

# --- settlement -----------------------------------------------------------------------

PERIOD = validate.Regexp(settlement_rules.PERIOD_PATTERN.pattern, error="a month, YYYY-MM")


class OwnerCreateSchema(Schema):
    name = text(200, required=True, metadata={"description": "the company"})
    payout_account = text(100, required=True, metadata={"description": "bank account or payee reference"})
    contact = text(200, required=True, metadata={"description": "who to call about payouts"})


class OwnerUpdateSchema(Schema):
    name = text(200)
    payout_account = text(100)
    contact = text(200)

    @validates_schema
    def _something_to_change(self, data, **_kwargs):
        if not data:
            raise ValidationError("give at least one field to change", "_schema")


class OwnerSchema(Schema):
    id = fields.String()
    name = fields.String()
    payout_account = fields.String()
    contact = fields.String()
    created_at = fields.String()


class OwnerListSchema(Schema):
    items = fields.List(fields.Nested(OwnerSchema))


class SettlementQuerySchema(Schema):
    project = fields.String(validate=ID, metadata={"description": "project id or code"})
    period = fields.String(validate=PERIOD, metadata={"description": "YYYY-MM; every month when absent"})
    owner = fields.String(validate=ID, metadata={"description": "owner id"})


class StatementSchema(Schema):
    owner = fields.Nested(OwnerSchema, allow_none=True,
                          metadata={"description": "null: the project had no owner when the money came in"})
    project_id = fields.String()
    project_code = fields.String()
    project_name = fields.String()
    period = fields.String()
    status = fields.String(metadata={"description": "open (month not over), due or settled"})
    orders = fields.Integer(metadata={"description": "paid orders less refunded ones"})
    refunds = fields.Integer()
    quantity_kg = fields.Integer()
    captured_fen = fields.Integer()
    refunded_fen = fields.Integer()
    gross_fen = fields.Integer(metadata={"description": "captured − refunded = provider fee + fee + net"})
    provider_fee_fen = fields.Integer(metadata={"description": "the payment providers' fees"})
    fee_fen = fields.Integer(metadata={"description": "the platform's fee"})
    net_fen = fields.Integer(metadata={"description": "the owner's share"})
    paid_fen = fields.Integer(metadata={"description": "payouts recorded against the statement"})
    due_fen = fields.Integer()


class StatementListSchema(Schema):
    items = fields.List(fields.Nested(StatementSchema))


class PayoutCreateSchema(Schema):
    owner_id = fields.String(required=True, validate=ID)
    project_id = fields.String(required=True, validate=ID)
    period = fields.String(required=True, validate=PERIOD)
    amount_fen = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10**13))
    reference = text(100, required=True, metadata={"description": "the transfer's reference; unique"})
    paid_on = fields.Date(required=True, metadata={"description": "the day the money was sent"})
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class PayoutSchema(Schema):
    id = fields.String()
    owner_id = fields.String()
    project_id = fields.String()
    period = fields.String()
    amount_fen = fields.Integer()
    reference = fields.String()
    paid_on = fields.String()
    note = fields.String(allow_none=True)
    recorded_at = fields.String()


class PayoutListSchema(Schema):
    items = fields.List(fields.Nested(PayoutSchema))


class ReconciliationSchema(Schema):
    ok = fields.Boolean()
    difference = fields.String(allow_none=True, metadata={"description": "the first difference found"})
    projects = fields.Integer()
    captured_fen = fields.Integer()
    refunded_fen = fields.Integer()
    owners_net_fen = fields.Integer()
    platform_fees_fen = fields.Integer()
    provider_fees_fen = fields.Integer()
    settled_kg = fields.Integer(metadata={"description": "ledger kilograms of orders in settled statements"})
    pending_kg = fields.Integer(metadata={"description": "ledger kilograms of orders not paid out yet"})
