"""Request and response schemas (marshmallow): the calculator's part of docs/contract.md §5."""
from __future__ import annotations

import copy

from marshmallow import (Schema, ValidationError, fields, pre_load, validate,
                         validates_schema)

from diandian_common.web import OneOf

from .domain.airports import DEFAULT_LIMIT, MAX_LIMIT, MAX_QUERY_LENGTH, has_control_characters
from .domain.calculator import (ACTIVITY_TYPES, CABINS, CATEGORIES, DIETS, FLIGHT_BANDS, FUELS,
                                KINDS, PERIODS_PER_YEAR, RAIL_CLASSES)
from .domain.countries import is_country_code
from .domain.geo import airport
from .domain.provinces import PROVINCES
from .domain.scenes import SCENE_TYPES, SLUG_MAX_LENGTH, SLUG_MIN_LENGTH, SLUG_RE

GASES = ("CO2", "CO2e")

# Bounds beyond which a value is a typo or an attack, not a journey or a household.
MAX_DISTANCE_KM = 50_000
MAX_KWH = 10_000_000
MAX_M3 = 10_000_000
MAX_NIGHTS = 365
MAX_ROOMS = 500
MAX_PARTY_SIZE = 500
MAX_MEALS = 100_000
MAX_ACTIVITIES = 100

# The fields each activity type takes (besides ``type``, ``party_size``, and ``period`` in
# life estimates). ``passengers`` is the name 2025.1's API gave flights and cars for what is
# now ``party_size``; it is still accepted there, meaning the same (never both).
ACTIVITY_FIELDS = {
    "flight": {"from", "to", "distance_km", "cabin", "round_trip", "passengers"},
    "rail": {"distance_km", "class"},
    "metro": {"distance_km"},
    "bus": {"distance_km"},
    "taxi": {"distance_km"},
    "car": {"distance_km", "fuel", "passengers", "province"},
    "hotel": {"nights", "rooms", "country"},
    "electricity": {"kwh", "province"},
    "natural_gas": {"m3"},
    "meal": {"count", "diet"},
}
COMMON_ACTIVITY_FIELDS = {"type", "period", "party_size"}
REQUIRED_ACTIVITY_FIELDS = {
    "rail": {"distance_km"}, "metro": {"distance_km"}, "bus": {"distance_km"},
    "taxi": {"distance_km"}, "car": {"distance_km"}, "hotel": {"nights"},
    "electricity": {"kwh"}, "natural_gas": {"m3"}, "meal": {"count"},
}
MISSING = "Missing data for required field."


def known_airport(code: str) -> None:
    if airport(code) is None:
        raise ValidationError(f"unknown IATA airport code {code!r}")


def known_country(code: str) -> None:
    if not is_country_code(code):
        raise ValidationError(f"not an ISO 3166-1 alpha-2 country code: {code!r}")


def province_field(**kwargs) -> fields.String:
    return fields.String(validate=validate.OneOf(
        sorted(PROVINCES), error="not an ISO 3166-2:CN province code (like CN-SC): {input!r}"), metadata={
        "description": "ISO 3166-2:CN code of the venue's province (CN-SC): its grid prices the "
                       "venue's electricity; null for the national grid"}, **kwargs)


def slug_field(**kwargs) -> fields.String:
    return fields.String(
        validate=[validate.Length(min=SLUG_MIN_LENGTH, max=SLUG_MAX_LENGTH),
                  validate.Regexp(SLUG_RE, error="lowercase letters, digits and single hyphens only")],
        **kwargs)


def amount(maximum: int, description: str) -> fields.Float:
    return fields.Float(validate=validate.Range(min=0, max=maximum),
                        metadata={"description": f"{description}, at most {maximum:,}"})


def whole(minimum: int, maximum: int, description: str) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=minimum, max=maximum),
                          metadata={"description": description})


# --- estimates ------------------------------------------------------------------------

