"""The calculator's service functions: scenes, estimates and the factor set's listing.

Each takes the caller's unit of work (CONTRIBUTING.md, "The transaction rule") and works in
``uow.session``; none commits, opens a transaction or sends a message. Routes, the task and
the CLI open the unit of work; a route that changes a scene asks for its pre-render after
the commit (``tasks.request_prerender``).

An estimate is computed with a factor set the caller read beforehand with
``factor_sets.get_factor_set``: loading a set on first use takes transactions of its own.
"""
from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from diandian_common.errors import ApiError, NotFound
from diandian_common.timestamps import as_utc, utcnow
from diandian_common.uow import UnitOfWork

from .domain import calculator, chinese
from .domain import footprint as footprints
from .domain import scenes as rules
from .domain.factors import Factor, FactorSet, version_key
from .domain.footprint import EstimateSummary, Footprint, grams_to_kg
from .factor_sets import stored_versions
from .models import Estimate, Scene
from .rendering import SceneDrawing

# --- scenes: the venues whose doors carry a QR code (docs/contract.md §5) --------------


def find_scene(session: Session, slug: str) -> Scene | None:
    return session.scalar(select(Scene).where(Scene.slug == slug))


def _scene(session: Session, slug: str) -> Scene:
    scene = find_scene(session, slug)
    if scene is None:
        raise NotFound("scene", slug)
    return scene


def list_scenes(uow: UnitOfWork, scene_type: str | None, include_archived: bool,
                public_base_url: str) -> dict:
    """Scenes, newest first, optionally of one type; archived ones only on request."""
    query = select(Scene).order_by(Scene.starts_on.desc().nulls_last(), Scene.id)
    if scene_type:
        query = query.where(Scene.type == scene_type)
    if not include_archived:
        query = query.where(Scene.archived_at.is_(None))
    return {"items": [scene_json(scene, public_base_url) for scene in uow.session.scalars(query)]}


def get_scene(uow: UnitOfWork, slug: str, public_base_url: str) -> dict:
    return scene_json(_scene(uow.session, slug), public_base_url)


def create_scene(uow: UnitOfWork, data: dict, public_base_url: str) -> dict:
    """A new scene; 409 ``slug_taken`` when the slug is in use."""
    return scene_json(_insert_scene(uow.session, data), public_base_url)


def ensure_scene(uow: UnitOfWork, data: dict) -> bool:
    """Create the scene unless its slug exists (the demo seed); True when created."""
    if find_scene(uow.session, data["slug"]) is not None:
        return False
    _insert_scene(uow.session, data)
    return True


def _insert_scene(session: Session, data: dict) -> Scene:
    if find_scene(session, data["slug"]) is not None:
        raise _slug_taken(data["slug"])
    scene = Scene(**data)
    session.add(scene)
    try:
        session.flush()
    except IntegrityError:
        # Another request took the slug between the check and the insert.
        raise _slug_taken(data["slug"]) from None
    return scene


def update_scene(uow: UnitOfWork, slug: str, changes: dict, public_base_url: str) -> dict:
    """Change a scene's texts, type or dates, or (un)archive it; the slug stays."""
    session = uow.session
    scene = _scene(session, slug)
    archived = changes.pop("archived", None)
    starts_on = changes.get("starts_on", scene.starts_on)
    ends_on = changes.get("ends_on", scene.ends_on)
    if starts_on and ends_on and ends_on < starts_on:
        raise ApiError(422, "validation_error", "some fields are invalid",
                       {"ends_on": ["must not be before starts_on"]})
    for name, value in changes.items():
        setattr(scene, name, value)
    if archived is not None:
        _set_archived(scene, archived)
    session.flush()
    return scene_json(scene, public_base_url)


def archive_scene(uow: UnitOfWork, slug: str, public_base_url: str) -> dict:
    scene = _scene(uow.session, slug)
    _set_archived(scene, True)
    return scene_json(scene, public_base_url)


def _set_archived(scene: Scene, archived: bool) -> None:
    """Archived scenes leave the listing but stay readable (their posters may still hang)."""
    if archived and scene.archived_at is None:
        scene.archived_at = utcnow()
    elif not archived:
        scene.archived_at = None


def scene_drawing(uow: UnitOfWork, slug: str, public_base_url: str) -> SceneDrawing:
    """What the scene's QR code and poster show (404 for an unknown slug)."""
    scene = _scene(uow.session, slug)
    return SceneDrawing(slug=scene.slug, name=scene.name, name_en=scene.name_en, type=scene.type,
                        location=scene.location, starts_on=scene.starts_on,
                        ends_on=scene.ends_on, page_url=rules.page_url(public_base_url, scene.slug))


