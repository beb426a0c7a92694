"""Prometheus metrics of the APIs and the Celery workers.

- APIs (and the gateway): :func:`install_flask_metrics` counts requests by method, route
  rule and status, times them, counts 5xx answers, and serves ``GET /metrics``.
- Workers: :func:`install_celery_metrics` counts tasks by state and times them through
  Celery's signals; a worker started with ``WORKER_METRICS_PORT`` serves them on that port,
  together with the depth of its queue, read from Redis at each scrape.

Several processes: gunicorn's workers and Celery's prefork children each count on their
own, and a scrape reaches only one process. With ``PROMETHEUS_MULTIPROC_DIR`` set (before
the process starts, to an empty directory of its own per container), every process writes
its samples to files there and the exposition sums them: prometheus_client's multiprocess
mode. Without it each process exposes its own registry, which is right for one process
(``flask run``, tests). Counters and histograms only, so no gunicorn ``child_exit`` hook is
needed: a finished process's counts stay part of the totals, as counters must.

``METRICS_TOKEN``, when set, is required as ``Authorization: Bearer <token>`` on
``/metrics`` and on a worker's metrics port: the gateway is public, and its route counts
are nobody else's business. In production (``DIANDIAN_ENV``) every process serving metrics
refuses to start without it (:mod:`diandian_common.deployment`).

Every label value comes from a bounded set, whatever a client sends: the method is one of
:data:`HTTP_METHODS` or ``other``, the route is the matched rule or ``<unmatched>``, never
the raw path. Otherwise ``curl -X ZZXA /a/random/path`` would mint a new time series per
request and fill the scrape (and Prometheus) without limit.
"""
from __future__ import annotations

import functools
import hmac
import json
import logging
import os
import threading
import time
import weakref
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, make_server

import redis
from celery import signals
from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Histogram,
    generate_latest,
    make_wsgi_app,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.multiprocess import MultiProcessCollector

from . import config
from .errors import ApiError

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
# Probes and scrapes hit these every few seconds: counted, they would drown the traffic
# that matters in both the rates and the latency histogram.
UNMEASURED_ROUTES = frozenset({METRICS_PATH, "/healthz"})
# A request no route matched (a 404 or 405) is labelled with this instead of its path, so
# scanners can't create a time series per URL they try.
UNMATCHED_ROUTE = "<unmatched>"
# The methods of RFC 9110 and PATCH; any other is counted as OTHER_METHOD.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
OTHER_METHOD = "other"
TASK_STATES = ("received", "started", "succeeded", "failed", "retried")

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

# kombu's Redis transport keeps a queue's messages in a list named after it, and messages
# sent with a priority in sibling lists named queue + separator + step (its defaults).
KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
KOMBU_PRIORITY_STEPS = (3, 6, 9)
KOMBU_UNACKED_KEY = "unacked"
# Where a worker parks the entries of a queue that no task can run (diandian_common.celery_app).
DEAD_LETTER_SUFFIX = ".dead"
BROKER_TIMEOUT_S = 1.0


def multiprocess_mode() -> bool:
    """Whether this process's metrics live in PROMETHEUS_MULTIPROC_DIR's files.

    prometheus_client chooses once, when it is first imported; this reports its choice.
    """
    return bool(getattr(values.ValueClass, "_multiprocess", False))


