"""Outbound webhooks against a real (temporary) database and a real HTTP receiver on
127.0.0.1: endpoints, events written with the state change, signed deliveries, retries,
the log, re-sending, and the address checks."""
from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select, update

from diandian_common.timestamps import as_utc, utcnow
from diandian_common.uow import UnitOfWork
from orders import tasks
from orders.ledger import service as ledger_service
from orders.models import OutboxMessage, WebhookDelivery, WebhookEvent
from orders.ordering import calculator_client
from orders.payments.domain import signatures
from orders.webhooks import sender as webhook_sender
from orders.webhooks import service as webhooks

ALL_EVENTS = ["order.paid", "order.completed", "certificate.issued", "certificate.revoked", "project.low_inventory"]


WANG = {"id": "p-1", "display_name": "王芳"}

class Receiver:
    """An HTTP server that records what it is sent and answers ``statuses`` in turn (then 200)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.delay_s = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "raw": raw})
                time.sleep(receiver.delay_s)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/diandian"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [json.loads(r["raw"]) for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


@pytest.fixture
def local_webhooks(monkeypatch):
    """What the tests' receiver needs: plain http to loopback, short retries, no jitter."""
    monkeypatch.setenv("WEBHOOK_ALLOW_HTTP", "true")
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "1,2")
    monkeypatch.setenv("WEBHOOK_RETRY_JITTER", "0")
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "1")


@pytest.fixture
def scenes(monkeypatch):
    """The calculator knows scenes ``forum`` and ``expo``."""
    known = {"forum": "Forum", "expo": "Expo"}
    monkeypatch.setattr(calculator_client, "scene",
                        lambda slug: {"slug": slug, "name": known[slug]} if slug in known else None)


def register(client, operator, url, events=ALL_EVENTS, **extra):
    response = client.post("/api/v1/webhooks", headers=operator, json={"url": url, "events": events, **extra})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def deliveries(database, **where):
    with UnitOfWork(database) as uow:
        session = uow.session
        query = select(WebhookDelivery).order_by(WebhookDelivery.id)
        for field, value in where.items():
            query = query.where(getattr(WebhookDelivery, field) == value)
        return [(d.id, d.event.type, d.status, d.attempts) for d in session.scalars(query)]


def deliver(delivery_id):
    return tasks.deliver_webhook.run({"v": 1, "delivery_id": delivery_id})


def make_due(database, delivery_id):
    """Jump to the time of the next attempt."""
    with UnitOfWork(database) as uow:
        session = uow.session
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                        .values(next_attempt_at=utcnow() - timedelta(seconds=1)))


def retry_now(database, delivery_id):
    """Jump to the next attempt's time and let the periodic dispatch queue it."""
    make_due(database, delivery_id)
    assert tasks.dispatch_webhooks.run() == 1


# --- endpoints ----------------------------------------------------------------------------

def test_an_endpoint_gets_its_secret_once(client, operator, local_webhooks, receiver):
    created = register(client, operator, receiver.url, events=["order.paid"], description="venue screen")
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert (created["url"], created["events"], created["scene"], created["active"]) == \
        (receiver.url, ["order.paid"], None, True)
    listed = client.get("/api/v1/webhooks", headers=operator).get_json()["items"]
    assert [e["id"] for e in listed] == [created["id"]] and "secret" not in listed[0]
    assert "secret" not in client.get(f"/api/v1/webhooks/{created['id']}", headers=operator).get_json()
    assert client.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["order.paid"]}).status_code == 401


