"""What the metrics tests share: parsing a scrape, test apps and workers, child processes."""
from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import requests
from flask import Flask, abort
from prometheus_client.parser import text_string_to_metric_families

from diandian_common import metrics
from diandian_common.celery_app import make_celery
from diandian_common.errors import register_error_handlers
from diandian_common.testing import stop_process

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


class _Worker:
    def __init__(self, app):
        self.app = app


def collected(collector) -> dict:
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in collector.collect() for sample in family.samples}


def subprocess_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("CELERY_BROKER_URL", "PROMETHEUS_MULTIPROC_DIR", "WORKER_METRICS_PORT",
                          "METRICS_TOKEN")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT), str(ROOT / "services")])
    env.update(extra)
    return env


def stop(process: subprocess.Popen) -> None:
    stop_process(process)


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