class _Metrics:
    """The metric objects: one set per process, whatever the number of apps installed."""

    def __init__(self):
        self.http_requests = Counter(
            "http_requests", "HTTP requests answered, by route rule and status",
            ["service", "method", "route", "status"])
        self.http_errors = Counter(
            "http_request_errors", "HTTP requests answered with a 5xx status",
            ["service", "method", "route"])
        self.http_duration = Histogram(
            "http_request_duration_seconds", "Time to produce the response (not to send a streamed body)",
            ["service", "method", "route"], buckets=HTTP_BUCKETS)
        self.tasks = Counter(
            "celery_tasks", "Celery tasks by state (received, started, succeeded, failed, retried)",
            ["service", "task", "state"])
        self.task_duration = Histogram(
            "celery_task_duration_seconds", "Run time of a task execution, whatever its outcome",
            ["service", "task"], buckets=TASK_BUCKETS)
        self.database_errors = Counter(
            "database_errors", "Database faults reaching an entrypoint (diandian_common.uow), by "
            "entrypoint (request, task) and outcome: rerun (a request that lost its connection, run "
            "again), unavailable (answered 503), retried (a task, later), failed (a permanent error: "
            "the task's message failed at once)",
            ["service", "entrypoint", "outcome"])
        self.poison_messages = Counter(
            "celery_poison_messages", "Broker entries no task could run (not JSON, not a message, an "
            "unknown task, ...), moved to the queue's dead-letter list, by queue and reason",
            ["queue", "reason"])
        self.storage_unavailable = Counter(
            "storage_unavailable", "Work put off because the file storage could not take a file "
            "(checked before rendering, or refused when writing), by the work put off",
            ["service", "operation"])
        self.pipeline_resent = Counter(
            "pipeline_resent", "Pipeline messages sent again by a repair task because their answer "
            "(the next status, or an acknowledgement) did not come in time, by task name",
            ["service", "task"])


@functools.cache
def _metrics() -> _Metrics:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and multiprocess_mode():
        # The samples' files are opened when the first labelled value is created.
        os.makedirs(directory, exist_ok=True)
    return _Metrics()


def _process_metrics():
    """What this process should expose: every process's samples, or its own registry."""
    if multiprocess_mode():
        return MultiProcessCollector(None)
    return REGISTRY


class _Exposition:
    """Collectors exposed together (make_wsgi_app and generate_latest only call collect)."""

    def __init__(self, *collectors):
        self.collectors = collectors

    def collect(self):
        for collector in self.collectors:
            yield from collector.collect()


# --- Flask ------------------------------------------------------------------------------


def install_flask_metrics(app: Flask, service: str) -> None:
    """Count and time ``app``'s requests, labelled ``service``, and serve ``GET /metrics``."""
    metrics = _metrics()

    # First of the app's before_request functions, so answers the others give (a rate
    # limit's 429, a CORS preflight) are timed and counted too.
    def _start():
        g._metrics_started = time.perf_counter()

    app.before_request_funcs.setdefault(None, []).insert(0, _start)

    @app.after_request
    def _observe(response):
        started = g.pop("_metrics_started", None)
        route = request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE
        if started is None or route in UNMEASURED_ROUTES:
            return response
        method = request.method if request.method in HTTP_METHODS else OTHER_METHOD
        status = response.status_code
        metrics.http_requests.labels(service, method, route, str(status)).inc()
        metrics.http_duration.labels(service, method, route).observe(time.perf_counter() - started)
        if status >= 500:
            metrics.http_errors.labels(service, method, route).inc()
        return response

    app.add_url_rule(METRICS_PATH, "metrics", _metrics_view)


def _token_refusal(presented: str | None) -> tuple[int, str, str] | None:
    """(status, code, message) when METRICS_TOKEN is set and ``presented`` is not it."""
    token = config.env("METRICS_TOKEN")
    if not token:
        return None
    if not presented:
        return 401, "unauthorized", "the metrics need 'Authorization: Bearer <METRICS_TOKEN>'"
    if not hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
        return 403, "forbidden", "the metrics token is not valid"
    return None


def _metrics_view():
    refusal = _token_refusal(request.headers.get("Authorization"))
    if refusal:
        raise ApiError(*refusal)
    return Response(generate_latest(_Exposition(_process_metrics())), content_type=CONTENT_TYPE_LATEST)


# --- Celery -----------------------------------------------------------------------------


def dead_letter_queue(queue: str) -> str:
    """The list where the entries of ``queue`` that no task can run are parked."""
    return f"{queue}{DEAD_LETTER_SUFFIX}"


def count_poison_message(queue: str, reason: str) -> None:
    """One entry of ``queue`` parked in its dead-letter list, for ``reason`` (one of a few
    fixed words, see diandian_common.celery_app)."""
    _metrics().poison_messages.labels(queue, reason).inc()