@pytest.mark.parametrize("body, field", [
    ({"url": "http://hooks.example.com/x", "events": ["order.paid"]}, "url"),   # http not allowed here
    ({"url": "https://10.0.0.5/x", "events": ["order.paid"]}, "url"),
    ({"url": "https://[::1]/x", "events": ["order.paid"]}, "url"),
    ({"url": "https://169.254.169.254/latest/meta-data", "events": ["order.paid"]}, "url"),
    ({"url": "https://u:p@hooks.example.com/x", "events": ["order.paid"]}, "url"),
    ({"url": "not a url", "events": ["order.paid"]}, "url"),
    ({"url": "https://hooks.example.com/" + "x" * 500, "events": ["order.paid"]}, "url"),
    ({"url": "https://hooks.example.com/x", "events": []}, "events"),
    ({"url": "https://hooks.example.com/x", "events": ["order.refunded"]}, "events"),
    ({"url": "https://hooks.example.com/x", "events": "order.paid"}, "events"),
    ({"url": "https://hooks.example.com/x"}, "events"),
    ({"url": "https://hooks.example.com/x", "events": ["order.paid"], "scene": "Not A Slug"}, "scene"),
    ({"url": "https://hooks.example.com/x", "events": ["order.paid"], "scene": "nowhere"}, "scene"),
    ({"url": "https://hooks.example.com/x", "events": ["order.paid"], "secret": "mine"}, "secret"),
])
def test_endpoints_are_validated(client, operator, scenes, body, field):
    response = client.post("/api/v1/webhooks", headers=operator, json=body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]


def test_https_endpoints_and_scenes(client, operator, scenes):
    created = register(client, operator, "https://hooks.example.com/diandian", events=["order.paid"], scene="forum")
    assert created["scene"] == "forum"


def test_disable_enable_and_delete(client, operator, local_webhooks, receiver):
    endpoint = register(client, operator, receiver.url)
    disabled = client.patch(f"/api/v1/webhooks/{endpoint['id']}", headers=operator, json={"active": False})
    assert disabled.status_code == 200 and disabled.get_json()["active"] is False
    assert client.patch(f"/api/v1/webhooks/{endpoint['id']}", headers=operator, json={}).status_code == 422
    assert client.patch(f"/api/v1/webhooks/{endpoint['id']}", headers=operator,
                        json={"url": "ftp://x"}).status_code == 422
    assert client.delete(f"/api/v1/webhooks/{endpoint['id']}", headers=operator).status_code == 204
    assert client.get(f"/api/v1/webhooks/{endpoint['id']}", headers=operator).status_code == 404
    assert client.delete(f"/api/v1/webhooks/{endpoint['id']}", headers=operator).status_code == 404


# --- events -------------------------------------------------------------------------------

def test_no_endpoint_no_event(client, database, driver):
    driver.place_and_pay_order(kg=10, participant=WANG)
    with UnitOfWork(database) as uow:
        session = uow.session
        assert session.scalars(select(func.count()).select_from(WebhookEvent)).one() == 0


def test_the_event_is_written_with_the_payment(client, database, operator, local_webhooks, receiver, driver):
    endpoint = register(client, operator, receiver.url, events=["order.paid"])
    order = driver.place_and_pay_order(kg=10, participant=WANG)
    with UnitOfWork(database) as uow:
        session = uow.session
        event = session.scalars(select(WebhookEvent)).one()
        assert (event.type, event.data["id"], event.data["status"]) == ("order.paid", order["id"], "paid")
        delivery = session.scalars(select(WebhookDelivery)).one()
        assert (delivery.endpoint_id, delivery.event_id, delivery.status) == (endpoint["id"], event.id, "pending")
        message = session.scalars(select(OutboxMessage).where(
            OutboxMessage.task_name == "orders.deliver_webhook")).one()
        assert message.payload == {"v": 1, "delivery_id": delivery.id}
    client.post(f"/api/v1/orders/{order['id']}/payment")  # paying twice: no second event
    assert len(deliveries(database)) == 1


def test_no_event_without_the_payment(client, database, operator, local_webhooks, receiver, monkeypatch, driver):
    register(client, operator, receiver.url, events=["order.paid"])
    order = driver.place_order(kg=10, participant=WANG)

    def broken(*_args, **_kwargs):
        raise RuntimeError("outbox full")

    monkeypatch.setattr(webhooks, "enqueue", broken)
    assert client.post(f"/api/v1/orders/{order['id']}/payment").status_code == 500
    assert deliveries(database) == []
    assert client.get(f"/api/v1/orders/{order['id']}").get_json()["status"] == "pending_payment"


