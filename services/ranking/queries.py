"""The database side of the boards: which contribution rows fall on a board, every live
board's totals, and reading rows in one consistent snapshot, in batches. Shared by the
service functions, the rebuild and the reconciliation."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Callable, Iterator

from sqlalchemy import ColumnElement, Connection, and_, distinct, func, select

from diandian_common.uow import UnitOfWork

from . import settings
from .domain.boards import Board, Kind
from .domain.periods import Period, live_buckets
from .models import ContributionRow

Row = ContributionRow
NOT_REVOKED = ContributionRow.revoked_at.is_(None)
BATCH = 10_000


def member_column(kind: Kind):
    return ContributionRow.participant_id if kind is Kind.INDIVIDUAL else ContributionRow.organization_key


def on_board(board: Board) -> list[ColumnElement[bool]]:
    """Conditions selecting the rows that fall on ``board`` (revocation aside)."""
    conditions = [member_column(board.kind).is_not(None)]
    if board.scene is not None:
        conditions.append(ContributionRow.scene == board.scene)
    if board.bucket.start is not None:
        conditions += [ContributionRow.occurred_at >= board.bucket.start,
                       ContributionRow.occurred_at < board.bucket.end]
    return conditions


@contextmanager
def snapshot(unit_of_work: Callable[[], UnitOfWork]) -> Iterator[Connection]:
    """One read-consistent view of the database for every query of a rebuild: the
    connection of a unit of work of its own (REPEATABLE READ on PostgreSQL; SQLite's
    transactions are serialisable already)."""
    with unit_of_work() as uow:
        options = {} if uow.database.is_sqlite else {"isolation_level": "REPEATABLE READ"}
        yield uow.session.connection(execution_options=options)


def stream(conn: Connection, statement):
    """The rows of ``statement`` in partitions of ``BATCH``, fetched as they are read."""
    return conn.execution_options(yield_per=BATCH).execute(statement).partitions()


def board_totals(conn: Connection, now: datetime,
                 effective: ColumnElement[bool] = NOT_REVOKED) -> dict[Board, tuple[int, int]]:
    """(members, grams) of every live board with at least one ``effective`` row."""
    tz, grace = settings.tz(), settings.period_grace()
    totals: dict[Board, tuple[int, int]] = {}
    for period in Period:
        for bucket in live_buckets(period, now, tz, grace):
            for kind in Kind:
                member = member_column(kind)
                where = and_(*on_board(Board(kind, None, bucket)), effective)
                aggregates = (func.count(distinct(member)), func.coalesce(func.sum(Row.quantity_g), 0))
                members, grams = conn.execute(select(*aggregates).where(where)).one()
                if members:
                    totals[Board(kind, None, bucket)] = (members, int(grams))
                by_scene = (select(Row.scene, *aggregates).where(where, Row.scene.is_not(None))
                            .group_by(Row.scene))
                for scene, members, grams in conn.execute(by_scene):
                    totals[Board(kind, scene, bucket)] = (members, int(grams))
    return totals