class ActivitySchema(Schema):
    """One activity; which fields apply depends on ``type`` (docs/contract.md §5, EstimateRequest)."""

    type = fields.String(required=True, validate=validate.OneOf(ACTIVITY_TYPES))
    from_ = fields.String(data_key="from", attribute="from",
                          validate=[validate.Length(equal=3), known_airport],
                          metadata={"description": "flight: IATA code of the departure airport"})
    to = fields.String(validate=[validate.Length(equal=3), known_airport],
                       metadata={"description": "flight: IATA code of the arrival airport"})
    distance_km = amount(MAX_DISTANCE_KM, "km; for a flight, instead of from/to, taken as "
                                          "great-circle distance")
    cabin = fields.String(validate=validate.OneOf(CABINS),
                          metadata={"description": "flight: cabin class (default economy)"})
    round_trip = fields.Boolean(metadata={"description": "flight: counts both ways (default false)"})
    party_size = whole(1, MAX_PARTY_SIZE, (
        "people travelling or staying together (default 1); the estimate stays one guest's: "
        "shared things (car, taxi, hotel room, household bill, the meals counted) are divided "
        "among them, a seat (flight, train, metro, bus) is one guest's seat"))
    passengers = whole(1, MAX_PARTY_SIZE, "flight, car: the former name of party_size (same "
                                          "meaning; give one of the two)")
    province = fields.String(validate=validate.OneOf(
        sorted(PROVINCES), error="not an ISO 3166-2:CN province code (like CN-SC): {input!r}"), metadata={
        "description": "electricity, electric car: ISO 3166-2:CN code of the grid's province (CN-SC): "
                       "MEE's provincial factor (Tibet: its regional grid's); leave out for the national "
                       "average"})
    class_ = fields.String(data_key="class", attribute="class",
                           validate=validate.OneOf(RAIL_CLASSES),
                           metadata={"description": "rail: default high_speed"})
    fuel = fields.String(validate=validate.OneOf(FUELS),
                         metadata={"description": "car: default petrol"})
    nights = whole(1, MAX_NIGHTS, "hotel: nights")
    rooms = whole(1, MAX_ROOMS, "hotel: rooms (default 1)")
    country = fields.String(validate=[validate.Length(equal=2), known_country],
                            metadata={"description": "hotel: ISO 3166-1 alpha-2 code (default CN)"})
    kwh = amount(MAX_KWH, "electricity: kWh")
    m3 = amount(MAX_M3, "natural_gas: cubic metres")
    count = whole(1, MAX_MEALS, "meal: number of meals")
    diet = fields.String(validate=validate.OneOf(DIETS),
                         metadata={"description": "meal: default meat"})
    period = fields.String(validate=validate.OneOf(tuple(PERIODS_PER_YEAR)),
                           metadata={"description": "life estimates only: the quantities are per "
                                                    "day, week, month or year (default year)"})

    @validates_schema
    def fields_match_type(self, data, **_kwargs):
        activity_type = data["type"]
        allowed = ACTIVITY_FIELDS[activity_type] | COMMON_ACTIVITY_FIELDS
        errors = {name: [f"not a field of {activity_type} activities"]
                  for name in data if name not in allowed}
        errors.update({name: [MISSING] for name in REQUIRED_ACTIVITY_FIELDS.get(activity_type, ())
                       if name not in data})
        if "passengers" in data and "party_size" in data and "passengers" in allowed:
            errors["passengers"] = ["give party_size or passengers, not both"]
        if activity_type == "flight":
            errors.update(self._flight_route_errors(data))
        if errors:
            raise ValidationError(errors)

    @staticmethod
    def _flight_route_errors(data) -> dict:
        has_route = "from" in data or "to" in data
        if has_route and "distance_km" in data:
            return {"distance_km": ["give either from/to or distance_km, not both"]}
        if not has_route and "distance_km" not in data:
            return {"from": [MISSING], "to": [MISSING]}
        if has_route:
            missing = {name: [MISSING] for name in ("from", "to") if name not in data}
            if missing:
                return missing
            if data["from"].upper() == data["to"].upper():
                return {"to": ["must differ from the departure airport"]}
        return {}


# A flight is given by its route or by its distance, never both (ActivitySchema's
# _flight_route_errors): the documented variants of a type with alternatives.
ACTIVITY_ALTERNATIVES = {"flight": {"Route": {"from", "to"}, "Distance": {"distance_km"}}}


