"""``flask --app orders.app ...`` commands for scripts and operators."""
from __future__ import annotations

import contextlib
import csv
import json
import sys

import click
from flask import Flask
from flask.cli import AppGroup
from marshmallow import ValidationError
from sqlalchemy import select

from diandian_common.errors import ApiError, NotFound

from .catalogue import service as catalogue
from .catalogue.schemas import IssuanceCreateSchema, ProjectCreateSchema, ProjectUpdateSchema
from .ledger import service as ledger_service
from .ledger.domain import chain as ledger
from .models import LedgerEntry, Project
from .ordering import views as order_views
from .ordering.domain import lifecycle as states
from .ordering.schemas import OrderListQuerySchema
from .payments import providers
from .payments.port import ProviderError
from .settlement import service as settlement
from .settlement.domain.bills import BillError
from .settlement.schemas import OwnerCreateSchema, PayoutCreateSchema, SettlementQuerySchema
from .wiring import unit_of_work

# Chengdu carbon-inclusion (CDCER-style) demo projects: (code, zh, en, type, location,
# vintage, price in fen per tonne, issued serials).
DEMO_PROJECTS = [
    ("CDCER-LQS-FOREST", "龙泉山城市森林碳汇项目", "Longquan Mountain Urban Forest Carbon Sink",
     "forestry_carbon_sink", "Chengdu, Sichuan", 2022, 6000, 2_000_000),
    ("CDCER-PJ-BIOGAS", "蒲江县户用沼气减排项目", "Pujiang County Household Biogas",
     "household_biogas", "Pujiang, Chengdu, Sichuan", 2023, 5000, 1_000_000),
    ("CDCER-CD-EBUS", "成都公交新能源车辆减排项目", "Chengdu New-Energy Bus Fleet",
     "clean_transport", "Chengdu, Sichuan", 2023, 4500, 1_500_000),
    ("CDCER-XJ-PV", "新津区分布式光伏项目", "Xinjin District Distributed Solar",
     "renewable_energy", "Xinjin, Chengdu, Sichuan", 2024, 5500, 800_000),
]
# Their locations in Chinese, for zh pages (issue 21).
DEMO_LOCATIONS_ZH = {
    "CDCER-LQS-FOREST": "四川省成都市",
    "CDCER-PJ-BIOGAS": "四川省成都市蒲江县",
    "CDCER-CD-EBUS": "四川省成都市",
    "CDCER-XJ-PV": "四川省成都市新津区",
}


# Their (fictional) owners and the platform's fee on each: (project code, company, payout
# account, contact, fee in basis points, minimum fee in fen). One project carries no fee.
DEMO_OWNERS = [
    ("CDCER-LQS-FOREST", "成都龙泉山生态林业有限公司（演示）", "DEMO 6222 0210 0000 0001", "finance@lqs-forest.example",
     500, 1),
    ("CDCER-PJ-BIOGAS", "蒲江县农村能源合作社（演示）", "DEMO 6228 4800 0000 0002", "accounts@pj-biogas.example",
     300, 0),
    ("CDCER-CD-EBUS", "成都公交新能源运营有限公司（演示）", "DEMO 6217 0038 0000 0003", "settlement@cd-ebus.example",
     500, 10),
    ("CDCER-XJ-PV", "新津区光伏发电有限公司（演示）", "DEMO 6214 8300 0000 0004", "pay@xj-pv.example", 0, 0),
]


def seed_demo_projects(uow) -> int:
    """Create the demo projects that do not exist yet and give every demo project without
    an owner its demo owner and fee; returns how many projects were added."""
    session = uow.session
    added = 0
    for code, name, name_en, type_, location, vintage, price, issued in DEMO_PROJECTS:
        if session.scalars(select(Project).where(Project.code == code)).first():
            continue
        project = catalogue.add_project(uow, code=code, name=name, name_en=name_en, type=type_,
                                        location=location, registry="CDCER", vintage=vintage,
                                        price_fen_per_tonne=price, location_zh=DEMO_LOCATIONS_ZH[code])
        catalogue.issue_block(session, project, 1, issued)
        added += 1
    for code, location_zh in DEMO_LOCATIONS_ZH.items():
        # Demo projects seeded before locations had Chinese get it; an operator's is kept.
        project = session.scalars(select(Project).where(Project.code == code)).one()
        if project.location_zh is None:
            project.location_zh = location_zh
    for code, company, account, contact, fee_bps, fee_min_fen in DEMO_OWNERS:
        project = session.scalars(select(Project).where(Project.code == code)).one()
        if project.owner_id is not None:
            continue  # an operator's choice is kept
        owner = settlement.find_owner(session, company) or settlement.create_owner(
            uow, name=company, payout_account=account, contact=contact)
        project.fee_bps, project.fee_min_fen = fee_bps, fee_min_fen
        settlement.attach_owner(session, project, owner.id)
    return added


