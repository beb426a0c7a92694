"""Who an order belongs to and who may see it: the participant is the guest the gateway
vouches for (or one an operator key with the guests scope names, namespaced by the key);
an order's personal data is its participant's and the operators' alone."""
from __future__ import annotations

import uuid

from diandian_common.auth import OPERATOR_ASSERTION_HEADER, Operator, sign_operator_assertion
from diandian_common.testing import GuestClient, guest_headers

ORDERS = "/api/v1/orders"


def body(project_id, **participant):
    return {"project_id": project_id, "quantity_kg": 5,
            "participant": {"display_name": "王芳", **participant}}


def key():
    return {"Idempotency-Key": uuid.uuid4().hex}


def project_id(client):
    return client.get("/api/v1/projects").get_json()["items"][0]["id"]


def test_the_order_is_the_guests_the_gateway_vouches_for(client):
    placed = GuestClient(client, "p_alice").post(ORDERS, json=body(project_id(client)), headers=key())
    assert placed.status_code == 201
    assert placed.get_json()["participant"] == {"id": "p_alice", "display_name": "王芳", "organization": None,
                                                "mask_name": False}


def test_a_guest_cannot_name_a_participant(client):
    for guest in (client, GuestClient(client, "p_mallory")):
        refused = guest.post(ORDERS, json=body(project_id(client), id="p_alice"), headers=key())
        assert refused.status_code == 422
        assert "assigned by the platform" in refused.get_json()["error"]["fields"]["participant"]["id"][0]


def test_without_a_guest_or_an_operator_nobody_places_an_order(client):
    refused = client.post(ORDERS, json=body(project_id(client)), headers=key())
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "unauthorized"


def test_forged_or_misdirected_assertions_are_refused(client):
    forged = {"X-Diandian-Participant": "p_alice"}
    elsewhere = guest_headers("p_alice", "POST", "/api/v1/orders/ord_x/payment")  # another route's
    for headers in (forged, elsewhere):
        refused = client.post(ORDERS, json=body(project_id(client)), headers={**headers, **key()})
        assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"


def test_an_operator_with_the_guests_scope_names_its_guests_in_its_own_namespace(client, operator):
    kiosk = client.post(ORDERS, json=body(project_id(client), id="p_alice"), headers={**operator, **key()})
    assert kiosk.status_code == 201
    assert kiosk.get_json()["participant"]["id"] == "env~p_alice"  # never the browser guest p_alice
    nameless = client.post(ORDERS, json=body(project_id(client)), headers={**operator, **key()})
    assert nameless.status_code == 422 and "participant" in nameless.get_json()["error"]["fields"]


def test_a_key_without_the_guests_scope_names_nobody(client):
    assertion = sign_operator_assertion(Operator("k_scenes", frozenset({"scenes"})), "POST", ORDERS)
    refused = client.post(ORDERS, json=body(project_id(client), id="p_alice"),
                          headers={OPERATOR_ASSERTION_HEADER: assertion, **key()})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "insufficient_scope"


def test_nobody_renames_another_guest(client):
    alice, mallory = GuestClient(client, "p_alice"), GuestClient(client, "p_mallory")
    hers = alice.post(ORDERS, json=body(project_id(client)), headers=key()).get_json()
    theirs = mallory.post(ORDERS, json=body(project_id(client), display_name="Mallory owns this"),
                          headers=key()).get_json()
    assert theirs["participant"]["id"] == "p_mallory"
    assert alice.get(f"{ORDERS}/{hers['id']}").get_json()["participant"]["display_name"] == "王芳"


def test_an_idempotency_key_replays_only_for_the_guest_who_used_it(client):
    same = {"Idempotency-Key": "shared-key"}
    placed = GuestClient(client, "p_alice").post(ORDERS, json=body(project_id(client)), headers=same)
    assert placed.status_code == 201
    other = GuestClient(client, "p_mallory").post(ORDERS, json=body(project_id(client)), headers=same)
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "idempotency_conflict"


def test_an_orders_personal_data_is_its_guests_and_the_operators(client, operator):
    alice = GuestClient(client, "p_alice")
    order = alice.post(ORDERS, json=body(project_id(client)), headers=key()).get_json()
    path = f"{ORDERS}/{order['id']}"
    own = alice.get(path).get_json()
    assert own["participant"]["display_name"] == "王芳" and own["payment"]["provider"] == "sandbox"
    assert {"certificate", "refund"} <= set(own)
    assert client.get(path, headers=operator).get_json() == own
    for stranger in (client, GuestClient(client, "p_mallory")):
        public = stranger.get(path).get_json()
        assert not {"participant", "certificate", "payment", "refund"} & set(public)
        assert (public["id"], public["status"], public["quantity_kg"]) == (order["id"], "pending_payment", 5)
        assert "王芳" not in str(public) and "p_alice" not in str(public)


def test_only_the_orders_guest_or_an_operator_pays_it(client, operator):
    alice = GuestClient(client, "p_alice")
    order = alice.post(ORDERS, json=body(project_id(client)), headers=key()).get_json()
    payment = f"{ORDERS}/{order['id']}/payment"
    for stranger in (client, GuestClient(client, "p_mallory")):
        refused = stranger.post(payment)
        assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "not_your_order"
    assert alice.get(f"{ORDERS}/{order['id']}").get_json()["status"] == "pending_payment"
    assert alice.post(payment).status_code == 202
    other = GuestClient(client, "p_bob").post(ORDERS, json=body(project_id(client)), headers=key()).get_json()
    assert client.post(f"{ORDERS}/{other['id']}/payment", headers=operator).status_code == 202
