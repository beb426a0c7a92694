"""The orders service's refusals in the language the client asks for (diandian_common.i18n),
across its capabilities: placement, identity, idempotency, payments and checkout, catalogue,
ledger and registry, settlement, webhooks. Each request of the battery is answered in Chinese
for ``Accept-Language: zh-CN`` (every message of ``error.fields`` too) and in English for
``en``. A new refusal of a new route belongs in the battery; a message only a domain rule
builds is checked against the catalogue below."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from diandian_common.testing import GuestClient, assert_errors_in_language, has_chinese
from orders.messages import MESSAGES
from orders.ordering.domain import fairness, lifecycle
from orders.settlement.domain import rules as settlement_rules
from orders.webhooks.domain import rules as webhook_rules

KEY = "orders-test-operator-key"
PROJECT = {"code": "CN-TEST-1", "name": "测试项目", "type": "forestry_carbon_sink", "location": "四川",
           "vintage": 2021, "price_fen_per_tonne": 8000}


def _key() -> dict:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _order(project_id, kg=10, **extra):
    return {"project_id": project_id, "quantity_kg": kg, "participant": {"display_name": "王芳"}, **extra}


@pytest.fixture
def world(client, operator, monkeypatch):
    """A project, an owner and one pending order of guest p-1; an operator's guest may hold
    more unpaid than the project has, so a large order meets insufficient_credits."""
    monkeypatch.setenv("ORDER_MAX_UNPAID_KG_PER_PARTICIPANT", str(10**9))
    project = client.get("/api/v1/projects").get_json()["items"][0]
    owner = client.post("/api/v1/settlements/owners", headers=operator, json={
        "name": "Owner Co", "payout_account": "6222 0000", "contact": "Li"}).get_json()
    order = GuestClient(client, "p-1").post("/api/v1/orders", json=_order(project["id"]),
                                            headers=_key()).get_json()
    return project, owner, order


def _placed(project_id, /, **changes):
    """An operator's order for the guest it names."""
    body = _order(project_id, participant={"id": "guest-1", "display_name": "王芳"})
    return {key: value for key, value in {**body, **changes}.items() if value is not None}


