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
from diandian_common.web import db

from . import workflows
from .domain import ledger, states
from .models import LedgerEntry, Project
from .schemas import IssuanceCreateSchema, OrderListQuerySchema, ProjectCreateSchema, ProjectUpdateSchema

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


def seed_demo_projects(session) -> int:
    """Create the demo projects that do not exist yet; returns how many were added."""
    added = 0
    for code, name, name_en, type_, location, vintage, price, issued in DEMO_PROJECTS:
        if session.scalars(select(Project).where(Project.code == code)).first():
            continue
        project = workflows.add_project(session, code=code, name=name, name_en=name_en, type=type_,
                                        location=location, registry="CDCER", vintage=vintage,
                                        price_fen_per_tonne=price)
        workflows.issue_block(session, project, 1, issued)
        added += 1
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
    project = workflows.find_project(session, ref)
    if project is None:
        raise NotFound("project", ref)
    return project.id


def _run(action):
    """Run ``action(session)`` in a transaction; API errors become command errors."""
    try:
        with db().transaction() as session:
            return action(session)
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
    @click.option("--registry", default="CDCER", show_default=True)
    @click.option("--vintage", required=True, type=int)
    @click.option("--price-fen-per-tonne", required=True, type=int)
    def create(code, name, name_en, type_, location, registry, vintage, price_fen_per_tonne):
        """Create a project (no inventory until serials are issued)."""
        data = _load(ProjectCreateSchema(), dict(code=code, name=name, name_en=name_en, type=type_,
                                                  location=location, registry=registry, vintage=vintage,
                                                  price_fen_per_tonne=price_fen_per_tonne))
        _echo_json(_run(lambda session: workflows.project_view(workflows.add_project(session, **data))))

    @projects.command("issue")
    @click.argument("project")
    @click.argument("first", type=int)
    @click.argument("last", type=int)
    def issue(project, first, last):
        """Record serials FIRST..LAST issued to PROJECT (id or code)."""
        data = _load(IssuanceCreateSchema(), {"first": first, "last": last})
        _echo_json(_run(lambda session: workflows.issuance_view(workflows.record_issuance(
            session, _project_id(session, project), data["first"], data["last"]))))

    @projects.command("set-price")
    @click.argument("project")
    @click.argument("price_fen_per_tonne", type=int)
    def set_price(project, price_fen_per_tonne):
        """Set PROJECT's price (fen per tonne); orders already placed keep theirs."""
        changes = _load(ProjectUpdateSchema(), {"price_fen_per_tonne": price_fen_per_tonne})
        _echo_json(_run(lambda session: workflows.project_view(workflows.update_project(
            session, _project_id(session, project), changes))))

    @projects.command("list")
    @click.option("--json", "as_json", is_flag=True, help="JSON instead of a tab-separated table")
    def list_(as_json):
        """Projects with their inventory."""
        items = _run(lambda session: [workflows.project_view(p) for p in
                                      session.scalars(select(Project).order_by(Project.code))])
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
        page = _run(lambda session: workflows.list_orders(session, **args))
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
        with db().transaction() as session:
            rows = session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq)).all()
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
        entries = _run(lambda session: [(e.seq, e.prev_hash, e.hash, e.body) for e in
                                        workflows.ledger_entries(session, project=project)])
        target = (open(output, "w", newline="", encoding="utf-8") if output
                  else contextlib.nullcontext(sys.stdout))
        with target as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(ledger.CSV_COLUMNS)
            for entry in entries:
                writer.writerow(ledger.csv_row(*entry))
        if output:
            click.echo(f"{len(entries)} ledger entries written to {output}", err=True)


def register(app: Flask) -> None:
    @app.cli.command("seed-demo")
    def seed_demo():
        """Demo projects with inventory (idempotent)."""
        with db().transaction() as session:
            added = seed_demo_projects(session)
        click.echo(f"orders: {added} demo projects added")

    register_projects(app)
    register_orders(app)
    register_ledger(app)
