"""diandian_common.metrics: what /metrics and a worker's metrics port expose.

In-process tests (Flask's test client, an embedded Celery worker on the memory broker)
check the counting; the multiprocess tests start real gunicorn and Celery prefork workers
with PROMETHEUS_MULTIPROC_DIR and check that a scrape sums every process.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import redis
import requests
from celery import Celery, signals
from celery.contrib.testing.worker import start_worker
from flask import Flask, abort, request
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from diandian_common import metrics
from diandian_common.celery_app import make_celery
from diandian_common.errors import register_error_handlers
from diandian_common.testing import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    """Exposition text → {(sample name, labels): value}."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    """The sample ``name`` with exactly ``labels`` (0 when absent: never counted)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: dict, name: str, **labels) -> float:
    """Sum of the samples ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def unique(prefix: str) -> str:
    """A service label of this test only: the metrics are one set per process."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- Flask ------------------------------------------------------------------------------


def flask_app(service: str) -> Flask:
    app = Flask(service)
    register_error_handlers(app)
    metrics.install_flask_metrics(app, service)

    @app.get("/items/<int:item_id>")
    def item(item_id):
        return {"id": item_id}

    @app.post("/items")
    def create():
        abort(422)

    @app.get("/boom")
    def boom():
        raise RuntimeError("unexpected")

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app


def scrape(client, **headers) -> dict:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return parse(response.get_data(as_text=True))


def test_requests_are_counted_by_route_rule_method_and_status(monkeypatch):
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    service = unique("api")
    client = flask_app(service).test_client()
    for item_id in (1, 2, 3):
        assert client.get(f"/items/{item_id}").status_code == 200
    assert client.post("/items").status_code == 422
    assert client.get("/boom").status_code == 500
    assert client.get("/no/such/page").status_code == 404
    assert client.delete("/items/1").status_code == 405

    samples = scrape(client)
    rule = "/items/<int:item_id>"
    assert value(samples, "http_requests_total", service=service, method="GET", route=rule, status="200") == 3
    assert value(samples, "http_requests_total", service=service, method="POST", route="/items",
                 status="422") == 1
    assert value(samples, "http_requests_total", service=service, method="GET", route="/boom",
                 status="500") == 1
    # Unknown URLs share one label value, so scanners can't create a series per path.
    assert value(samples, "http_requests_total", service=service, method="GET", route="<unmatched>",
                 status="404") == 1
    assert value(samples, "http_requests_total", service=service, method="DELETE", route="<unmatched>",
                 status="405") == 1
    assert total(samples, "http_requests_total", service=service) == 7
    # Only the 5xx is an error.
    assert total(samples, "http_request_errors_total", service=service) == 1
    assert value(samples, "http_request_errors_total", service=service, method="GET", route="/boom") == 1
    # Every answered request is timed, into cumulative buckets.
    assert value(samples, "http_request_duration_seconds_count", service=service, method="GET",
                 route=rule) == 3
    assert value(samples, "http_request_duration_seconds_bucket", service=service, method="GET", route=rule,
                 le="+Inf") == 3
    assert value(samples, "http_request_duration_seconds_sum", service=service, method="GET", route=rule) > 0


def test_probes_and_scrapes_are_not_measured(monkeypatch):
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    service = unique("api")
    client = flask_app(service).test_client()
    for _ in range(5):
        assert client.get("/healthz").status_code == 200
        scrape(client)
    client.get("/items/7")
    samples = scrape(client)
    assert total(samples, "http_requests_total", service=service) == 1
    assert total(samples, "http_request_duration_seconds_count", service=service) == 1
    for route in ("/healthz", "/metrics"):
        assert total(samples, "http_requests_total", route=route) == 0
        assert total(samples, "http_request_duration_seconds_count", route=route) == 0


def test_answers_given_by_a_before_request_hook_are_counted(monkeypatch):
    """A rate limiter answering 429 before the view runs is traffic too."""
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    service = unique("gateway")
    app = Flask(service)

    @app.before_request
    def limited():
        if request.path != metrics.METRICS_PATH:
            return {"error": "slow down"}, 429

    metrics.install_flask_metrics(app, service)

    @app.get("/api/v1/<path:_rest>")
    def proxied(_rest):
        return {}

    client = app.test_client()
    assert client.get("/api/v1/orders/1").status_code == 429
    samples = scrape(client)
    assert value(samples, "http_requests_total", service=service, method="GET", route="/api/v1/<path:_rest>",
                 status="429") == 1
    assert value(samples, "http_request_duration_seconds_count", service=service, method="GET",
                 route="/api/v1/<path:_rest>") == 1


