"""Flask CLI: ``flask --app calculator.app seed-demo`` and ``load-factors``."""
from __future__ import annotations

from datetime import date

import click
from flask import Flask

from . import factor_sets, service
from .wiring import unit_of_work

# One scene of every type; the forum is the platform's first real event. All are in
# Chengdu, so their venues' electricity is priced with Sichuan's grid factor.
DEMO_SCENES = tuple({**scene, "province": "CN-SC"} for scene in (
    {"slug": "cdcn-forum-2021", "type": "conference", "name": "首届中国数字碳中和高峰论坛",
     "name_en": "First China Digital Carbon Neutrality Forum", "location": "成都 Chengdu",
     "starts_on": date(2021, 9, 7)},
    {"slug": "dujiangyan", "type": "scenic_spot", "name": "都江堰景区",
     "name_en": "Dujiangyan Irrigation System Scenic Area", "location": "四川省成都市都江堰市 Dujiangyan, Chengdu"},
    {"slug": "chengdu-demo-supermarket", "type": "supermarket", "name": "锦江社区超市（示例）",
     "name_en": "Jinjiang Community Supermarket (demo)", "location": "成都市锦江区 Jinjiang District, Chengdu"},
    {"slug": "chengdu-demo-restaurant", "type": "restaurant", "name": "宽窄巷子川菜馆（示例）",
     "name_en": "Kuanzhai Alley Sichuan Kitchen (demo)", "location": "成都市青羊区 Qingyang District, Chengdu"},
    {"slug": "chengdu-demo-hotel", "type": "hotel", "name": "天府大道酒店（示例）",
     "name_en": "Tianfu Avenue Hotel (demo)", "location": "成都市高新区 High-tech Zone, Chengdu"},
))


def load_all_factor_sets() -> list[str]:
    with unit_of_work() as uow:
        versions = factor_sets.load_all(uow.session)
    factor_sets.get_factor_set(unit_of_work)  # the current set, checked and cached like the API uses it
    return versions


def register(app: Flask) -> None:
    @app.cli.command("load-factors")
    def load_factors():
        """Load every factor file shipped with the calculator into its database."""
        for version in load_all_factor_sets():
            click.echo(f"factor set {version}: loaded")

    @app.cli.command("seed-demo")
    def seed_demo():
        """Create the demo scenes that don't exist yet and load the factor sets (idempotent)."""
        load_all_factor_sets()
        with unit_of_work() as uow:
            created = {demo["slug"]: service.ensure_scene(uow, dict(demo)) for demo in DEMO_SCENES}
        for slug, new in created.items():
            click.echo(f"scene {slug}: {'created' if new else 'exists'}")