def battery(client, project, owner, order, operator):
    pid, oid, own = project["id"], order["id"], owner["id"]
    op = {"headers": operator}
    reused = _key()  # first used for 10 kg, then sent again with another body
    assert client.post("/api/v1/orders", json=_placed(pid, quantity_kg=10),
                       headers={**operator, **reused}).status_code == 201
    return [
        # placement and identity (an operator places for the guest it names)
        ("POST", "/api/v1/orders", {"json": _order(pid), "headers": _key()}),          # 401 no guest, no key
        ("POST", "/api/v1/orders", {"json": _order(pid), "headers": {"X-API-Key": "wrong", **_key()}}),
        ("POST", "/api/v1/orders", {"json": _order(pid), "headers": operator}),  # 422: no Idempotency-Key
        ("POST", "/api/v1/orders", {"json": _order(pid),
                                    "headers": {**operator, "Idempotency-Key": "k" * 500}}),
        ("POST", "/api/v1/orders", {"json": _order(pid), "headers": {**operator, **_key()}}),  # names nobody
        ("POST", "/api/v1/orders", {"json": {}, "headers": {**operator, **_key()}}),
        *[("POST", "/api/v1/orders", {"json": _placed(pid, **body), "headers": {**operator, **_key()}})
          for body in [{"quantity_kg": 0}, {"quantity_kg": "lots"}, {"estimate_id": "e1"},
                       {"project_id": "prj_nowhere"}, {"scene": "no-such-scene"}, {"scene": "Bad Slug"},
                       {"quantity_kg": 10**7}, {"participant": {"id": "x" * 200}}]],
        ("POST", "/api/v1/orders", {"json": _placed(pid, quantity_kg=None, estimate_id="e1"),
                                    "headers": {**operator, **_key()}}),           # the calculator is away
        ("POST", "/api/v1/orders", {"json": _placed(pid, quantity_kg=11), "headers": {**operator, **reused}}),
        ("POST", "/api/v1/orders", {"data": "{", "content_type": "application/json",
                                    "headers": {**operator, **_key()}}),
        ("GET", "/api/v1/orders/ord_nowhere", {}),
        ("GET", "/api/v1/orders", {}),
        ("GET", "/api/v1/orders?after=ord_nowhere", op),
        ("GET", "/api/v1/orders?project=prj_nowhere", op),
        ("GET", "/api/v1/orders?limit=0", op),
        ("PUT", "/api/v1/orders", {}),
        # payment and checkout
        ("POST", f"/api/v1/orders/{oid}/payment", {}),                                      # not the guest's
        ("POST", "/api/v1/orders/ord_nowhere/payment", op),
        ("POST", f"/api/v1/orders/{oid}/payment", {"json": {"reference": "r" * 101}, **op}),
        ("POST", f"/api/v1/orders/{oid}/checkout", {"json": {"method": "barter"}, **op}),
        ("POST", f"/api/v1/orders/{oid}/checkout", {"json": {"method": "jsapi", "provider": "p" * 21}, **op}),
        ("POST", f"/api/v1/orders/{oid}/checkout", {"json": {"method": "qr"}, **op}),  # no provider for it
        ("POST", "/api/v1/orders/ord_nowhere/checkout", {"json": {"method": "native"}, **op}),
        ("POST", "/api/v1/payments/nowhere/webhook", {"json": {}}),
        # catalogue
        ("POST", "/api/v1/projects", {"json": PROJECT}),
        ("POST", "/api/v1/projects", {"json": {**PROJECT, "code": project["code"]}, **op}),
        ("POST", "/api/v1/projects", {"json": {**PROJECT, "code": "x", "type": "Forest", "registry": "!",
                                               "vintage": 1800, "price_fen_per_tonne": -1}, **op}),
        ("GET", "/api/v1/projects/prj_nowhere", {}),
        ("PATCH", f"/api/v1/projects/{pid}", {"json": {}, **op}),
        ("PATCH", f"/api/v1/projects/{pid}", {"json": {"owner_id": "own_nowhere"}, **op}),
        ("POST", f"/api/v1/projects/{pid}/issuances", {"json": {"first": 10, "last": 5}, **op}),
        ("POST", f"/api/v1/projects/{pid}/issuances", {"json": {"first": 1, "last": 5}, **op}),
        ("POST", "/api/v1/projects/prj_nowhere/issuances", {"json": {"first": 1, "last": 5}, **op}),
        # ledger and registry
        ("GET", "/api/v1/ledger?project=prj_nowhere", {}),
        ("GET", "/api/v1/projects/prj_nowhere/registry-retirements", {}),
        ("POST", f"/api/v1/projects/{pid}/registry-retirements", {"json": {
            "quantity_t": 0, "registry_serial_first": "", "cancellation_id": "c" * 300, "url": "ftp://x",
            "retired_on": (date.today() + timedelta(days=2)).isoformat()}, **op}),
        ("POST", f"/api/v1/projects/{pid}/registry-retirements", {"json": {
            "quantity_t": 1000, "registry_serial_first": "A1", "registry_serial_last": "A9",
            "cancellation_id": "C1", "url": "https://registry.example/c1", "retired_on": "2024-01-01"},
            **op}),
        # settlement
        ("POST", "/api/v1/settlements/owners", {"json": {}}),
        ("POST", "/api/v1/settlements/owners", {"json": {"name": " ", "payout_account": "", "contact": 5},
                                                **op}),
        ("POST", "/api/v1/settlements/owners", {"json": {"name": "Owner Co", "payout_account": "1",
                                                         "contact": "x"}, **op}),
        ("PATCH", f"/api/v1/settlements/owners/{own}", {"json": {}, **op}),
        ("PATCH", "/api/v1/settlements/owners/own_nowhere", {"json": {"name": "n"}, **op}),
        ("GET", "/api/v1/settlements/owners/own_nowhere", op),
        ("GET", "/api/v1/settlements?period=2024-13", op),
        ("POST", "/api/v1/settlements/payouts", {"json": {"owner_id": own, "project_id": pid, "period": "May",
                                                          "amount_fen": 0, "reference": "", "paid_on": "x"},
                                                 **op}),
        ("POST", "/api/v1/settlements/payouts", {"json": {
            "owner_id": own, "project_id": pid, "period": "2024-01", "amount_fen": 1, "reference": "R1",
            "paid_on": (date.today() + timedelta(days=2)).isoformat()}, **op}),
        ("POST", "/api/v1/settlements/payouts", {"json": {
            "owner_id": own, "project_id": pid, "period": "2024-01", "amount_fen": 1, "reference": "R2",
            "paid_on": "2024-02-01"}, **op}),
        ("POST", "/api/v1/settlements/payouts", {"json": {
            "owner_id": own, "project_id": "prj_nowhere", "period": "2024-01", "amount_fen": 1,
            "reference": "R3",
            "paid_on": "2024-02-01"}, **op}),
        # webhooks
        ("POST", "/api/v1/webhooks", {"json": {"url": "https://hooks.example/x", "events": ["order.paid"]}}),
        *[("POST", "/api/v1/webhooks", {"json": {"url": url, "events": ["order.paid"]}, **op}) for url in [
            "http://hooks.example/x", "https://user:pw@hooks.example/x", "https://hooks.example/x#frag",
            "https://127.0.0.1/x", "https://10.0.0.8/x", "https:///x", "https://hooks.example/a b",
            "x" * 3000]],
        ("POST", "/api/v1/webhooks", {"json": {"url": "https://hooks.example/x", "events": ["order.eaten"],
                                               "scene": "Bad Slug"}, **op}),
        ("POST", "/api/v1/webhooks", {"json": {"url": "https://hooks.example/x", "events": [],
                                               "scene": "no-such-scene"}, **op}),
        ("GET", "/api/v1/webhooks/whk_nowhere", op),
        ("PATCH", "/api/v1/webhooks/whk_nowhere", {"json": {}, **op}),
        ("POST", "/api/v1/webhooks/whk_nowhere/deliveries/1/resend", op),
    ]


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_refusal_speaks_the_asked_language(client, operator, world, language):
    assert_errors_in_language(client, battery(client, *world, operator), language)


