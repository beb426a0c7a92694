"""Service functions of a scene's organiser inputs: what the organiser entered about the
event itself (attendees, the venue's electricity, catering, waste), and its lines priced
with the current factor set (calculator.domain.organiser).

Like service.py, each takes the caller's unit of work and never commits; the factor set is
read by the caller beforehand (``factor_sets.get_factor_set``).
"""
from __future__ import annotations

from decimal import Decimal

from diandian_common.errors import NotFound
from diandian_common.timestamps import as_utc, utcnow
from diandian_common.uow import UnitOfWork

from .domain import organiser as rules
from .domain.calculator import round3, to_decimal
from .domain.factors import Factor, FactorSet, grid_factor
from .domain.footprint import grams_to_kg
from .models import OrganiserInputs, Scene
from .service import factor_json, find_scene

NOT_ENTERED = {"attendees": None, "venue_wh": None, "meat_meals": None, "vegetarian_meals": None,
               "waste_g": None, "waste_treatment": None}


def venue_grid(factor_set: FactorSet, province: str | None) -> Factor:
    """The electricity factor of the venue's grid: the province's, else its regional grid's,
    else the national one (with a note saying so); None is national."""
    return grid_factor(factor_set, province)


def _scene(uow: UnitOfWork, slug: str) -> Scene:
    scene = find_scene(uow.session, slug)
    if scene is None:
        raise NotFound("scene", slug)
    return scene


def _thousandths(value: float | None) -> int | None:
    """kWh or kg as whole Wh or g (half-up), exact on every database."""
    return None if value is None else int(round3(to_decimal(value)) * 1000)


def _units(value: int | None) -> Decimal | None:
    return None if value is None else grams_to_kg(value)


def get_organiser_inputs(uow: UnitOfWork, factor_set: FactorSet, slug: str) -> dict:
    """The scene's organiser inputs with their lines (all null, no lines, before any entry)."""
    scene = _scene(uow, slug)
    return _inputs_json(scene, uow.session.get(OrganiserInputs, slug), factor_set)


def put_organiser_inputs(uow: UnitOfWork, factor_set: FactorSet, slug: str, data: dict) -> dict:
    """Replace what the organiser entered (``data`` as OrganiserInputsRequestSchema loads it)."""
    scene = _scene(uow, slug)
    catering = data.get("catering") or {}
    values = {
        "attendees": data.get("attendees"), "venue_wh": _thousandths(data.get("venue_kwh")),
        "meat_meals": catering.get("meat_meals"), "vegetarian_meals": catering.get("vegetarian_meals"),
        "waste_g": _thousandths(data.get("waste_kg")), "waste_treatment": data.get("waste_treatment"),
    }
    row = uow.session.get(OrganiserInputs, slug)
    if row is None:
        row = OrganiserInputs(scene_slug=slug, **NOT_ENTERED)
        uow.session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    uow.session.flush()
    return _inputs_json(scene, row, factor_set)


def _domain_inputs(row: OrganiserInputs | None) -> rules.OrganiserInputs:
    if row is None:
        return rules.OrganiserInputs()
    return rules.OrganiserInputs(attendees=row.attendees, venue_kwh=_units(row.venue_wh),
                                 meat_meals=row.meat_meals, vegetarian_meals=row.vegetarian_meals,
                                 waste_kg=_units(row.waste_g), waste_treatment=row.waste_treatment)


def _line_json(line: rules.OrganiserLine) -> dict:
    return {"type": line.type, "category": line.category, "kg": float(line.kg),
            "factor": factor_json(line.factor), "parameters": [factor_json(p) for p in line.parameters],
            "calculation": line.calculation,
            **{name: float(value) if isinstance(value, Decimal) else value
               for name, value in line.details.items()}}


def _inputs_json(scene: Scene, row: OrganiserInputs | None, factor_set: FactorSet) -> dict:
    inputs = _domain_inputs(row)
    result = rules.organiser_footprint(inputs, factor_set, venue_grid(factor_set, scene.province))

    def number(value: Decimal | None) -> float | None:
        return None if value is None else float(value)

    return {
        "scene": scene.slug, "province": scene.province, "attendees": inputs.attendees,
        "venue_kwh": number(inputs.venue_kwh),
        "catering": {"meat_meals": inputs.meat_meals, "vegetarian_meals": inputs.vegetarian_meals},
        "waste_kg": number(inputs.waste_kg), "waste_treatment": inputs.waste_treatment,
        "updated_at": as_utc(row.updated_at) if row is not None else None,
        "factor_set": result.factor_set,
        "lines": [_line_json(line) for line in result.lines],
        "categories": {name: float(kg) for name, kg in result.by_category().items()},
        "total_kg": float(result.total_kg),
        "unpriced": [{"input": u.input, "reason": u.reason} for u in result.unpriced],
    }
