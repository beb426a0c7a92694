"""Request and response schemas of a scene's organiser inputs (docs/contract.md §5)."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .domain.organiser import ORGANISER_CATEGORIES, WASTE_TREATMENTS
from .schemas import FactorRefSchema

# Bounds beyond which a value is a typo or an attack, not an event: a week-long congress
# of 50,000 people uses some 10 GWh, eats some 1,000,000 meals, leaves some 1,000 t of waste.
MAX_ATTENDEES = 1_000_000
MAX_VENUE_KWH = 100_000_000
MAX_MEALS = 10_000_000
MAX_WASTE_KG = 10_000_000


def _quantity(maximum: int, description: str) -> fields.Float:
    return fields.Float(allow_none=True, allow_nan=False, validate=validate.Range(min=0, max=maximum),
                        metadata={"description": f"{description}, at most {maximum:,}; null: not entered"})


def _count(maximum: int, description: str) -> fields.Integer:
    return fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=0, max=maximum),
                          metadata={"description": f"{description}, at most {maximum:,}; null: not entered"})


class CateringSchema(Schema):
    meat_meals = _count(MAX_MEALS, "meals with meat served")
    vegetarian_meals = _count(MAX_MEALS, "vegetarian meals served")


class OrganiserInputsRequestSchema(Schema):
    """The whole of what the organiser entered (a PUT replaces it); a field left out is null."""

    attendees = _count(MAX_ATTENDEES, "registered attendees")
    venue_kwh = _quantity(MAX_VENUE_KWH, "the venue's metered electricity for the event, kWh")
    catering = fields.Nested(CateringSchema, allow_none=True)
    waste_kg = _quantity(MAX_WASTE_KG, "the event's waste by weight, kg")
    waste_treatment = fields.String(allow_none=True, validate=validate.OneOf(WASTE_TREATMENTS),
                                    metadata={"description": "how the waste is treated; "
                                                             "required with waste_kg"})

    @validates_schema
    def treatment_goes_with_waste(self, data, **_kwargs):
        has_waste, treatment = data.get("waste_kg") is not None, data.get("waste_treatment")
        if has_waste and treatment is None:
            raise ValidationError({"waste_treatment": ["required with waste_kg"]})
        if treatment is not None and not has_waste:
            raise ValidationError({"waste_treatment": ["only with waste_kg"]})


class OrganiserLineSchema(Schema):
    """One line, like an estimate's items."""

    type = fields.String(validate=validate.OneOf(("electricity", "meal", "waste")))
    category = fields.String(validate=validate.OneOf(ORGANISER_CATEGORIES))
    kg = fields.Float()
    factor = fields.Nested(FactorRefSchema, metadata={"description": "the emission factor applied"})
    parameters = fields.List(fields.Nested(FactorRefSchema),
                             metadata={"description": "other published values the line uses"})
    calculation = fields.String(metadata={"description": "the arithmetic, in words"})
    kwh = fields.Float()
    count = fields.Integer()
    diet = fields.String()
    meals_per_day = fields.Integer()
    waste_kg = fields.Float()
    treatment = fields.String()


class UnpricedSchema(Schema):
    input = fields.String(metadata={"description": "the field entered"})
    reason = fields.String()


class OrganiserCategoriesSchema(Schema):
    venue_energy = fields.Float()
    catering = fields.Float()
    waste = fields.Float()


class OrganiserInputsSchema(Schema):
    scene = fields.String()
    province = fields.String(allow_none=True,
                             metadata={"description": "the scene's province, whose grid prices the venue"})
    attendees = fields.Integer(allow_none=True)
    venue_kwh = fields.Float(allow_none=True)
    catering = fields.Nested(CateringSchema)
    waste_kg = fields.Float(allow_none=True)
    waste_treatment = fields.String(allow_none=True)
    updated_at = fields.DateTime(allow_none=True, metadata={"description": "null: nothing entered yet"})
    factor_set = fields.String(metadata={"description": "version of the factor set the lines use "
                                                        "(the current)"})
    lines = fields.List(fields.Nested(OrganiserLineSchema))
    categories = fields.Nested(OrganiserCategoriesSchema)
    total_kg = fields.Float()
    unpriced = fields.List(fields.Nested(UnpricedSchema),
                           metadata={"description": "quantities entered that the factor set cannot price"})
