"""Fault tests with real processes (issue 8): the pipeline loses nothing and does nothing twice
when a render child is killed, when Redis stops for ten seconds, when a service is down and
when every message is delivered twice; and no generated request makes the gateway answer 5xx.

One :class:`~tests.processes.ProcessStack` serves the module: every test restores the processes
it stops (a process that died is restarted before the next test, so one failure does not
cascade), and the schemathesis test, whose operator writes change the demo data, runs last.
Each test that places orders prints ``placed / completed / duplicated / lost``.
"""
from __future__ import annotations

import os
import re
import signal
import shutil
import sqlite3
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import redis
import requests
from celery import Celery

from tests.processes import ProcessStack
from tests.stack import OPERATOR_KEY
from tests.test_orders_e2e import observable_state, pipeline_messages, settled

pytestmark = [pytest.mark.integration, pytest.mark.faults]

# The limiter stays on (its Redis outage path is part of what is tested), but bursts from
# one test client must not be refused.
FAULT_ENV = {
    "RATE_LIMIT_ORDERS": "100000/minute", "RATE_LIMIT_READS": "100000/minute",
    "RATE_LIMIT_WRITES": "100000/minute", "RATE_LIMIT_PER_ADDRESS": "1000000/minute",
    "ORDERS_OUTBOX_RELAY_SECONDS": "1", "CERTIFICATES_OUTBOX_RELAY_SECONDS": "1",
    # Messages a worker held when Redis vanished come back only after the visibility
    # timeout (an hour); the stuck-order reconciler re-sends their step much sooner.
    # Production waits 300 s before calling an order stuck; tests can't wait that long.
    "ORDERS_STUCK_AFTER_SECONDS": "15", "ORDERS_RECONCILE_SECONDS": "5",
    # A ranking.record a worker held when Redis vanished has no reconciler: it comes back
    # after the visibility timeout. Production's hour covers ranking.reconcile's long run
    # (docs/operations.md); here every task takes seconds, so 100 s re-runs nothing that is
    # still running (and a re-run would be absorbed: every handler is idempotent).
    "CELERY_VISIBILITY_TIMEOUT": "100",
}
# How long the Redis test waits for the leaderboard: the visibility timeout and kombu's
# restore cycle.
RANKING_AFTER_REDIS_OUTAGE_S = 150
SCENE = "cdcn-forum-2021"          # seeded by `flask --app calculator.app seed-demo`
BURST = 30
# Not a performance figure: an answer within this bound means "answered", beyond it "hung".
ANSWER_BOUND_S = 3.0
PIPELINE_TIMEOUT_S = 90


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is required for the fault tests (scripts/setup.sh installs it)")
    with ProcessStack(tmp_path_factory.mktemp("faults"), FAULT_ENV) as running:
        yield running


@pytest.fixture(autouse=True)
def every_process_running(stack):
    """A process that died in one test is restarted for the next, so that its failure does
    not cascade (the test that killed it has failed on :func:`assert_all_running`)."""
    yield
    revived = stack.revive()
    if revived:
        print(f"\n[stack] restarted after the test: {revived}")


def assert_all_running(stack) -> None:
    exited = stack.exited()
    assert not exited, "processes exited: " + "\n".join(
        f"{name} ({code}):\n{stack.tail(name, 15)}" for name, code in exited.items())


# --- placing orders and judging the outcome ----------------------------------------------

def project_by_code(stack, code: str) -> dict:
    return next(p for p in stack.api("GET", "/api/v1/projects").json()["items"] if p["code"] == code)


def place_burst(stack, project: dict, participant_id: str, count: int = BURST) -> dict[str, int]:
    """``count`` orders placed at once by one participant: order id → kg."""
    def place(i: int) -> tuple[str, int]:
        body = {"project_id": project["id"], "quantity_kg": 1 + i % 7, "scene": SCENE,
                "participant": {"id": participant_id, "display_name": f"故障 Fault {i}"}}
        response = requests.post(f"{stack.url}/api/v1/orders", json=body, timeout=20,
                                 headers={"Idempotency-Key": uuid.uuid4().hex})
        assert response.status_code == 201, response.text
        return response.json()["id"], response.json()["quantity_kg"]
    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(place, range(count)))


