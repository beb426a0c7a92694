"""Recording and revoking contributions: the service functions of ``ranking.record`` and
``ranking.revoke``. The database first (the truth), then the boards.

Both operations are safe to repeat at any point: the row is written once (UNIQUE
order id), and the Redis side is guarded by the per-order marker of :mod:`ranking.store`.

They take the unit-of-work *factory* (``wiring.unit_of_work``), not a unit of work: the
boards in Redis must change only after the row is committed, never inside a transaction
that could still roll back, so each function commits its database step in a unit of work
of its own and then writes to Redis.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import redis
from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from diandian_common.contracts import RecordContribution
from diandian_common.uow import UnitOfWork

from . import settings, store
from .domain.boards import Board, Kind
from .domain.contribution import Contribution, contribution_of
from .domain.scores import earliness
from .models import ContributionRow
from .queries import NOT_REVOKED, member_column, on_board

log = logging.getLogger(__name__)

UnitsOfWork = Callable[[], UnitOfWork]
"""``wiring.unit_of_work``: opens a new unit of work on each call."""


class RebuildInProgress(RuntimeError):
    """The boards are being rebuilt; try again shortly."""


class UnknownOrder(LookupError):
    """A revocation for an order that was never recorded (yet)."""


def to_contribution(row: ContributionRow) -> Contribution:
    return Contribution(order_id=row.order_id, participant_id=row.participant_id,
                        display_name=row.display_name, mask_name=row.mask_name,
                        organization=row.organization, scene=row.scene, grams=row.quantity_g,
                        occurred_at=row.occurred_at)


@dataclass(frozen=True)
class Outcome:
    order_id: str
    stored: bool      # this call inserted / revoked the row (False: it already was)
    boards: str       # "applied", "already", "skipped" (revoked before it was counted), "nothing"


_BOARD_OUTCOMES = {store.APPLIED: "applied", store.ALREADY: "already", store.NOTHING_TO_REVOKE: "nothing"}


def _store_row(session: Session, contribution: Contribution, now: datetime) -> ContributionRow:
    row = ContributionRow(order_id=contribution.order_id, participant_id=contribution.participant_id,
                          display_name=contribution.display_name, mask_name=contribution.mask_name,
                          organization=contribution.organization,
                          organization_key=contribution.organization_key, scene=contribution.scene,
                          quantity_g=contribution.grams, occurred_at=contribution.occurred_at,
                          recorded_at=now)
    session.add(row)
    session.flush()
    return row


def record(unit_of_work: UnitsOfWork, client: redis.Redis, message: RecordContribution,
           now: datetime) -> Outcome:
    """``ranking.record``: store the contribution (once) and commit, then count it on its
    boards (once). A second delivery finds the row (UNIQUE order id) in a new unit of work."""
    contribution = contribution_of(message, now)
    stored = True
    try:
        with unit_of_work() as uow:
            row = _store_row(uow.session, contribution, now)
    except IntegrityError:
        stored = False
        with unit_of_work() as uow:
            row = uow.session.scalars(select(ContributionRow)
                                      .where(ContributionRow.order_id == contribution.order_id)).one()
        if to_contribution(row) != contribution:
            log.warning("ranking.record for order %s differs from the recorded contribution; "
                        "keeping the first", contribution.order_id)
    if row.revoked_at is not None:
        _apply_names(client, row)
        return Outcome(row.order_id, stored, "skipped")
    return Outcome(row.order_id, stored, _apply_record(client, row, now))


def _check(result: int) -> int:
    if result == store.BUSY:
        raise RebuildInProgress("boards are being rebuilt")
    return result


def _names(row: ContributionRow) -> list[tuple[Kind, str, str, int]]:
    """A member's name comes from its latest contribution (highest id), revoked or not:
    the latest choice to be shown masked or not is the participant's current choice."""
    contribution = to_contribution(row)
    names = [(Kind.INDIVIDUAL, contribution.participant_id, contribution.shown_name, row.id)]
    if contribution.organization_key:
        names.append((Kind.ORGANIZATION, contribution.organization_key, contribution.organization, row.id))
    return names


