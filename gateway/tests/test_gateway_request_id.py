"""A request id travels from the gateway to a service, into the Celery message the service
sends, and into the worker's log lines: a real Redis broker and a real worker."""
from __future__ import annotations

import logging
import threading

import pytest
from celery.contrib.testing.worker import start_worker
from flask import Flask, jsonify
from werkzeug.serving import make_server

from diandian_common.celery_app import make_celery, send
from diandian_common.errors import register_error_handlers
from diandian_common.logs import ContextFilter, request_id_var
from diandian_common.testing import free_port, migrated_sqlite_url, wait_for
from diandian_common.web import install_request_id
from gateway.app import create_app


class Recorder(logging.Handler):
    """Log records as the platform's handler sees them (request id filled in)."""

    def __init__(self):
        super().__init__()
        self.addFilter(ContextFilter("probe-worker"))
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def broker(redis_url, monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", redis_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    return redis_url


def test_request_id_reaches_the_worker_and_its_logs(broker, tmp_path, monkeypatch):
    celery = make_celery("probe")
    seen: list[str | None] = []
    task_log = logging.getLogger("probe.tasks")
    recorder = Recorder()
    task_log.addHandler(recorder)

    @celery.task(name="probe.record", bind=True)
    def record(self, payload):
        seen.append(request_id_var.get())
        task_log.warning("recorded %s", payload["what"])

    service = Flask("probe")
    register_error_handlers(service)
    install_request_id(service)

    @service.post("/api/v1/estimates")
    def estimate():
        send(celery, "probe.record", {"what": "an estimate"})
        return jsonify({"sent": True}), 201

    port = free_port()
    server = make_server("127.0.0.1", port, service, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    monkeypatch.setenv("CALCULATOR_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", migrated_sqlite_url("gateway", tmp_path))
    gateway = create_app().test_client()
    try:
        with start_worker(celery, queues=["probe"], pool="solo", perform_ping_check=False):
            response = gateway.post("/api/v1/estimates", json={}, headers={"X-Request-ID": "trace-7f3a"})
            assert response.status_code == 201 and response.headers["X-Request-ID"] == "trace-7f3a"
            wait_for(lambda: len(seen) >= 1, timeout=15, interval=0.05, what="the first task")
            # a message sent outside any request carries no id, and the worker does not
            # carry the previous task's over to it
            send(celery, "probe.record", {"what": "a scheduled job"})
            wait_for(lambda: len(seen) >= 2, timeout=15, interval=0.05, what="the second task")
    finally:
        server.shutdown()
        task_log.removeHandler(recorder)
    assert seen == ["trace-7f3a", None]
    by_message = {r.getMessage(): r.request_id for r in recorder.records}
    assert by_message == {"recorded an estimate": "trace-7f3a", "recorded a scheduled job": None}
