"""Fault test with real processes (issue 20): the services' PostgreSQL connections are
terminated twice (``pg_terminate_backend``, what a failover or a restart does to them) in the
middle of a 200-order burst of placing and paying, while the pipeline runs.

Before, that gave 17 × ``500 internal_error`` on ``POST /orders`` and ``/payment``. Now a request
whose transaction lost its connection runs once more on a fresh one, and what still cannot be
served is a 503 ``database_unavailable`` with ``Retry-After``, which the client sends again with
the same Idempotency-Key; the workers retry the tasks that lost theirs. So: no 5xx but such
503s, each followed by a success, and every paid order completed exactly once.

The stack is :class:`~tests.stack.ProcessStack` with the four services on databases of this
test's own on the machine's PostgreSQL (``{SERVICE}_DATABASE_URL``; the gateway keeps its
SQLite file); the burst prints its answers, the connections terminated and the requests re-run.
"""
from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests

from diandian_common.testing import POSTGRES_ADMIN_URL, postgres_available
from tests.outcomes import SCENE, Outcome, assert_exactly_once
from tests.stack import UNLIMITED_RATES, ProcessStack, require_redis_server

pytestmark = [pytest.mark.integration, pytest.mark.faults]

ADMIN_URL = POSTGRES_ADMIN_URL.replace("+psycopg", "")
SERVICES_ON_POSTGRES = ("calculator", "orders", "certificates", "ranking")
ORDERS = 200
GUESTS = 10
CLIENTS = 16
# After how many answered requests (placing and paying: 2 × ORDERS in all) the connections go.
TERMINATE_AFTER = (ORDERS // 2, ORDERS + ORDERS // 4)
# How often a client sends a request the database could not serve (503 + Retry-After).
ATTEMPTS = 5
NO_ANSWER = "no answer"
PIPELINE_TIMEOUT_S = 300

DATABASE_FAULT_ENV = {
    **UNLIMITED_RATES,
    "ORDER_MAX_UNPAID_KG_PER_PARTICIPANT": "100000", "ORDER_MAX_UNPAID_KG_PER_ADDRESS": "100000",
    "ORDERS_OUTBOX_RELAY_SECONDS": "1", "CERTIFICATES_OUTBOX_RELAY_SECONDS": "1",
}


@pytest.fixture(scope="module")
def databases():
    """service → a new, empty PostgreSQL database of this module (the stack migrates it)."""
    if not postgres_available():
        pytest.fail("PostgreSQL is required for the database fault test "
                    f"(TEST_POSTGRES_URL, {POSTGRES_ADMIN_URL})")
    names = {service: f"diandian_test_{service}_{secrets.token_hex(4)}" for service in SERVICES_ON_POSTGRES}
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        for name in names.values():
            admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield names
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            for name in names.values():
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def stack(tmp_path_factory, databases):
    require_redis_server()
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    env = {**DATABASE_FAULT_ENV,
           **{f"{service.upper()}_DATABASE_URL": f"{base}/{name}" for service, name in databases.items()}}
    with ProcessStack(tmp_path_factory.mktemp("faults-database"), env) as running:
        yield running


def terminate_backends(names) -> int:
    """Every connection to the databases ``names`` terminated, as soon as one of them is in a
    transaction (so that the termination hits work under way); how many there were."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = ANY(%s) AND xact_start IS NOT NULL",
                (list(names),)).fetchone():
            time.sleep(0.001)
        return len(admin.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
            "WHERE datname = ANY(%s) AND pid <> pg_backend_pid()", (list(names),)).fetchall())


class Client:
    """The guests' browsers: each request sent again, as the answer asks, after a 503 with
    ``Retry-After``, and — as browsers do — when a kept-alive connection the server had just
    closed failed before any answer; every answer kept, by request."""

    def __init__(self, driver):
        self.driver = driver
        self.answers: dict[str, list] = {}
        self.sent = 0
        self.lock = threading.Lock()

    def send(self, label: str, method: str, path: str, guest: str, **kwargs) -> requests.Response | None:
        answers = self.answers.setdefault(label, [])
        response = None
        for _ in range(ATTEMPTS):
            try:
                response = self.driver.api(method, path, guest=guest, **kwargs)
            except requests.RequestException as exc:
                answers.append((NO_ANSWER, f"{exc.__class__.__name__}: {exc}"))
                response = None
                if isinstance(exc, requests.Timeout) or not isinstance(exc, requests.ConnectionError):
                    break   # a server that does not answer in time is a failure, never retried
                continue
            code = response.json().get("error", {}).get("code") if response.status_code >= 400 else None
            answers.append((response.status_code, code))
            retry_after = response.headers.get("Retry-After")
            if response.status_code != 503 or retry_after is None:
                break
            time.sleep(min(float(retry_after), 2.0))
        with self.lock:
            self.sent += 1
        return response

    def place_and_pay(self, project_id: str, guest: str, i: int) -> tuple[str, int] | None:
        kg = 1 + i % 7
        body = {"project_id": project_id, "quantity_kg": kg, "scene": SCENE,
                "participant": {"display_name": f"断线 Lost {i}"}}
        placed = self.send(f"order {i}", "POST", "/api/v1/orders", guest, json=body,
                           headers={"Idempotency-Key": f"db-fault-{uuid.uuid4().hex}"})
        if placed is None or placed.status_code != 201:
            return None
        order = placed.json()
        self.driver.order_guests[order["id"]] = guest
        self.driver.participant_ids[guest] = order["participant"]["id"]
        paid = self.send(f"payment {i}", "POST", f"/api/v1/orders/{order['id']}/payment", guest)
        return (order["id"], kg) if paid is not None and paid.status_code == 202 else None


def certificate_rows(database_url: str, order_ids) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        counts = dict(conn.execute("SELECT order_id, COUNT(*) FROM certificates GROUP BY order_id")
                      .fetchall())
    return {order_id: counts.get(order_id, 0) for order_id in order_ids}


def pipeline_outcome(driver, certificates_url: str, label: str, placed: dict[str, int],
                     project_id: str) -> Outcome:
    """tests.outcomes.outcome, with the certificates counted in their PostgreSQL database."""
    pending, final = set(placed), {}
    deadline = time.monotonic() + PIPELINE_TIMEOUT_S
    while pending and time.monotonic() < deadline:
        for order_id in list(pending):
            final[order_id] = driver.order(order_id)
            if final[order_id]["status"] == "completed":
                pending.discard(order_id)
        if pending:
            time.sleep(1)
    ledger = [entry["order_id"] for entry in driver.ledger_entries(project_id)]
    result = Outcome(label, final, [o for o, order in final.items() if order["status"] == "completed"],
                     {o: ledger.count(o) for o in placed}, certificate_rows(certificates_url, placed))
    result.report()
    return result


def test_postgresql_connections_terminated_mid_burst_give_no_5xx_and_lose_nothing(stack, databases):
    driver = stack.driver
    project = max(driver.projects(), key=lambda p: p["available_kg"])
    prefix = f"db-fault-{uuid.uuid4().hex[:6]}"
    guests = [f"{prefix}-{g}" for g in range(GUESTS)]
    client = Client(driver)
    placed: dict[str, int] = {}

    # Each guest's first order gives their browser its cookie; the rest go in a burst.
    for i, guest in enumerate(guests):
        done = client.place_and_pay(project["id"], guest, i)
        assert done, client.answers
        placed[done[0]] = done[1]

    terminated: list[int] = []

    def terminate_during_the_burst():
        for after in TERMINATE_AFTER:
            while client.sent < after and not finished.is_set():
                time.sleep(0.005)
            if finished.is_set():
                return
            terminated.append(terminate_backends(databases.values()))

    finished = threading.Event()
    killer = threading.Thread(target=terminate_during_the_burst, name="pg-terminate", daemon=True)
    killer.start()
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(lambda i: client.place_and_pay(project["id"], guests[i % GUESTS], i),
                                    range(GUESTS, ORDERS)))
    finally:
        finished.set()
        killer.join(timeout=30)

    answers = [answer for label in client.answers for answer in client.answers[label]]
    retried = {label: a for label, a in client.answers.items() if any(status == 503 for status, _ in a)}
    unanswered = {label: a for label, a in client.answers.items()
                  if any(status == NO_ANSWER for status, _ in a)}
    reruns = sum(stack.log_path(service).read_text(errors="replace").count("running the request again")
                 for service in SERVICES_ON_POSTGRES)
    task_retries = stack.worker_logs().count("Retry in")
    print(f"\n[PostgreSQL connections terminated] {terminated} backends at once, twice, during "
          f"{2 * ORDERS} requests; answers {dict(Counter(status for status, _ in answers))}; "
          f"{reruns} requests run again on a fresh connection; {len(retried)} sent again by the client "
          f"after a 503 {list(retried.items())[:5]}; {len(unanswered)} after a connection closed "
          f"{list(unanswered.items())[:3]}; {task_retries} task retries")

    assert len(terminated) == 2 and all(terminated), \
        f"the connections were not terminated twice: {terminated}"
    # No 5xx, except 503 database_unavailable (with Retry-After) that the client sent again.
    for label, attempts in client.answers.items():
        *before, last = attempts
        assert last[0] in (201, 202), f"{label} ended with {last}: {attempts}"
        assert all(a == (503, "database_unavailable") or a[0] == NO_ANSWER for a in before), \
            f"{label}: {attempts}"
    assert reruns + len(retried) > 0, "no termination hit a request's transaction: the test proved nothing"
    assert all(results), "an order was not placed and paid"
    placed.update(dict(results))
    assert len(placed) == ORDERS

    certificates_url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{databases['certificates']}"
    result = pipeline_outcome(driver, certificates_url, "PostgreSQL connections terminated twice", placed,
                              project["id"])
    ranked = {driver.participant_id(g): sum(kg for o, kg in placed.items() if driver.guest_of(o) == g)
              for g in guests}
    assert_exactly_once(driver, result, placed, ranked)
    exited = stack.exited()
    assert not exited, f"processes exited: {exited}"
