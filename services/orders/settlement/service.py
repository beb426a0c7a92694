"""Settlement to project owners on the orders database: owners, the split journal,
statements, payouts and the reconciliation (the rules are in domain/rules.py)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from diandian_common import config
from diandian_common.errors import ApiError, NotFound
from diandian_common.outbox import utcnow
from diandian_common.timestamps import as_utc, iso
from diandian_common.uow import UnitOfWork

from ..models import LedgerEntry, Order, Owner, Payout, Project, Refund, Retirement, SettlementEntry
from ..records import for_update, new_id
from .domain import bills, rules, spreadsheet
from .domain.rules import CAPTURE, REFUND

log = logging.getLogger(__name__)

DEFAULT_TIMEZONE = "Asia/Shanghai"
CSV_COLUMNS = ("period", "status", "owner_id", "owner_name", "payout_account", "project_id", "project_code",
               "orders", "refunds", "quantity_kg", "captured_fen", "refunded_fen", "gross_fen",
               "provider_fee_fen", "fee_fen", "net_fen", "paid_fen", "due_fen")
# The providers' standard rate (0.6 %); providers that move no money (sandbox, testpay) charge none.
STANDARD_PROVIDER_FEE_BPS = {"wechatpay": 60, "alipay": 60}


def zone() -> ZoneInfo:
    """``SETTLEMENT_TIMEZONE``: months of statements begin at midnight there."""
    return ZoneInfo(config.env("SETTLEMENT_TIMEZONE", DEFAULT_TIMEZONE))


def current_period(now: datetime | None = None) -> str:
    return rules.period_of(now or utcnow(), zone())


def fee_rule(project: Project) -> rules.FeeRule:
    return rules.FeeRule(project.fee_bps or 0, project.fee_min_fen or 0)


def provider_fee_bps(provider: str | None) -> int:
    """``PAYMENT_FEE_BPS_<PROVIDER>``: the provider's fee in basis points (WeChat Pay and
    Alipay 60 = 0.6 % unless set, every other provider 0)."""
    name = (provider or "").lower()
    default = STANDARD_PROVIDER_FEE_BPS.get(name, 0)
    raw = config.env(f"PAYMENT_FEE_BPS_{name.upper()}") if name else None
    if raw is None or raw == "":
        return default
    try:
        bps = int(raw)
    except ValueError:
        raise ValueError(f"PAYMENT_FEE_BPS_{name.upper()} must be whole basis points, not {raw!r}") from None
    if not 0 <= bps <= rules.BASIS_POINTS:
        raise ValueError(f"PAYMENT_FEE_BPS_{name.upper()} must be 0 to {rules.BASIS_POINTS}, not {bps}")
    return bps


# --- the split, in the transaction that moves the money -------------------------------

def _line(session: Session, order_id: str, kind: str) -> SettlementEntry | None:
    return session.scalars(select(SettlementEntry).where(SettlementEntry.order_id == order_id,
                                                         SettlementEntry.kind == kind)).first()


def record_capture(session: Session, order: Order, project: Project, at: datetime | None = None) -> SettlementEntry:
    """Split the order's payment into the provider's fee (at the rate of the provider it was
    paid through), the platform's fee and the owner's share (once)."""
    existing = _line(session, order.id, CAPTURE)
    if existing is not None:
        return existing
    at = at or utcnow()
    provider = order.payment_provider
    bps = provider_fee_bps(provider)
    parts = rules.split(order.amount_fen, fee_rule(project), bps)
    entry = SettlementEntry(order_id=order.id, project_id=project.id, owner_id=project.owner_id, kind=CAPTURE,
                            period=rules.period_of(at, zone()), quantity_kg=order.quantity_kg,
                            gross_fen=parts.gross_fen, fee_fen=parts.fee_fen, net_fen=parts.net_fen,
                            fee_bps=project.fee_bps or 0, fee_min_fen=project.fee_min_fen or 0, booked_at=at,
                            provider=provider, provider_fee_fen=parts.provider_fee_fen, provider_fee_bps=bps)
    session.add(entry)
    return entry


def reverse_capture(session: Session, order: Order, at: datetime | None = None) -> SettlementEntry | None:
    """Book the exact negative of the order's split, in the month of the refund (once).
    Refunds are always of the whole payment, and WeChat Pay and Alipay then give their
    whole fee back, so the provider's fee is reversed with the rest."""
    capture = _line(session, order.id, CAPTURE)
    if capture is None:
        log.error("order %s refunded without a captured payment to reverse", order.id)
        return None
    existing = _line(session, order.id, REFUND)
    if existing is not None:
        return existing
    at = at or utcnow()
    undone = rules.Split(capture.gross_fen, capture.fee_fen, capture.net_fen,
                         capture.provider_fee_fen).reversed()
    entry = SettlementEntry(order_id=order.id, project_id=capture.project_id, owner_id=capture.owner_id,
                            kind=REFUND, period=rules.period_of(at, zone()), quantity_kg=-capture.quantity_kg,
                            gross_fen=undone.gross_fen, fee_fen=undone.fee_fen, net_fen=undone.net_fen,
                            fee_bps=capture.fee_bps, fee_min_fen=capture.fee_min_fen, booked_at=at,
                            provider=capture.provider, provider_fee_fen=undone.provider_fee_fen,
                            provider_fee_bps=capture.provider_fee_bps)
    session.add(entry)
    return entry