def _documented_variant(name: str, activity_type: str, names: set[str], required: set[str]) -> type[Schema]:
    """Documentation only: the activities of one type as the OpenAPI document shows them, made
    of ActivitySchema's own fields (their bounds and descriptions), ``type`` fixed to this type."""
    declared = {field.data_key or attribute: field
                for attribute, field in ActivitySchema._declared_fields.items()}
    attributes: dict = {"type": fields.String(required=True, validate=validate.OneOf([activity_type]))}
    for key in sorted(names | (COMMON_ACTIVITY_FIELDS - {"type"})):
        field = copy.copy(declared[key])
        field.required = key in required
        attributes[key] = field
    return type(f"{name}ActivitySchema", (Schema,), attributes)


def _documented_activity(activity_type: str) -> type[Schema]:
    name = activity_type.title().replace("_", "")
    names, required = ACTIVITY_FIELDS[activity_type], REQUIRED_ACTIVITY_FIELDS.get(activity_type, set())
    alternatives = ACTIVITY_ALTERNATIVES.get(activity_type)
    if not alternatives:
        return _documented_variant(name, activity_type, names, required)
    others = set().union(*alternatives.values())
    variant = type(f"{name}ActivitySchema", (Schema,),
                   {"__doc__": f"A {activity_type}: one of its ways of being given."})
    variant.openapi_one_of = OneOf([
        _documented_variant(f"{name}{alternative}", activity_type, names - (others - given), required | given)
        for alternative, given in alternatives.items()])
    return variant


ActivitySchema.openapi_one_of = OneOf({t: _documented_activity(t) for t in ACTIVITY_TYPES},
                                      discriminator="type")


class EstimateRequestSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS),
                         metadata={"description": "trip: a scene visit; life: a year of daily life"})
    scene = fields.String(allow_none=True, validate=validate.Length(max=SLUG_MAX_LENGTH),
                          metadata={"description": "slug of the scene visited"})
    participant_id = fields.String(allow_none=True, validate=validate.Length(min=1, max=48),
                                   metadata={"description": (
                                       "leave out: the estimate is the guest's of the browser's cookie; an "
                                       "operator key with the guests scope names its guest here (stored as "
                                       "<key id>~<id>). An event counts each participant once")})
    activities = fields.List(fields.Nested(ActivitySchema), required=True,
                             validate=validate.Length(min=1, max=MAX_ACTIVITIES))

    @pre_load
    def refuse_oversized_lists(self, data, **_kwargs):
        # Checked before the activities are deserialised one by one.
        activities = data.get("activities") if isinstance(data, dict) else None
        if isinstance(activities, list) and len(activities) > MAX_ACTIVITIES:
            raise ValidationError({"activities": [f"at most {MAX_ACTIVITIES} activities"]})
        return data

    @validates_schema
    def period_only_in_life(self, data, **_kwargs):
        if data["kind"] == "life":
            return
        errors = {index: {"period": ["only life estimates take a period"]}
                  for index, activity in enumerate(data["activities"]) if "period" in activity}
        if errors:
            raise ValidationError({"activities": errors})


class FactorRefSchema(Schema):
    key = fields.String()
    value = fields.Float()
    unit = fields.String()
    source = fields.String(metadata={"description": "publication and table or row"})
    year = fields.Integer()
    publisher = fields.String()
    document = fields.String()
    table = fields.String()
    url = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    edition = fields.String(allow_none=True, metadata={"description": "edition of the publication"})
    gases = fields.String(allow_none=True, validate=validate.OneOf(GASES), metadata={
        "description": "what the unit counts: CO2 only, or CO2e (CO2, CH4, N2O... as CO2 "
                       "equivalents); null for a parameter that is no emission (km, ratio, kWh)"})
    radiative_forcing = fields.Boolean(metadata={
        "description": "flight lines only: whether the factor includes radiative forcing"})


