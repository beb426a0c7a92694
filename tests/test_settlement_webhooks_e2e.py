"""Settlement and outbound webhooks end to end, through the gateway, with real workers
(the session's ``stack``) and a real receiver on 127.0.0.1 started here.

The receiver checks every signature, fails the first attempts of every event on purpose
and still gets each event once its retry succeeds; a burst of orders, some refunded
through a certificate's revocation, leaves statements that add up and a reconciliation
that passes.

The stack must let webhooks reach 127.0.0.1 over plain http and retry quickly:
``WEBHOOK_ALLOW_HTTP=true``, ``WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8``,
``WEBHOOK_RETRY_SCHEDULE=1,2,4`` (and, to keep it fast, ``WEBHOOK_DISPATCH_SECONDS=1``)
in tests/stack.py's environment; without them this module is skipped.
"""
from __future__ import annotations

import csv
import io
import ipaddress
import json
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest

from orders.settlement.domain import rules
from orders.payments.domain import signatures
from tests.outcomes import SCENE, publish
from tests.stack import OPERATOR_KEY, ROOT

pytestmark = pytest.mark.integration

OPERATOR = {"X-API-Key": OPERATOR_KEY}
FEE = rules.FeeRule(bps=500, min_fen=10)
ORDERS_KG = (13, 25, 7, 40, 1, 120)   # the burst; the last two are refunded
SCENE_ORDERS = 2                      # the first two belong to SCENE
REFUNDED = 2
ISSUED_KG = 1000
THRESHOLD_KG = 900                    # the last order takes the project below it


@pytest.fixture(scope="module")
def webhook_stack(stack):
    env = stack.env
    problems = []
    if env.get("WEBHOOK_ALLOW_HTTP", "").lower() not in ("1", "true", "yes", "on"):
        problems.append("WEBHOOK_ALLOW_HTTP=true")
    networks = [n.strip() for n in env.get("WEBHOOK_ALLOWED_NETWORKS", "").split(",") if n.strip()]
    if not any(ipaddress.ip_address("127.0.0.1") in ipaddress.ip_network(n, strict=False) for n in networks):
        problems.append("WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8")
    schedule = rules_schedule(env.get("WEBHOOK_RETRY_SCHEDULE"))
    if schedule is None or sum(schedule) > 30:
        problems.append("WEBHOOK_RETRY_SCHEDULE=1,2,4")
    if problems:
        pytest.skip("webhooks to a local receiver need tests/stack.py to pass " + ", ".join(problems)
                    + " to the stack")
    return stack


def rules_schedule(text):
    try:
        return [float(part) for part in text.split(",")] if text else None
    except ValueError:
        return None


