"""HTTP API of the calculator (docs/contract.md §5, routes tagged calculator); routes only."""
from __future__ import annotations

import io

from flask import current_app, send_file

from diandian_common import config
from diandian_common.auth import acting_participant_id, operator_required
from diandian_common.errors import NotFound
from diandian_common.web import Blueprint

from . import airports, factor_sets, organiser, service, tasks
from .organiser_schemas import OrganiserInputsRequestSchema, OrganiserInputsSchema
from .rendering import RenderCache
from .schemas import (
    AirportSchema,
    AirportSearchQuerySchema,
    EstimateRequestSchema,
    EstimateSchema,
    FactorSetSchema,
    FactorsQuerySchema,
    FootprintSchema,
    SceneCreateSchema,
    SceneListQuerySchema,
    SceneListSchema,
    SceneSchema,
    SceneUpdateSchema,
)
from .wiring import unit_of_work

blp = Blueprint("calculator", __name__, url_prefix="/api/v1",
                description="Scenes, emission factors and footprint estimates")

OPERATOR = {"security": [{"ApiKeyAuth": []}]}
AIRPORTS_CACHE_CONTROL = "public, max-age=3600"


def _binary(content_type: str, description: str) -> dict:
    return {"responses": {"200": {"description": description, "content": {
        content_type: {"schema": {"type": "string", "format": "binary"}}}}}}


def _base_url() -> str:
    return current_app.config["PUBLIC_BASE_URL"]


# --- scenes -----------------------------------------------------------------------------

@blp.route("/scenes", methods=["GET"])
@blp.arguments(SceneListQuerySchema, location="query")
@blp.response(200, SceneListSchema)
def list_scenes(query):
    """Scenes, optionally of one type; archived ones only on request."""
    with unit_of_work() as uow:
        return service.list_scenes(uow, query.get("type"), query["include_archived"], _base_url())


@blp.route("/scenes", methods=["POST"])
@operator_required
@blp.doc(**OPERATOR)
@blp.arguments(SceneCreateSchema)
@blp.response(201, SceneSchema)
def create_scene(data):
    """Create a scene (operator). 409 ``slug_taken`` when the slug is in use."""
    with unit_of_work() as uow:
        body = service.create_scene(uow, data, _base_url())
    tasks.request_prerender(body["slug"])
    return body


@blp.route("/scenes/<slug>", methods=["GET"])
@blp.response(200, SceneSchema)
def get_scene(slug):
    """A scene, archived or not."""
    with unit_of_work() as uow:
        return service.get_scene(uow, slug, _base_url())


@blp.route("/scenes/<slug>", methods=["PATCH"])
@operator_required
@blp.doc(**OPERATOR)
@blp.arguments(SceneUpdateSchema)
@blp.response(200, SceneSchema)
def update_scene(changes, slug):
    """Change a scene's texts, type or dates, or (un)archive it (operator); the slug stays."""
    with unit_of_work() as uow:
        body = service.update_scene(uow, slug, changes, _base_url())
    tasks.request_prerender(slug)
    return body


@blp.route("/scenes/<slug>", methods=["DELETE"])
@operator_required
@blp.doc(**OPERATOR)
@blp.response(200, SceneSchema)
def archive_scene(slug):
    """Archive a scene (operator): hidden from the list, still readable, estimates kept."""
    with unit_of_work() as uow:
        return service.archive_scene(uow, slug, _base_url())


def _drawing(slug):
    with unit_of_work() as uow:
        return service.scene_drawing(uow, slug, _base_url())


@blp.route("/scenes/<slug>/qr.png", methods=["GET"])
@blp.doc(**_binary("image/png", "QR code decoding to the scene's page_url"))
def scene_qr(slug):
    """The scene's QR code (PNG)."""
    render = RenderCache.default().qr(_drawing(slug))
    return send_file(io.BytesIO(render.content), mimetype="image/png", etag=render.etag,
                     max_age=3600, download_name=f"{slug}-qr.png")