def test_metrics_token_is_required_when_set(monkeypatch):
    monkeypatch.setenv("METRICS_TOKEN", "scrape-secret")
    client = flask_app(unique("gateway")).test_client()
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing.get_json()["error"]["code"] == "unauthorized"
    wrong = client.get("/metrics", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 403
    assert wrong.get_json()["error"]["code"] == "forbidden"
    scrape(client, Authorization="Bearer scrape-secret")


def test_installing_on_many_apps_keeps_one_set_of_metrics(monkeypatch):
    """Every test and every create_app() call installs again in the same process."""
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    first, second = unique("api"), unique("api")
    one, two = flask_app(first).test_client(), flask_app(second).test_client()
    one.get("/items/1")
    two.get("/items/1")
    two.get("/items/2")
    samples = scrape(one)
    assert total(samples, "http_requests_total", service=first) == 1
    assert total(samples, "http_requests_total", service=second) == 2


# --- Celery, in process -------------------------------------------------------------------


def celery_app(service: str):
    app = make_celery(service, broker_url="memory://", broker_transport_options={"polling_interval": 0.05})
    metrics.install_celery_metrics(app, service)

    @app.task(name=f"{service}.echo", bind=True, max_retries=1, default_retry_delay=0)
    def echo(self, payload):
        if payload.get("fail"):
            raise ValueError("refused")
        if payload.get("retry_once") and self.request.retries == 0:
            raise self.retry(countdown=0)
        return payload

    return app, echo


def local_samples() -> dict:
    """This process's own registry (what a single-process worker exposes)."""
    from prometheus_client import REGISTRY, generate_latest
    return parse(generate_latest(REGISTRY).decode())


def task_counts(samples: dict, service: str, task: str) -> dict[str, float]:
    counts = {state: value(samples, "celery_tasks_total", service=service, task=task, state=state)
              for state in metrics.TASK_STATES}
    counts["timed"] = value(samples, "celery_task_duration_seconds_count", service=service, task=task)
    return counts


def scrape_until_settled(port: int, service: str, task: str, runs: int, states: dict[str, int],
                         worker: subprocess.Popen | None = None) -> dict:
    """Scrape a worker's port until ``task``'s counts are ``states`` and ``runs`` executions
    were timed. The counts of one task land a moment apart (a retry's new message may even
    finish before the first execution's retry is counted), so nothing is asserted early."""
    expected = {**states, "timed": runs}
    seen: dict = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if worker is not None and worker.poll() is not None:
            raise AssertionError(f"the worker exited with {worker.returncode}")
        try:
            samples = parse(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
        except requests.RequestException:
            samples = {}
        seen = task_counts(samples, service, task)
        if seen == expected:
            return samples
        time.sleep(0.1)
    raise AssertionError(f"counts of {task}: {seen}, expected {expected}")


def test_a_worker_counts_tasks_by_state_times_them_and_serves_them_on_its_port(monkeypatch):
    port = free_port()
    monkeypatch.setenv("WORKER_METRICS_PORT", str(port))
    service = unique("svc")
    app, echo = celery_app(service)
    name = echo.name
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        for number in range(3):
            echo.delay({"v": 1, "n": number})
        echo.delay({"v": 1, "fail": True})
        echo.delay({"v": 1, "retry_once": True})

        # The retry is a new message: received and started once more than sent.
        samples = scrape_until_settled(port, service, name, runs=6, states={
            "received": 6, "started": 6, "succeeded": 4, "failed": 1, "retried": 1})

    assert value(samples, "celery_task_duration_seconds_bucket", service=service, task=name, le="+Inf") == 6
    # The memory broker has no Redis lists to measure.
    assert total(samples, "celery_queue_length") == 0


def test_only_the_installed_apps_tasks_are_counted():
    """Signals are process-wide; a second Celery app's tasks are not the first's."""
    first, second = unique("svc"), unique("svc")
    _app, first_echo = celery_app(first)
    _other, second_echo = celery_app(second)
    first_echo.apply(args=[{"v": 1}])
    second_echo.apply(args=[{"v": 1}])
    second_echo.apply(args=[{"v": 1}])
    samples = local_samples()
    assert total(samples, "celery_tasks_total", service=first, state="succeeded") == 1
    assert total(samples, "celery_tasks_total", service=second, state="succeeded") == 2
    assert total(samples, "celery_tasks_total", service=first, task=second_echo.name) == 0
    # apply() runs in place: started and succeeded, never received from a queue.
    assert total(samples, "celery_tasks_total", service=first, state="received") == 0


def test_installing_twice_counts_once():
    service = unique("svc")
    app, echo = celery_app(service)
    metrics.install_celery_metrics(app, service)
    echo.apply(args=[{"v": 1}])
    assert total(local_samples(), "celery_tasks_total", service=service, state="started") == 1


class _Worker:
    def __init__(self, app):
        self.app = app


def test_the_metrics_port_opens_only_in_a_worker_of_an_installed_app_and_when_configured(monkeypatch):
    opened = []
    monkeypatch.setattr(metrics, "start_http_server", lambda port, registry: opened.append(port))
    service = unique("svc")
    app, _echo = celery_app(service)
    not_installed = Celery(unique("svc"), broker="memory://")

    monkeypatch.delenv("WORKER_METRICS_PORT", raising=False)
    signals.worker_init.send(sender=_Worker(app))
    assert opened == []

    monkeypatch.setenv("WORKER_METRICS_PORT", "9187")
    signals.worker_init.send(sender=_Worker(not_installed))
    assert opened == []
    signals.worker_init.send(sender=_Worker(app))
    assert opened == [9187]


def test_a_busy_metrics_port_leaves_the_worker_running(monkeypatch, caplog):
    app, _echo = celery_app(unique("svc"))
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        monkeypatch.setenv("WORKER_METRICS_PORT", str(taken.getsockname()[1]))
        metrics._on_worker_init(sender=_Worker(app))   # the handler itself: no exception
    assert "worker metrics not served" in caplog.text


# --- queue depth --------------------------------------------------------------------------


# redis_url: the session's own redis-server, emptied for the test (diandian_common.testing).


def collected(collector) -> dict:
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in collector.collect() for sample in family.samples}


def test_queue_depth_is_read_from_redis_when_scraped(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.rpush("certificates", *["m"] * 3)
    client.rpush("certificates\x06\x166", "urgent")   # kombu's list for priority 6
    client.rpush("orders", "not ours")
    client.hset("unacked", mapping={"tag-1": "m", "tag-2": "m"})
    collector = metrics.QueueDepthCollector(redis_url, ("certificates", "ranking"))
    samples = collected(collector)
    assert value(samples, "celery_broker_up") == 1
    assert value(samples, "celery_queue_length", queue="certificates") == 4
    assert value(samples, "celery_queue_length", queue="ranking") == 0
    assert total(samples, "celery_queue_length", queue="orders") == 0
    assert value(samples, "celery_unacked_messages") == 2
    # Read at each scrape, not cached.
    client.lpop("certificates")
    assert value(collected(collector), "celery_queue_length", queue="certificates") == 3


def test_an_unreachable_broker_is_reported_not_raised():
    collector = metrics.QueueDepthCollector(f"redis://127.0.0.1:{free_port()}/0", ("orders",))
    samples = collected(collector)
    assert value(samples, "celery_broker_up") == 0
    assert total(samples, "celery_queue_length") == 0


def test_the_queue_depth_is_exposed_only_for_a_redis_broker():
    assert metrics.is_redis_url("redis://redis:6379/0")
    assert metrics.is_redis_url("rediss://:pw@redis:6380/1;redis://spare:6379/0")
    assert not metrics.is_redis_url("memory://")
    assert not metrics.is_redis_url(None)


# --- several processes (PROMETHEUS_MULTIPROC_DIR) ------------------------------------------


def subprocess_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("CELERY_BROKER_URL", "PROMETHEUS_MULTIPROC_DIR", "WORKER_METRICS_PORT",
                          "METRICS_TOKEN")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT), str(ROOT / "services")])
    env.update(extra)
    return env


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