def test_scene_endpoints_hear_only_their_scene(client, database, operator, local_webhooks, receiver, scenes, driver):
    forum = register(client, operator, receiver.url, events=["order.paid"], scene="forum")
    everything = register(client, operator, receiver.url, events=["order.paid"])
    driver.place_and_pay_order(kg=10, participant=WANG, scene="forum")
    driver.place_and_pay_order(kg=10, participant=WANG, scene="expo")
    driver.place_and_pay_order(kg=10, participant=WANG)
    with UnitOfWork(database) as uow:
        session = uow.session
        heard = {}
        for d in session.scalars(select(WebhookDelivery)):
            heard.setdefault(d.endpoint_id, []).append(d.event.scene_slug)
    assert heard == {forum["id"]: ["forum"], everything["id"]: ["forum", "expo", None]}


def test_the_whole_life_of_an_order_is_announced(client, database, operator, local_webhooks, receiver, driver):
    register(client, operator, receiver.url)
    order = driver.place_and_pay_order(kg=10, participant=WANG)
    with UnitOfWork(database) as uow:
        ledger_service.retire(uow, order["id"])
    tasks.certificate_issued.run({"v": 1, "order_id": order["id"], "certificate_id": "cert_9", "verify_code": "c9",
                                  "pdf_url": "http://x/c9.pdf", "verify_url": "http://x/v/c9"})
    tasks.certificate_revoked.run({"v": 1, "order_id": order["id"], "certificate_id": "cert_9",
                                   "reason": "issued twice", "refund": True})
    tasks.certificate_revoked.run({"v": 1, "order_id": order["id"], "certificate_id": "cert_9",
                                   "reason": "issued twice", "refund": True})
    for delivery_id, *_ in deliveries(database):
        deliver(delivery_id)
    by_type = {e["type"]: e for e in receiver.events()}
    assert [e["type"] for e in receiver.events()] == ["order.paid", "order.completed", "certificate.issued",
                                                      "certificate.revoked"]
    assert by_type["order.completed"]["data"]["certificate"]["id"] == "cert_9"
    issued = by_type["certificate.issued"]["data"]
    assert (issued["id"], issued["order_id"], issued["verify_url"]) == ("cert_9", order["id"], "http://x/v/c9")
    assert issued["serial_range"].startswith("CDCER-") and issued["quantity_kg"] == 10
    revoked = by_type["certificate.revoked"]["data"]
    assert (revoked["id"], revoked["revocation_reason"]) == ("cert_9", "issued twice")
    assert revoked["refund"]["amount_fen"] == order["amount_fen"] and revoked["order"]["id"] == order["id"]


def test_low_inventory_is_announced_when_an_order_crosses_the_threshold(client, database, operator,
                                                                        local_webhooks, receiver, driver):
    register(client, operator, receiver.url, events=["project.low_inventory"])
    project = client.get("/api/v1/projects").get_json()["items"][0]
    threshold = project["available_kg"] - 15
    client.patch(f"/api/v1/projects/{project['id']}", headers=operator,
                 json={"low_inventory_threshold_kg": threshold})
    driver.place_order(project["id"], 10, WANG)   # still above
    driver.place_order(project["id"], 10, WANG)   # crosses: announced
    driver.place_order(project["id"], 10, WANG)   # already below: not again
    for delivery_id, *_ in deliveries(database):
        deliver(delivery_id)
    [announced] = receiver.events()
    assert announced["type"] == "project.low_inventory"
    assert announced["data"]["project"]["id"] == project["id"]
    assert (announced["data"]["available_kg"], announced["data"]["threshold_kg"]) == (threshold - 5, threshold)


def test_the_global_threshold(client, monkeypatch):
    monkeypatch.setenv("LOW_INVENTORY_THRESHOLD_KG", "1234")
    project = client.get("/api/v1/projects").get_json()["items"][0]
    assert project["low_inventory_threshold_kg"] == 1234


# --- deliveries -----------------------------------------------------------------------------

def test_a_delivery_is_signed_with_the_endpoints_secret(client, database, operator, local_webhooks, receiver, driver):
    endpoint = register(client, operator, receiver.url, events=["order.paid"])
    order = driver.place_and_pay_order(kg=10, participant=WANG)
    [(delivery_id, _type, _status, _attempts)] = deliveries(database)
    assert deliver(delivery_id) == "succeeded"
    [request] = receiver.requests
    assert request["path"] == "/hooks/diandian"
    header = request["headers"]["Diandian-Signature"]
    assert signatures.verify(endpoint["secret"], header, request["raw"], time.time(), 300)
    with pytest.raises(signatures.SignatureError):
        signatures.verify("whsec_someone_else", header, request["raw"], time.time(), 300)
    body = json.loads(request["raw"])
    assert set(body) == {"id", "type", "created_at", "data"}
    assert body["id"].startswith("evt_") and body["type"] == "order.paid" and body["data"]["id"] == order["id"]
    assert request["headers"]["Diandian-Event-Id"] == body["id"]
    assert request["headers"]["Content-Type"] == "application/json"
    assert deliver(delivery_id) is None  # delivered: a second message sends nothing
    assert len(receiver.requests) == 1


