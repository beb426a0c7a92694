"""Worker metrics: tasks counted by state and timed, served on the worker's port, prefork children
summed, the queue depth read from Redis when scraped."""
from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time

import pytest
import redis
import requests
from celery import Celery, signals
from celery.contrib.testing.worker import start_worker

from diandian_common import metrics
from diandian_common.celery_app import make_celery, queue_for
from diandian_common.testing import free_port, wait_for
from diandian_common.tests.metrics_support import (
    PROBE_APP,
    PROBE_TASKS,
    _answers,
    _Worker,
    celery_app,
    collected,
    local_samples,
    parse,
    scrape_until_settled,
    stop,
    subprocess_env,
    total,
    unique,
    value,
)


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


def test_the_metrics_port_opens_only_in_a_worker_of_an_installed_app_and_when_configured(monkeypatch):
    opened = []
    monkeypatch.setattr(metrics, "serve_worker_metrics", lambda port, registry: opened.append(port))
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


def test_queue_depth_is_read_from_redis_when_scraped(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.rpush("certificates", *["m"] * 3)
    client.rpush("certificates\x06\x166", "urgent")   # kombu's list for priority 6
    client.rpush("orders", "not ours")
    client.hset("unacked", mapping={"tag-1": "m", "tag-2": "m"})
    client.lpush("certificates.dead", "not json", "[1, 2]")   # parked by the worker: not waiting
    collector = metrics.QueueDepthCollector(redis_url, ("certificates", "ranking"))
    samples = collected(collector)
    assert value(samples, "celery_broker_up") == 1
    assert value(samples, "celery_queue_length", queue="certificates") == 4
    assert value(samples, "celery_dead_letters", queue="certificates") == 2
    assert value(samples, "celery_dead_letters", queue="ranking") == 0
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


@pytest.mark.integration
def test_prefork_children_are_summed_and_the_queue_depth_exposed(tmp_path, redis_url, monkeypatch):
    # Celery reads CELERY_BROKER_URL before its configuration (the suite sets memory://).
    monkeypatch.setenv("CELERY_BROKER_URL", redis_url)
    (tmp_path / "metrics_probe_tasks.py").write_text(textwrap.dedent(PROBE_TASKS))
    multiproc = tmp_path / "prometheus"
    sender = make_celery("probe-sender", broker_url=redis_url)
    queue = queue_for("probe.square")
    for number in range(6):
        sender.send_task("probe.square", args=[{"v": 1, "n": number}], queue=queue)
    sender.send_task("probe.square", args=[{"v": 1, "fail": True}], queue=queue)
    sender.send_task("probe.square", args=[{"v": 1, "retry_once": True, "n": 2}], queue=queue)
    assert redis.Redis.from_url(redis_url).llen(queue) == 8

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
    assert value(samples, "celery_queue_length", queue=queue) == 0
    assert value(samples, "celery_dead_letters", queue=queue) == 0