def _apply_names(client: redis.Redis, row: ContributionRow) -> None:
    _check(store.set_names(client, _names(row)))


def _apply_record(client: redis.Redis, row: ContributionRow, now: datetime) -> str:
    contribution = to_contribution(row)
    memberships = contribution.memberships(settings.tz(), now, settings.period_grace())
    return _BOARD_OUTCOMES[_check(store.record(client, row.order_id, row.quantity_g,
                                               earliness(row.occurred_at), memberships, _names(row)))]


def _row(session: Session, order_id: str) -> ContributionRow | None:
    return session.scalars(select(ContributionRow).where(ContributionRow.order_id == order_id)).one_or_none()


def revoke(unit_of_work: UnitsOfWork, client: redis.Redis, order_id: str, now: datetime) -> Outcome:
    """``ranking.revoke``: mark the contribution revoked (once) and commit, then take it off
    its boards (once)."""
    with unit_of_work() as uow:
        row = _row(uow.session, order_id)
        if row is None:
            raise UnknownOrder(f"order {order_id} has no contribution")
        stored = row.revoked_at is None
        if stored:
            row.revoked_at = now
    return Outcome(order_id, stored, _apply_revoke(unit_of_work, client, row, now))


def _remaining(session: Session, row: ContributionRow, now: datetime) -> list[tuple[Board, str, int | None]]:
    """(board, member, earliness of the member's latest contribution still on it, or None)
    for every board of ``row``'s member."""
    memberships = []
    for board, member in to_contribution(row).memberships(settings.tz(), now, settings.period_grace()):
        latest = session.scalar(select(func.max(ContributionRow.occurred_at)).where(
            and_(*on_board(board), NOT_REVOKED, member_column(board.kind) == member)))
        memberships.append((board, member, None if latest is None else earliness(latest)))
    return memberships


def _apply_revoke(unit_of_work: UnitsOfWork, client: redis.Redis, row: ContributionRow, now: datetime) -> str:
    with unit_of_work() as uow:
        memberships = _remaining(uow.session, row, now)
    # A record of the same member committed between this read and the script would leave
    # the tie-break time one contribution early (never the kilograms); rebuild and the
    # reconciliation recompute it from the database.
    _apply_names(client, row)   # in case the order's record never ran
    return _BOARD_OUTCOMES[_check(store.revoke(client, row.order_id, row.quantity_g, memberships))]


def apply_row(unit_of_work: UnitsOfWork, client: redis.Redis, row: ContributionRow, now: datetime) -> str:
    """Bring the boards in line with one (committed) row's state (used by the reconciliation)."""
    if row.revoked_at is None:
        return _apply_record(client, row, now)
    return _apply_revoke(unit_of_work, client, row, now)


def participant_of_order(uow: UnitOfWork, order_id: str) -> str | None:
    """Who placed ``order_id``, if its contribution is recorded and not revoked."""
    row = _row(uow.session, order_id)
    return row.participant_id if row is not None and row.revoked_at is None else None


def participant_scenes(uow: UnitOfWork, participant_id: str, limit: int) -> tuple[list[str], bool]:
    """The scenes ``participant_id`` has unrevoked contributions on, most recent first (at
    most ``limit``), and whether there are more."""
    latest = func.max(ContributionRow.occurred_at)
    rows = uow.session.execute(
        select(ContributionRow.scene, latest)
        .where(ContributionRow.participant_id == participant_id, ContributionRow.scene.is_not(None),
               NOT_REVOKED)
        .group_by(ContributionRow.scene).order_by(latest.desc(), ContributionRow.scene)
        .limit(limit + 1)).all()
    return [scene for scene, _ in rows[:limit]], len(rows) > limit