class QueueDepthCollector:
    """Messages waiting in Celery queues on a Redis broker, read when scraped.

    ``celery_queue_length{queue}`` is LLEN of the queue's lists; ``celery_dead_letters{queue}``
    the entries parked in its dead-letter list (they stay until someone looks at them, where
    the counter of parked entries starts again at each restart); ``celery_unacked_messages``
    counts messages handed to a worker and not yet acknowledged (all queues of the broker's
    database); ``celery_broker_up`` is 0 when Redis did not answer (no lengths then).
    """

    def __init__(self, broker_url: str, queues: tuple[str, ...]):
        self.broker_url = broker_url
        self.queues = queues

    def collect(self):
        up = GaugeMetricFamily("celery_broker_up", "1 when the broker answered the queue-depth scrape")
        length = GaugeMetricFamily("celery_queue_length", "Messages waiting in the queue", labels=["queue"])
        dead = GaugeMetricFamily("celery_dead_letters", "Entries parked in the queue's dead-letter list",
                                 labels=["queue"])
        unacked = GaugeMetricFamily("celery_unacked_messages",
                                    "Messages delivered to a worker and not yet acknowledged")
        try:
            depths, parked, in_flight = self._read()
        except redis.RedisError as exc:
            log.warning("queue depth not read: %s", exc.__class__.__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for queue, depth in depths.items():
            length.add_metric([queue], depth)
            dead.add_metric([queue], parked[queue])
        unacked.add_metric([], in_flight)
        yield from (up, length, dead, unacked)

    def _read(self) -> tuple[dict[str, int], dict[str, int], int]:
        client = redis.Redis.from_url(self.broker_url, socket_timeout=BROKER_TIMEOUT_S,
                                      socket_connect_timeout=BROKER_TIMEOUT_S)
        try:
            pipe = client.pipeline(transaction=False)
            for queue in self.queues:
                pipe.llen(queue)
                for step in KOMBU_PRIORITY_STEPS:
                    pipe.llen(f"{queue}{KOMBU_PRIORITY_SEPARATOR}{step}")
                pipe.llen(dead_letter_queue(queue))
            pipe.hlen(KOMBU_UNACKED_KEY)
            replies = pipe.execute()
        finally:
            client.close()
        per_queue = 2 + len(KOMBU_PRIORITY_STEPS)
        depths = {queue: sum(replies[i * per_queue:(i + 1) * per_queue - 1])
                  for i, queue in enumerate(self.queues)}
        parked = {queue: replies[(i + 1) * per_queue - 1] for i, queue in enumerate(self.queues)}
        return depths, parked, replies[-1]


def is_redis_url(url: str | None) -> bool:
    return bool(url) and urlsplit(url.split(";")[0]).scheme in ("redis", "rediss")


def worker_exposition(celery_app, service: str) -> _Exposition:
    """What a worker's metrics port serves: the task metrics, plus its queue's depth."""
    broker_url = celery_app.conf.broker_url
    collectors = [_process_metrics()]
    if is_redis_url(broker_url):
        collectors.append(QueueDepthCollector(broker_url.split(";")[0], (config.celery_queue(service),)))
    return _Exposition(*collectors)


# The Celery apps whose tasks are counted, with their service label. Signals are
# process-wide: the handlers count only tasks of an app installed here. Weak keys, so an
# app dropped (as tests do by the hundred) takes its entry with it.
_celery_services: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Start of each running task, by task id, in the process running it.
_started_at: dict[str, float] = {}


def install_celery_metrics(celery_app, service: str) -> None:
    """Count and time ``celery_app``'s tasks; a worker of it serves them on WORKER_METRICS_PORT.

    Installing twice is harmless. Only a worker sends ``worker_init``, so an API process
    sending tasks and ``celery beat`` open no port.
    """
    _metrics()
    _celery_services[celery_app] = service
    _connect_celery_signals()


def _service_of(app) -> str | None:
    try:
        return _celery_services.get(app)
    except TypeError:  # None, or something that is no Celery app
        return None


def _count(app, task_name: str, state: str) -> None:
    service = _service_of(app)
    if service is not None:
        _metrics().tasks.labels(service, task_name, state).inc()


# In a prefork worker task_received fires in the main process, which reads the queue; the
# others fire in the child that runs the task.
def _on_received(sender=None, request=None, **_):
    if request is not None:
        _count(getattr(sender, "app", None), request.name, "received")


def _on_prerun(task_id=None, task=None, **_):
    if _service_of(getattr(task, "app", None)) is not None:
        _started_at[task_id] = time.perf_counter()
        _count(task.app, task.name, "started")


def _on_postrun(task_id=None, task=None, **_):
    started = _started_at.pop(task_id, None)
    service = _service_of(getattr(task, "app", None))
    if service is not None and started is not None:
        _metrics().task_duration.labels(service, task.name).observe(time.perf_counter() - started)


def _on_success(sender=None, **_):
    _count(getattr(sender, "app", None), getattr(sender, "name", None), "succeeded")


def _on_failure(sender=None, **_):
    _count(getattr(sender, "app", None), getattr(sender, "name", None), "failed")


def _on_retry(sender=None, **_):
    _count(getattr(sender, "app", None), getattr(sender, "name", None), "retried")


def count_pipeline_resent(service: str, task_name: str, count: int = 1) -> None:
    """``count`` messages of ``task_name`` sent again by ``service``'s repair tasks (after
    their transaction committed: a re-send rolled back is no re-send)."""
    if count:
        _metrics().pipeline_resent.labels(service, task_name).inc(count)


def count_storage_unavailable(service: str, operation: str) -> None:
    """One piece of work (``operation``: a task's name) put off because the storage could not
    take its file (docs/operations.md, "Certificate storage cannot take a file")."""
    _metrics().storage_unavailable.labels(service, operation).inc()


DATABASE_ERROR_OUTCOMES = {"request": ("rerun", "unavailable"), "task": ("retried", "failed")}


def count_database_error(service: str, entrypoint: str, outcome: str) -> None:
    """One database fault handled by an entrypoint (see :data:`DATABASE_ERROR_OUTCOMES`)."""
    if outcome not in DATABASE_ERROR_OUTCOMES.get(entrypoint, ()):
        raise ValueError(f"no database error outcome {entrypoint}/{outcome}")
    _metrics().database_errors.labels(service, entrypoint, outcome).inc()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *_args):
        """Scrapes every few seconds are no news (prometheus_client's server is silent too)."""


