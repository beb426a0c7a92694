"""Fixtures of the certificates tests: a migrated temp database, env vars, a memory broker,
the renderer's fonts, and a real S3-compatible server on 127.0.0.1.

Routes, tasks and CLI commands reach the database and the broker through the one wiring
point (``certificates.wiring.wiring``): ``env`` binds it to the test's database, ``broker``
and ``offline_celery`` give it the broker the test wants."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from diandian_common.celery_app import make_celery
from diandian_common.config import celery_queue
from diandian_common.db import Database
from diandian_common.testing import free_port, migrated_sqlite_url
from diandian_common.uow import UnitOfWork

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


@pytest.fixture(scope="session", autouse=True)
def renderer(pytestconfig, tmp_path_factory):
    """The process's renderer, built once for the run. Its CJK font subset is cached in
    pytest's cache directory (not ./var): making it takes seconds, once per checkout."""
    from certificates import render

    cache = getattr(pytestconfig, "cache", None)  # None with -p no:cacheprovider
    var_dir = cache.mkdir("certificates-renderer") if cache else tmp_path_factory.mktemp("renderer")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAR_DIR", str(var_dir))
        patch.delenv("CERTIFICATES_CJK_FONT", raising=False)
        render.prepare()


@pytest.fixture
def env(tmp_path, monkeypatch) -> str:
    """Environment of one service instance, the wiring bound to its database (as
    ``create_app`` binds it, and unbound afterwards); returns its database URL."""
    from certificates.wiring import wiring

    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC_BASE_URL)
    monkeypatch.setenv("CERTIFICATE_SIGNING_KEYS", SIGNING_KEYS)
    monkeypatch.setenv("OPERATOR_API_KEY", OPERATOR_KEY)
    for name in ("CERTIFICATES_STORAGE", "CERTIFICATES_STORAGE_DIR", "CERTIFICATE_TIMEZONE",
                 "OPERATOR_API_KEYS", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    url = migrated_sqlite_url("certificates", tmp_path)
    monkeypatch.setenv("CERTIFICATES_DATABASE_URL", url)
    wiring.bind(url)
    yield url
    wiring.bind(None)


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
    """An in-process broker standing in for Redis; ``published`` drains one service's queue."""

    celery: object

    def published(self, service: str) -> list[tuple[str, dict]]:
        messages = []
        with self.celery.connection_for_read() as conn:
            simple = conn.SimpleQueue(celery_queue(service))
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
    """Every publish of the service (the relay after each unit of work, the periodic relay)
    goes to memory: the wiring's broker for the test."""
    from certificates.wiring import wiring

    celery = make_celery("certificates", broker_url="memory://")
    monkeypatch.setattr(wiring, "celery", celery)
    memory = MemoryBroker(celery)
    for service in ("orders", "ranking"):  # the memory transport is process-wide: start empty
        memory.published(service)
    return memory


@pytest.fixture
def offline_celery(monkeypatch):
    """A Celery app whose Redis broker is down (nothing listens on its port), failing fast.
    A test gives it to the wiring (``monkeypatch.setattr(wiring, "celery", offline_celery)``)
    for as long as the broker should be down."""
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)  # it would override broker_url
    return make_celery("certificates", broker_url=f"redis://127.0.0.1:{free_port()}/0",
                       task_publish_retry=False, broker_connection_timeout=0.5)


@pytest.fixture
def add_certificate(database):
    """Insert a certificate row directly (no rendering) and store placeholder PDF bytes in
    the configured storage."""
    from certificates import settings
    from certificates.domain.verification import new_verify_token
    from certificates.models import Certificate
    from certificates.storage import storage_from_env

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
        with UnitOfWork(database) as uow:
            uow.session.add(cert)
        storage_from_env().put(f"{cert.id}.pdf", b"%PDF-1.7 placeholder of " + cert.id.encode())
        return cert

    return add


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3-compatible HTTP server on 127.0.0.1 for the run (moto in server mode)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        pytest.skip(f"no local S3-compatible server: moto[server] is not installed ({exc})")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    try:
        server.start()
    except Exception as exc:  # noqa: BLE001 - any failure to start means: cannot test S3 here
        pytest.skip(f"the local S3-compatible server (moto) could not start: {exc}")
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class S3Bucket:
    client: object
    name: str
    prefix: str

    def keys(self) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.name).get("Contents", [])
        return sorted(item["Key"] for item in listed)

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=self.prefix + key)["Body"].read()


_bucket_numbers = itertools.count(1)


def aws_test_credentials(monkeypatch, tmp_path) -> None:
    """Fixed test credentials, and nothing else read: no profile files, no instance metadata."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-access-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def s3_bucket(env, s3_endpoint, monkeypatch, tmp_path) -> S3Bucket:
    """The service configured for S3 storage in a fresh bucket of the local server."""
    import boto3

    aws_test_credentials(monkeypatch, tmp_path)
    name = f"diandian-certs-{next(_bucket_numbers)}"
    monkeypatch.setenv("CERTIFICATES_STORAGE", "s3")
    monkeypatch.setenv("CERTIFICATES_S3_BUCKET", name)
    monkeypatch.setenv("CERTIFICATES_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("CERTIFICATES_S3_PREFIX", "certificates/")
    client = boto3.session.Session().client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=name)
    return S3Bucket(client, name, "certificates/")