# --- owners ---------------------------------------------------------------------------

def owner_view(owner: Owner) -> dict:
    return {"id": owner.id, "name": owner.name, "payout_account": owner.payout_account,
            "contact": owner.contact, "created_at": iso(owner.created_at)}


def _name_taken(session: Session, name: str, other_than: str | None = None) -> bool:
    query = select(Owner.id).where(Owner.name == name)
    if other_than:
        query = query.where(Owner.id != other_than)
    return session.scalars(query).first() is not None


def create_owner(uow: UnitOfWork, *, name: str, payout_account: str, contact: str) -> Owner:
    session = uow.session
    if _name_taken(session, name):
        raise ApiError(409, "owner_name_taken", f"an owner named {name} exists")
    owner = Owner(id=new_id("own"), name=name, payout_account=payout_account, contact=contact, created_at=utcnow())
    session.add(owner)
    session.flush()
    return owner


def update_owner(uow: UnitOfWork, owner_id: str, changes: dict) -> Owner:
    session = uow.session
    owner = session.get(Owner, owner_id)
    if owner is None:
        raise NotFound("owner", owner_id)
    if "name" in changes and _name_taken(session, changes["name"], other_than=owner.id):
        raise ApiError(409, "owner_name_taken", f"an owner named {changes['name']} exists")
    for field in ("name", "payout_account", "contact"):
        if field in changes:
            setattr(owner, field, changes[field])
    session.flush()
    return owner


def list_owners(uow: UnitOfWork) -> list[Owner]:
    session = uow.session
    return list(session.scalars(select(Owner).order_by(Owner.name)))


def find_owner(session: Session, ref: str) -> Owner | None:
    """An owner by id or by exact name."""
    return session.scalars(select(Owner).where(or_(Owner.id == ref, Owner.name == ref))).first()


def get_owner(uow: UnitOfWork, owner_id: str) -> Owner:
    """The owner, or 404."""
    session = uow.session
    owner = find_owner(session, owner_id)
    if owner is None:
        raise NotFound("owner", owner_id)
    return owner


def attach_owner(session: Session, project: Project, owner_id: str | None) -> None:
    """Payments from now on go to ``owner_id``. Payments captured while the project had no
    owner were held for it: they go to this first owner. Payments captured under an
    earlier owner stay theirs."""
    if owner_id is not None and session.get(Owner, owner_id) is None:
        raise ApiError(422, "validation_error", "some fields are invalid", {"owner_id": [f"unknown owner {owner_id}"]})
    project.owner_id = owner_id
    if owner_id is not None:
        session.execute(update(SettlementEntry)
                        .where(SettlementEntry.project_id == project.id, SettlementEntry.owner_id.is_(None))
                        .values(owner_id=owner_id))


