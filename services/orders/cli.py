"""``flask --app orders.app ...`` commands for scripts and operators."""
from __future__ import annotations

import click
from flask import Flask
from sqlalchemy import select

from diandian_common.web import db

from . import workflows
from .domain import ledger
from .models import LedgerEntry, Project

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


def register(app: Flask) -> None:
    @app.cli.command("seed-demo")
    def seed_demo():
        """Demo projects with inventory (idempotent)."""
        with db().transaction() as session:
            added = seed_demo_projects(session)
        click.echo(f"orders: {added} demo projects added")

    ledger_group = click.Group("ledger", help="The public retirement ledger.")
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
