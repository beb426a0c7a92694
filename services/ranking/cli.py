"""``flask --app ranking.app ranking ...`` maintenance commands. Both hand their function the
unit-of-work factory: a rebuild's snapshot begins once it holds the boards' lock, and the
seeding commits batch by batch."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from . import rebuild, settings, store, synthetic
from .wiring import unit_of_work

ranking_cli = AppGroup("ranking", help="Ranking boards maintenance.")


@ranking_cli.command("rebuild")
def rebuild_command():
    """Recompute every board from the database (restores a flushed or damaged Redis)."""
    try:
        report = rebuild.rebuild(unit_of_work, store.writer(), settings.now())
    except store.LockHeld as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"rebuilt {report.boards} boards with {report.entries} entries "
               f"({report.removed_keys} stale keys removed) in {report.seconds} s")


@ranking_cli.command("seed-synthetic")
@click.option("--participants", type=click.IntRange(1, 5_000_000), required=True,
              help="how many synthetic participants (one contribution each)")
@click.option("--scene", required=True, help="scene slug the contributions belong to")
@click.option("--organizations", type=click.IntRange(0, 100_000), default=0, show_default=True,
              help="spread about half of the participants over this many organisations")
@click.option("--days", type=click.IntRange(0, 3650), default=365, show_default=True,
              help="spread the contributions over the last DAYS days")
@click.option("--seed", type=int, default=1, show_default=True, help="random seed (same seed, same data)")
def seed_synthetic_command(participants, scene, organizations, days, seed):
    """Add synthetic participants straight into the database and the boards (benchmarks)."""
    try:
        report = synthetic.seed_synthetic(unit_of_work, store.writer(), participants=participants,
                                          scene=scene, organizations=organizations, days=days, seed=seed,
                                          now=settings.now())
    except (ValueError, store.LockHeld) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"seeded {report.participants} participants on scene {scene} "
               f"({report.boards} boards) in {report.seconds} s")


def register(app: Flask) -> None:
    app.cli.add_command(ranking_cli)