# --- statements -----------------------------------------------------------------------

def _project_id(session: Session, ref: str) -> str:
    found = session.scalars(select(Project.id).where(or_(Project.id == ref, Project.code == ref))).first()
    if found is None:
        raise NotFound("project", ref)
    return found


def statements(uow: UnitOfWork, *, project: str | None = None, period: str | None = None,
               owner: str | None = None) -> list[rules.Statement]:
    """Statements per owner, project and month; ``project`` is an id or a code."""
    session = uow.session
    E = SettlementEntry
    sums = select(E.owner_id, E.project_id, E.period, E.kind, func.count(), func.sum(E.quantity_kg),
                  func.sum(E.gross_fen), func.sum(E.fee_fen), func.sum(E.net_fen),
                  func.sum(E.provider_fee_fen)) \
        .group_by(E.owner_id, E.project_id, E.period, E.kind)
    paid = select(Payout.owner_id, Payout.project_id, Payout.period, func.sum(Payout.amount_fen)) \
        .group_by(Payout.owner_id, Payout.project_id, Payout.period)
    if project:
        project_id = _project_id(session, project)
        sums, paid = sums.where(E.project_id == project_id), paid.where(Payout.project_id == project_id)
    if period:
        sums, paid = sums.where(E.period == period), paid.where(Payout.period == period)
    if owner:
        sums, paid = sums.where(E.owner_id == owner), paid.where(Payout.owner_id == owner)
    lines = [rules.LineSum(*row[:4], *(int(v or 0) for v in row[4:])) for row in session.execute(sums)]
    paid_by_key = {(o, p, m): int(amount) for o, p, m, amount in session.execute(paid)}
    return rules.statements(lines, paid_by_key)


def statement_views(uow: UnitOfWork, found: list[rules.Statement], now: datetime | None = None) -> list[dict]:
    session = uow.session
    now = now or utcnow()
    owners = {o.id: o for o in session.scalars(select(Owner).where(Owner.id.in_({s.owner_id for s in found})))}
    projects = {p.id: p for p in session.scalars(select(Project).where(Project.id.in_({s.project_id for s in found})))}
    tz = zone()
    views = []
    for s in found:
        owner, project = owners.get(s.owner_id), projects[s.project_id]
        views.append({
            "owner": owner_view(owner) if owner else None,
            "project_id": s.project_id, "project_code": project.code, "project_name": project.name,
            "period": s.period, "status": s.status(now, tz),
            "orders": s.orders, "refunds": s.refunds, "quantity_kg": s.quantity_kg,
            "captured_fen": s.captured_fen, "refunded_fen": s.refunded_fen, "gross_fen": s.gross_fen,
            "provider_fee_fen": s.provider_fee_fen, "fee_fen": s.fee_fen, "net_fen": s.net_fen, "paid_fen": s.paid_fen, "due_fen": s.due_fen,
        })
    return views


def csv_row(view: dict) -> list:
    """A statement's CSV cells (``CSV_COLUMNS``): text neutralised, numbers left numbers."""
    owner = view["owner"] or {}
    flat = {**view, "owner_id": owner.get("id"), "owner_name": owner.get("name"),
            "payout_account": owner.get("payout_account")}
    return [spreadsheet.cell(flat[c]) for c in CSV_COLUMNS]


def csv_document(views: list[dict]) -> str:
    """The accountants' CSV of ``GET /api/v1/settlements`` and ``settlement statements --csv``:
    a UTF-8 byte order mark, CRLF records, no cell a spreadsheet would run (domain/spreadsheet.py)."""
    return spreadsheet.document(CSV_COLUMNS, (csv_row(view) for view in views))


# --- payouts --------------------------------------------------------------------------

def payout_view(payout: Payout) -> dict:
    return {"id": payout.id, "owner_id": payout.owner_id, "project_id": payout.project_id,
            "period": payout.period, "amount_fen": payout.amount_fen, "reference": payout.reference,
            "paid_on": payout.paid_on.isoformat(), "note": payout.note, "recorded_at": iso(payout.recorded_at)}


