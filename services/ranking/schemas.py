"""Request and response schemas of the ranking API (docs/contract.md §5, routes tagged ranking)."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from .domain.boards import SLUG_PATTERN, Kind
from .domain.card import LANGUAGES, MAX_SCENE_NAME_LENGTH
from .domain.periods import Period

MAX_LIMIT = 100


class _Query(Schema):
    @pre_load
    def _blank_is_absent(self, data, **_kwargs):
        # "?scene=&period=" means "no scene, default period", as a form would send it.
        return {key: value for key, value in data.items() if value != ""}


class BoardScopeQuery(_Query):
    scene = fields.String(load_default=None, validate=validate.Regexp(
        SLUG_PATTERN, error="must be a scene slug (lower-case letters, digits, '-' and '_')"),
        metadata={"description": "scene slug; omit for the global board"})
    period = fields.String(load_default=Period.ALL.value, validate=validate.OneOf([p.value for p in Period]),
                           metadata={"description": "the current day, ISO week or month, or all time"})


class BoardQuery(BoardScopeQuery):
    board = fields.String(load_default=Kind.INDIVIDUAL.value, validate=validate.OneOf([k.value for k in Kind]))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_LIMIT))


class ParticipantQuery(BoardScopeQuery):
    pass


class CardQuery(BoardScopeQuery):
    lang = fields.String(load_default="zh", validate=validate.OneOf(LANGUAGES))
    scene_name = fields.String(load_default=None, validate=validate.Length(max=MAX_SCENE_NAME_LENGTH), metadata={
        "description": "the scene's display name, as the page shows it (scenes belong to the calculator)"})

    @validates_schema
    def _scene_name_needs_a_scene(self, data, **_kwargs):
        # A scene's name on a card showing the global rank would claim a rank the guest does not have.
        if data.get("scene_name") is not None and data.get("scene") is None:
            raise ValidationError("needs scene: the name must be the name of the board's scene", "scene_name")


class RankingItem(Schema):
    rank = fields.Integer(required=True, metadata={"description": "1 is the top"})
    participant_id = fields.String(metadata={"description": "individual boards"})
    organization = fields.String(metadata={"description": "organisation boards"})
    display_name = fields.String(required=True, metadata={"description": "masked when the participant chose so"})
    kg = fields.Float(required=True, metadata={"description": "kg CO2e, at most 3 decimals"})


class BoardPage(Schema):
    items = fields.List(fields.Nested(RankingItem), required=True)
    total = fields.Integer(required=True, metadata={"description": "members on the board"})


class ParticipantStanding(Schema):
    participant_id = fields.String(required=True)
    scene = fields.String(required=True, allow_none=True, metadata={"description": "null: the global board"})
    period = fields.String(required=True, validate=validate.OneOf([p.value for p in Period]))
    rank = fields.Integer(required=True, metadata={"description": "1 is the top"})
    kg = fields.Float(required=True)
    total = fields.Integer(required=True, metadata={"description": "participants on the board"})
    display_name = fields.String(required=True, metadata={"description": "masked when the participant chose so"})
    neighbours = fields.List(fields.Nested(RankingItem), required=True,
                             metadata={"description": "up to two above and two below"})


class OrderStanding(Schema):
    """Where the guest who placed an order stands: what a certificate's share card prints. No
    participant id or name: the board itself shows those, as its participant chose."""
    order_id = fields.String(required=True)
    scene = fields.String(required=True, allow_none=True, metadata={"description": "null: the global board"})
    period = fields.String(required=True, validate=validate.OneOf([p.value for p in Period]))
    rank = fields.Integer(required=True, metadata={"description": "1 is the top"})
    total = fields.Integer(required=True, metadata={"description": "participants on the board"})


# The scenes of a guest's own standings (GET /api/v1/my-standings), most recent first.
MAX_MY_SCENES = 50


class MyStandingsQuery(_Query):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_MY_SCENES),
                           metadata={"description": "at most this many scenes"})


class MyStanding(Schema):
    scene = fields.String(required=True, allow_none=True, metadata={"description": "null: the global board"})
    rank = fields.Integer(required=True, metadata={"description": "1 is the top"})
    kg = fields.Float(required=True)
    total = fields.Integer(required=True, metadata={"description": "participants on the board"})


class MyStandings(Schema):
    overall = fields.Nested(MyStanding, required=True, allow_none=True,
                            metadata={"description": "the global all-time board; null: not on it"})
    scenes = fields.List(fields.Nested(MyStanding), required=True, metadata={
        "description": "each scene's all-time board the guest took part in, most recent first"})
    more_scenes = fields.Boolean(required=True, metadata={"description": "more scenes than ``limit``"})