PROBE_APP = """
    import os
    from flask import Flask
    from diandian_common.metrics import install_flask_metrics

    def create_app():
        app = Flask("probe")
        install_flask_metrics(app, "probe")

        @app.get("/pid")
        def pid():
            return {"pid": os.getpid()}

        return app
"""


@pytest.mark.integration
def test_gunicorn_workers_are_summed_in_every_scrape(tmp_path):
    (tmp_path / "metrics_probe_app.py").write_text(textwrap.dedent(PROBE_APP))
    multiproc = tmp_path / "prometheus"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--worker-class", "sync", "metrics_probe_app:create_app()"],
        env=subprocess_env(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(multiproc)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        # Readiness through /metrics, which counts nothing: a probe that timed out while
        # the workers booted would still be answered, and counted, later.
        wait_for(lambda: _answers(f"{base}/metrics"), timeout=30, what="gunicorn")
        pids, sent = set(), 0
        # Fresh connections until both workers have answered (the kernel picks one each
        # time; on a loaded machine the second may still be booting for a while).
        deadline = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline:
            pids.add(requests.get(f"{base}/pid", headers={"Connection": "close"}, timeout=10).json()["pid"])
            sent += 1
        assert len(pids) == 2, "one gunicorn worker answered every request"
        for _ in range(6):  # whichever worker answers the scrape, it reports both
            samples = parse(requests.get(f"{base}/metrics", timeout=10).text)
            assert value(samples, "http_requests_total", service="probe", method="GET", route="/pid",
                         status="200") == sent
            assert value(samples, "http_request_duration_seconds_count", service="probe", method="GET",
                         route="/pid") == sent
    finally:
        stop(server)
    assert len(list(multiproc.glob("counter_*.db"))) >= 2, "each worker writes its own samples file"


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


PROBE_TASKS = """
    from diandian_common.celery_app import make_celery
    from diandian_common.metrics import install_celery_metrics

    celery = make_celery("probe")
    install_celery_metrics(celery, "probe")

    @celery.task(name="probe.square", bind=True, max_retries=1, default_retry_delay=0)
    def square(self, payload):
        if payload.get("fail"):
            raise ValueError("refused")
        if payload.get("retry_once") and self.request.retries == 0:
            raise self.retry(countdown=0)
        return payload["n"] ** 2
"""


@pytest.mark.integration
def test_prefork_children_are_summed_and_the_queue_depth_exposed(tmp_path, redis_url, monkeypatch):
    # Celery reads CELERY_BROKER_URL before its configuration (the suite sets memory://).
    monkeypatch.setenv("CELERY_BROKER_URL", redis_url)
    (tmp_path / "metrics_probe_tasks.py").write_text(textwrap.dedent(PROBE_TASKS))
    multiproc = tmp_path / "prometheus"
    sender = make_celery("probe-sender", broker_url=redis_url)
    for number in range(6):
        sender.send_task("probe.square", args=[{"v": 1, "n": number}], queue="probe")
    sender.send_task("probe.square", args=[{"v": 1, "fail": True}], queue="probe")
    sender.send_task("probe.square", args=[{"v": 1, "retry_once": True, "n": 2}], queue="probe")
    assert redis.Redis.from_url(redis_url).llen("probe") == 8

    port = free_port()
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "metrics_probe_tasks", "worker", "-Q", "probe",
             "--pool", "prefork", "--concurrency", "2", "--loglevel", "WARNING", "-n", "probe@%h",
             "--without-mingle", "--without-gossip"],
            env=subprocess_env(tmp_path, REDIS_URL=redis_url, WORKER_METRICS_PORT=str(port),
                               PROMETHEUS_MULTIPROC_DIR=str(multiproc)),
            stdout=subprocess.DEVNULL, stderr=log, cwd=tmp_path)
    try:
        samples = scrape_until_settled(port, "probe", "probe.square", runs=9, worker=worker, states={
            "received": 9, "started": 9, "succeeded": 7, "failed": 1, "retried": 1})
        writers = {int(path.stem.rsplit("_", 1)[1]) for path in multiproc.glob("counter_*.db")}
    finally:
        stop(worker)

    # The main process received; its children ran: at least two writers, summed.
    assert len(writers) >= 2
    assert value(samples, "celery_broker_up") == 1
    assert value(samples, "celery_queue_length", queue="probe") == 0
