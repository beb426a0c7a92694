"""Fault tests with real processes (issue 8): the pipeline loses nothing and does nothing twice
when a render child is killed, when Redis stops for ten seconds and when a service is down.
(Every message delivered twice needs no process stopped: tests/test_orders_e2e.py checks it
on the session's stack; generated hostile requests are tests/test_hostile_api.py's, which
``make test`` runs.)

One :class:`~tests.stack.ProcessStack` serves the module: every test restores the processes
it stops (a process that died is restarted before the next test, so one failure does not
cascade).
Each test that places orders prints ``placed / completed / duplicated / lost``.
"""
from __future__ import annotations

import os
import signal
import shutil
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.outcomes import RENDER_FINISHED, RENDER_RECEIVED, SCENE, assert_exactly_once, outcome
from tests.stack import ProcessStack

pytestmark = [pytest.mark.integration, pytest.mark.faults]

# The limiter stays on (its Redis outage path is part of what is tested), but bursts from
# one test client must not be refused.
FAULT_ENV = {
    "RATE_LIMIT_ORDERS": "100000/minute", "RATE_LIMIT_READS": "100000/minute",
    "RATE_LIMIT_WRITES": "100000/minute", "RATE_LIMIT_PER_ADDRESS": "1000000/minute",
    "RATE_LIMIT_ORDERS_PER_ADDRESS": "100000/minute",
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
BURST = 30
# Not a performance figure: an answer within this bound means "answered", beyond it "hung".
ANSWER_BOUND_S = 3.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is required for the fault tests (scripts/setup.sh installs it)")
    with ProcessStack(tmp_path_factory.mktemp("faults"), FAULT_ENV) as running:
        yield running


@pytest.fixture(scope="module")
def driver(stack):
    return stack.driver


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


# --- placing orders ------------------------------------------------------------------------

def place_burst(driver, project: dict, participant_id: str, count: int = BURST) -> dict[str, int]:
    """``count`` orders placed at once by one participant: order id → kg."""
    placed = driver.place_orders(project["id"], count, lambda i: {"id": participant_id,
                                                                   "display_name": f"故障 Fault {i}"}, scene=SCENE)
    return {order_id: order["quantity_kg"] for order_id, order in placed.items()}


# --- the faults ------------------------------------------------------------------------

def test_a_render_child_killed_mid_render_loses_no_certificate(stack, driver):
    project = driver.project("CDCER-CD-EBUS")
    participant = f"fault-kill-{uuid.uuid4().hex[:6]}"
    placed = place_burst(driver, project, participant, count=2 * BURST)
    log = stack.log_path("certificates-worker")
    offset = log.stat().st_size
    processes = len(stack.children("certificates-worker"))
    driver.pay_all(placed)

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
            driver.wait_for(lambda: len(stack.children("certificates-worker")) == processes, timeout=30,
                           interval=0.05, what="the killed child's replacement")
        elif len(set(RENDER_FINISHED.findall(text))) >= len(placed):
            break   # every render is done
        else:
            time.sleep(0.02)

    assert_all_running(stack)
    result = outcome(driver, stack.var_dir, "render child SIGKILLed", placed, project["id"])
    # A render a kill interrupted was delivered again: its task id was received twice.
    received = Counter(RENDER_RECEIVED.findall(log.read_bytes()[offset:].decode(errors="replace")))
    interrupted = [task_id for task_id, times in received.items() if times > 1]
    print(f"[render child SIGKILLed] {len(killed)} children killed, {len(interrupted)} renders interrupted "
          f"and delivered again")
    assert interrupted, "no kill interrupted a render; the test proved nothing"
    assert_exactly_once(driver, result, placed, {participant: sum(placed.values())})


def answer(method: str, url: str, http=requests) -> tuple[int | str, float]:
    """(status, seconds) of one request (``http``: a guest's browser session for what only
    they may do); a request left unanswered counts as hung."""
    started = time.monotonic()
    try:
        status = http.request(method, url, timeout=ANSWER_BOUND_S * 5).status_code
    except requests.RequestException as exc:
        status = f"no answer ({exc.__class__.__name__})"
    return status, time.monotonic() - started


def test_redis_stopped_for_ten_seconds_loses_and_repeats_nothing(stack, driver):
    project = driver.project("CDCER-LQS-FOREST")
    participant = f"fault-redis-{uuid.uuid4().hex[:6]}"
    placed = place_burst(driver, project, participant)
    ids = list(placed)
    before, during, after = ids[:15], ids[15:25], ids[25:]
    driver.pay_all(before)

    # While Redis is down: payments are accepted and kept in the outbox (202), what needs
    # Redis answers 503, what does not keeps working, and nothing hangs.
    expected = {f"POST /api/v1/orders/{o}/payment": 202 for o in during}
    expected.update({"GET /healthz": 503, "GET /api/v1/rankings": 503, f"GET /api/v1/orders/{during[0]}": 200,
                     "GET /api/v1/scenes": 200})
    stack.stop("redis")   # mid-burst: the workers hold messages of the first payments
    down_since = time.monotonic()
    in_flight = [o for o in before if driver.api("GET", f"/api/v1/orders/{o}").json()["status"] != "completed"]
    try:
        with ThreadPoolExecutor(8) as pool:   # the payments in a burst, the reads alongside
            # Paying is the guest's own: their browser (cookie) sends it.
            guest = driver.browser(driver.guest_of(during[0]))
            answers = dict(zip(expected, pool.map(lambda request: answer(
                request.split()[0], driver.url + request.split()[1],
                guest if request.endswith("/payment") else requests), expected)))
        time.sleep(max(0.0, 10 - (time.monotonic() - down_since)))
    finally:
        stack.start("redis")
    print(f"\n[redis down] {time.monotonic() - down_since:.1f}s, stopped with {len(in_flight)} of "
          f"{len(before)} paid orders in the pipeline; slowest answers: "
          f"{sorted(answers.items(), key=lambda item: -item[1][1])[:3]}")

    time.sleep(3)   # the workers reconnect (or, as kombu sometimes does, give up and exit)
    assert_all_running(stack)

    # Clients whose payment got no answer pay again (paying is idempotent), as they would.
    driver.pay_all(after + [o for o in during if answers[f"POST /api/v1/orders/{o}/payment"][0] != 202])
    result = outcome(driver, stack.var_dir, "Redis down 10 s", placed, project["id"])
    assert_exactly_once(driver, result, placed, {participant: sum(placed.values())},
                        ranking_timeout=RANKING_AFTER_REDIS_OUTAGE_S)
    driver.wait_for(lambda: driver.api("GET", "/healthz").status_code == 200, timeout=30, what="healthy again")

    hung = {request: a for request, a in answers.items() if a[1] > ANSWER_BOUND_S}
    assert not hung, f"answers slower than {ANSWER_BOUND_S}s while Redis was down: {hung}"
    assert {request: a[0] for request, a in answers.items()} == expected


SERVICE_ROUTES = {  # a route of the service, and its answer when the service is up
    "ranking": ("/api/v1/rankings", 200),
    "certificates": ("/api/v1/certificates/cert_missing", 404),
}


@pytest.mark.parametrize("service", sorted(SERVICE_ROUTES))
def test_a_service_down_gives_503_for_its_routes_only(stack, driver, service):
    path, normal = SERVICE_ROUTES[service]
    project = driver.project("CDCER-CD-EBUS")
    participant = f"fault-{service}-down-{uuid.uuid4().hex[:6]}"
    stack.stop(service)
    try:
        # Orders are placed and paid as usual: only the service's API is down, not its worker.
        placed = place_burst(driver, project, participant, count=5)
        driver.pay_all(placed)
        started = time.monotonic()
        response = driver.api("GET", path)
        seconds = time.monotonic() - started
        assert response.status_code == 503 and seconds < ANSWER_BOUND_S, (seconds, response.text)
        error = response.json()["error"]
        assert error["code"] == "service_unavailable" and service in error["message"]
        health = driver.api("GET", "/healthz")
        assert health.status_code == 503
        statuses = health.json()["services"]
        assert statuses[service] != "ok"
        assert all(v == "ok" for k, v in statuses.items() if k != service), statuses
        # The others keep working.
        assert driver.api("GET", "/api/v1/scenes").status_code == 200
        assert driver.api("GET", "/api/v1/projects").status_code == 200
        estimate = driver.api("POST", "/api/v1/estimates",
                             json={"kind": "trip", "activities": [{"type": "rail", "distance_km": 50}]})
        assert estimate.status_code == 201, estimate.text
    finally:
        stack.start(service)
    assert driver.api("GET", path).status_code == normal
    driver.wait_for(lambda: driver.api("GET", "/healthz").status_code == 200, timeout=30, what="healthy again")
    print(f"\n[{service} API down] its route answered 503 in {seconds * 1000:.0f} ms; recovered")
    result = outcome(driver, stack.var_dir, f"{service} API down", placed, project["id"])
    assert_exactly_once(driver, result, placed, {participant: sum(placed.values())})
