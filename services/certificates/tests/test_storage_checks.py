"""A storage that cannot take a file is found before the PDF is rendered (issue 20): the task
renders nothing, says why at WARNING (ERROR on its last try), counts it, and is retried; the
service's ``/healthz`` names it."""
from __future__ import annotations

import logging
import tempfile

import pytest
import redis
from prometheus_client import REGISTRY

from certificates import service, tasks
from certificates.app import create_app
from certificates.storage import LocalStorage, S3Storage, StorageUnavailable, storage_from_env
from diandian_common import heartbeat, logs

DENIED = PermissionError(13, "Permission denied")


@pytest.fixture
def render_calls(monkeypatch) -> list[str]:
    """Ids of the certificates rendered (rendering stubbed out)."""
    calls: list[str] = []

    def stub(cert):
        calls.append(cert.id)
        return b"%PDF-1.7 stub of " + cert.id.encode()

    monkeypatch.setattr(service, "render_pdf", stub)
    return calls


@pytest.fixture
def unwritable(monkeypatch):
    """The storage directory refuses new files, as one whose mode or mount refuses the
    worker's user would (a test run as root cannot chmod its way there)."""
    real_mkstemp = tempfile.mkstemp
    refused = {"on": True}

    def mkstemp(*args, **kwargs):
        if refused["on"]:
            raise DENIED
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr("certificates.storage.tempfile.mkstemp", mkstemp)
    return refused


def put_off(task_name: str) -> float:
    return REGISTRY.get_sample_value("storage_unavailable_total",
                                     {"service": "certificates", "operation": task_name}) or 0.0


# --- the storage's own check ------------------------------------------------------------

def test_a_writable_directory_passes_and_leaves_nothing_behind(tmp_path):
    storage = LocalStorage(tmp_path / "pdfs", min_free=0)
    storage.check_writable()
    assert list((tmp_path / "pdfs").iterdir()) == []


def test_a_directory_refusing_files_is_unavailable_with_its_cause(tmp_path, unwritable):
    storage = LocalStorage(tmp_path, min_free=0)
    with pytest.raises(StorageUnavailable) as raised:
        storage.check_writable()
    assert str(raised.value) == \
        f"certificate storage {tmp_path} cannot take a file: PermissionError: Permission denied"
    with pytest.raises(StorageUnavailable, match="cannot take cert_1.pdf: PermissionError"):
        storage.put("cert_1.pdf", b"%PDF")


def test_a_disk_nearly_full_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("CERTIFICATES_STORAGE_MIN_FREE_MB", str(2 ** 40))   # a petabyte free, at least
    with pytest.raises(StorageUnavailable, match=r"MB free, less than CERTIFICATES_STORAGE_MIN_FREE_MB=\d+"):
        LocalStorage(tmp_path).check_writable()
    monkeypatch.setenv("CERTIFICATES_STORAGE_MIN_FREE_MB", "0")
    LocalStorage(tmp_path).check_writable()


def test_a_failed_write_names_the_directory_and_the_cause(tmp_path, monkeypatch):
    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("certificates.storage.os.replace", full)
    with pytest.raises(StorageUnavailable, match="did not take cert_1.pdf: OSError: No space left on device"):
        LocalStorage(tmp_path, min_free=0).put("cert_1.pdf", b"%PDF")
    assert list(tmp_path.iterdir()) == []


def test_an_s3_bucket_is_checked_by_a_head_request(s3_bucket, monkeypatch):
    storage = storage_from_env()
    assert isinstance(storage, S3Storage)
    storage.check_writable()
    assert s3_bucket.keys() == []   # nothing written to check
    monkeypatch.setenv("CERTIFICATES_S3_BUCKET", "no-such-bucket-here")
    with pytest.raises(StorageUnavailable, match="S3 bucket 'no-such-bucket-here' does not answer"):
        storage_from_env().check_writable()


# --- the tasks: no render while the storage cannot take it --------------------------------

def test_render_puts_off_without_rendering_and_says_why(env, database, broker, make_payload, render_calls,
                                                        unwritable, caplog):
    before = put_off("certificates.render")
    with caplog.at_level(logging.INFO, logger=tasks.__name__), pytest.raises(StorageUnavailable):
        tasks.render.run(make_payload())   # the task's autoretry retries it (an OSError)
    assert render_calls == []
    assert put_off("certificates.render") == before + 1
    [line] = [r for r in caplog.records if r.name == tasks.__name__]
    assert line.levelno == logging.WARNING
    assert line.getMessage().startswith("certificates.render put off: certificate storage ")
    assert "cannot take a file: PermissionError: Permission denied (try 1 of 7; tried again later)" \
        in line.getMessage()

    unwritable["on"] = False   # the storage is back: the retry renders once and issues
    result = tasks.render.run(make_payload())
    assert result["created"] is True and render_calls == [result["certificate_id"]]


def test_the_last_try_is_an_error(env, database, broker, make_payload, render_calls, unwritable, caplog):
    tasks.render.push_request(retries=tasks.render.max_retries)
    try:
        with caplog.at_level(logging.INFO, logger=tasks.__name__), pytest.raises(StorageUnavailable):
            tasks.render.run(make_payload())
    finally:
        tasks.render.pop_request()
    [line] = [r for r in caplog.records if r.name == tasks.__name__]
    assert line.levelno == logging.ERROR and line.getMessage().endswith("(no tries left)")
    assert render_calls == []


def test_a_missing_pdf_is_not_rendered_again_while_the_storage_refuses(env, database, broker, add_certificate,
                                                                      storage_dir, render_calls, unwritable):
    unwritable["on"] = False
    cert = add_certificate()
    (storage_dir / f"{cert.id}.pdf").unlink()
    unwritable["on"] = True
    with pytest.raises(StorageUnavailable):
        service.stored_pdf(storage_from_env(), cert)
    assert render_calls == []


# --- /healthz --------------------------------------------------------------------------------

def test_health_names_a_storage_that_cannot_take_a_file(env, redis_url, monkeypatch, unwritable, caplog):
    monkeypatch.setenv("REDIS_URL", redis_url)
    client = redis.Redis.from_url(redis_url)
    heartbeat.write_heartbeat(client, "certificates")   # the scheduler is fine
    client.close()
    monkeypatch.setattr(logs, "_configured", True)   # the app keeps caplog's handler on the root logger
    app = create_app(env)
    with caplog.at_level(logging.WARNING):
        response = app.test_client().get("/healthz")
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "degraded", body
    assert body["checks"]["storage"].startswith("error: StorageUnavailable: certificate storage ")
    assert body["checks"]["storage"].endswith("cannot take a file: PermissionError: Permission denied")
    assert any("certificates health: storage failing" in r.getMessage() for r in caplog.records)

    unwritable["on"] = False
    body = app.test_client().get("/healthz").get_json()
    assert body["status"] == "ok" and body["checks"] == {"database": "ok", "redis": "ok", "scheduler": "ok",
                                                         "storage": "ok"}