def test_a_failed_attempt_is_retried_on_schedule_and_logged(client, database, operator, local_webhooks, receiver, driver):
    endpoint = register(client, operator, receiver.url, events=["order.paid"])
    driver.place_and_pay_order(kg=10, participant=WANG)
    [(delivery_id, *_)] = deliveries(database)
    receiver.statuses = [503]
    before = utcnow()
    assert deliver(delivery_id) == "pending"
    with UnitOfWork(database) as uow:
        session = uow.session
        delivery = session.get(WebhookDelivery, delivery_id)
        wait = (as_utc(delivery.next_attempt_at) - before).total_seconds()
        assert 1 <= wait < 2 and delivery.failures == 1 and delivery.last_status_code == 503
    assert deliver(delivery_id) is None  # a duplicate message before the retry is due: nothing sent
    with UnitOfWork(database) as uow:
        session = uow.session
        assert webhooks.dispatch_due(session, utcnow(), webhooks.settings()) == 0  # not due yet
    make_due(database, delivery_id)
    with UnitOfWork(database) as uow:
        session = uow.session
        assert webhooks.dispatch_due(session, utcnow(), webhooks.settings()) == 1
    with UnitOfWork(database) as uow:
        session = uow.session  # queued: not queued again while its message is on the way
        assert webhooks.dispatch_due(session, utcnow(), webhooks.settings()) == 0
    assert deliver(delivery_id) == "succeeded"
    bodies = [r["raw"] for r in receiver.requests]
    assert len(bodies) == 2 and bodies[0] == bodies[1]  # the same event, byte for byte
    page = client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries", headers=operator).get_json()
    [shown] = page["items"]
    assert (shown["status"], shown["attempts"], shown["last_status_code"]) == ("succeeded", 2, 200)
    assert [(a["attempt"], a["status_code"], a["error"], a["succeeded"]) for a in shown["log"]] == \
        [(1, 503, "HTTP 503", False), (2, 200, None, True)]
    assert all(a["duration_ms"] >= 0 and a["started_at"] for a in shown["log"])


def test_a_delivery_fails_for_good_after_the_last_attempt(client, database, operator, local_webhooks, receiver, driver):
    register(client, operator, receiver.url, events=["order.paid"])
    driver.place_and_pay_order(kg=10, participant=WANG)
    [(delivery_id, *_)] = deliveries(database)
    receiver.statuses = [500, 500, 500]
    assert deliver(delivery_id) == "pending"
    retry_now(database, delivery_id)
    assert deliver(delivery_id) == "pending"
    retry_now(database, delivery_id)
    assert deliver(delivery_id) == "failed"  # schedule "1,2": three attempts
    with UnitOfWork(database) as uow:
        session = uow.session
        assert session.get(WebhookDelivery, delivery_id).next_attempt_at is None
        assert webhooks.dispatch_due(session, utcnow() + timedelta(days=2), webhooks.settings()) == 0
    assert len(receiver.requests) == 3


def test_a_timeout_is_a_failed_attempt(client, database, operator, local_webhooks, receiver, monkeypatch, driver):
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "0.3")
    register(client, operator, receiver.url, events=["order.paid"])
    driver.place_and_pay_order(kg=10, participant=WANG)
    [(delivery_id, *_)] = deliveries(database)
    receiver.delay_s = 1.0
    assert deliver(delivery_id) == "pending"
    with UnitOfWork(database) as uow:
        session = uow.session
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery.last_status_code is None and "timed out" in delivery.last_error.lower()
        assert delivery.log[0].duration_ms < 1000