def scene_json(scene: Scene, public_base_url: str) -> dict:
    return {
        "id": scene.id, "slug": scene.slug, "name": scene.name, "name_en": scene.name_en,
        "type": scene.type, "location": scene.location, "province": scene.province,
        "starts_on": scene.starts_on,
        "ends_on": scene.ends_on,
        "page_url": rules.page_url(public_base_url, scene.slug),
        "qr_png_url": rules.qr_png_url(public_base_url, scene.slug),
        "poster_pdf_url": rules.poster_pdf_url(public_base_url, scene.slug),
        "form": rules.form_for(scene.type),
        "archived": scene.archived_at is not None,
    }


def _slug_taken(slug: str) -> ApiError:
    return ApiError(409, "slug_taken", f"the slug {slug!r} is already used by another scene",
                    {"slug": ["already taken"]})


def scene_footprint(uow: UnitOfWork, slug: str) -> dict:
    """The trip estimates made for a scene (life estimates are not part of an event)."""
    _scene(uow.session, slug)
    rows = uow.session.execute(
        select(Estimate.id, Estimate.participant_id, Estimate.created_at, Estimate.total_g,
               Estimate.categories_g, Estimate.total_without_rf_g, Estimate.categories_without_rf_g)
        .where(Estimate.scene_slug == slug, Estimate.kind == "trip")
    ).yield_per(1000)
    result: Footprint = footprints.scene_footprint(
        EstimateSummary(estimate_id=r.id, participant_id=r.participant_id,
                        created_at=r.created_at, total_g=r.total_g, categories_g=r.categories_g,
                        total_without_rf_g=r.total_without_rf_g,
                        categories_without_rf_g=r.categories_without_rf_g)
        for r in rows)
    return {"scene": slug, "participants": result.participants, "estimates": result.estimates,
            "total_kg": float(result.total_kg), "average_kg": float(result.average_kg),
            "categories": {name: float(kg) for name, kg in result.categories.items()},
            "total_kg_without_rf": _kg_or_none(result.total_kg_without_rf),
            "categories_without_rf": _categories_or_none(result.categories_without_rf),
            "estimates_without_rf_unknown": result.without_rf_unknown}


# --- estimates: computed with a factor set, stored with everything needed to show them
# again exactly ------------------------------------------------------------------------

def create_estimate(uow: UnitOfWork, factor_set: FactorSet, data: dict, flight_rf: bool = True) -> dict:
    """Compute and store a trip or life footprint with ``factor_set``; returns the 201 body.
    ``flight_rf`` False makes flights' kg their figure without radiative forcing.
    The arithmetic runs before the first statement, so no transaction waits for it."""
    result = calculator.estimate(data["kind"], data["activities"], factor_set, flight_rf)
    scene_slug = data.get("scene")
    session = uow.session
    if scene_slug is not None and find_scene(session, scene_slug) is None:
        raise ApiError(422, "validation_error", "some fields are invalid",
                       {"scene": [f"unknown scene {scene_slug!r}"]})
    row = Estimate(
        id=str(uuid.uuid4()), kind=result.kind, scene_slug=scene_slug,
        participant_id=data.get("participant_id"), factor_set_version=result.factor_set,
        total_g=to_grams(result.total_kg),
        categories_g={name: to_grams(kg) for name, kg in result.categories.items()},
        total_without_rf_g=(to_grams(result.total_kg_without_rf)
                            if result.total_kg_without_rf is not None else None),
        categories_without_rf_g=({name: to_grams(kg) for name, kg in result.categories_without_rf.items()}
                                 if result.categories_without_rf is not None else None),
        activities=[{k: _number(v) for k, v in activity.items()} for activity in data["activities"]],
        items=[item_json(item) for item in result.items],
        benchmark=benchmark_json(result.benchmark),
    )
    session.add(row)
    session.flush()
    return estimate_json(row)


def get_estimate(uow: UnitOfWork, estimate_id: str) -> dict:
    row = uow.session.get(Estimate, estimate_id)
    if row is None:
        raise NotFound("estimate", estimate_id)
    return estimate_json(row)


def participant_estimates(uow: UnitOfWork, participant_id: str, *, limit: int = 20,
                          before: str | None = None) -> dict:
    """``participant_id``'s estimates newest first, ``limit`` a page; ``before`` is the last id
    of the previous page and must be one of theirs."""
    session = uow.session
    query = (select(Estimate).where(Estimate.participant_id == participant_id)
             .order_by(Estimate.created_at.desc(), Estimate.id.desc()))
    if before:
        anchor = session.get(Estimate, before)
        if anchor is None or anchor.participant_id != participant_id:
            raise ApiError(422, "validation_error", "some fields are invalid",
                           {"before": [f"not one of your estimates: {before}"]})
        query = query.where(or_(Estimate.created_at < anchor.created_at,
                                and_(Estimate.created_at == anchor.created_at, Estimate.id < anchor.id)))
    rows = session.scalars(query.limit(limit + 1)).all()
    page = rows[:limit]
    return {"items": [{"id": row.id, "kind": row.kind, "scene": row.scene_slug,
                       "total_kg": float(grams_to_kg(row.total_g)), "factor_set": row.factor_set_version,
                       "created_at": as_utc(row.created_at)} for row in page],
            "next_before": page[-1].id if len(rows) > limit else None}


