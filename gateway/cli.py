"""``flask --app gateway.app keys ...``: operator API keys.

    keys create --name "Venue team" --scope scenes --scope projects   # prints the key once
    keys list
    keys revoke <id>
    keys ensure-operator        # mirror OPERATOR_API_KEY (run at start-up)
"""
from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from diandian_common import config
from diandian_common.auth import SCOPES

from .keys import KeyStore

keys = AppGroup("keys", help="Create, list and revoke operator API keys.")


def _store() -> KeyStore:
    return current_app.extensions["keys"]


@keys.command("create")
@click.option("--name", required=True, help="Who or what the key is for.")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES),
              help="Repeat for several; admin implies every scope.")
def create(name: str, scopes: tuple[str, ...]):
    """Create a key and print it (on stdout, once: only its hash is kept)."""
    try:
        info, raw_key = _store().create(name, scopes)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    click.echo(f"created key {info.id} ({info.name}) with scopes {' '.join(sorted(info.scopes))}; "
               "it is shown only now:", err=True)
    click.echo(raw_key)


@keys.command("list")
def list_keys():
    """Every key with its scopes; revoked ones say since when."""
    rows = _store().list()
    if not rows:
        click.echo("no keys", err=True)
    for info in rows:
        state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}Z" if info.revoked_at else "active"
        scopes = " ".join(sorted(info.scopes))
        click.echo(f"{info.id}\t{scopes}\t{state}\t{info.created_at:%Y-%m-%d %H:%M}Z\t{info.name}")


@keys.command("revoke")
@click.argument("key_id")
def revoke(key_id: str):
    """Revoke a key at once; requests with it get 403 from now on."""
    info = _store().revoke(key_id)
    if info is None:
        raise click.ClickException(f"no key with id {key_id}")
    click.echo(f"revoked key {info.id} ({info.name})")


@keys.command("ensure-operator")
def ensure_operator():
    """Make OPERATOR_API_KEY a key with every scope (or revoke it when unset)."""
    outcome = _store().ensure_operator(config.env("OPERATOR_API_KEY"))
    click.echo(f"operator key from OPERATOR_API_KEY: {outcome}", err=True)


def register(app: Flask) -> None:
    app.cli.add_command(keys)
