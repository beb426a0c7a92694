"""Money to project owners: the split of each payment, monthly statements, reconciliation.

Everything is integer fen. A captured payment is split once, when the order is paid,
into the payment provider's fee, the platform's fee and the owner's share (net):
``gross = provider fee + platform fee + net``; a refund books the exact negative of that
split, so the two always cancel. A statement sums the lines booked in one
calendar month (in the settlement time zone) for one owner and project.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo

BASIS_POINTS = 10_000  # 100 %
CAPTURE = "capture"
REFUND = "refund"
PERIOD_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


# --- the split ------------------------------------------------------------------------

@dataclass(frozen=True)
class FeeRule:
    """The platform keeps ``bps`` basis points of a payment, at least ``min_fen``."""

    bps: int = 0
    min_fen: int = 0

    def __post_init__(self):
        if not 0 <= self.bps <= BASIS_POINTS:
            raise ValueError(f"a fee is 0 to {BASIS_POINTS} basis points, not {self.bps}")
        if self.min_fen < 0:
            raise ValueError("a minimum fee cannot be negative")


@dataclass(frozen=True)
class Split:
    gross_fen: int
    fee_fen: int               # the platform's
    net_fen: int               # the owner's
    provider_fee_fen: int = 0  # what the payment provider (WeChat Pay, Alipay) keeps

    def reversed(self) -> Split:
        """What a refund books: the same split with every sign turned."""
        return Split(-self.gross_fen, -self.fee_fen, -self.net_fen, -self.provider_fee_fen)


def percentage_fee(gross_fen: int, bps: int) -> int:
    """``gross × bps / 10 000`` rounded to the nearest fen, halves up (exact integers)."""
    return (gross_fen * bps * 2 + BASIS_POINTS) // (2 * BASIS_POINTS)


def provider_fee(gross_fen: int, bps: int) -> int:
    """The payment provider's fee on one payment: ``gross × bps / 10 000`` rounded to the
    fen, halves up, per transaction (WeChat Pay and Alipay charge per transaction and round
    to the fen, 四舍五入); the bill check compares it with the provider's own figure."""
    if not 0 <= bps <= BASIS_POINTS:
        raise ValueError(f"a provider's fee is 0 to {BASIS_POINTS} basis points, not {bps}")
    if gross_fen < 0:
        raise ValueError("a captured payment cannot be negative")
    return percentage_fee(gross_fen, bps)


def split(gross_fen: int, rule: FeeRule, provider_fee_bps: int = 0) -> Split:
    """The provider's fee comes off first; the platform's fee is the percentage of the
    payment, raised to the minimum, and never more than what the provider leaves, so the
    owner's share is never negative: ``gross = provider fee + fee + net``."""
    if gross_fen < 0:
        raise ValueError("a captured payment cannot be negative")
    charged = provider_fee(gross_fen, provider_fee_bps)
    left = gross_fen - charged
    fee = min(left, max(percentage_fee(gross_fen, rule.bps), rule.min_fen))
    return Split(gross_fen, fee, left - fee, charged)


# --- periods --------------------------------------------------------------------------

def period_of(moment: datetime, zone: ZoneInfo) -> str:
    """``YYYY-MM`` of the month ``moment`` (aware) falls in, in ``zone``."""
    if moment.tzinfo is None:
        raise ValueError("the moment must carry its time zone")
    return moment.astimezone(zone).strftime("%Y-%m")


def parse_period(text: str) -> tuple[int, int]:
    match = PERIOD_PATTERN.match(text or "")
    if not match:
        raise ValueError(f"a period reads YYYY-MM, not {text!r}")
    return int(match.group(1)), int(match.group(2))


def period_end(period: str, zone: ZoneInfo) -> datetime:
    """The first instant after the period (midnight starting the next month, in ``zone``)."""
    year, month = parse_period(period)
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return datetime(year, month, 1, tzinfo=zone)


def period_closed(period: str, now: datetime, zone: ZoneInfo) -> bool:
    """Lines are booked at the time they happen, so a month that has ended never changes."""
    return now >= period_end(period, zone)


def last_day(period: str, zone: ZoneInfo) -> date:
    return (period_end(period, zone) - timedelta(days=1)).date()


# --- statements -----------------------------------------------------------------------

StatementKey = tuple[str | None, str, str]  # (owner id, project id, period)


@dataclass(frozen=True)
class LineSum:
    """Lines of one kind for one statement, summed (one line, or a GROUP BY row)."""

    owner_id: str | None
    project_id: str
    period: str
    kind: str  # CAPTURE or REFUND
    count: int
    quantity_kg: int  # signed like the money: refunds are negative
    gross_fen: int
    fee_fen: int
    net_fen: int
    provider_fee_fen: int = 0

    @property
    def key(self) -> StatementKey:
        return (self.owner_id, self.project_id, self.period)