def _token_required(wsgi_app):
    """``wsgi_app`` behind METRICS_TOKEN, answering refusals in the platform's error shape."""
    def guarded(environ, start_response):
        refusal = _token_refusal(environ.get("HTTP_AUTHORIZATION"))
        if refusal is None:
            return wsgi_app(environ, start_response)
        status, code, message = refusal
        reasons = {401: "Unauthorized", 403: "Forbidden"}
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        start_response(f"{status} {reasons[status]}", [("Content-Type", "application/json"),
                                                       ("Content-Length", str(len(body)))])
        return [body]
    return guarded


def serve_worker_metrics(port: int, registry) -> None:
    """prometheus_client's ``start_http_server``, with METRICS_TOKEN required as on /metrics."""
    server = make_server("0.0.0.0", port, _token_required(make_wsgi_app(registry)), ThreadingWSGIServer,
                         handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()


def _on_worker_init(sender=None, **_):
    app = getattr(sender, "app", None)
    service = _service_of(app)
    port = config.env("WORKER_METRICS_PORT")
    if port and service is not None:
        try:
            serve_worker_metrics(int(port), registry=worker_exposition(app, service))
        except OSError as exc:
            # Two workers sharing a network namespace need a port each; the worker itself
            # runs on without metrics rather than not at all.
            log.error("worker metrics not served: port %s: %s", port, exc)
            return
        log.info("worker metrics on port %s", port)


@functools.cache
def _connect_celery_signals() -> None:
    for signal, handler in ((signals.task_received, _on_received), (signals.task_prerun, _on_prerun),
                            (signals.task_postrun, _on_postrun), (signals.task_success, _on_success),
                            (signals.task_failure, _on_failure), (signals.task_retry, _on_retry),
                            (signals.worker_init, _on_worker_init)):
        signal.connect(handler, weak=False)
