"""Ranking API: boards and a participant's standing, read from Redis (docs/contract.md §5)."""
from __future__ import annotations

import logging

import redis
from flask import Response, jsonify

from diandian_common.auth import request_guest
from diandian_common.errors import ApiError
from diandian_common.web import Blueprint

from . import service, settings, store
from .domain.boards import Board, Kind, current_board
from .domain.card import Card, render_card
from .domain.contribution import MAX_ID_LENGTH, grams_to_kg
from .domain.periods import Period
from .schemas import (
    BoardPage,
    BoardQuery,
    CardQuery,
    MyStandings,
    MyStandingsQuery,
    OrderStanding,
    ParticipantQuery,
    ParticipantStanding,
)
from .wiring import unit_of_work

log = logging.getLogger(__name__)

blp = Blueprint("ranking", __name__, url_prefix="/api/v1", description="Leaderboards")

# Instances, not classes: given a class, webargs builds a new schema on every request.
BOARD_QUERY, PARTICIPANT_QUERY, CARD_QUERY = BoardQuery(), ParticipantQuery(), CardQuery()
MY_STANDINGS_QUERY = MyStandingsQuery()


def _board(kind: str, scene: str | None, period: str) -> Board:
    return current_board(Kind(kind), scene, Period(period), settings.now(), settings.tz())


def _unavailable(exc: Exception) -> ApiError:
    log.warning("ranking Redis unavailable: %s", exc)
    return ApiError(503, "service_unavailable", "rankings are temporarily unavailable; try again shortly",
                    headers={"Retry-After": "5"})


def _item(entry: store.Entry, kind: Kind) -> dict:
    member_field = "participant_id" if kind is Kind.INDIVIDUAL else "organization"
    return {"rank": entry.rank, member_field: entry.member, "display_name": entry.display_name,
            "kg": grams_to_kg(entry.grams)}


@blp.get("/rankings")
@blp.arguments(BOARD_QUERY, location="query")
@blp.response(200, BoardPage)
def list_rankings(query):
    """A board's leaders: individuals or organisations, global or one scene's, per period."""
    board = _board(query["board"], query["scene"], query["period"])
    try:
        total, entries = store.top(store.reader(), board, query["limit"])
    except redis.RedisError as exc:
        raise _unavailable(exc) from exc
    # Built here already in the documented shape: jsonify skips flask-smorest's per-field
    # marshmallow dump, which cost more than the whole Redis round trip for 100 items.
    return jsonify({"items": [_item(e, board.kind) for e in entries], "total": total})


def _standing(participant_id: str, query: dict) -> store.Standing:
    if len(participant_id) > MAX_ID_LENGTH:
        raise ApiError(422, "validation_error", "some fields are invalid",
                       fields={"participant_id": [f"Longer than maximum length {MAX_ID_LENGTH}."]})
    board = _board(Kind.INDIVIDUAL, query["scene"], query["period"])
    try:
        found = store.standing(store.reader(), board, participant_id)
    except redis.RedisError as exc:
        raise _unavailable(exc) from exc
    if found is None:
        raise ApiError(404, "not_found", f"participant {participant_id} is not on this board")
    return found


@blp.get("/rankings/participants/<string:participant_id>")
@blp.arguments(PARTICIPANT_QUERY, location="query")
@blp.response(200, ParticipantStanding)
def participant_standing(query, participant_id):
    """A participant's rank on the individual board, with neighbours and the board size
    (everything a rank card needs: "I am No. 12 of 3,456")."""
    found = _standing(participant_id, query)
    own = _item(found.entry, Kind.INDIVIDUAL)
    return jsonify({"participant_id": participant_id, "scene": query["scene"], "period": query["period"],
                    "rank": own["rank"], "kg": own["kg"], "total": found.total,
                    "display_name": own["display_name"],
                    "neighbours": [_item(e, Kind.INDIVIDUAL) for e in found.neighbours]})


@blp.get("/rankings/orders/<string:order_id>")
@blp.arguments(PARTICIPANT_QUERY, location="query")
@blp.response(200, OrderStanding)
def order_standing(query, order_id):
    """The rank of the guest who placed the order (its contribution recorded, not revoked) on
    the individual board: the rank a certificate's share card prints. 404 when the order's
    contribution is not on the board (not recorded yet, revoked, or unknown)."""
    if len(order_id) > MAX_ID_LENGTH:
        raise ApiError(422, "validation_error", "some fields are invalid",
                       fields={"order_id": [f"Longer than maximum length {MAX_ID_LENGTH}."]})
    with unit_of_work() as uow:
        participant_id = service.participant_of_order(uow, order_id)
    board = _board(Kind.INDIVIDUAL, query["scene"], query["period"])
    try:
        found = participant_id and store.standing(store.reader(), board, participant_id, around=0)
    except redis.RedisError as exc:
        raise _unavailable(exc) from exc
    if not found:   # the refusal never names the participant
        raise ApiError(404, "not_found", f"order {order_id} has no contribution on the boards")
    return jsonify({"order_id": order_id, "scene": query["scene"], "period": query["period"],
                    "rank": found.entry.rank, "total": found.total})


@blp.get("/my-standings")
@blp.arguments(MY_STANDINGS_QUERY, location="query")
@blp.response(200, MyStandings)
@blp.alt_response(401, description="no guest: only the gateway, for a browser's cookie, names one")
def my_standings(query):
    """The guest's own ranks, all time: overall and on each scene they took part in (most
    recent first). Only for the participant the gateway vouches for (their cookie): 401
    without one."""
    guest = request_guest()
    if guest is None:
        raise ApiError(401, "unauthorized",
                       "your ranks need the guest's participant cookie (through the gateway)")
    with unit_of_work() as uow:
        scenes, more = service.participant_scenes(uow, guest.participant_id, query["limit"])
    client = store.reader()

    def own(scene: str | None) -> dict | None:
        found = store.standing(client, _board(Kind.INDIVIDUAL, scene, Period.ALL.value), guest.participant_id,
                               around=0)
        if found is None:
            return None
        return {"scene": scene, "rank": found.entry.rank, "kg": grams_to_kg(found.entry.grams),
                "total": found.total}

    try:
        overall = own(None)
        standings = [found for found in map(own, scenes) if found is not None]
    except redis.RedisError as exc:
        raise _unavailable(exc) from exc
    return {"overall": overall, "scenes": standings, "more_scenes": more}


# The card is an image a page embeds or a guest downloads; it carries no script, and the
# policy makes sure a browser opening it directly would not run or fetch anything anyway.
CARD_HEADERS = {"Cache-Control": "public, max-age=60",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                "X-Content-Type-Options": "nosniff"}


@blp.get("/rankings/participants/<string:participant_id>/card.svg")
@blp.arguments(CARD_QUERY, location="query")
@blp.response(200)
@blp.doc(responses={"200": {
    "description": "A 1200×630 self-contained SVG: rank, board size, scene, kilograms, name",
    "content": {"image/svg+xml": {"schema": {"type": "string"}}}}})
def participant_card(query, participant_id):
    """The shareable rank card of a participant ("I am No. 12 of 3,456 at <scene_name>")."""
    found = _standing(participant_id, query)
    card = Card(rank=found.entry.rank, total=found.total, grams=found.entry.grams,
                display_name=found.entry.display_name, period=Period(query["period"]),
                scene_name=query["scene_name"], lang=query["lang"])
    return Response(render_card(card), content_type="image/svg+xml; charset=utf-8", headers=CARD_HEADERS)