class ItemSchema(Schema):
    """One line of an estimate; besides the common fields, the details of its activity."""

    type = fields.String(validate=validate.OneOf(ACTIVITY_TYPES))
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    kg = fields.Float(metadata={"description": "the guest's kilograms of the line (the gases "
                                               "its factor.gases says)"})
    kg_without_rf = fields.Float(allow_none=True, metadata={
        "description": "flights: the same line without radiative forcing (null: the factor set "
                       "publishes none, 2025.1)"})
    party_size = fields.Integer(metadata={"description": "people travelling or staying together"})
    share = fields.Float(metadata={"description": "the guest's part of what the line measures: "
                                                  "1/party_size when shared, 1 for a seat"})
    note = fields.String(allow_none=True, metadata={
        "description": "a proxy or fallback the line uses, in words (a UK factor standing in)"})
    province = fields.String(metadata={"description": "electricity, electric car: the grid's province"})
    factor = fields.Nested(FactorRefSchema, metadata={"description": "the emission factor applied"})
    parameters = fields.List(fields.Nested(FactorRefSchema),
                             metadata={"description": "other published values the line uses"})
    calculation = fields.String(metadata={"description": "the arithmetic, in words"})
    from_ = fields.String(data_key="from", attribute="from")
    to = fields.String()
    distance_km = fields.Float()
    band = fields.String(validate=validate.OneOf(FLIGHT_BANDS))
    cabin = fields.String()
    round_trip = fields.Boolean()
    passengers = fields.Integer()
    class_ = fields.String(data_key="class", attribute="class")
    fuel = fields.String()
    kwh = fields.Float()
    nights = fields.Integer()
    rooms = fields.Integer()
    room_nights = fields.Integer()
    country = fields.String()
    m3 = fields.Float()
    count = fields.Integer()
    diet = fields.String()
    meals_per_day = fields.Integer()
    period = fields.String()
    periods_per_year = fields.Integer()


class CategoriesSchema(Schema):
    home_energy = fields.Float()
    transport = fields.Float()
    flights = fields.Float()
    food = fields.Float()
    accommodation = fields.Float()


class BenchmarkSchema(Schema):
    kg = fields.Float(metadata={"description": "the benchmark, kg per person per year"})
    gases = fields.String(allow_none=True, metadata={"description": "what the benchmark counts (CO2)"})
    compared_kg = fields.Float(metadata={
        "description": "the estimate's lines counting the same gases as the benchmark (CO2-only "
                       "lines: grid electricity, gas, electric cars, trains on the grid)"})
    not_compared_kg = fields.Float(metadata={
        "description": "the estimate's other (CO2e) lines, not compared: the benchmark does not count them"})
    ratio = fields.Float(metadata={"description": "compared_kg ÷ the benchmark"})
    difference_kg = fields.Float(metadata={"description": "compared_kg − the benchmark"})
    factor = fields.Nested(FactorRefSchema, metadata={"description": "the benchmark's source"})


class BilingualSchema(Schema):
    en = fields.String()
    zh = fields.String()


class EstimateNotesSchema(Schema):
    radiative_forcing = fields.Nested(BilingualSchema)


class EstimateSchema(Schema):
    id = fields.String()
    kind = fields.String()
    scene = fields.String(allow_none=True)
    participant_id = fields.String(allow_none=True)
    total_kg = fields.Float()
    total_kg_without_rf = fields.Float(allow_none=True, metadata={
        "description": "the total with every flight without radiative forcing (null when not "
                       "known: a 2025.1 estimate with flights)"})
    items = fields.List(fields.Nested(ItemSchema))
    categories = fields.Nested(CategoriesSchema)
    categories_without_rf = fields.Nested(CategoriesSchema, allow_none=True, metadata={
        "description": "the categories with flights without radiative forcing (null when not known)"})
    notes = fields.Nested(EstimateNotesSchema, metadata={
        "description": "plain-words explanations the figures need (radiative forcing)"})
    benchmark = fields.Nested(BenchmarkSchema, allow_none=True,
                              metadata={"description": "life estimates: comparison with a "
                                                       "per-capita figure"})
    factor_set = fields.String(metadata={"description": "version of the factor set used"})
    created_at = fields.DateTime()


class FootprintSchema(Schema):
    scene = fields.String()
    participants = fields.Integer(metadata={"description": "distinct participants who estimated "
                                                           "(anonymous estimates count one each)"})
    estimates = fields.Integer()
    total_kg = fields.Float()
    average_kg = fields.Float()
    categories = fields.Nested(CategoriesSchema)
    total_kg_without_rf = fields.Float(allow_none=True, metadata={
        "description": "the total with flights without radiative forcing; null when a counted "
                       "estimate has flights whose figure without it was not recorded (factor set 2025.1)"})
    categories_without_rf = fields.Nested(CategoriesSchema, allow_none=True, metadata={
        "description": "the categories with flights without radiative forcing (only flights "
                       "differ); null as total_kg_without_rf"})
    estimates_without_rf_unknown = fields.Integer(metadata={
        "description": "counted estimates whose flights have no recorded figure without radiative forcing"})