def test_the_guests_own_refusals_speak_chinese(client, operator, world):
    project, _owner, order = world
    guest = GuestClient(client, "p-2")
    assert_errors_in_language(guest, [
        ("POST", f"/api/v1/orders/{order['id']}/payment", {}),                            # another's order
        ("POST", "/api/v1/orders", {"json": _order(project["id"], 10**6),
                                    "headers": _key()}),                                  # over a guest's cap
        ("POST", "/api/v1/orders", {"json": {**_order(project["id"]), "participant": {"id": "p-9"}},
                                    "headers": _key()}),
    ], "zh")
    key = _key()
    assert guest.post("/api/v1/orders", json=_order(project["id"]), headers=key).status_code == 201
    assert_errors_in_language(guest, [("POST", "/api/v1/orders", {"json": _order(project["id"], 11),
                                                                  "headers": key})], "zh")


LIMITS = fairness.Limits(guest_order_kg=100, unpaid_per_participant_kg=200, unpaid_per_address_kg=1000,
                         payment_window=timedelta(minutes=30),
                         low_inventory_payment_window=timedelta(minutes=10))


def _domain_messages() -> list[str]:
    """Messages that domain rules build, each way they can refuse."""
    refusals = [fairness.check_order(LIMITS, quantity_kg=150, by_operator=False, unpaid_of_participant_kg=0,
                                     unpaid_of_address_kg=0),
                fairness.check_order(LIMITS, quantity_kg=50, by_operator=True, unpaid_of_participant_kg=190,
                                     unpaid_of_address_kg=None),
                fairness.check_order(LIMITS, quantity_kg=50, by_operator=False, unpaid_of_participant_kg=0,
                                     unpaid_of_address_kg=990)]
    messages = [refusal.message for refusal in refusals]
    zone, now = ZoneInfo("Asia/Shanghai"), datetime(2024, 6, 15, tzinfo=timezone.utc)
    statements = [None, settlement_rules.Statement(None, "prj_1", "2024-01"),
                  settlement_rules.Statement("own_1", "prj_1", "2024-06", net_fen=500),
                  settlement_rules.Statement("own_1", "prj_1", "2024-01", net_fen=500, paid_fen=500),
                  settlement_rules.Statement("own_1", "prj_1", "2024-01", net_fen=500, paid_fen=100)]
    messages += [settlement_rules.payout_refusal(statement, 1000, now, zone)[1] for statement in statements]
    messages.append(str(lifecycle.IllegalMove("pay", lifecycle.CANCELLED)))
    for url in ["", "https://a b", "http://x.example", "https://u@x.example", "https://x.example#f", "https://",
                "https://[::1"]:
        try:
            webhook_rules.parse_target(url, allow_http=False)
        except webhook_rules.UnsafeTarget as exc:
            messages.append(str(exc))
    return messages


def test_the_messages_domain_rules_build_have_chinese():
    messages = _domain_messages()
    assert len(messages) == 3 + 5 + 1 + 7
    untranslated = [m for m in messages if not has_chinese(MESSAGES.translate(m, "zh"))]
    assert not untranslated, untranslated