def _load(schema, data: dict) -> dict:
    """The API's validation for command-line input, so both refuse the same things."""
    try:
        return schema.load({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{field}: {' '.join(map(str, messages))}"
                             for field, messages in exc.normalized_messages().items())
        raise click.UsageError(problems) from None


def _project_id(session, ref: str) -> str:
    project = catalogue.find_project(session, ref)
    if project is None:
        raise NotFound("project", ref)
    return project.id


def _run(action):
    """Run ``action(uow)`` in a unit of work; API errors become command errors."""
    try:
        with unit_of_work() as uow:
            return action(uow)
    except ApiError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from None


def _echo_json(value) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


PROJECT_COLUMNS = ("code", "id", "vintage", "price_fen_per_tonne", "issued_kg", "reserved_kg", "retired_kg",
                   "available_kg")
ORDER_COLUMNS = ("id", "status", "project", "quantity_kg", "amount_fen", "participant", "scene", "created_at")


def _table(columns, rows) -> None:
    click.echo("\t".join(columns))
    for row in rows:
        click.echo("\t".join("" if row[c] is None else str(row[c]) for c in columns))


def register_projects(app: Flask) -> None:
    projects = AppGroup("projects", help="Projects and their inventory (operator).")
    app.cli.add_command(projects)

    @projects.command("create")
    @click.option("--code", required=True, help="e.g. CDCER-LQS-FOREST (capitals, digits, -)")
    @click.option("--name", required=True, help="Chinese name")
    @click.option("--name-en", required=True, help="English name")
    @click.option("--type", "type_", required=True, help="e.g. forestry_carbon_sink")
    @click.option("--location", required=True)
    @click.option("--location-zh", default=None, help="the location in Chinese")
    @click.option("--registry", default="CDCER", show_default=True)
    @click.option("--vintage", required=True, type=int)
    @click.option("--price-fen-per-tonne", required=True, type=int)
    def create(code, name, name_en, type_, location, location_zh, registry, vintage, price_fen_per_tonne):
        """Create a project (no inventory until serials are issued)."""
        data = _load(ProjectCreateSchema(), dict(code=code, name=name, name_en=name_en, type=type_,
                                                  location=location, location_zh=location_zh,
                                                  registry=registry, vintage=vintage,
                                                  price_fen_per_tonne=price_fen_per_tonne))
        _echo_json(_run(lambda uow: catalogue.project_view(catalogue.add_project(uow, **data))))

    @projects.command("issue")
    @click.argument("project")
    @click.argument("first", type=int)
    @click.argument("last", type=int)
    def issue(project, first, last):
        """Record serials FIRST..LAST issued to PROJECT (id or code)."""
        data = _load(IssuanceCreateSchema(), {"first": first, "last": last})
        _echo_json(_run(lambda uow: catalogue.issuance_view(catalogue.record_issuance(
            uow, _project_id(uow.session, project), data["first"], data["last"]))))

    @projects.command("set-price")
    @click.argument("project")
    @click.argument("price_fen_per_tonne", type=int)
    def set_price(project, price_fen_per_tonne):
        """Set PROJECT's price (fen per tonne); orders already placed keep theirs."""
        changes = _load(ProjectUpdateSchema(), {"price_fen_per_tonne": price_fen_per_tonne})
        _echo_json(_run(lambda uow: catalogue.project_view(catalogue.update_project(
            uow, _project_id(uow.session, project), changes))))

    @projects.command("set-owner")
    @click.argument("project")
    @click.argument("owner")
    def set_owner(project, owner):
        """Payments of PROJECT from now on go to OWNER (an owner's id or exact name; "none"
        detaches). Payments held while the project had no owner go to this first one."""
        def attach(uow):
            owner_id = None
            if owner.lower() != "none":
                found = settlement.find_owner(uow.session, owner)
                if found is None:
                    raise NotFound("owner", owner)
                owner_id = found.id
            return catalogue.project_view(catalogue.update_project(uow, _project_id(uow.session, project),
                                                                   {"owner_id": owner_id}))
        _echo_json(_run(attach))

    @projects.command("set-fee")
    @click.argument("project")
    @click.option("--bps", type=int, required=True, help="the platform's fee in basis points (500 = 5 %)")
    @click.option("--min-fen", type=int, default=0, show_default=True, help="minimum fee per payment")
    def set_fee(project, bps, min_fen):
        """The platform's fee on PROJECT's payments from now on (0 allowed)."""
        changes = _load(ProjectUpdateSchema(), {"fee_bps": bps, "fee_min_fen": min_fen})
        _echo_json(_run(lambda uow: catalogue.project_view(catalogue.update_project(
            uow, _project_id(uow.session, project), changes))))

    @projects.command("list")
    @click.option("--json", "as_json", is_flag=True, help="JSON instead of a tab-separated table")
    def list_(as_json):
        """Projects with their inventory."""
        items = _run(lambda uow: catalogue.project_views(
            uow.session, uow.session.scalars(select(Project).order_by(Project.code)).all()))
        if as_json:
            _echo_json(items)
        else:
            _table(PROJECT_COLUMNS, items)


def register_orders(app: Flask) -> None:
    orders = AppGroup("orders", help="Orders (operator).")
    app.cli.add_command(orders)

    @orders.command("list")
    @click.option("--status", type=click.Choice(states.ALL))
    @click.option("--project", help="project id or code")
    @click.option("--scene", help="scene slug")
    @click.option("--limit", type=int, default=50, show_default=True, help="1 to 200 a page")
    @click.option("--after", help="the last order id of the previous page")
    @click.option("--json", "as_json", is_flag=True, help="the API's JSON page instead of a table")
    def list_(status, project, scene, limit, after, as_json):
        """Orders oldest first; prints the id for --after of the next page on stderr."""
        args = _load(OrderListQuerySchema(), dict(status=status, project=project, scene=scene,
                                                  limit=limit, after=after))
        page = _run(lambda uow: order_views.list_orders(uow.session, **args))
        if as_json:
            _echo_json(page)
            return
        _table(ORDER_COLUMNS, [{**o, "project": o["project"]["code"], "participant": o["participant"]["id"],
                                "scene": (o["scene"] or {}).get("slug")} for o in page["items"]])
        if page["next_after"]:
            click.echo(f"more: --after {page['next_after']}", err=True)


def register_ledger(app: Flask) -> None:
    ledger_group = AppGroup("ledger", help="The public retirement ledger.")
    app.cli.add_command(ledger_group)

    @ledger_group.command("verify")
    def verify():
        """Recompute the hash chain; name the first broken entry."""
        with unit_of_work() as uow:
            rows = uow.session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq)).all()
            broken = ledger.first_broken((e.seq, e.prev_hash, e.hash, e.body) for e in rows)
        if broken is None:
            click.echo(f"ledger ok: {len(rows)} entries")
        else:
            raise click.ClickException(f"ledger broken at entry {broken}")

    @ledger_group.command("export")
    @click.option("--project", help="only this project's entries (id or code)")
    @click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
                  help="file to write (default: standard output)")
    def export(project, output):
        """The ledger as CSV for auditors (the columns of GET /api/v1/ledger as text/csv)."""
        entries = _run(lambda uow: [(e.seq, e.prev_hash, e.hash, e.body) for e in
                                    ledger_service.entries(uow.session, project=project)])
        target = (open(output, "w", newline="", encoding="utf-8") if output
                  else contextlib.nullcontext(sys.stdout))
        with target as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(ledger.CSV_COLUMNS)
            for entry in entries:
                writer.writerow(ledger.csv_row(*entry))
        if output:
            click.echo(f"{len(entries)} ledger entries written to {output}", err=True)


