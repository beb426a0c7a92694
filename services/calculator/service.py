"""Estimates: compute with the current factor set, store everything needed to show the
result again exactly, and sum a scene's estimates for its organisers."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import select

from diandian_common.db import Database
from diandian_common.errors import ApiError, NotFound

from . import scenes
from .domain import calculator
from .domain.factors import Factor
from .domain.footprint import EstimateSummary, Footprint, grams_to_kg, scene_footprint
from .factor_sets import get_factor_set
from .models import Estimate


def _number(value):
    """Decimals become JSON numbers (kg have 3 decimals, factors their published digits)."""
    return float(value) if isinstance(value, Decimal) else value


def factor_json(factor: Factor) -> dict:
    return {"key": factor.key, "value": float(factor.value), "unit": factor.unit,
            "source": factor.source, "year": factor.year, "publisher": factor.publisher,
            "document": factor.document, "table": factor.table, "url": factor.url,
            "note": factor.note}


def item_json(item: calculator.Item) -> dict:
    return {"type": item.type, "category": item.category, "kg": float(item.kg),
            "factor": factor_json(item.factor),
            "parameters": [factor_json(p) for p in item.parameters],
            "calculation": item.calculation,
            **{name: _number(value) for name, value in item.details.items()}}


def benchmark_json(benchmark: calculator.Benchmark | None) -> dict | None:
    if benchmark is None:
        return None
    return {"kg": float(benchmark.kg), "ratio": float(benchmark.ratio),
            "difference_kg": float(benchmark.difference_kg), "factor": factor_json(benchmark.factor)}


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def to_grams(kg: Decimal) -> int:
    return int(kg * 1000)


def create(database: Database, data: dict) -> dict:
    factor_set = get_factor_set(database)
    result = calculator.estimate(data["kind"], data["activities"], factor_set)
    scene_slug = data.get("scene")
    with database.transaction() as session:
        if scene_slug is not None and scenes.find(session, scene_slug) is None:
            raise ApiError(422, "validation_error", "some fields are invalid",
                           {"scene": [f"unknown scene {scene_slug!r}"]})
        row = Estimate(
            id=str(uuid.uuid4()), kind=result.kind, scene_slug=scene_slug,
            participant_id=data.get("participant_id"), factor_set_version=result.factor_set,
            total_g=to_grams(result.total_kg),
            categories_g={name: to_grams(kg) for name, kg in result.categories.items()},
            activities=[{k: _number(v) for k, v in activity.items()}
                        for activity in data["activities"]],
            items=[item_json(item) for item in result.items],
            benchmark=benchmark_json(result.benchmark),
        )
        session.add(row)
        session.flush()
        return to_json(row)


def get(database: Database, estimate_id: str) -> dict:
    with database.transaction() as session:
        row = session.get(Estimate, estimate_id)
        if row is None:
            raise NotFound("estimate", estimate_id)
        return to_json(row)


def to_json(row: Estimate) -> dict:
    return {
        "id": row.id, "kind": row.kind, "scene": row.scene_slug,
        "participant_id": row.participant_id, "total_kg": float(grams_to_kg(row.total_g)),
        "items": row.items,
        "categories": {name: float(grams_to_kg(grams)) for name, grams in row.categories_g.items()},
        "benchmark": row.benchmark, "factor_set": row.factor_set_version,
        "created_at": as_utc(row.created_at),
    }


def footprint(database: Database, slug: str) -> dict:
    """The trip estimates made for a scene (life estimates are not part of an event)."""
    with database.transaction() as session:
        scenes.get(session, slug)
        rows = session.execute(
            select(Estimate.id, Estimate.participant_id, Estimate.created_at, Estimate.total_g,
                   Estimate.categories_g)
            .where(Estimate.scene_slug == slug, Estimate.kind == "trip")
        ).yield_per(1000)
        result: Footprint = scene_footprint(
            EstimateSummary(estimate_id=r.id, participant_id=r.participant_id,
                            created_at=r.created_at, total_g=r.total_g, categories_g=r.categories_g)
            for r in rows)
    return {"scene": slug, "participants": result.participants, "estimates": result.estimates,
            "total_kg": float(result.total_kg), "average_kg": float(result.average_kg),
            "categories": {name: float(kg) for name, kg in result.categories.items()}}
