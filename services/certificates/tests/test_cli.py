"""Maintenance commands: re-rendering stored PDFs and relaying the outbox."""
from __future__ import annotations

import pytest

from certificates import cli
from certificates.app import create_app


@pytest.fixture
def runner(env):
    app = create_app(database_url=env)
    yield app.test_cli_runner()
    app.extensions["db"].dispose()


def test_rerender_named_certificates(runner, add_certificate, storage_dir, monkeypatch):
    monkeypatch.setattr(cli, "render_pdf", lambda cert: b"%PDF-1.7 new of " + cert.id.encode())
    first, second = add_certificate(), add_certificate()
    result = runner.invoke(args=["rerender", first.id])
    assert result.exit_code == 0, result.output
    assert (storage_dir / f"{first.id}.pdf").read_bytes() == b"%PDF-1.7 new of " + first.id.encode()
    assert (storage_dir / f"{second.id}.pdf").read_bytes().startswith(b"%PDF-1.7 placeholder")

    result = runner.invoke(args=["rerender", "--all"])
    assert result.exit_code == 0 and "re-rendered 2 certificate(s)" in result.output
    assert (storage_dir / f"{second.id}.pdf").read_bytes() == b"%PDF-1.7 new of " + second.id.encode()


def test_rerender_needs_ids_or_all(runner):
    assert runner.invoke(args=["rerender"]).exit_code == 2


def test_relay_outbox(runner, unsent_revocation, broker):
    result = runner.invoke(args=["relay-outbox"])
    assert result.exit_code == 0 and "published 1 message(s)" in result.output
    assert [task for task, _ in broker.published("ranking")] == ["ranking.revoke"]


@pytest.fixture
def unsent_revocation(database, add_certificate):
    """A revocation whose message is still in the outbox (the broker was down)."""
    from certificates.issuance import revoke_certificate

    cert = add_certificate()
    with database.transaction() as session:
        revoke_certificate(session, cert.id, "refund")