def pay(stack, order_id: str) -> requests.Response:
    return requests.post(f"{stack.url}/api/v1/orders/{order_id}/payment", timeout=20)


def pay_all(stack, order_ids) -> None:
    with ThreadPoolExecutor(8) as pool:
        for response in pool.map(lambda order_id: pay(stack, order_id), order_ids):
            assert response.status_code == 202, response.text


def certificate_rows(stack, order_ids) -> dict[str, int]:
    """Certificates per order in the certificates service's own database."""
    with sqlite3.connect(f"file:{stack.var_dir / 'certificates.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT order_id, COUNT(*) FROM certificates GROUP BY order_id").fetchall()
    counts = dict(rows)
    return {order_id: counts.get(order_id, 0) for order_id in order_ids}


def ledger_entries(stack, project_id: str) -> list[dict]:
    entries, after = [], 0
    while after is not None:
        response = stack.api("GET", "/api/v1/ledger", params={"project": project_id, "after": after,
                                                              "limit": 1000})
        assert response.status_code == 200, response.text
        page = response.json()
        entries += page["items"]
        after = page["next_after"]
    return entries


@dataclass
class Outcome:
    label: str
    orders: dict[str, dict]                        # order id → its last JSON
    completed: list[str]
    ledger: dict[str, int]                         # order id → ledger entries
    certificates: dict[str, int]                   # order id → certificate rows

    @property
    def duplicated(self) -> list[str]:
        return [o for o in self.orders if self.ledger[o] > 1 or self.certificates[o] > 1]

    @property
    def lost(self) -> list[str]:
        return [o for o in self.orders if o not in self.completed]

    def report(self) -> None:
        print(f"\n[{self.label}] placed={len(self.orders)} completed={len(self.completed)} "
              f"duplicated={len(self.duplicated)} lost={len(self.lost)}")


