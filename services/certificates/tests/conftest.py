"""Fixtures of the certificates tests: a migrated temp database, env vars, a memory broker."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from diandian_common.celery_app import make_celery
from diandian_common.db import Database
from diandian_common.testing import migrated_sqlite_url

PUBLIC_BASE_URL = "https://diandian.example"
SIGNING_KEYS = "test-signing-key-current,test-signing-key-previous"
OPERATOR_KEY = "test-operator-key"


def render_payload(**overrides) -> dict:
    """A ``certificates.render`` message as orders sends it."""
    payload = {
        "v": 1,
        "order_id": "ord_7f3a9c2e",
        "holder": "张三丰 Zhang Sanfeng",
        "organization": "成都绿色会展有限公司",
        "quantity_kg": 12_345,
        "project": {"id": "prj_longquan", "code": "CDCER-0042", "name": "成都龙泉山林业碳汇项目",
                    "name_en": "Chengdu Longquan Mountain Forestry Carbon Sink",
                    "registry": "CDCER", "vintage": 2023},
        "serial_range": "CDCER-0042-2023:000001001-000013345",
        "scene": {"slug": "green-expo-2026", "name": "2026 成都国际绿色博览会"},
        "issued_at": "2026-11-24T18:30:00+00:00",
        "ledger_hash": "9f2c" * 16,
    }
    payload.update(overrides)
    return payload


@pytest.fixture
def make_payload():
    return render_payload


@pytest.fixture
def env(tmp_path, monkeypatch) -> str:
    """Environment of one service instance; returns its database URL."""
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC_BASE_URL)
    monkeypatch.setenv("CERTIFICATE_SIGNING_KEYS", SIGNING_KEYS)
    monkeypatch.setenv("OPERATOR_API_KEY", OPERATOR_KEY)
    for name in ("CERTIFICATES_STORAGE_DIR", "CERTIFICATE_TIMEZONE", "OPERATOR_API_KEYS", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    url = migrated_sqlite_url("certificates", tmp_path)
    monkeypatch.setenv("CERTIFICATES_DATABASE_URL", url)
    return url


@pytest.fixture
def database(env):
    database = Database(env)
    yield database
    database.dispose()


@pytest.fixture
def storage_dir(env, tmp_path):
    return tmp_path / "var" / "certificates"


@dataclass
class MemoryBroker:
    """An in-process broker standing in for Redis; ``published`` drains one queue."""

    celery: object

    def published(self, queue: str) -> list[tuple[str, dict]]:
        messages = []
        with self.celery.connection_for_read() as conn:
            simple = conn.SimpleQueue(queue)
            try:
                while simple.qsize():
                    message = simple.get(timeout=1)
                    messages.append((message.headers["task"], message.payload[0][0]))
                    message.ack()
            finally:
                simple.close()
        return messages


@pytest.fixture
def broker(monkeypatch) -> MemoryBroker:
    """Route every publish of the service (task relays and API relays) to memory."""
    from certificates import api, tasks

    celery = make_celery("certificates", broker_url="memory://")
    monkeypatch.setattr(tasks, "celery", celery)
    monkeypatch.setattr(api, "celery", celery)
    memory = MemoryBroker(celery)
    for queue in ("orders", "ranking"):  # the memory transport is process-wide: start empty
        memory.published(queue)
    return memory


@pytest.fixture
def add_certificate(database, storage_dir):
    """Insert a certificate row directly (no rendering) and store placeholder PDF bytes."""
    from certificates import settings
    from certificates.domain.verification import new_verify_token
    from certificates.models import Certificate
    from certificates.storage import LocalStorage

    counter = iter(range(1, 1000))

    def add(**fields) -> Certificate:
        n = next(counter)
        token = new_verify_token()
        values = dict(
            id=f"cert_{n:020x}", number=f"DD-20261125-TEST{n:04d}", order_id=f"ord_{n}",
            holder="Jane Doe", organization=None, quantity_kg=850,
            project=render_payload()["project"], serial_range=f"CDCER-0042-2023:{n:09d}-{n:09d}",
            scene=None, ledger_hash=None, issued_at=datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc),
            verify_token=token, verify_code=settings.verification_codes().code_for(token),
            status="valid",
        )
        values.update(fields)
        cert = Certificate(**values)
        with database.transaction() as session:
            session.add(cert)
        LocalStorage(storage_dir).put(f"{cert.id}.pdf", b"%PDF-1.7 placeholder of " + cert.id.encode())
        return cert

    return add