def record_payout(uow: UnitOfWork, *, owner_id: str, project_id: str, period: str, amount_fen: int,
                  reference: str, paid_on: date, note: str | None = None,
                  now: datetime | None = None) -> tuple[Payout, bool]:
    """Record money transferred against a closed month's statement; ``(payout, created)``.

    The same reference with the same details is the same payout (a retried request);
    with other details it is refused. The project's lock serialises payouts of one
    statement, so two of them cannot both fit under its net.
    """
    session = uow.session
    now = now or utcnow()
    request = dict(owner_id=owner_id, project_id=project_id, period=period, amount_fen=amount_fen,
                   paid_on=paid_on, note=note)
    same = session.scalars(select(Payout).where(Payout.reference == reference)).first()
    if same is not None:
        if {k: getattr(same, k) for k in request} == request:
            return same, False
        raise ApiError(409, "payout_reference_taken", f"payout reference {reference} was recorded for another payout")
    project = session.scalars(for_update(session, select(Project).where(Project.id == project_id))).first()
    if project is None:
        raise NotFound("project", project_id)
    if session.get(Owner, owner_id) is None:
        raise NotFound("owner", owner_id)
    tz = zone()
    if paid_on > now.astimezone(tz).date():
        raise ApiError(422, "validation_error", "some fields are invalid", {"paid_on": ["must not be in the future"]})
    found = statements(uow, project=project_id, period=period, owner=owner_id)
    refusal = rules.payout_refusal(found[0] if found else None, amount_fen, now, tz)
    if refusal is not None:
        code, message = refusal
        raise ApiError(404 if code == "statement_not_found" else 409, code, message)
    payout = Payout(id=new_id("pay"), reference=reference, recorded_at=now, **request)
    session.add(payout)
    session.flush()
    return payout, True


def list_payouts(uow: UnitOfWork, *, project: str | None = None, period: str | None = None,
                 owner: str | None = None) -> list[Payout]:
    session = uow.session
    query = select(Payout).order_by(Payout.period, Payout.recorded_at, Payout.id)
    if project:
        query = query.where(Payout.project_id == _project_id(session, project))
    if period:
        query = query.where(Payout.period == period)
    if owner:
        query = query.where(Payout.owner_id == owner)
    return list(session.scalars(query))


# --- the public ledger's money ----------------------------------------------------------

@dataclass(frozen=True)
class ProjectMoney:
    owner_net_fen: int = 0      # the owners' share of payments captured, less refunds
    paid_to_owner_fen: int = 0  # transferred to the owners so far (payouts)


def project_money(session: Session, project_ids: list[str] | None = None) -> dict[str, ProjectMoney]:
    nets = select(SettlementEntry.project_id, func.sum(SettlementEntry.net_fen)).group_by(SettlementEntry.project_id)
    paid = select(Payout.project_id, func.sum(Payout.amount_fen)).group_by(Payout.project_id)
    if project_ids is not None:
        nets = nets.where(SettlementEntry.project_id.in_(project_ids))
        paid = paid.where(Payout.project_id.in_(project_ids))
    net_by_project = {p: int(v or 0) for p, v in session.execute(nets)}
    paid_by_project = {p: int(v or 0) for p, v in session.execute(paid)}
    return {p: ProjectMoney(net_by_project.get(p, 0), paid_by_project.get(p, 0))
            for p in set(net_by_project) | set(paid_by_project)}


# --- reconciliation ---------------------------------------------------------------------