class VerifyingReceiver:
    """Answers 500 to the first ``fail_first[type]`` attempts of every event, then 200;
    checks each request's signature with the secret of the endpoint it was sent to."""

    def __init__(self, fail_first: dict[str, int]):
        self.fail_first = fail_first
        self.secrets: dict[str, str] = {}      # path → secret
        self.calls: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.answer(self.path, self.headers.get("Diandian-Signature"), raw)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, header: str | None, raw: bytes) -> int:
        secret = self.secrets.get(path)
        try:
            signatures.verify(secret or "", header, raw, time.time(), 300)
            signed = secret is not None
        except signatures.SignatureError:
            signed = False
        event = json.loads(raw)
        with self.lock:
            earlier = [c for c in self.calls if c["path"] == path and c["event"]["id"] == event["id"]]
            failing = signed and len(earlier) < self.fail_first.get(event["type"], 0)
            status = 401 if not signed else 500 if failing else 200
            self.calls.append({"path": path, "event": event, "signed": signed, "status": status})
        return status

    def accepted(self, path: str) -> list[dict]:
        with self.lock:
            return [c["event"] for c in self.calls if c["path"] == path and c["status"] == 200]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_settlement_and_signed_webhooks_after_a_burst_of_orders(webhook_stack):
    stack, driver = webhook_stack, webhook_stack.driver
    receiver = VerifyingReceiver(fail_first={"order.paid": 2, "order.completed": 1, "certificate.issued": 1,
                                             "certificate.revoked": 1, "project.low_inventory": 1})
    endpoints = []
    try:
        # --- an owner, a project with a fee rule and a low-inventory threshold ---------------
        owner = driver.api("POST", "/api/v1/settlements/owners", headers=OPERATOR, json={
            "name": f"端到端林业 {uuid.uuid4().hex[:6]}", "payout_account": "ICBC 6222 0000 0000 0042",
            "contact": "finance@e2e-forest.example"})
        assert owner.status_code == 201, owner.text
        owner = owner.json()
        code = f"CDCER-SETTLE-{uuid.uuid4().hex[:6].upper()}"
        project = driver.api("POST", "/api/v1/projects", headers=OPERATOR, json={
            "code": code, "name": "结算测试林", "name_en": "Settlement Test Forest", "type": "forestry_carbon_sink",
            "location": "Chengdu", "vintage": 2025, "price_fen_per_tonne": 6000, "owner_id": owner["id"],
            "fee_bps": FEE.bps, "fee_min_fen": FEE.min_fen, "low_inventory_threshold_kg": THRESHOLD_KG})
        assert project.status_code == 201, project.text
        project = project.json()
        issued = driver.api("POST", f"/api/v1/projects/{project['id']}/issuances", headers=OPERATOR,
                           json={"first": 1, "last": ISSUED_KG})
        assert issued.status_code == 201, issued.text

        # --- two endpoints: everything, and one scene's payments -----------------------------
        for path, events, scene in (("/all", ["order.paid", "order.completed", "certificate.issued",
                                              "certificate.revoked", "project.low_inventory"], None),
                                    ("/scene", ["order.paid"], SCENE)):
            created = driver.api("POST", "/api/v1/webhooks", headers=OPERATOR,
                                json={"url": receiver.base + path, "events": events, "scene": scene})
            assert created.status_code == 201, created.text
            receiver.secrets[path] = created.json()["secret"]
            endpoints.append(created.json())
        everything, scene_only = endpoints

        # --- the burst -----------------------------------------------------------------------
        orders = [driver.place_and_pay_order(project["id"], kg, scene=SCENE if i < SCENE_ORDERS else None,
                                             participant=driver.new_participant("e2e-settle",
                                                                                display_name="结算 Settlement"))
                  for i, kg in enumerate(ORDERS_KG)]
        ids = {o["id"] for o in orders}

        def all_completed():
            views = [driver.order(o["id"]) for o in orders]
            return views if all(v["status"] == "completed" for v in views) else None
        views = driver.wait_for(all_completed, timeout=120, what="every order completed")

        refunded = views[-REFUNDED:]
        publish(stack.redis_url, [("orders.certificate_revoked", {
            "v": 1, "order_id": view["id"], "certificate_id": view["certificate"]["id"],
            "reason": "end-to-end revocation", "refund": True}) for view in refunded])

        def refunds_done():
            now = [driver.order(v["id"]) for v in refunded]
            return now if all(v["refund"] for v in now) else None
        driver.wait_for(refunds_done, timeout=60, what="the revoked orders refunded")

        # --- every event arrives, signed, accepted exactly once after failed attempts ---------
        def mine(event):
            data = event["data"]
            return data.get("id") in ids or data.get("order_id") in ids or \
                data.get("project", {}).get("id") == project["id"]

        expected = Counter({"order.paid": len(orders), "order.completed": len(orders),
                            "certificate.issued": len(orders), "certificate.revoked": REFUNDED,
                            "project.low_inventory": 1})

        def all_accepted():
            got = Counter(e["type"] for e in receiver.accepted("/all") if mine(e))
            return got if got == expected else None
        driver.wait_for(all_accepted, timeout=120, interval=0.5, what=f"the receiver to accept {dict(expected)}")
        driver.wait_for(lambda: len([e for e in receiver.accepted("/scene") if mine(e)]) == SCENE_ORDERS,
                       timeout=60, what="the scene endpoint's payments")

        with receiver.lock:
            calls = [c for c in receiver.calls if mine(c["event"])]
        assert calls and all(c["signed"] for c in calls), "every delivery carries a valid signature"
        attempts = defaultdict(list)
        for call in calls:
            attempts[(call["path"], call["event"]["id"])].append(call["status"])
        for (path, event_id), statuses in attempts.items():
            assert statuses[-1] == 200 and statuses.count(200) == 1, (path, event_id, statuses)
            assert 500 in statuses, "the first attempts were failed on purpose"
        scene_events = receiver.accepted("/scene")
        assert sorted(e["data"]["id"] for e in scene_events if mine(e)) == \
            sorted(o["id"] for o in orders[:SCENE_ORDERS])
        low = next(e for e in receiver.accepted("/all") if e["type"] == "project.low_inventory" and mine(e))
        assert low["data"]["threshold_kg"] == THRESHOLD_KG and low["data"]["available_kg"] < THRESHOLD_KG

        # the deliveries' log tells the same story
        log = driver.api("GET", f"/api/v1/webhooks/{everything['id']}/deliveries",
                        params={"event_type": "order.paid", "limit": 200}, headers=OPERATOR)
        assert log.status_code == 200, log.text
        logged = [d for d in log.json()["items"] if d["event"]["id"] in
                  {e["id"] for e in receiver.accepted("/all") if e["type"] == "order.paid" and mine(e)}]
        assert len(logged) == len(orders)
        for delivery in logged:
            assert delivery["status"] == "succeeded" and delivery["attempts"] == 3
            assert [a["status_code"] for a in delivery["log"]] == [500, 500, 200]

        # a delivery re-sent by hand arrives again with the same event id (receivers de-duplicate)
        again = logged[0]
        resent = driver.api("POST", f"/api/v1/webhooks/{everything['id']}/deliveries/{again['id']}/resend",
                           headers=OPERATOR)
        assert resent.status_code == 202, resent.text
        driver.wait_for(lambda: [e["id"] for e in receiver.accepted("/all")].count(again["event"]["id"]) == 2,
                       timeout=30, what="the re-sent delivery")

        # --- statements add up -----------------------------------------------------------------
        period = rules.period_of(datetime.now(timezone.utc), ZoneInfo("Asia/Shanghai"))
        statement = driver.api("GET", "/api/v1/settlements", params={"project": code, "period": period},
                              headers=OPERATOR)
        assert statement.status_code == 200, statement.text
        [item] = statement.json()["items"]
        kept = orders[:-REFUNDED]
        splits = [rules.split(o["amount_fen"], FEE) for o in kept]
        assert item["owner"]["id"] == owner["id"] and item["status"] == "open"
        assert item["gross_fen"] == sum(o["amount_fen"] for o in kept) == item["fee_fen"] + item["net_fen"]
        assert (item["fee_fen"], item["net_fen"]) == (sum(s.fee_fen for s in splits), sum(s.net_fen for s in splits))
        assert (item["orders"], item["refunds"], item["quantity_kg"]) == \
            (len(kept), REFUNDED, sum(ORDERS_KG[:-REFUNDED]))
        assert item["refunded_fen"] == sum(o["amount_fen"] for o in orders[-REFUNDED:])
        as_csv = driver.api("GET", "/api/v1/settlements", params={"project": code, "period": period},
                           headers={**OPERATOR, "Accept": "text/csv"})
        [row] = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert (int(row["gross_fen"]), int(row["fee_fen"]), int(row["net_fen"])) == \
            (item["gross_fen"], item["fee_fen"], item["net_fen"])
        early = driver.api("POST", "/api/v1/settlements/payouts", headers=OPERATOR, json={
            "owner_id": owner["id"], "project_id": project["id"], "period": period,
            "amount_fen": item["net_fen"], "reference": f"E2E-{uuid.uuid4().hex[:8]}",
            "paid_on": time.strftime("%Y-%m-%d")})
        assert early.status_code == 409 and early.json()["error"]["code"] == "period_open"

        # --- the public ledger: kilograms retired (revoked ones stay retired), the owner's share ---
        summary = driver.api("GET", "/api/v1/ledger/summary").json()
        mine_summary = next(i for i in summary["items"] if i["project_id"] == project["id"])
        assert (mine_summary["retired_kg"], mine_summary["owner_net_fen"], mine_summary["paid_to_owner_fen"]) == \
            (sum(ORDERS_KG), item["net_fen"], 0)

        # --- the reconciliation passes, over the API and from the command line ----------------
        verified = driver.api("GET", "/api/v1/settlements/verify", headers=OPERATOR).json()
        assert verified["ok"], verified["difference"]
        env = {**stack.env, "ORDERS_DATABASE_URL": f"sqlite:///{stack.var_dir / 'orders.db'}"}
        command = subprocess.run([sys.executable, "-m", "flask", "--app", "orders.app", "settlement", "verify"],
                                 cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert command.returncode == 0, command.stdout + command.stderr
        assert "settlement ok" in command.stdout
    finally:
        for endpoint in endpoints:
            driver.api("DELETE", f"/api/v1/webhooks/{endpoint['id']}", headers=OPERATOR)
        receiver.close()