# --- factors ----------------------------------------------------------------------------

class FactorSchema(FactorRefSchema):
    citation = fields.String()


class FactorSetSchema(Schema):
    version = fields.String()
    title = fields.String()
    description = fields.String()
    current = fields.Boolean(metadata={"description": "whether new estimates use this set"})
    versions = fields.List(fields.String(), metadata={"description": "every stored version"})
    items = fields.List(fields.Nested(FactorSchema))


class FactorsQuerySchema(Schema):
    version = fields.String(validate=validate.Regexp(r"^\d{4}\.\d+$"),
                            metadata={"description": "a stored version (default: the current)"})


# --- scenes -----------------------------------------------------------------------------

class SceneSchema(Schema):
    id = fields.Integer()
    slug = fields.String()
    name = fields.String()
    name_en = fields.String(allow_none=True)
    type = fields.String(validate=validate.OneOf(SCENE_TYPES))
    location = fields.String(allow_none=True)
    province = province_field(allow_none=True)
    starts_on = fields.Date(allow_none=True)
    ends_on = fields.Date(allow_none=True)
    page_url = fields.String()
    qr_png_url = fields.String()
    poster_pdf_url = fields.String()
    form = fields.List(fields.String(), metadata={"description": "activity types the scene page "
                                                                 "asks for by default"})
    archived = fields.Boolean()


class SceneListSchema(Schema):
    items = fields.List(fields.Nested(SceneSchema))


class SceneListQuerySchema(Schema):
    type = fields.String(validate=validate.OneOf(SCENE_TYPES))
    include_archived = fields.Boolean(load_default=False)


def _name(required: bool = False, nullable: bool = True) -> fields.String:
    return fields.String(required=required, allow_none=nullable and not required,
                         validate=validate.Length(min=1, max=200))


class SceneUpdateSchema(Schema):
    name = _name(nullable=False)  # a scene always has a name: it may change, never go
    name_en = _name()
    type = fields.String(validate=validate.OneOf(SCENE_TYPES))
    location = _name()
    province = province_field(allow_none=True)
    starts_on = fields.Date(allow_none=True)
    ends_on = fields.Date(allow_none=True)
    archived = fields.Boolean(metadata={"description": "false restores an archived scene"})

    @validates_schema
    def dates_in_order(self, data, **_kwargs):
        starts_on, ends_on = data.get("starts_on"), data.get("ends_on")
        if starts_on and ends_on and ends_on < starts_on:
            raise ValidationError({"ends_on": ["must not be before starts_on"]})


class SceneCreateSchema(SceneUpdateSchema):
    slug = slug_field(required=True,
                      metadata={"description": "stable URL name: lowercase a-z, 0-9 and hyphens"})
    name = _name(required=True)
    type = fields.String(required=True, validate=validate.OneOf(SCENE_TYPES))

    class Meta:
        exclude = ("archived",)


# --- airports ---------------------------------------------------------------------------

def _searchable(text: str) -> None:
    if not text.strip():
        raise ValidationError("type part of an airport's code, city or name")
    if has_control_characters(text):
        raise ValidationError("must not contain control characters")


class AirportSearchQuerySchema(Schema):
    q = fields.String(required=True, validate=[validate.Length(max=MAX_QUERY_LENGTH), _searchable],
                      metadata={"description": "an IATA code (CTU), or part of a city or airport name in "
                                               "English (chengdu, heathrow, hong kong: words' starts, case "
                                               "and accents ignored) or Chinese (成都, 天府, 臺北)"})
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT),
                           metadata={"description": f"at most this many airports (default {DEFAULT_LIMIT})"})


class AirportSchema(Schema):
    iata = fields.String(metadata={"description": "IATA code: what POST /estimates takes as from and to"})
    name = fields.String(metadata={"description": "the airport's name in English"})
    city = fields.String(metadata={"description": "the city it serves, in English"})
    name_zh = fields.String(allow_none=True, metadata={
        "description": "its official Chinese name, simplified characters; null when not known"})
    city_zh = fields.String(allow_none=True, metadata={
        "description": "the city in Chinese; null when not known"})
    country = fields.String(metadata={"description": "ISO 3166-1 alpha-2 code (CN, HK, MO, TW, GB)"})
