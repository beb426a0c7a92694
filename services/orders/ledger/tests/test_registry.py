"""Registry anchoring through the API: operators record registry cancellations; orders and
ledger entries show the records covering their serials."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from diandian_common.contracts import load
from diandian_common.testing import Driver, GuestClient
from diandian_common.timestamps import utcnow
from diandian_common.uow import UnitOfWork
from orders.ledger import registry
from orders.ledger import service as ledger_service
from orders.ledger.domain import chain
from orders.models import AnchoredRange, OutboxMessage

PROJECT = {"code": "CDCER-ANCHOR", "name": "锚定测试", "name_en": "Anchoring test",
           "type": "forestry_carbon_sink", "location": "Chengdu", "vintage": 2024,
           "price_fen_per_tonne": 8000}


AUDIT_GRACE = timedelta(minutes=5)


def record_body(**changes):
    return {"quantity_t": 1, "registry_serial_first": "CCER-2024-000001",
            "registry_serial_last": "CCER-2024-001000",
            "cancellation_id": "CXL-1", "url": "https://registry.example.cn/cancellations/CXL-1",
            "retired_on": date.today().isoformat(), **changes}


@pytest.fixture
def project(client, operator):
    created = client.post("/api/v1/projects", json=PROJECT, headers=operator).get_json()
    for first, last in ((1, 1500), (2001, 5000)):
        assert client.post(f"/api/v1/projects/{created['id']}/issuances", json={"first": first, "last": last},
                           headers=operator).status_code == 201
    return created


def retire(client, database, project_id, kg, participant="p-1"):
    order = Driver(client).place_and_pay_order(project_id, kg, {"id": participant, "display_name": "王芳"})
    with UnitOfWork(database) as uow:
        assert ledger_service.retire(uow, order["id"]) is True
    return order["id"]


def post_record(client, operator, project_id, **changes):
    return client.post(f"/api/v1/projects/{project_id}/registry-retirements", json=record_body(**changes),
                       headers=operator)


def registry_of(client, order_id):
    return client.get(f"/api/v1/orders/{order_id}").get_json()["retirement"]["registry"]


def test_records_cover_retired_serials_in_order_and_orders_show_them(client, database, operator, project):
    # Serials 1-600, 601-1500 + 2001-2100 (across blocks), 2101-2500.
    a, b, c = (retire(client, database, project["id"], kg) for kg in (600, 1000, 400))
    path = f"/api/v1/projects/{project['id']}/registry-retirements"
    assert client.get(path).get_json() == {"project_id": project["id"], "items": [], "retired_kg": 2000,
                                           "anchored_kg": 0, "unanchored_kg": 2000}
    assert registry_of(client, a) is None

    first = post_record(client, operator, project["id"])
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert (body["quantity_t"], body["quantity_kg"], body["cancellation_id"]) == (1, 1000, "CXL-1")
    assert body["serial_ranges"] == ["CDCER-ANCHOR-2024:000000001-000001000"]
    assert body["retired_on"] == date.today().isoformat()

    anchor_1 = {"cancellation_id": "CXL-1", "url": "https://registry.example.cn/cancellations/CXL-1",
                "retired_on": date.today().isoformat()}
    assert registry_of(client, a) == {"anchored_kg": 600, "complete": True,
                                      "records": [{**anchor_1, "anchored_kg": 600}]}
    assert registry_of(client, b) == {"anchored_kg": 400, "complete": False,
                                      "records": [{**anchor_1, "anchored_kg": 400}]}
    assert registry_of(client, c) is None

    second = post_record(client, operator, project["id"], cancellation_id="CXL-2",
                         url="http://localhost:9000/c/2")
    assert second.status_code == 201
    assert second.get_json()["serial_ranges"] == [
        "CDCER-ANCHOR-2024:000001001-000001500", "CDCER-ANCHOR-2024:000002001-000002500"]
    covered_b = registry_of(client, b)
    assert covered_b["complete"] is True and covered_b["anchored_kg"] == 1000
    def records(coverage):
        return [(r["cancellation_id"], r["anchored_kg"]) for r in coverage["records"]]

    assert records(covered_b) == [("CXL-1", 400), ("CXL-2", 600)]
    assert records(registry_of(client, c)) == [("CXL-2", 400)]

    listed = client.get(path).get_json()
    assert [r["cancellation_id"] for r in listed["items"]] == ["CXL-1", "CXL-2"]
    assert (listed["anchored_kg"], listed["unanchored_kg"]) == (2000, 0)

    # The public order view (no participant) shows it too; the operators' order list as well.
    public = GuestClient(client, "someone-else").get(f"/api/v1/orders/{a}").get_json()
    assert "participant" not in public
    assert public["retirement"]["registry"]["records"][0]["cancellation_id"] == "CXL-1"
    listed_orders = {o["id"]: o for o in client.get(f"/api/v1/orders?project={project['id']}",
                                                    headers=operator).get_json()["items"]}
    assert listed_orders[c]["retirement"]["registry"]["records"][0]["cancellation_id"] == "CXL-2"


def show_registry_messages(database) -> list[dict]:
    with UnitOfWork(database) as uow:
        return [m.payload for m in uow.session.scalars(
            select(OutboxMessage).where(OutboxMessage.task_name == "certificates.show_registry")
            .order_by(OutboxMessage.id))]


def test_a_record_tells_certificates_of_every_order_it_covers_and_no_other(client, database, operator,
                                                                           project):
    a, b, c = (retire(client, database, project["id"], kg) for kg in (600, 1000, 400))
    assert post_record(client, operator, project["id"]).status_code == 201
    # In the record's transaction: one message per covered order, with what the order shows.
    first = show_registry_messages(database)
    assert [m["order_id"] for m in first] == [a, b]
    for message in first:
        assert message["registry"] == registry_of(client, message["order_id"])
        assert load("certificates.show_registry", message).order_id == message["order_id"]

    assert post_record(client, operator, project["id"], cancellation_id="CXL-2").status_code == 201
    second = show_registry_messages(database)[2:]
    assert [m["order_id"] for m in second] == [b, c]
    # Everything covering b now, both records: the newest message holds all of it.
    assert [r["cancellation_id"] for r in second[0]["registry"]["records"]] == ["CXL-1", "CXL-2"]
    assert second[0]["registry"] == registry_of(client, b) and second[0]["registry"]["complete"] is True
    assert second[1]["registry"] == registry_of(client, c)


def test_a_refused_record_tells_nobody(client, database, operator, project):
    retire(client, database, project["id"], 999)
    assert post_record(client, operator, project["id"]).status_code == 409
    assert show_registry_messages(database) == []


def test_other_projects_orders_are_not_covered(client, database, operator, project):
    other = next(p for p in client.get("/api/v1/projects").get_json()["items"]
                 if p["id"] != project["id"] and p["available_kg"] >= 5)
    elsewhere = retire(client, database, other["id"], 5)
    retire(client, database, project["id"], 1000)
    assert post_record(client, operator, project["id"]).status_code == 201
    assert registry_of(client, elsewhere) is None
    assert client.get(f"/api/v1/projects/{other['id']}/registry-retirements").get_json()["items"] == []


def test_ledger_pages_link_the_records_beside_the_entries_which_stay_as_chained(client, database, operator,
                                                                                  project):
    covered = retire(client, database, project["id"], 1000)
    later = retire(client, database, project["id"], 10)
    before = client.get(f"/api/v1/ledger?project={project['id']}").get_json()
    assert before["registry_anchors"] == {}
    assert post_record(client, operator, project["id"]).status_code == 201
    page = client.get(f"/api/v1/ledger?project={project['id']}").get_json()
    assert page["registry_anchors"] == {covered: [{
        "cancellation_id": "CXL-1", "url": "https://registry.example.cn/cancellations/CXL-1",
        "retired_on": date.today().isoformat(), "anchored_kg": 1000}]}
    assert later not in page["registry_anchors"]
    # The entries are exactly as chained: the same JSON as before, and their hashes still verify.
    assert page["items"] == before["items"]
    for published in page["items"]:
        assert chain.entry_hash(published["prev_hash"], chain.body_of(published)) == published["hash"]


def test_refuses_anchoring_more_than_is_retired(client, database, operator, project):
    retire(client, database, project["id"], 1999)
    refused = post_record(client, operator, project["id"], quantity_t=2)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "not_enough_retired"
    assert post_record(client, operator, project["id"]).status_code == 201
    again = post_record(client, operator, project["id"], cancellation_id="CXL-2")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "not_enough_retired"
    retire(client, database, project["id"], 1)
    assert post_record(client, operator, project["id"], cancellation_id="CXL-2").status_code == 201
    summary = client.get(f"/api/v1/projects/{project['id']}/registry-retirements").get_json()
    assert (summary["anchored_kg"], summary["unanchored_kg"]) == (2000, 0)


def test_a_cancellation_is_recorded_once_per_project(client, database, operator, project):
    retire(client, database, project["id"], 2000)
    assert post_record(client, operator, project["id"]).status_code == 201
    duplicate = post_record(client, operator, project["id"])
    assert duplicate.status_code == 409 and duplicate.get_json()["error"]["code"] == "cancellation_recorded"
    summary = client.get(f"/api/v1/projects/{project['id']}/registry-retirements").get_json()
    assert (len(summary["items"]), summary["unanchored_kg"]) == (1, 1000)


def test_the_database_refuses_anchoring_a_serial_twice(client, database, operator, project):
    retire(client, database, project["id"], 1000)
    record = post_record(client, operator, project["id"]).get_json()
    with pytest.raises(IntegrityError):
        with UnitOfWork(database) as uow:
            uow.session.add(AnchoredRange(record_id=record["id"], project_id=project["id"],
                                          serial_first=1000, serial_last=1000))


def test_unknown_project(client, operator):
    assert client.get("/api/v1/projects/prj_nope/registry-retirements").status_code == 404
    assert post_record(client, operator, "prj_nope").status_code == 404


def test_recording_is_for_operators(client, database, operator, project):
    retire(client, database, project["id"], 1000)
    path = f"/api/v1/projects/{project['id']}/registry-retirements"
    missing = client.post(path, json=record_body())
    assert missing.status_code == 401
    wrong = client.post(path, json=record_body(), headers={"X-API-Key": "not-the-key"})
    assert wrong.status_code == 403
    as_guest = GuestClient(client, "p-1").post(path, json=record_body())
    assert as_guest.status_code in (401, 403)
    assert client.get(path).get_json()["items"] == []


@pytest.mark.parametrize("changes, field", [
    ({"quantity_t": 0}, "quantity_t"),
    ({"quantity_t": 1_000_001}, "quantity_t"),
    ({"quantity_t": 1.5}, "quantity_t"),
    ({"quantity_t": "1"}, "quantity_t"),
    ({"quantity_t": True}, "quantity_t"),
    ({"quantity_t": 10**30}, "quantity_t"),
    ({"registry_serial_first": ""}, "registry_serial_first"),
    ({"registry_serial_last": "x" * 101}, "registry_serial_last"),
    ({"cancellation_id": "   "}, "cancellation_id"),
    ({"cancellation_id": "\u200b\u200b"}, "cancellation_id"),
    ({"cancellation_id": ["CXL"]}, "cancellation_id"),
    ({"url": "javascript:alert(1)"}, "url"),
    ({"url": "ftp://registry.example.cn/x"}, "url"),
    ({"url": "/cancellations/1"}, "url"),
    ({"url": "https://" + "a" * 500 + ".cn/"}, "url"),
    ({"url": "https://registry.example.cn/a b"}, "url"),
    ({"retired_on": (date.today() + timedelta(days=3)).isoformat()}, "retired_on"),
    ({"retired_on": "1999-12-31"}, "retired_on"),
    ({"retired_on": "2026-02-30"}, "retired_on"),
    ({"retired_on": "yesterday"}, "retired_on"),
    ({"unexpected": 1}, "unexpected"),
])
def test_hostile_inputs_are_422(client, database, operator, project, changes, field):
    retire(client, database, project["id"], 1000)
    response = post_record(client, operator, project["id"], **changes)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]


def test_missing_fields_are_422(client, operator, project):
    path = f"/api/v1/projects/{project['id']}/registry-retirements"
    response = client.post(path, json={}, headers=operator)
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"quantity_t", "registry_serial_first",
                                                          "registry_serial_last", "cancellation_id", "url",
                                                          "retired_on"}


# --- the pipeline audit of registry notices (issue 20) ---------------------------------------

def resend_unconfirmed(database, now, limit=500):
    with UnitOfWork(database) as uow:
        return registry.resend_unconfirmed(uow, AUDIT_GRACE, limit=limit, now=now)


def confirm(database, order_id, anchored_kg):
    with UnitOfWork(database) as uow:
        return registry.registry_shown(uow, order_id, anchored_kg)


def test_a_notice_certificates_never_confirmed_is_sent_again_with_the_coverage_now(client, database,
                                                                                   operator, project):
    a, b = (retire(client, database, project["id"], kg) for kg in (600, 1000))
    assert post_record(client, operator, project["id"]).status_code == 201   # a: 600, b: 400
    assert resend_unconfirmed(database, utcnow()) == (0, 0)      # within the grace: not yet
    assert confirm(database, a, 600) is True
    assert confirm(database, a, 600) is False                    # a redelivery changes nothing

    assert resend_unconfirmed(database, utcnow() + AUDIT_GRACE) == (1, 1)
    again = show_registry_messages(database)[2:]
    assert [m["order_id"] for m in again] == [b] and again[0]["registry"] == registry_of(client, b)
    # Each copy waits longer than the one before: the grace, then twice the grace.
    assert resend_unconfirmed(database, utcnow() + AUDIT_GRACE * 1.5) == (1, 0)
    assert resend_unconfirmed(database, utcnow() + AUDIT_GRACE * 2 + timedelta(seconds=5)) == (1, 1)
    assert resend_unconfirmed(database, utcnow() + AUDIT_GRACE * 3) == (1, 0)
    assert resend_unconfirmed(database, utcnow() + AUDIT_GRACE * 4 + timedelta(seconds=10)) == (1, 1)

    # A late, smaller confirmation is not enough; the full one ends the audit's interest.
    assert confirm(database, b, 100) is True
    assert confirm(database, b, 400) is True
    assert resend_unconfirmed(database, utcnow() + AUDIT_GRACE * 100) == (0, 0)


def test_a_newer_record_must_be_confirmed_again(client, database, operator, project):
    _a, b, _c = (retire(client, database, project["id"], kg) for kg in (600, 1000, 400))
    assert post_record(client, operator, project["id"]).status_code == 201
    assert confirm(database, b, 400) is True
    assert post_record(client, operator, project["id"], cancellation_id="CXL-2").status_code == 201
    unconfirmed, resent = resend_unconfirmed(database, utcnow() + AUDIT_GRACE)
    assert unconfirmed == 3 and resent == 3   # a never confirmed; b behind its 1000 kg now; c new
    assert confirm(database, b, 1000) is True
    assert confirm(database, "ord_unknown", 5) is False
