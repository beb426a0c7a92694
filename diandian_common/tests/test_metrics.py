"""diandian_common.metrics: what /metrics and a worker's metrics port expose.

In-process tests (Flask's test client, an embedded Celery worker on the memory broker)
check the counting; the multiprocess tests start real gunicorn and Celery prefork workers
with PROMETHEUS_MULTIPROC_DIR and check that a scrape sums every process.
"""
from __future__ import annotations

import uuid

import requests
from flask import Flask, request

from diandian_common import metrics
from diandian_common.testing import free_port
from diandian_common.tests.metrics_support import (
    flask_app,
    scrape,
    total,
    unique,
    value,
)


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


def label_values(samples: dict, service: str) -> set[tuple[str, str]]:
    """The (method, route) label pairs of ``service``'s request counter."""
    pairs = set()
    for name, labels in samples:
        labels = dict(labels)
        if name == "http_requests_total" and labels.get("service") == service:
            pairs.add((labels["method"], labels["route"]))
    return pairs


def test_made_up_methods_and_random_paths_add_no_label_values(monkeypatch):
    """``curl -X ZZXA /<random>`` would otherwise mint a time series per request."""
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    service = unique("api")
    client = flask_app(service).test_client()
    client.get("/items/1")
    client.get("/no/such/page")
    client.open("/items/1", method="ZZXA")
    known = label_values(scrape(client), service)
    assert known == {("GET", "/items/<int:item_id>"), ("GET", "<unmatched>"), ("other", "<unmatched>")}

    for attempt in range(25):
        random = uuid.uuid4().hex
        client.open(f"/{random}/{attempt}", method=f"ZZ{random[:6].upper()}")
        client.open("/items/1", method=f"X{random[:5].upper()}")
        client.get(f"/items/{random}")          # no match for <int:item_id>
        client.get(f"/items/{attempt}")
        client.post(f"/{random}")
    samples = scrape(client)
    assert label_values(samples, service) == known | {("POST", "<unmatched>")}
    assert total(samples, "http_requests_total", service=service) == 3 + 25 * 5


def test_a_workers_metrics_port_needs_the_token_when_set(monkeypatch):
    token = "t" * 40
    monkeypatch.setenv("METRICS_TOKEN", token)
    port = free_port()
    metrics.serve_worker_metrics(port, registry=metrics.REGISTRY)
    url = f"http://127.0.0.1:{port}/metrics"
    missing = requests.get(url, timeout=5)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
    wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "forbidden"
    right = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert right.status_code == 200 and "# HELP" in right.text