@dataclass
class Statement:
    owner_id: str | None
    project_id: str
    period: str
    orders: int = 0        # paid orders less refunded ones
    refunds: int = 0
    quantity_kg: int = 0
    captured_fen: int = 0
    refunded_fen: int = 0  # a positive amount
    gross_fen: int = 0     # captured − refunded = provider_fee + fee + net
    fee_fen: int = 0       # the platform's
    net_fen: int = 0       # the owner's
    paid_fen: int = 0
    provider_fee_fen: int = 0

    @property
    def key(self) -> StatementKey:
        return (self.owner_id, self.project_id, self.period)

    @property
    def due_fen(self) -> int:
        return max(self.net_fen - self.paid_fen, 0)

    def status(self, now: datetime, zone: ZoneInfo) -> str:
        """``open`` (the month is not over), ``due`` (money owed to the owner) or ``settled``."""
        if not period_closed(self.period, now, zone):
            return "open"
        return "due" if self.due_fen > 0 else "settled"


def statements(sums: Iterable[LineSum], paid: Mapping[StatementKey, int] | None = None) -> list[Statement]:
    """Fold line sums into statements, ordered by period, owner and project."""
    folded: dict[StatementKey, Statement] = {}
    for line in sums:
        statement = folded.setdefault(line.key, Statement(*line.key))
        if line.kind == CAPTURE:
            statement.orders += line.count
            statement.captured_fen += line.gross_fen
        elif line.kind == REFUND:
            statement.orders -= line.count
            statement.refunds += line.count
            statement.refunded_fen -= line.gross_fen
        else:
            raise ValueError(f"unknown line kind {line.kind!r}")
        statement.quantity_kg += line.quantity_kg
        statement.gross_fen += line.gross_fen
        statement.fee_fen += line.fee_fen
        statement.net_fen += line.net_fen
        statement.provider_fee_fen += line.provider_fee_fen
    for key, amount in (paid or {}).items():
        if key in folded:
            folded[key].paid_fen = amount
    return sorted(folded.values(), key=lambda s: (s.period, s.owner_id or "", s.project_id))


def payout_refusal(statement: Statement | None, amount_fen: int, now: datetime,
                   zone: ZoneInfo) -> tuple[str, str] | None:
    """``(code, message)`` when a payout of ``amount_fen`` may not be recorded, else None."""
    if statement is None:
        return "statement_not_found", "no statement for this owner, project and period"
    if statement.owner_id is None:
        return "owner_unknown", "the project had no owner when these payments were captured"
    if not period_closed(statement.period, now, zone):
        return "period_open", f"{statement.period} is not over yet; its statement may still change"
    if statement.due_fen <= 0:
        return "statement_paid", (f"nothing is due on {statement.period}: "
                                  f"net {statement.net_fen}, paid {statement.paid_fen}")
    if amount_fen > statement.due_fen:
        return "exceeds_net", (f"{amount_fen} fen is more than the {statement.due_fen} fen still due "
                               f"(net {statement.net_fen}, paid {statement.paid_fen})")
    return None


# --- reconciliation -------------------------------------------------------------------

@dataclass(frozen=True)
class OrderFacts:
    project_id: str
    status: str
    amount_fen: int
    quantity_kg: int
    captured: bool      # the provider took the money (paid, or refunded after a late payment)
    serial_kg: int      # kilograms of the order's retired serial ranges


@dataclass(frozen=True)
class Line:
    order_id: str
    owner_id: str | None
    project_id: str
    period: str
    kind: str
    quantity_kg: int
    gross_fen: int
    fee_fen: int
    net_fen: int
    rule: FeeRule | None = None  # the fee rule the capture was split with
    provider_fee_fen: int = 0
    provider_fee_bps: int | None = None  # the provider's rate the capture was split with


@dataclass(frozen=True)
class LedgerFacts:
    seq: int
    order_id: str
    project_id: str
    quantity_kg: int


@dataclass
class Reconciliation:
    difference: str | None = None
    captured_fen: int = 0
    refunded_fen: int = 0
    net_fen: int = 0
    fee_fen: int = 0
    provider_fee_fen: int = 0
    settled_kg: int = 0
    pending_kg: int = 0
    projects: int = 0

    @property
    def ok(self) -> bool:
        return self.difference is None


RETIRED_STATUSES = ("retired", "completed")