def test_redirects_are_not_followed(client, database, operator, local_webhooks, receiver, driver):
    register(client, operator, receiver.url, events=["order.paid"])
    driver.place_and_pay_order(kg=10, participant=WANG)
    [(delivery_id, *_)] = deliveries(database)
    receiver.statuses = [302]
    assert deliver(delivery_id) == "pending"
    with UnitOfWork(database) as uow:
        session = uow.session
        assert "redirects are not followed" in session.get(WebhookDelivery, delivery_id).last_error
    assert len(receiver.requests) == 1


def test_a_delivery_being_sent_is_not_sent_twice(client, database, operator, local_webhooks, receiver, driver):
    register(client, operator, receiver.url, events=["order.paid"])
    driver.place_and_pay_order(kg=10, participant=WANG)
    [(delivery_id, *_)] = deliveries(database)
    now, current = utcnow(), webhooks.settings()
    with UnitOfWork(database) as uow:
        session = uow.session
        first = webhooks.claim(session, delivery_id, now, current)
    with UnitOfWork(database) as uow:
        session = uow.session
        assert webhooks.claim(session, delivery_id, now, current) is None  # a redelivered message
        assert webhooks.dispatch_due(session, now + timedelta(seconds=1), current) == 0
    assert first.attempt == 1
    # the worker died mid-send: once the lease is over, the delivery is sent again (a retry)
    with UnitOfWork(database) as uow:
        session = uow.session
        later = now + current.lease + timedelta(seconds=1)
        assert webhooks.dispatch_due(session, later, current) == 1
        assert webhooks.claim(session, delivery_id, later, current).attempt == 2


def test_resend_by_hand(client, database, operator, local_webhooks, receiver, driver):
    endpoint = register(client, operator, receiver.url, events=["order.paid"])
    driver.place_and_pay_order(kg=10, participant=WANG)
    [(delivery_id, *_)] = deliveries(database)
    deliver(delivery_id)
    resent = client.post(f"/api/v1/webhooks/{endpoint['id']}/deliveries/{delivery_id}/resend", headers=operator)
    assert resent.status_code == 202 and resent.get_json()["status"] == "pending"
    assert deliver(delivery_id) == "succeeded"
    assert [json.loads(r["raw"])["id"] for r in receiver.requests] == [receiver.events()[0]["id"]] * 2
    other = register(client, operator, receiver.url, events=["order.paid"])
    assert client.post(f"/api/v1/webhooks/{other['id']}/deliveries/{delivery_id}/resend",
                       headers=operator).status_code == 404
    assert client.post(f"/api/v1/webhooks/{endpoint['id']}/deliveries/999999/resend",
                       headers=operator).status_code == 404
    client.patch(f"/api/v1/webhooks/{endpoint['id']}", headers=operator, json={"active": False})
    refused = client.post(f"/api/v1/webhooks/{endpoint['id']}/deliveries/{delivery_id}/resend", headers=operator)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "endpoint_disabled"


def test_a_disabled_endpoint_waits(client, database, operator, local_webhooks, receiver, driver):
    endpoint = register(client, operator, receiver.url, events=["order.paid"])
    driver.place_and_pay_order(kg=10, participant=WANG)
    [(delivery_id, *_)] = deliveries(database)
    client.patch(f"/api/v1/webhooks/{endpoint['id']}", headers=operator, json={"active": False})
    assert deliver(delivery_id) is None
    driver.place_and_pay_order(kg=10, participant=WANG)
    assert len(deliveries(database)) == 1  # no new events while disabled
    client.patch(f"/api/v1/webhooks/{endpoint['id']}", headers=operator, json={"active": True})
    with UnitOfWork(database) as uow:
        session = uow.session
        later = utcnow() + webhooks.settings().lease + timedelta(seconds=1)
        assert webhooks.dispatch_due(session, later, webhooks.settings()) == 1
    assert deliver(delivery_id) == "succeeded"


def test_deleting_an_endpoint_drops_its_deliveries(client, database, operator, local_webhooks, receiver, driver):
    endpoint = register(client, operator, receiver.url, events=["order.paid"])
    driver.place_and_pay_order(kg=10, participant=WANG)
    [(delivery_id, *_)] = deliveries(database)
    deliver(delivery_id)
    client.delete(f"/api/v1/webhooks/{endpoint['id']}", headers=operator)
    assert deliveries(database) == [] and deliver(delivery_id) is None


