"""Request and response schemas of projects and issuances."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..schema_fields import ID, MAX_PRICE_FEN_PER_TONNE, MAX_SERIAL, text
from ..settlement.domain import rules as settlement_rules


class OwnerRefSchema(Schema):
    id = fields.String()
    name = fields.String()


class ProjectSchema(Schema):
    id = fields.String()
    code = fields.String()
    name = fields.String()
    name_en = fields.String()
    type = fields.String()
    location = fields.String()
    location_zh = fields.String(allow_none=True, metadata={
        "description": "the location in Chinese (null: none given; pages show location)"})
    registry = fields.String()
    vintage = fields.Integer()
    price_fen_per_tonne = fields.Integer()
    issued_kg = fields.Integer()
    reserved_kg = fields.Integer()
    retired_kg = fields.Integer()
    available_kg = fields.Integer()
    owner = fields.Nested(OwnerRefSchema, allow_none=True, metadata={"description": "who receives the money"})
    fee_bps = fields.Integer(metadata={"description": "the platform's fee in basis points of each payment"})
    fee_min_fen = fields.Integer(metadata={"description": "the platform's minimum fee per payment"})
    low_inventory_threshold_kg = fields.Integer(metadata={"description": "project.low_inventory below this"})
    owner_net_fen = fields.Integer(metadata={"description": "the owners' share of payments, less refunds"})
    paid_to_owner_fen = fields.Integer(metadata={"description": "transferred to the owners so far"})


class ProjectListSchema(Schema):
    items = fields.List(fields.Nested(ProjectSchema))


# --- operators: projects, issuances, order lists --------------------------------------

PROJECT_CODE = validate.Regexp(r"^[A-Z0-9][A-Z0-9-]{1,63}$",
                               error="2 to 64 characters: capital letters, digits and -")
PROJECT_TYPE = validate.Regexp(r"^[a-z][a-z0-9_]{1,39}$",
                               error="a lower-case identifier such as forestry_carbon_sink")
REGISTRY = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,39}$", error="1 to 40 letters, digits, . _ -")
PRICE = validate.Range(min=1, max=MAX_PRICE_FEN_PER_TONNE)
MAX_FEE_MIN_FEN = 100_000_000  # ¥1,000,000
MAX_THRESHOLD_KG = 10**12


def settlement_fields(loading_defaults: bool) -> dict:
    """Owner, fee rule and low-inventory threshold, accepted when creating and changing a project."""
    defaults = {"load_default": 0} if loading_defaults else {}
    return {
        "owner_id": fields.String(allow_none=True, validate=ID, metadata={"description": "an owner's id; null: none"}),
        "fee_bps": fields.Integer(strict=True, validate=validate.Range(min=0, max=settlement_rules.BASIS_POINTS),
                                  metadata={"description": "platform fee, basis points (500 = 5 %)"}, **defaults),
        "fee_min_fen": fields.Integer(strict=True, validate=validate.Range(min=0, max=MAX_FEE_MIN_FEN),
                                      metadata={"description": "minimum platform fee per payment"}, **defaults),
        "low_inventory_threshold_kg": fields.Integer(
            strict=True, allow_none=True, validate=validate.Range(min=0, max=MAX_THRESHOLD_KG),
            metadata={"description": "null: LOW_INVENTORY_THRESHOLD_KG"}),
    }


class ProjectCreateSchema(Schema.from_dict(settlement_fields(True))):
    code = fields.String(required=True, validate=PROJECT_CODE)
    name = text(200, required=True)
    name_en = text(200, required=True)
    type = fields.String(required=True, validate=PROJECT_TYPE)
    location = text(200, required=True)
    location_zh = text(200, allow_none=True, load_default=None)
    registry = fields.String(load_default="CDCER", validate=REGISTRY)
    vintage = fields.Integer(required=True, strict=True, validate=validate.Range(min=1990, max=2100))
    price_fen_per_tonne = fields.Integer(required=True, strict=True, validate=PRICE)


class ProjectUpdateSchema(Schema.from_dict(settlement_fields(False))):
    """Price, owner, fee rule, threshold and descriptive fields. Code, registry and vintage
    name the serials already retired, so they never change."""

    name = text(200)
    name_en = text(200)
    type = fields.String(validate=PROJECT_TYPE)
    location = text(200)
    location_zh = text(200, allow_none=True)
    price_fen_per_tonne = fields.Integer(strict=True, validate=PRICE)

    @validates_schema
    def _something_to_change(self, data, **_kwargs):
        if not data:
            raise ValidationError("give at least one field to change", "_schema")


class IssuanceCreateSchema(Schema):
    first = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_SERIAL))
    last = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_SERIAL))

    @validates_schema
    def _ordered(self, data, **_kwargs):
        if "first" in data and "last" in data and data["last"] < data["first"]:
            raise ValidationError("must be ≥ first", "last")


class IssuanceSchema(Schema):
    id = fields.Integer()
    project_id = fields.String()
    first = fields.Integer()
    last = fields.Integer()
    quantity_kg = fields.Integer()
    issued_at = fields.String()
    project = fields.Nested(ProjectSchema)
