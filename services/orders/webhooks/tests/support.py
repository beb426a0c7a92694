"""What the webhook tests share: a receiving endpoint, registering, finding and forcing deliveries."""
from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import select, update

from diandian_common.timestamps import utcnow
from diandian_common.uow import UnitOfWork
from orders import tasks
from orders.models import WebhookDelivery
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


def sender_settings(**changes):
    values = dict(retry_schedule=(1.0,), jitter=0.0, timeout_s=1.0, allow_http=True, allowed_networks=())
    return webhooks.Settings(**{**values, **changes})
