"""Ranking API: boards and a participant's standing, read from Redis (SPEC §4)."""
from __future__ import annotations

import logging

import redis
from flask_smorest import Blueprint

from diandian_common.errors import ApiError

from . import settings, store
from .domain.boards import Board, Kind, current_board
from .domain.contribution import MAX_ID_LENGTH, grams_to_kg
from .domain.periods import Period
from .domain.scores import grams_of
from .schemas import BoardPage, BoardQuery, ParticipantQuery, ParticipantStanding

log = logging.getLogger(__name__)

blp = Blueprint("ranking", __name__, url_prefix="/api/v1", description="Leaderboards")


def _board(kind: str, scene: str | None, period: str) -> Board:
    return current_board(Kind(kind), scene, Period(period), settings.now(), settings.tz())


def _unavailable(exc: Exception) -> ApiError:
    log.warning("ranking Redis unavailable: %s", exc)
    return ApiError(503, "service_unavailable", "rankings are temporarily unavailable; try again shortly",
                    headers={"Retry-After": "5"})


def _item(entry: store.Entry, kind: Kind) -> dict:
    member_field = "participant_id" if kind is Kind.INDIVIDUAL else "organization"
    return {"rank": entry.rank, member_field: entry.member, "display_name": entry.display_name,
            "kg": grams_to_kg(grams_of(entry.score))}


@blp.get("/rankings")
@blp.arguments(BoardQuery, location="query")
@blp.response(200, BoardPage)
def list_rankings(query):
    """A board's leaders: individuals or organisations, global or one scene's, per period."""
    board = _board(query["board"], query["scene"], query["period"])
    try:
        total, entries = store.top(store.reader(), board, query["limit"])
    except redis.RedisError as exc:
        raise _unavailable(exc) from exc
    return {"items": [_item(e, board.kind) for e in entries], "total": total}


@blp.get("/rankings/participants/<string:participant_id>")
@blp.arguments(ParticipantQuery, location="query")
@blp.response(200, ParticipantStanding)
def participant_standing(query, participant_id):
    """A participant's rank on the individual board, with neighbours and the board size."""
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
    own = _item(found.entry, Kind.INDIVIDUAL)
    return {"rank": own["rank"], "kg": own["kg"], "total": found.total, "display_name": own["display_name"],
            "neighbours": [_item(e, Kind.INDIVIDUAL) for e in found.neighbours]}
