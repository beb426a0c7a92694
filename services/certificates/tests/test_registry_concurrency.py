"""``certificates.show_registry`` delivered at once, repeated and out of order — also while the
certificate is being issued — on SQLite and (when reachable) PostgreSQL: the certificate ends
with the newest registry, and its stored PDF shows exactly that."""
from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from certificates import service, tasks
from certificates.models import Certificate, RegistryNotice
from certificates.wiring import wiring
from diandian_common.testing import postgres_available, temporary_postgres_database

from .test_registry import CXL_1, ORDER, show_payload

RECORDS = 6  # one tonne each: the newest message anchors 6,000 kg
CXLS = [{**CXL_1, "cancellation_id": f"CXL-{i}"} for i in range(1, RECORDS + 1)]


def message(records: int) -> dict:
    """What orders sends once ``records`` records cover the order."""
    return show_payload(*((cxl, 1000) for cxl in CXLS[:records]))


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, env, broker):
    """The service's database for the test: the migrated SQLite one of ``env``, or a
    temporary PostgreSQL one, the wiring bound to it."""
    if request.param == "sqlite":
        yield wiring.database()
        return
    if not postgres_available():
        pytest.skip("no PostgreSQL server reachable")
    with temporary_postgres_database("certificates") as url:
        wiring.bind(url)
        yield wiring.database()
        wiring.bind(env)


@pytest.fixture
def slow_renders(monkeypatch) -> dict:
    """Renders that take a moment (so deliveries overlap) and say what they show; the last PDF
    stored per certificate is the storage's own."""
    rendered = {"count": 0}
    lock = threading.Lock()

    def render(cert):
        time.sleep(random.uniform(0.005, 0.03))
        with lock:
            rendered["count"] += 1
        return f"%PDF-1.7 {cert.id} anchored {cert.registry_kg}".encode()

    monkeypatch.setattr(service, "render_pdf", render)
    return rendered


def deliver_at_once(deliveries: list) -> None:
    start = threading.Barrier(len(deliveries))

    def run(delivery):
        start.wait()
        delivery()

    with ThreadPoolExecutor(max_workers=len(deliveries)) as pool:
        for future in [pool.submit(run, d) for d in deliveries]:
            future.result()


def assert_shows_the_newest(database, storage_dir) -> None:
    with database.transaction() as session:
        [cert] = session.scalars(select(Certificate).where(Certificate.order_id == ORDER))
        [notice] = session.scalars(select(RegistryNotice))
    assert notice.anchored_kg == cert.registry_kg == cert.pdf_registry_kg == RECORDS * 1000
    assert [r["cancellation_id"] for r in cert.registry_coverage["records"]] == [c["cancellation_id"]
                                                                                 for c in CXLS]
    assert (storage_dir / f"{cert.id}.pdf").read_bytes() == f"%PDF-1.7 {cert.id} anchored 6000".encode()


def test_messages_at_once_repeated_and_out_of_order(database, make_payload, storage_dir, slow_renders):
    tasks.render.run(make_payload())
    payloads = [message(n) for n in range(1, RECORDS + 1)] * 2
    random.Random(19).shuffle(payloads)
    deliver_at_once([lambda p=p: tasks.show_registry.run(p) for p in payloads])
    assert_shows_the_newest(database, storage_dir)


def test_messages_racing_the_issue_of_the_certificate(database, make_payload, storage_dir, slow_renders):
    payloads = [message(n) for n in range(1, RECORDS + 1)]
    random.Random(7).shuffle(payloads)
    renders = [lambda: tasks.render.run(make_payload())] * 2  # the render message, redelivered
    deliver_at_once(renders + [lambda p=p: tasks.show_registry.run(p) for p in payloads])
    with database.transaction() as session:
        assert len(list(session.scalars(select(Certificate)))) == 1
    assert_shows_the_newest(database, storage_dir)