def reconcile(*, orders: Mapping[str, OrderFacts], refunds: Mapping[str, int], lines: Iterable[Line],
              ledger: Iterable[LedgerFacts], project_retired_kg: Mapping[str, int],
              paid: Mapping[StatementKey, int], settled: set[StatementKey]) -> Reconciliation:
    """Check that the money and the kilograms add up; the first difference is named.

    - every line splits exactly (provider fee + fee + net = gross, 0 ≤ provider fee,
      0 ≤ fee, 0 ≤ net for a capture, and both fees are what the recorded rates give);
    - every captured order has one capture line of its amount, every refunded order one
      refund line undoing it, and no other order has lines;
    - per project and in total: captured payments − refunds = owners' net + platform fees
      + provider fees;
    - every ledger entry's kilograms belong to exactly one retired order with a capture
      line (in a ``settled`` statement, or pending), and the ledger matches the projects'
      retired kilograms;
    - no statement was paid more than its net.
    """
    result = Reconciliation()
    lines = list(lines)
    by_order: dict[str, dict[str, Line]] = {}
    for line in lines:
        if line.gross_fen != line.provider_fee_fen + line.fee_fen + line.net_fen:
            return _differs(result, f"order {line.order_id}: {line.kind} line gross {line.gross_fen} ≠ "
                                    f"fee {line.fee_fen} + net {line.net_fen} + provider fee {line.provider_fee_fen}")
        sign = 1 if line.kind == CAPTURE else -1
        if not 0 <= sign * line.fee_fen <= sign * line.gross_fen:
            return _differs(result, f"order {line.order_id}: {line.kind} line fee {line.fee_fen} "
                                    f"outside 0..gross {line.gross_fen}")
        if sign * line.provider_fee_fen < 0 or sign * line.net_fen < 0:
            return _differs(result, f"order {line.order_id}: {line.kind} line provider fee "
                                    f"{line.provider_fee_fen} or net {line.net_fen} of the wrong sign")
        if line.kind == CAPTURE and line.provider_fee_bps is not None \
                and line.provider_fee_fen != provider_fee(line.gross_fen, line.provider_fee_bps):
            return _differs(result, f"order {line.order_id}: provider fee {line.provider_fee_fen} fen, but "
                                    f"{line.provider_fee_bps} bps on {line.gross_fen} fen is "
                                    f"{provider_fee(line.gross_fen, line.provider_fee_bps)} fen")
        if line.kind == CAPTURE and line.rule is not None:
            expected = split(line.gross_fen, line.rule, line.provider_fee_bps or 0)
            if line.fee_fen != expected.fee_fen:
                return _differs(result, f"order {line.order_id}: fee {line.fee_fen} fen, but {line.rule.bps} bps "
                                        f"with a minimum of {line.rule.min_fen} fen on {line.gross_fen} fen "
                                        f"is {expected.fee_fen} fen")
        if line.kind in by_order.setdefault(line.order_id, {}):
            return _differs(result, f"order {line.order_id}: two {line.kind} lines")
        by_order[line.order_id][line.kind] = line

    for order_id in sorted(set(orders) | set(by_order) | set(refunds)):
        difference = _order_difference(order_id, orders.get(order_id), refunds.get(order_id),
                                       by_order.get(order_id, {}))
        if difference:
            return _differs(result, difference)

    projects = sorted({o.project_id for o in orders.values()} | {line.project_id for line in lines})
    result.projects = len(projects)
    for project_id in projects:
        captured = sum(o.amount_fen for o in orders.values() if o.project_id == project_id and o.captured)
        refunded = sum(amount for order_id, amount in refunds.items()
                       if order_id in orders and orders[order_id].project_id == project_id)
        split_fen = sum(line.net_fen + line.fee_fen + line.provider_fee_fen
                        for line in lines if line.project_id == project_id)
        if captured - refunded != split_fen:
            return _differs(result, f"project {project_id}: captured {captured} − refunded {refunded} = "
                                    f"{captured - refunded} fen, but owners' net + platform fees "
                                    f"+ provider fees = {split_fen} fen")
        result.captured_fen += captured
        result.refunded_fen += refunded
    result.net_fen = sum(line.net_fen for line in lines)
    result.fee_fen = sum(line.fee_fen for line in lines)
    result.provider_fee_fen = sum(line.provider_fee_fen for line in lines)
    split_total = result.net_fen + result.fee_fen + result.provider_fee_fen
    if result.captured_fen - result.refunded_fen != split_total:
        return _differs(result, f"in total: captured − refunded = {result.captured_fen - result.refunded_fen} fen, "
                                f"owners' net + platform fees + provider fees = {split_total} fen")

    ledger_kg: dict[str, int] = {}
    in_ledger: set[str] = set()
    for entry in ledger:
        order = orders.get(entry.order_id)
        if entry.order_id in in_ledger:
            return _differs(result, f"ledger entry {entry.seq}: order {entry.order_id} is in the ledger twice")
        in_ledger.add(entry.order_id)
        if order is None:
            return _differs(result, f"ledger entry {entry.seq}: no order {entry.order_id}")
        if order.status not in RETIRED_STATUSES:
            return _differs(result, f"ledger entry {entry.seq}: order {entry.order_id} is {order.status}")
        if order.project_id != entry.project_id:
            return _differs(result, f"ledger entry {entry.seq}: order {entry.order_id} is of project "
                                    f"{order.project_id}, the entry says {entry.project_id}")
        if not entry.quantity_kg == order.quantity_kg == order.serial_kg:
            return _differs(result, f"ledger entry {entry.seq}: {entry.quantity_kg} kg, order {entry.order_id} "
                                    f"{order.quantity_kg} kg, its serials {order.serial_kg} kg")
        capture = by_order.get(entry.order_id, {}).get(CAPTURE)
        if capture is None:
            return _differs(result, f"ledger entry {entry.seq}: order {entry.order_id} was never paid")
        key = (capture.owner_id, capture.project_id, capture.period)
        if key in settled:
            result.settled_kg += entry.quantity_kg
        else:
            result.pending_kg += entry.quantity_kg
        ledger_kg[entry.project_id] = ledger_kg.get(entry.project_id, 0) + entry.quantity_kg
    for order_id, order in sorted(orders.items()):
        if order.status in RETIRED_STATUSES and order_id not in in_ledger:
            return _differs(result, f"order {order_id} is {order.status} but not in the ledger")
    for project_id in sorted(set(project_retired_kg) | set(ledger_kg)):
        if project_retired_kg.get(project_id, 0) != ledger_kg.get(project_id, 0):
            return _differs(result, f"project {project_id}: {project_retired_kg.get(project_id, 0)} kg retired, "
                                    f"the ledger holds {ledger_kg.get(project_id, 0)} kg")

    nets: dict[StatementKey, int] = {}
    for line in lines:
        key = (line.owner_id, line.project_id, line.period)
        nets[key] = nets.get(key, 0) + line.net_fen
    for key, amount in sorted(paid.items(), key=lambda item: (item[0][2], item[0][1], item[0][0] or "")):
        if amount > max(nets.get(key, 0), 0):
            owner_id, project_id, period = key
            return _differs(result, f"statement {period} of project {project_id} (owner {owner_id}): "
                                    f"paid {amount} fen, net {nets.get(key, 0)} fen")
    return result