@blp.route("/scenes/<slug>/poster.pdf", methods=["GET"])
@blp.doc(**_binary("application/pdf", "A4 door poster with the scene's QR code"))
def scene_poster(slug):
    """The scene's A4 door poster (PDF): name, QR code and a bilingual call to action."""
    render = RenderCache.default().poster(_drawing(slug))
    return send_file(io.BytesIO(render.content), mimetype="application/pdf", etag=render.etag,
                     max_age=300, download_name=f"{slug}-poster.pdf")


@blp.route("/scenes/<slug>/footprint", methods=["GET"])
@blp.response(200, FootprintSchema)
def scene_footprint(slug):
    """An event's footprint for its organisers: participants who estimated, total, average
    and categories (each participant's latest trip estimate counts)."""
    with unit_of_work() as uow:
        return service.scene_footprint(uow, slug)


@blp.route("/scenes/<slug>/organiser-inputs", methods=["GET"])
@blp.response(200, OrganiserInputsSchema)
def get_organiser_inputs(slug):
    """What the event's organiser entered (attendees, venue electricity, catering, waste) and
    its lines priced with the current factor set; all null and no lines before any entry."""
    factor_set = factor_sets.get_factor_set(unit_of_work)
    with unit_of_work() as uow:
        return organiser.get_organiser_inputs(uow, factor_set, slug)


@blp.route("/scenes/<slug>/organiser-inputs", methods=["PUT"])
@operator_required
@blp.doc(**OPERATOR)
@blp.arguments(OrganiserInputsRequestSchema)
@blp.response(200, OrganiserInputsSchema)
def put_organiser_inputs(data, slug):
    """Replace the organiser's inputs of an event (operator); a field left out is not entered."""
    factor_set = factor_sets.get_factor_set(unit_of_work)
    with unit_of_work() as uow:
        return organiser.put_organiser_inputs(uow, factor_set, slug, data)


# --- estimates --------------------------------------------------------------------------

@blp.route("/estimates", methods=["POST"])
@blp.arguments(EstimateRequestSchema())  # one instance: webargs would build one per request
@blp.response(201, EstimateSchema)
def create_estimate(data):
    """Compute and store a trip or life footprint, itemised with factors and sources.

    The estimate is the guest's of the browser's cookie (through the gateway); only an
    operator key with the guests scope names a participant in ``participant_id``."""
    data = {**data, "participant_id": acting_participant_id(data.get("participant_id"), ("participant_id",))}
    factor_set = factor_sets.get_factor_set(unit_of_work)  # the current one, loaded on first use
    with unit_of_work() as uow:
        return service.create_estimate(uow, factor_set, data,
                                       flight_rf=config.env_bool("CALCULATOR_FLIGHT_RF", True))


@blp.route("/estimates/<estimate_id>", methods=["GET"])
@blp.response(200, EstimateSchema)
def get_estimate(estimate_id):
    """A stored estimate, exactly as computed (with the factor set it used)."""
    with unit_of_work() as uow:
        return service.get_estimate(uow, estimate_id)


# --- factors ----------------------------------------------------------------------------

@blp.route("/factors", methods=["GET"])
@blp.arguments(FactorsQuerySchema, location="query")
@blp.response(200, FactorSetSchema)
def list_factors(query):
    """The current factor set (or a stored older one) with every factor's source."""
    current = factor_sets.default_version()
    version = query.get("version", current)
    factor_set = factor_sets.get_factor_set(unit_of_work, version)
    if factor_set is None:
        raise NotFound("factor set", version)
    with unit_of_work() as uow:
        return service.describe_factor_set(uow, factor_set, current)


# --- airports ---------------------------------------------------------------------------

@blp.route("/airports", methods=["GET"])
@blp.arguments(AirportSearchQuerySchema, location="query")
@blp.response(200, AirportSchema(many=True))
def search_airports(query):
    """Airports by IATA code, or city or airport name in English or Chinese, best matches
    first: the exact code, then city matches, then airport-name matches, then weaker ones;
    airports with scheduled passenger service before small fields. No database: the index
    is built once per process."""
    # The same query answers the same airports until the next release: a phone typing 成, 成都
    # again need not ask twice.
    return airports.search(query["q"], query["limit"]), 200, {"Cache-Control": AIRPORTS_CACHE_CONTROL}