STATEMENT_COLUMNS = ("period", "status", "owner_name", "project_code", "orders", "quantity_kg", "gross_fen",
                     "provider_fee_fen", "fee_fen", "net_fen", "paid_fen", "due_fen")


def register_settlement(app: Flask) -> None:
    owners = AppGroup("owners", help="The companies that receive projects' money (operator).")
    app.cli.add_command(owners)

    @owners.command("create")
    @click.option("--name", required=True, help="the company")
    @click.option("--payout-account", required=True, help="bank account or payee reference")
    @click.option("--contact", required=True, help="who to call about payouts")
    def create_owner(name, payout_account, contact):
        """Register an owner; attach it with `projects set-owner`."""
        data = _load(OwnerCreateSchema(), dict(name=name, payout_account=payout_account, contact=contact))
        _echo_json(_run(lambda uow: settlement.owner_view(settlement.create_owner(uow, **data))))

    @owners.command("list")
    @click.option("--json", "as_json", is_flag=True, help="JSON instead of a tab-separated table")
    def list_owners(as_json):
        items = _run(lambda uow: [settlement.owner_view(o) for o in settlement.list_owners(uow)])
        if as_json:
            _echo_json(items)
        else:
            _table(("id", "name", "payout_account", "contact"), items)

    group = AppGroup("settlement", help="Statements, payouts and the reconciliation of money to owners.")
    app.cli.add_command(group)

    @group.command("statements")
    @click.option("--project", help="project id or code")
    @click.option("--period", help="YYYY-MM (every month when absent)")
    @click.option("--owner", help="owner id")
    @click.option("--csv", "as_csv", is_flag=True, help="the accountants' CSV (GET /api/v1/settlements as text/csv)")
    @click.option("--json", "as_json", is_flag=True, help="the API's JSON")
    def statements(project, period, owner, as_csv, as_json):
        """Statements per owner, project and month."""
        args = _load(SettlementQuerySchema(), dict(project=project, period=period, owner=owner))
        views = _run(lambda uow: settlement.statement_views(uow, settlement.statements(uow, **args)))
        if as_json:
            _echo_json({"items": views})
        elif as_csv:
            # The very bytes of GET /api/v1/settlements as text/csv, BOM included, so that
            # `... --csv > statements.csv` opens in Excel; written as bytes, so neither the
            # terminal's encoding nor a platform's newline translation changes them.
            click.echo(settlement.csv_document(views).encode("utf-8"), nl=False)
        else:
            _table(STATEMENT_COLUMNS, [{**v, "owner_name": (v["owner"] or {}).get("name")} for v in views])

    @group.command("payout")
    @click.option("--owner", "owner_id", required=True, help="owner id")
    @click.option("--project", required=True, help="project id or code")
    @click.option("--period", required=True, help="YYYY-MM, a month that is over")
    @click.option("--amount-fen", type=int, required=True)
    @click.option("--reference", required=True, help="the transfer's reference (unique)")
    @click.option("--paid-on", required=True, help="YYYY-MM-DD, the day the money was sent")
    @click.option("--note")
    def payout(owner_id, project, period, amount_fen, reference, paid_on, note):
        """Record a transfer to an owner against a month's statement."""
        def record(uow):
            data = _load(PayoutCreateSchema(), dict(owner_id=owner_id, project_id=_project_id(uow.session, project),
                                                    period=period, amount_fen=amount_fen, reference=reference,
                                                    paid_on=paid_on, note=note))
            return settlement.payout_view(settlement.record_payout(uow, **data)[0])
        _echo_json(_run(record))

    @group.command("verify")
    def verify():
        """Captured payments − refunds = owners' net + platform fees + provider fees (per
        project and in total), and every ledger kilogram belongs to one paid order; names
        the first difference (exit status 1)."""
        result = _run(lambda uow: settlement.reconcile(uow))
        if not result.ok:
            raise click.ClickException(f"settlement differs: {result.difference}")
        click.echo(f"settlement ok: {result.projects} projects; captured {result.captured_fen} fen − refunded "
                   f"{result.refunded_fen} fen = owners' net {result.net_fen} fen + platform fees "
                   f"{result.fee_fen} fen + provider fees {result.provider_fee_fen} fen; ledger "
                   f"{result.settled_kg + result.pending_kg} kg "
                   f"({result.settled_kg} kg settled, {result.pending_kg} kg pending)")

    @group.command("bill-check")
    @click.option("--provider", required=True, type=click.Choice(sorted(settlement.BILL_PARSERS)))
    @click.option("--date", "day", required=True, type=click.DateTime(["%Y-%m-%d"]),
                  help="YYYY-MM-DD, a day in Beijing time (the providers' bill day)")
    def bill_check(provider, day):
        """The provider's trade bill of the day against our payments and refunds of that day:
        missing on either side, amounts and provider fees that differ (exit status 1)."""
        day = day.date()
        try:  # downloaded outside any transaction
            content = providers.provider(provider).trade_bill(day)
            bill = [] if content is None else settlement.parse_bill(provider, content)
        except (ProviderError, BillError) as exc:
            raise click.ClickException(str(exc)) from None
        result = _run(lambda uow: settlement.bill_check(uow, provider, day, bill))
        click.echo(f"{provider} bill of {day.isoformat()}: {len(bill)} lines"
                   f"{'' if content is not None else ' (no bill: no trades that day)'}, "
                   f"amount {result.bill_amount_fen} fen, fees {result.bill_fee_fen} fen; recorded here "
                   f"amount {result.our_amount_fen} fen, fees {result.our_fee_fen} fen; "
                   f"{result.matched} matched")
        for difference in result.differences:
            click.echo(f"DIFFERENCE {difference.problem}: {difference.describe()}")
        if not result.ok:
            raise click.ClickException(f"{len(result.differences)} differences with the {provider} bill")
        click.echo("bill ok")


def register(app: Flask) -> None:
    @app.cli.command("seed-demo")
    def seed_demo():
        """Demo projects with inventory (idempotent)."""
        with unit_of_work() as uow:
            added = seed_demo_projects(uow)
        click.echo(f"orders: {added} demo projects added")

    register_projects(app)
    register_orders(app)
    register_ledger(app)
    register_settlement(app)