def outcome(stack, label: str, placed: dict[str, int], project_id: str,
            timeout: float = PIPELINE_TIMEOUT_S) -> Outcome:
    """Wait (up to ``timeout``) for every order to complete, then count what happened."""
    pending, final = set(placed), {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for order_id in list(pending):
            order = stack.api("GET", f"/api/v1/orders/{order_id}").json()
            final[order_id] = order
            if order["status"] == "completed":
                pending.discard(order_id)
        time.sleep(0.5)
    ledger = [e["order_id"] for e in ledger_entries(stack, project_id)]
    result = Outcome(label, final, [o for o, order in final.items() if order["status"] == "completed"],
                     {o: ledger.count(o) for o in placed}, certificate_rows(stack, placed))
    result.report()
    return result


def assert_exactly_once(stack, result: Outcome, placed: dict[str, int], participant_id: str,
                        ranking_timeout: float = 30) -> None:
    assert not result.lost, f"not completed: {[(o, result.orders[o]['status']) for o in result.lost]}"
    assert not result.duplicated, f"more than once: {result.duplicated}"
    assert set(result.ledger.values()) == {1} and set(result.certificates.values()) == {1}
    certificates = [order["certificate"]["id"] for order in result.orders.values()]
    assert len(set(certificates)) == len(certificates)
    ranges = sorted((o["retirement"]["serial_first"], o["retirement"]["serial_last"])
                    for o in result.orders.values())
    for (_, last), (first, _) in zip(ranges, ranges[1:]):
        assert last < first, f"overlapping serial ranges {ranges}"
    assert all(o["retirement"]["serial_last"] - o["retirement"]["serial_first"] + 1 == placed[i]
               for i, o in result.orders.items())

    expected_kg = sum(placed.values())

    def ranked_kg():
        response = stack.api("GET", f"/api/v1/rankings/participants/{participant_id}")
        return response.json()["kg"] if response.status_code == 200 else None
    stack.wait_for(lambda: ranked_kg() == expected_kg, timeout=ranking_timeout,
                   what=f"ranking of {expected_kg} kg")
    time.sleep(1)  # a record applied twice would show up after the first
    assert ranked_kg() == expected_kg


# --- the faults ------------------------------------------------------------------------

RENDER_RECEIVED = re.compile(r"certificates\.render\[([0-9a-f-]+)\] received")
RENDER_FINISHED = re.compile(r"certificates\.render\[([0-9a-f-]+)\] (?:succeeded|raised|retry)")


def test_a_render_child_killed_mid_render_loses_no_certificate(stack):
    project = project_by_code(stack, "CDCER-CD-EBUS")
    participant = f"fault-kill-{uuid.uuid4().hex[:6]}"
    placed = place_burst(stack, project, participant, count=2 * BURST)
    log = stack.log_path("certificates-worker")
    offset = log.stat().st_size
    processes = len(stack.children("certificates-worker"))
    pay_all(stack, placed)

    # Up to three times, SIGKILL a prefork child while renders are in flight (received and
    # not finished). Its message goes back to the queue (acks_late +
    # task_reject_on_worker_lost) and the worker forks a fresh child.
    killed = []
    deadline = time.monotonic() + 60
    while len(killed) < 3 and time.monotonic() < deadline:
        text = log.read_bytes()[offset:].decode(errors="replace")
        in_flight = set(RENDER_RECEIVED.findall(text)) - set(RENDER_FINISHED.findall(text))
        children = stack.children("certificates-worker")
        if in_flight and len(children) == processes:
            victim = children[len(killed) % len(children)]
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                continue   # it exited by itself between the listing and the kill (recycled)
            killed.append(victim)
            stack.wait_for(lambda: len(stack.children("certificates-worker")) == processes, timeout=30,
                           interval=0.05, what="the killed child's replacement")
        elif len(set(RENDER_FINISHED.findall(text))) >= len(placed):
            break   # every render is done
        else:
            time.sleep(0.02)

    assert_all_running(stack)
    result = outcome(stack, "render child SIGKILLed", placed, project["id"])
    # A render a kill interrupted was delivered again: its task id was received twice.
    received = Counter(RENDER_RECEIVED.findall(log.read_bytes()[offset:].decode(errors="replace")))
    interrupted = [task_id for task_id, times in received.items() if times > 1]
    print(f"[render child SIGKILLed] {len(killed)} children killed, {len(interrupted)} renders interrupted "
          f"and delivered again")
    assert interrupted, "no kill interrupted a render; the test proved nothing"
    assert_exactly_once(stack, result, placed, participant)


def answer(method: str, url: str) -> tuple[int | str, float]:
    """(status, seconds) of one request; a request left unanswered counts as hung."""
    started = time.monotonic()
    try:
        status = requests.request(method, url, timeout=ANSWER_BOUND_S * 5).status_code
    except requests.RequestException as exc:
        status = f"no answer ({exc.__class__.__name__})"
    return status, time.monotonic() - started


def test_redis_stopped_for_ten_seconds_loses_and_repeats_nothing(stack):
    project = project_by_code(stack, "CDCER-LQS-FOREST")
    participant = f"fault-redis-{uuid.uuid4().hex[:6]}"
    placed = place_burst(stack, project, participant)
    ids = list(placed)
    before, during, after = ids[:15], ids[15:25], ids[25:]
    pay_all(stack, before)

    # While Redis is down: payments are accepted and kept in the outbox (202), what needs
    # Redis answers 503, what does not keeps working, and nothing hangs.
    expected = {f"POST /api/v1/orders/{o}/payment": 202 for o in during}
    expected.update({"GET /healthz": 503, "GET /api/v1/rankings": 503, f"GET /api/v1/orders/{during[0]}": 200,
                     "GET /api/v1/scenes": 200})
    stack.stop("redis")   # mid-burst: the workers hold messages of the first payments
    down_since = time.monotonic()
    in_flight = [o for o in before if stack.api("GET", f"/api/v1/orders/{o}").json()["status"] != "completed"]
    try:
        with ThreadPoolExecutor(8) as pool:   # the payments in a burst, the reads alongside
            answers = dict(zip(expected, pool.map(lambda request: answer(request.split()[0],
                                                                         stack.url + request.split()[1]),
                                                  expected)))
        time.sleep(max(0.0, 10 - (time.monotonic() - down_since)))
    finally:
        stack.start("redis")
    print(f"\n[redis down] {time.monotonic() - down_since:.1f}s, stopped with {len(in_flight)} of "
          f"{len(before)} paid orders in the pipeline; slowest answers: "
          f"{sorted(answers.items(), key=lambda item: -item[1][1])[:3]}")

    time.sleep(3)   # the workers reconnect (or, as kombu sometimes does, give up and exit)
    assert_all_running(stack)

    # Clients whose payment got no answer pay again (paying is idempotent), as they would.
    pay_all(stack, after + [o for o in during if answers[f"POST /api/v1/orders/{o}/payment"][0] != 202])
    result = outcome(stack, "Redis down 10 s", placed, project["id"])
    assert_exactly_once(stack, result, placed, participant, ranking_timeout=RANKING_AFTER_REDIS_OUTAGE_S)
    stack.wait_for(lambda: stack.api("GET", "/healthz").status_code == 200, timeout=30, what="healthy again")

    hung = {request: a for request, a in answers.items() if a[1] > ANSWER_BOUND_S}
    assert not hung, f"answers slower than {ANSWER_BOUND_S}s while Redis was down: {hung}"
    assert {request: a[0] for request, a in answers.items()} == expected


SERVICE_ROUTES = {  # a route of the service, and its answer when the service is up
    "ranking": ("/api/v1/rankings", 200),
    "certificates": ("/api/v1/certificates/cert_missing", 404),
}


@pytest.mark.parametrize("service", sorted(SERVICE_ROUTES))
def test_a_service_down_gives_503_for_its_routes_only(stack, service):
    path, normal = SERVICE_ROUTES[service]
    project = project_by_code(stack, "CDCER-CD-EBUS")
    participant = f"fault-{service}-down-{uuid.uuid4().hex[:6]}"
    stack.stop(service)
    try:
        # Orders are placed and paid as usual: only the service's API is down, not its worker.
        placed = place_burst(stack, project, participant, count=5)
        pay_all(stack, placed)
        started = time.monotonic()
        response = stack.api("GET", path)
        seconds = time.monotonic() - started
        assert response.status_code == 503 and seconds < ANSWER_BOUND_S, (seconds, response.text)
        error = response.json()["error"]
        assert error["code"] == "service_unavailable" and service in error["message"]
        health = stack.api("GET", "/healthz")
        assert health.status_code == 503
        statuses = health.json()["services"]
        assert statuses[service] != "ok"
        assert all(v == "ok" for k, v in statuses.items() if k != service), statuses
        # The others keep working.
        assert stack.api("GET", "/api/v1/scenes").status_code == 200
        assert stack.api("GET", "/api/v1/projects").status_code == 200
        estimate = stack.api("POST", "/api/v1/estimates",
                             json={"kind": "trip", "activities": [{"type": "rail", "distance_km": 50}]})
        assert estimate.status_code == 201, estimate.text
    finally:
        stack.start(service)
    assert stack.api("GET", path).status_code == normal
    stack.wait_for(lambda: stack.api("GET", "/healthz").status_code == 200, timeout=30, what="healthy again")
    print(f"\n[{service} API down] its route answered 503 in {seconds * 1000:.0f} ms; recovered")
    result = outcome(stack, f"{service} API down", placed, project["id"])
    assert_exactly_once(stack, result, placed, participant)


def test_every_pipeline_message_delivered_twice_has_one_effect(stack, monkeypatch):
    project = project_by_code(stack, "CDCER-PJ-BIOGAS")
    participant = f"fault-twice-{uuid.uuid4().hex[:6]}"
    placed = place_burst(stack, project, participant, count=6)
    pay_all(stack, placed)
    result = outcome(stack, "delivered twice: first delivery", placed, project["id"])
    assert not result.lost
    broker = redis.Redis.from_url(stack.redis_url)
    for order_id in placed:
        stack.wait_for(lambda: settled(broker, order_id), timeout=30, what=f"{order_id} settled")
    before = {o: observable_state(stack, o, participant, SCENE) for o in placed}

    # The root conftest's CELERY_BROKER_URL=memory:// would win over the broker given here.
    monkeypatch.setenv("CELERY_BROKER_URL", stack.redis_url)
    publisher = Celery(broker=stack.redis_url)
    with publisher.connection_for_write() as connection:
        duplicates = [(name, publisher.send_task(name, args=[payload], queue=name.split(".")[0],
                                                 connection=connection).id)
                      for order in result.orders.values()
                      for name, payload in pipeline_messages(order).items()]
    publisher.close()

    logs = [stack.log_path(f"{service}-worker") for service in ("orders", "certificates", "ranking")]

    def every_duplicate_ran():
        text = "".join(log.read_text(errors="replace") for log in logs)
        return all(f"{name}[{task_id}] succeeded" in text for name, task_id in duplicates)
    stack.wait_for(every_duplicate_ran, timeout=60, what="every duplicate to run")
    for order_id in placed:  # and what they caused (a second render announces its certificate again)
        stack.wait_for(lambda: settled(broker, order_id), timeout=30, what=f"{order_id} settled again")
    broker.close()

    after = {o: observable_state(stack, o, participant, SCENE) for o in placed}
    changed = [o for o in placed if after[o] != before[o]]
    print(f"\n[delivered twice] placed={len(placed)} completed={len(result.completed)} "
          f"duplicated={len(changed)} lost={len(result.lost)} ({len(duplicates)} messages sent again)")
    assert after == before
    assert_exactly_once(stack, outcome(stack, "delivered twice: after", placed, project["id"]), placed,
                        participant)


# --- generated requests (last: the operator's generated writes change the demo data) ------

# Bounded by examples, not by time (speed belongs to the benchmarks).
EXAMPLES_PER_OPERATION = 25


def test_generated_requests_never_get_a_5xx_from_the_gateway(stack):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.errors import InvalidSchema

    document = stack.api("GET", "/api/v1/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    session = requests.Session()
    # Every other request carries the operator's key: operator routes are exercised both in
    # the services (validation, conflicts) and in the gateway (its refusal without a key).
    operator = {"X-API-Key": OPERATOR_KEY}
    server_errors: dict[str, str] = {}
    invalid_schemas: dict[str, str] = {}
    calls = 0
    started = time.monotonic()

    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=EXAMPLES_PER_OPERATION // 2 + 1, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def exercise(case):
                nonlocal calls
                calls += 1
                response = case.call(base_url=stack.url, session=session, timeout=30,
                                     headers=operator if calls % 2 else None)
                if response.status_code >= 500 and label not in server_errors:
                    # Recorded, not raised: raising would make hypothesis shrink (many more calls).
                    server_errors[label] = (f"{response.status_code} {response.text[:300]}\n"
                                            f"  {case.as_curl_command(base_url=stack.url)}")
            try:
                exercise()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, label   # nothing in the request can be made invalid
            except InvalidSchema as exc:   # the document is wrong here: nothing can be generated
                invalid_schemas[label] = " ".join(str(exc).split())[:300]
    elapsed = time.monotonic() - started
    print(f"\n[schemathesis] {calls} requests over {len(document['paths'])} paths in {elapsed:.0f}s; "
          f"5xx on {len(server_errors)} operations; {len(invalid_schemas)} operations not generated "
          f"(invalid schema in the document)")
    assert not server_errors, "\n".join(f"{label}: {detail}" for label, detail in server_errors.items())
    assert not invalid_schemas, f"the document's schemas of these operations are invalid: {invalid_schemas}"