def test_deliveries_are_listed_newest_first_and_filtered(client, database, operator, local_webhooks, receiver, driver):
    endpoint = register(client, operator, receiver.url, events=["order.paid"])
    for _ in range(3):
        driver.place_and_pay_order(kg=10, participant=WANG)
    ids = [d[0] for d in deliveries(database)]
    receiver.statuses = [500]
    for delivery_id in ids:
        deliver(delivery_id)
    url = f"/api/v1/webhooks/{endpoint['id']}/deliveries"
    first = client.get(f"{url}?limit=2", headers=operator).get_json()
    assert [d["id"] for d in first["items"]] == ids[::-1][:2] and first["next_after"] == ids[1]
    rest = client.get(f"{url}?limit=2&after={first['next_after']}", headers=operator).get_json()
    assert [d["id"] for d in rest["items"]] == [ids[0]] and rest["next_after"] is None
    pending = client.get(f"{url}?status=pending", headers=operator).get_json()["items"]
    assert [d["id"] for d in pending] == [ids[0]]
    assert client.get(f"{url}?event_type=order.completed", headers=operator).get_json()["items"] == []
    assert client.get(f"{url}?status=lost", headers=operator).status_code == 422
    assert client.get("/api/v1/webhooks/whk_nope/deliveries", headers=operator).status_code == 404
    assert client.get(url).status_code == 401


# --- the sender's safety --------------------------------------------------------------------

def sender_settings(**changes):
    values = dict(retry_schedule=(1.0,), jitter=0.0, timeout_s=1.0, allow_http=True, allowed_networks=())
    return webhooks.Settings(**{**values, **changes})


def test_loopback_is_refused_unless_allowed(receiver):
    outcome = webhook_sender.post(receiver.url, b"{}", {}, sender_settings())
    assert outcome.status_code is None and "refused" in outcome.error and "loopback" in outcome.error
    assert receiver.requests == []
    allowed = sender_settings(allowed_networks=webhooks.rules.parse_networks("127.0.0.1/32"))
    assert webhook_sender.post(receiver.url, b"{}", {}, allowed).status_code == 200


def test_http_is_refused_unless_allowed(receiver):
    outcome = webhook_sender.post(receiver.url, b"{}", {}, sender_settings(allow_http=False))
    assert "refused" in outcome.error and "https" in outcome.error and receiver.requests == []


def test_every_address_of_the_host_is_checked(receiver):
    """A name with one public and one private address is refused: the client might
    otherwise connect to either."""
    resolver = lambda host, port: ["93.184.215.14", "127.0.0.1"]  # noqa: E731
    allowed_public_only = sender_settings()
    outcome = webhook_sender.post(f"http://hooks.example:{receiver.port}/x", b"{}", {}, allowed_public_only,
                                  resolver=resolver)
    assert "127.0.0.1" in outcome.error and "loopback" in outcome.error and receiver.requests == []


def test_the_connection_goes_to_the_checked_address(receiver):
    """DNS rebinding: the name is resolved once, checked, and that address is used; the
    request still names the host."""
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])  # a second lookup would get another answer
    settings = sender_settings(allowed_networks=webhooks.rules.parse_networks("127.0.0.0/8"))
    outcome = webhook_sender.post(f"http://hooks.example:{receiver.port}/x", b"{}", {}, settings,
                                  resolver=lambda host, port: next(answers))
    assert outcome.status_code == 200, outcome.error
    assert receiver.requests[0]["headers"]["Host"] == f"hooks.example:{receiver.port}"


def test_an_unresolvable_host_is_a_failed_attempt():
    outcome = webhook_sender.post("https://does-not-exist.invalid/x", b"{}", {}, sender_settings())
    assert outcome.status_code is None and "cannot resolve" in outcome.error


def test_a_closed_port_is_a_failed_attempt():
    from diandian_common.testing import free_port
    settings = sender_settings(allowed_networks=webhooks.rules.parse_networks("127.0.0.0/8"))
    outcome = webhook_sender.post(f"http://127.0.0.1:{free_port()}/x", b"{}", {}, settings)
    assert outcome.status_code is None and "Connection" in outcome.error
