"""Alembic, configured in code for each service (no alembic.ini to keep in sync).

    python -m diandian_common.migrate upgrade [name ...]        # every database by default
    python -m diandian_common.migrate revision orders -m "add refunds"

The databases are the four services' and the gateway's own (its operator API keys); each
is a package with a ``migrations/`` directory whose ``env.py`` calls :func:`run_env` with
its metadata.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import pool

from . import config
from .db import make_engine

# Every package with migrations of its own: the services, then the gateway.
DATABASES = (*config.SERVICES, "gateway")


def alembic_config(service: str, url: str | None = None) -> Config:
    package = importlib.import_module(service)
    script_location = Path(package.__file__).parent / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", (url or config.database_url(service)).replace("%", "%%"))
    cfg.attributes["service"] = service
    return cfg


def upgrade(service: str, url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(service, url), revision)


def run_env(target_metadata) -> None:
    """Body of every service's migrations/env.py."""
    cfg = context.config
    url = cfg.get_main_option("sqlalchemy.url")
    is_sqlite = url.startswith("sqlite")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True,
                          render_as_batch=is_sqlite)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=is_sqlite, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diandian_common.migrate")
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("upgrade", help="upgrade databases to the newest revision")
    up.add_argument("services", nargs="*", default=list(DATABASES), metavar="name",
                    help=f"any of {', '.join(DATABASES)}")
    rev = sub.add_parser("revision", help="autogenerate a new revision for one service")
    rev.add_argument("service", choices=DATABASES)
    rev.add_argument("-m", "--message", required=True)
    args = parser.parse_args(argv)
    if args.cmd == "upgrade":
        unknown = sorted(set(args.services) - set(DATABASES))
        if unknown:
            parser.error(f"no database named {', '.join(unknown)} (choose from {', '.join(DATABASES)})")
        for service in args.services:
            upgrade(service)
            print(f"[migrate] {service}: at head", file=sys.stderr)
    else:
        command.revision(alembic_config(args.service), message=args.message, autogenerate=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