def estimate_json(row: Estimate) -> dict:
    return {
        "id": row.id, "kind": row.kind, "scene": row.scene_slug,
        "participant_id": row.participant_id, "total_kg": float(grams_to_kg(row.total_g)),
        "total_kg_without_rf": (float(grams_to_kg(row.total_without_rf_g))
                                if row.total_without_rf_g is not None else None),
        "items": [with_texts(item) for item in row.items or []],
        "categories": {name: float(grams_to_kg(grams)) for name, grams in row.categories_g.items()},
        "categories_without_rf": ({name: float(grams_to_kg(grams))
                                   for name, grams in row.categories_without_rf_g.items()}
                                  if row.categories_without_rf_g is not None else None),
        "notes": {"radiative_forcing": calculator.RADIATIVE_FORCING_NOTE},
        "benchmark": _benchmark_with_texts(row.benchmark), "factor_set": row.factor_set_version,
        "created_at": as_utc(row.created_at),
    }


def with_texts(item: dict) -> dict:
    """A stored line with its words in both languages, derived when it is read, so lines
    stored before the Chinese existed (and those of set 2025.1) read in Chinese too."""
    factor = item.get("factor") or {}
    return {**item, "texts": chinese.item_texts(item),
            "factor": {**factor, "texts": chinese.factor_texts(factor)},
            "parameters": [{**p, "texts": chinese.factor_texts(p)} for p in item.get("parameters") or []]}


def _benchmark_with_texts(benchmark: dict | None) -> dict | None:
    if not benchmark or not benchmark.get("factor"):
        return benchmark
    factor = benchmark["factor"]
    return {**benchmark, "factor": {**factor, "texts": chinese.factor_texts(factor)}}


def _kg_or_none(kg: Decimal | None) -> float | None:
    return float(kg) if kg is not None else None


def _categories_or_none(categories) -> dict | None:
    return {name: float(kg) for name, kg in categories.items()} if categories is not None else None


def to_grams(kg: Decimal) -> int:
    return int(kg * 1000)


def _number(value):
    """Decimals become JSON numbers (kg have 3 decimals, factors their published digits)."""
    return float(value) if isinstance(value, Decimal) else value


def factor_json(factor: Factor) -> dict:
    return {"key": factor.key, "value": float(factor.value), "unit": factor.unit,
            "source": factor.source, "year": factor.year, "publisher": factor.publisher,
            "document": factor.document, "table": factor.table, "url": factor.url,
            "note": factor.note, "edition": factor.edition, "gases": factor.gases}


def item_json(item: calculator.Item) -> dict:
    """One line as stored and shown. ``factor.gases`` is what the line's kg counts (an
    electric car's or a train's is the grid's CO2); a flight's factor says whether it
    includes radiative forcing, and the line carries its kg without it."""
    factor = {**factor_json(item.factor), "gases": item.gases}
    body = {"type": item.type, "category": item.category, "kg": float(item.kg),
            "party_size": item.party_size, "share": float(item.share), "note": item.note,
            "factor": factor, "parameters": [factor_json(p) for p in item.parameters],
            "calculation": item.calculation,
            **{name: _number(value) for name, value in item.details.items()}}
    if item.type == "flight":
        factor["radiative_forcing"] = item.radiative_forcing
        body["kg_without_rf"] = _kg_or_none(item.kg_without_rf)
    return body


def benchmark_json(benchmark: calculator.Benchmark | None) -> dict | None:
    if benchmark is None:
        return None
    return {"kg": float(benchmark.kg), "gases": benchmark.gases,
            "compared_kg": float(benchmark.compared_kg),
            "not_compared_kg": float(benchmark.not_compared_kg), "ratio": float(benchmark.ratio),
            "difference_kg": float(benchmark.difference_kg), "factor": factor_json(benchmark.factor)}


def _described(factor: Factor) -> dict:
    body = {**factor_json(factor), "citation": factor.citation}
    return {**body, "texts": chinese.factor_texts(body)}


# --- factors --------------------------------------------------------------------------

def describe_factor_set(uow: UnitOfWork, factor_set: FactorSet, current_version: str) -> dict:
    """``factor_set`` with every factor's source, and the versions one may ask for: those
    stored and the current one."""
    return {
        "version": factor_set.version, "title": factor_set.title,
        "description": factor_set.description, "current": factor_set.version == current_version,
        "versions": sorted(set(stored_versions(uow.session)) | {current_version}, key=version_key),
        "items": [_described(factor) for factor in factor_set],
    }
