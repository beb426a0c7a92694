"""Maintenance commands: ``flask --app certificates.app <command>``."""
from __future__ import annotations

import click
from flask import Flask

from . import fonts, service
from .storage import storage_from_env
from .wiring import unit_of_work, wiring


def register(app: Flask) -> None:
    @app.cli.command("relay-outbox")
    def relay_outbox_command():
        """Publish the outbox rows that are still unsent."""
        click.echo(f"published {wiring.relay()} message(s)")

    @app.cli.command("make-font-subset")
    def make_font_subset_command():
        """Make the CJK font's common subset now (e.g. when building an image) rather than
        at the first worker start."""
        path = fonts.common_subset_from_env()
        if path is None:
            raise click.ClickException("no font subset: CERTIFICATES_CJK_FONT is none, no CJK font "
                                       "is installed, or subsetting failed (see the log)")
        click.echo(str(path))

    @app.cli.command("rerender")
    @click.argument("certificate_ids", nargs=-1)
    @click.option("--all", "everything", is_flag=True, help="re-render every certificate")
    def rerender_command(certificate_ids, everything):
        """Render stored PDFs again (for example after a template change)."""
        if not certificate_ids and not everything:
            raise click.UsageError("name certificate ids or pass --all")
        storage = storage_from_env()
        with unit_of_work() as uow:
            certificates = service.certificates_to_rerender(uow, None if everything else certificate_ids)
        for cert in certificates:  # storage writes, outside the transaction
            service.store_rendered(storage, cert)
            click.echo(f"{cert.id} {cert.number}")
        click.echo(f"re-rendered {len(certificates)} certificate(s)")