def _order_difference(order_id: str, order: OrderFacts | None, refund_fen: int | None,
                      lines: dict[str, Line]) -> str | None:
    capture, refund = lines.get(CAPTURE), lines.get(REFUND)
    if order is None:
        return f"order {order_id}: lines or a refund, but no such order"
    if not order.captured:
        if capture or refund or refund_fen is not None:
            return f"order {order_id} was never paid but has settlement lines or a refund"
        return None
    if capture is None:
        return f"order {order_id}: paid {order.amount_fen} fen, but its payment was never split"
    if capture.project_id != order.project_id:
        return f"order {order_id}: of project {order.project_id}, split to project {capture.project_id}"
    if (capture.gross_fen, capture.quantity_kg) != (order.amount_fen, order.quantity_kg):
        return (f"order {order_id}: paid {order.amount_fen} fen for {order.quantity_kg} kg, "
                f"split {capture.gross_fen} fen for {capture.quantity_kg} kg")
    if refund_fen is None:
        if refund:
            return f"order {order_id}: a refund line but no refund"
        return None
    if refund_fen != order.amount_fen:
        return f"order {order_id}: paid {order.amount_fen} fen, refunded {refund_fen} fen"
    if refund is None:
        return f"order {order_id}: refunded {refund_fen} fen, but its split was never reversed"
    undone = Split(capture.gross_fen, capture.fee_fen, capture.net_fen, capture.provider_fee_fen).reversed()
    if ((refund.gross_fen, refund.fee_fen, refund.net_fen, refund.provider_fee_fen)
            != (undone.gross_fen, undone.fee_fen, undone.net_fen, undone.provider_fee_fen)
            or (refund.owner_id, refund.project_id, refund.quantity_kg)
            != (capture.owner_id, capture.project_id, -capture.quantity_kg)):
        return f"order {order_id}: the refund line does not undo the capture line"
    return None


def _differs(result: Reconciliation, difference: str) -> Reconciliation:
    result.difference = difference
    return result
