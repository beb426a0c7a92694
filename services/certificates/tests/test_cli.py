"""Maintenance commands: re-rendering stored PDFs and relaying the outbox."""
from __future__ import annotations

import os

import pytest

from diandian_common.uow import UnitOfWork

from certificates import service
from certificates.app import create_app


@pytest.fixture
def runner(env):
    app = create_app(database_url=env)
    yield app.test_cli_runner()
    app.extensions["db"].dispose()


def test_rerender_named_certificates(runner, add_certificate, storage_dir, monkeypatch):
    monkeypatch.setattr(service, "render_pdf", lambda cert: b"%PDF-1.7 new of " + cert.id.encode())
    first, second = add_certificate(), add_certificate()
    (storage_dir / f"{first.id}.png").write_bytes(b"preview of the old PDF")
    result = runner.invoke(args=["rerender", first.id])
    assert result.exit_code == 0, result.output
    assert (storage_dir / f"{first.id}.pdf").read_bytes() == b"%PDF-1.7 new of " + first.id.encode()
    assert (storage_dir / f"{second.id}.pdf").read_bytes().startswith(b"%PDF-1.7 placeholder")
    assert not (storage_dir / f"{first.id}.png").exists()  # made again from the new PDF when asked

    result = runner.invoke(args=["rerender", "--all"])
    assert result.exit_code == 0 and "re-rendered 2 certificate(s)" in result.output
    assert (storage_dir / f"{second.id}.pdf").read_bytes() == b"%PDF-1.7 new of " + second.id.encode()


def test_rerender_needs_ids_or_all(runner):
    assert runner.invoke(args=["rerender"]).exit_code == 2


def test_relay_outbox(runner, unsent_revocation, broker):
    result = runner.invoke(args=["relay-outbox"])
    # The revocation tells ranking and orders.
    assert result.exit_code == 0 and "published 2 message(s)" in result.output
    assert [task for task, _ in broker.published("ranking")] == ["ranking.revoke"]


@pytest.fixture
def unsent_revocation(database, add_certificate):
    """A revocation whose message is still in the outbox (the broker was down): a unit of
    work without a broker relays nothing."""
    cert = add_certificate()
    with UnitOfWork(database) as uow:
        service.revoke(uow, cert.id, "refund")


def test_make_font_subset(runner, tmp_path, monkeypatch):
    dejavu = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    if not os.path.isfile(dejavu):
        pytest.skip("DejaVu Sans is not installed")
    monkeypatch.setenv("CERTIFICATES_CJK_FONT", dejavu)
    monkeypatch.setenv("CERTIFICATES_FONT_CACHE_DIR", str(tmp_path / "image-fonts"))
    result = runner.invoke(args=["make-font-subset"])
    assert result.exit_code == 0, result.output
    [made] = (tmp_path / "image-fonts").glob("cjk-common-*.ttf")
    assert result.output.strip() == str(made)

    monkeypatch.setenv("CERTIFICATES_CJK_FONT", "none")
    result = runner.invoke(args=["make-font-subset"])
    assert result.exit_code == 1 and "no font subset" in result.output