def reconcile(uow: UnitOfWork, now: datetime | None = None) -> rules.Reconciliation:
    """The whole database checked (``flask --app orders.app settlement verify``)."""
    session = uow.session
    now = now or utcnow()
    refunds = {order_id: int(amount) for order_id, amount in
               session.execute(select(Refund.order_id, Refund.amount_fen))}
    lines = [rules.Line(e.order_id, e.owner_id, e.project_id, e.period, e.kind, e.quantity_kg,
                        e.gross_fen, e.fee_fen, e.net_fen, rules.FeeRule(e.fee_bps, e.fee_min_fen),
                        e.provider_fee_fen or 0, e.provider_fee_bps or 0)
             for e in session.scalars(select(SettlementEntry).order_by(SettlementEntry.id))]
    ledger = [rules.LedgerFacts(e.seq, e.order_id, e.project_id, int(e.body.get("quantity_kg", 0)))
              for e in session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq))]
    serial_kg = dict(session.execute(
        select(Retirement.order_id, func.sum(Retirement.serial_last - Retirement.serial_first + 1))
        .group_by(Retirement.order_id)).all())
    orders: dict[str, rules.OrderFacts] = {}

    def add(o: Order) -> None:
        orders[o.id] = rules.OrderFacts(o.project_id, o.status, o.amount_fen, o.quantity_kg,
                                        captured=o.paid_at is not None or o.id in refunds,
                                        serial_kg=int(serial_kg.get(o.id, 0)))

    for o in session.scalars(select(Order).where(or_(Order.paid_at.is_not(None),
                                                     Order.status.in_(rules.RETIRED_STATUSES)))):
        add(o)
    # Orders named by a ledger entry, a line or a refund but neither paid nor retired.
    named = {e.order_id for e in ledger} | {line.order_id for line in lines} | set(refunds)
    for chunk in _chunks(sorted(named - set(orders)), 500):
        for o in session.scalars(select(Order).where(Order.id.in_(chunk))):
            add(o)
    retired = dict(session.execute(select(Project.id, Project.retired_kg)).all())
    found = statements(uow)
    paid = {s.key: s.paid_fen for s in found if s.paid_fen}
    settled = {s.key for s in found if s.status(now, zone()) == "settled"}
    return rules.reconcile(orders=orders, refunds=refunds, lines=lines, ledger=ledger,
                           project_retired_kg=retired, paid=paid, settled=settled)


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def reconciliation_view(result: rules.Reconciliation) -> dict:
    return {"ok": result.ok, "difference": result.difference, "projects": result.projects,
            "captured_fen": result.captured_fen, "refunded_fen": result.refunded_fen,
            "owners_net_fen": result.net_fen, "platform_fees_fen": result.fee_fen,
            "provider_fees_fen": result.provider_fee_fen,
            "settled_kg": result.settled_kg, "pending_kg": result.pending_kg}


# --- the providers' daily bills -----------------------------------------------------------

BILL_ZONE = ZoneInfo("Asia/Shanghai")  # WeChat Pay and Alipay cut their bills at midnight, Beijing time
BILL_PARSERS = {"wechatpay": bills.parse_wechat_trade_bill, "alipay": bills.parse_alipay_bill}


def parse_bill(provider: str, content) -> list[bills.BillRecord]:
    """A downloaded bill (WeChat Pay: text; Alipay: the zip) as its payments and refunds."""
    return BILL_PARSERS[provider](content)


def recorded_for_bill(uow: UnitOfWork, provider: str, day: date) -> list[bills.BillRecord]:
    """Our payments and refunds through ``provider`` on ``day`` (Beijing time), as the bill
    should list them: the split journal's capture and refund lines, amounts and provider
    fees signed as the money moved (a refund's line is negative already)."""
    session = uow.session
    start = datetime.combine(day, time(), BILL_ZONE)
    end = start + timedelta(days=1)
    E = SettlementEntry
    # A day's margin either way on the stored instants; the exact day is decided below.
    found = session.scalars(select(E).where(E.provider == provider,
                                            E.booked_at >= start - timedelta(days=1),
                                            E.booked_at < end + timedelta(days=1))
                            .order_by(E.id))
    records = []
    for line in found:
        if not start <= as_utc(line.booked_at) < end:
            continue
        kind = bills.PAYMENT if line.kind == CAPTURE else bills.REFUND
        records.append(bills.BillRecord(kind, line.order_id, line.gross_fen, line.provider_fee_fen or 0))
    return records


def bill_check(uow: UnitOfWork, provider: str, day: date, bill: list[bills.BillRecord]) -> bills.BillCheck:
    """The provider's bill of ``day`` against what we recorded that day."""
    return bills.compare(bill, recorded_for_bill(uow, provider, day))
