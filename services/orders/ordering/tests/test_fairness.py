"""Fair inventory: the pure rules, then the caps through the API."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diandian_common.testing import GuestClient
from diandian_common.uow import UnitOfWork
from orders.models import Order
from orders.ordering.domain import fairness

LIMITS = fairness.Limits(guest_order_kg=100, unpaid_per_participant_kg=150, unpaid_per_address_kg=400,
                         payment_window=timedelta(minutes=30),
                         low_inventory_payment_window=timedelta(minutes=10))


def check(quantity, *, by_operator=False, participant=0, address=0):
    return fairness.check_order(LIMITS, quantity_kg=quantity, by_operator=by_operator,
                                unpaid_of_participant_kg=participant, unpaid_of_address_kg=address)


def test_a_guests_order_is_capped_and_an_operators_is_not():
    assert check(100) is None
    refused = check(101)
    assert (refused.status, refused.code, refused.field) == (422, "validation_error", "quantity_kg")
    assert "operator key" in refused.message
    assert check(101, by_operator=True) is None


def test_what_a_participant_holds_unpaid_is_capped_for_everyone():
    assert check(50, participant=100) is None
    for by_operator in (False, True):
        refused = check(51, participant=100, by_operator=by_operator)
        assert (refused.status, refused.code) == (409, "unpaid_limit") and "100 kg unpaid" in refused.message


def test_what_an_address_holds_unpaid_is_capped_for_guests():
    assert check(100, address=300) is None
    assert check(100, address=301).code == "unpaid_limit"
    assert check(100, address=301, by_operator=True) is None  # a partner's guests share its address
    assert fairness.check_order(LIMITS, quantity_kg=100, by_operator=False, unpaid_of_participant_kg=0,
                                unpaid_of_address_kg=None) is None  # address unknown


@given(quantity=st.integers(1, 10**6), participant=st.integers(0, 10**6), address=st.integers(0, 10**6),
       by_operator=st.booleans())
def test_an_accepted_order_never_takes_anyone_past_a_cap(quantity, participant, address, by_operator):
    if check(quantity, by_operator=by_operator, participant=participant, address=address) is None:
        assert participant + quantity <= LIMITS.unpaid_per_participant_kg
        assert by_operator or (quantity <= LIMITS.guest_order_kg
                               and address + quantity <= LIMITS.unpaid_per_address_kg)


@pytest.mark.parametrize("available_after, window", [(1000, 30), (500, 30), (499, 10), (0, 10)])
def test_reservations_are_released_sooner_when_a_project_runs_low(available_after, window):
    assert fairness.payment_window(LIMITS, available_after_kg=available_after,
                                   low_threshold_kg=500) == timedelta(minutes=window)


# --- through the API ------------------------------------------------------------------------

@pytest.fixture
def caps(monkeypatch):
    monkeypatch.setenv("ORDER_MAX_KG_GUEST", "100")
    monkeypatch.setenv("ORDER_MAX_UNPAID_KG_PER_PARTICIPANT", "150")
    monkeypatch.setenv("ORDER_MAX_UNPAID_KG_PER_ADDRESS", "200")


def place(client, kg, guest="p_alice", address="203.0.113.7", headers=None):
    body = {"project_id": client.get("/api/v1/projects").get_json()["items"][0]["id"], "quantity_kg": kg,
            "participant": {"display_name": "王芳"}}
    return GuestClient(client, guest, address).post("/api/v1/orders", json=body, headers={
        "Idempotency-Key": uuid.uuid4().hex, **(headers or {})})


def test_one_anonymous_request_cannot_hoard_a_project(client, caps):
    hoard = place(client, 2_000_000)
    assert hoard.status_code == 422 and "quantity_kg" in hoard.get_json()["error"]["fields"]
    assert place(client, 100).status_code == 201


def test_unpaid_kilograms_are_capped_per_participant_and_per_address(client, caps):
    assert place(client, 100).status_code == 201
    over = place(client, 51)  # 151 kg unpaid for alice
    assert over.status_code == 409 and over.get_json()["error"]["code"] == "unpaid_limit"
    assert place(client, 50).status_code == 201  # exactly 150
    # a fresh cookie from the same address is still the same address
    rotated = place(client, 100, guest="p_rotated")  # 150 + 100 > 200
    assert rotated.status_code == 409 and "this address" in rotated.get_json()["error"]["message"]
    assert place(client, 100, guest="p_elsewhere", address="198.51.100.1").status_code == 201


def test_paying_frees_the_participants_allowance(client, caps):
    first = place(client, 100).get_json()
    GuestClient(client, "p_alice", "203.0.113.7").post(f"/api/v1/orders/{first['id']}/payment")
    assert place(client, 100).status_code == 201


def test_an_operator_key_places_larger_orders(client, caps, operator):
    body = {"project_id": client.get("/api/v1/projects").get_json()["items"][0]["id"], "quantity_kg": 140,
            "participant": {"id": "delegate-1", "display_name": "Delegation"}}
    placed = client.post("/api/v1/orders", json=body, headers={**operator, "Idempotency-Key": "op-1"})
    assert placed.status_code == 201 and placed.get_json()["quantity_kg"] == 140


def test_a_low_project_gives_new_orders_a_shorter_payment_window(client, monkeypatch):
    monkeypatch.setenv("LOW_INVENTORY_THRESHOLD_KG", str(10**9))  # every project is "low"
    monkeypatch.setenv("ORDER_PAYMENT_TIMEOUT_LOW_INVENTORY_MINUTES", "7")
    order = place(client, 5).get_json()
    left = datetime.fromisoformat(order["expires_at"]) - datetime.now(timezone.utc)
    assert timedelta(minutes=6) < left <= timedelta(minutes=7)


def test_the_address_is_kept_only_as_a_keyed_hash(client, database, caps):
    order = place(client, 5).get_json()
    with UnitOfWork(database) as uow:
        stored = uow.session.get(Order, order["id"])
        assert len(stored.address_hash) == 64 and "203.0.113.7" not in stored.address_hash
