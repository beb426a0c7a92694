"""/me: the guest's certificates, ranks and footprints by their cookie, and moving them to
another device with a one-time code or link (gateway/pages_me.py, gateway/transfers.py)."""
from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from diandian_common.db import Database
from diandian_common.testing import migrated_sqlite_url, postgres_available, temporary_postgres_database
from gateway import participants
from gateway.app import create_app
from gateway.models import DeviceTransfer
from gateway.tests.pages_support import (
    COMPLETED_ORDER,
    ESTIMATE,
    LIFE_ESTIMATE,
    ME,
    ORDER,
    Markup,
    as_me,
    page,
)
from gateway.transfers import CODE_ALPHABET, Transfers, grouped, normalized_code

FUTURE = (datetime.now(UTC) + timedelta(minutes=20)).isoformat()
UNPAID = {**ORDER, "expires_at": FUTURE, "created_at": "2025-09-07T01:00:00+00:00"}
DONE = {**COMPLETED_ORDER, "completed_at": "2025-09-07T02:00:00+00:00",
        "created_at": "2025-09-07T01:00:00+00:00"}
MY_ESTIMATES = {"items": [
    {"id": ESTIMATE["id"], "kind": "trip", "scene": "forum", "total_kg": 533.853, "factor_set": "2025.2",
     "created_at": "2025-09-07T00:30:00+00:00"},
    {"id": LIFE_ESTIMATE["id"], "kind": "life", "scene": None, "total_kg": 8000.0, "factor_set": "2025.2",
     "created_at": "2025-09-06T00:30:00+00:00"}], "next_before": "est-life"}
MY_STANDINGS = {"overall": {"scene": None, "rank": 7, "kg": 534.0, "total": 42},
                "scenes": [{"scene": "forum", "rank": 3, "kg": 534.0, "total": 12}], "more_scenes": False}


@pytest.fixture
def mine(services):
    """The services answering /me's reads for ME (and nobody else, as the real ones do)."""
    def only_me(body):
        def answer(req):
            from diandian_common.auth import request_guest
            guest = request_guest()
            if guest is None:
                return 401, {"error": {"code": "unauthorized", "message": "no guest", "fields": {}}}
            return 200, body if guest.participant_id == ME else {"items": [], "next_before": None}
        return answer
    services["orders"].on("GET", "/api/v1/my-orders",
                          only_me({"items": [UNPAID, DONE], "next_before": "ord_done"}))
    services["calculator"].on("GET", "/api/v1/my-estimates", only_me(MY_ESTIMATES))
    services["ranking"].on("GET", "/api/v1/my-standings", only_me(MY_STANDINGS))
    return services


def reads_of_mine(services):
    return [r for s in services.values() for r in s.requests if "/my-" in r["path"]]


@pytest.mark.parametrize("lang, heading, pay", [("zh-CN", "我的证书", "继续支付"), ("en", "My certificates",
                                                                               "Continue paying")])
def test_lists_certificates_ranks_and_footprints_by_the_cookie(client, mine, lang, heading, pay):
    html = page(as_me(client), "/me", lang=lang)
    markup = Markup(html)
    assert heading in html and pay in html
    assert ("Green Forum" if lang == "en" else "绿色论坛") in html     # the scene in the page's language
    assert markup.find("a", href="/c/cert_1") and markup.find("a", href="/api/v1/certificates/cert_1/pdf")
    assert markup.find("a", href="/pay/ord_1")                      # the unpaid order: continue paying
    assert markup.find("a", href="/e/est-1") and markup.find("a", href="/e/est-life")
    assert markup.find("a", href="/me?orders_before=ord_done#certificates-title")    # show more
    assert markup.find("a", href="/me?estimates_before=est-life#footprints-title")
    assert "42" in html and "12" in html                             # overall and per scene boards
    assert markup.script_bodies == [] and not markup.find("style")  # CSP: nothing inline
    assert all("style" not in attrs for _, attrs in markup.elements)
    labelled = {a["for"] for a in markup.find("label")}
    assert all(a.get("id") in labelled for a in markup.find("input") if a.get("type") != "hidden")
    assert markup.find("a", href="/me")                              # the header links it


def test_show_more_passes_the_cursor_on(client, mine):
    page(as_me(client), "/me?orders_before=ord_done&estimates_before=est-life")
    args = {r["path"]: r["args"] for r in reads_of_mine(mine)}
    assert args["/api/v1/my-orders"]["before"] == "ord_done"
    assert args["/api/v1/my-estimates"]["before"] == "est-life"


def test_no_cookie_is_the_empty_state_and_asks_nothing(client, mine):
    html = page(client, "/me", lang="en")
    assert "Nothing here yet" in html and "Choose a scene" in html
    assert "Have a code from another device?" in html
    assert reads_of_mine(mine) == []


def test_a_forged_cookie_is_the_empty_state(client, mine):
    for forged in ("p_me", "garbage", "\u202e" * 50, participants._serializer().dumps(ME) + "x", "x" * 3000):
        client.set_cookie(participants.COOKIE_NAME, forged)
        assert "Nothing here yet" in page(client, "/me", lang="en")
    assert reads_of_mine(mine) == []


def test_a_new_guest_with_nothing_sees_the_empty_state(client, mine):
    client.set_cookie(participants.COOKIE_NAME, participants._serializer().dumps("p_new"))
    assert "Nothing here yet" in page(client, "/me", lang="en")


def test_a_service_down_leaves_the_rest_showing(client, mine):
    down = {"error": {"code": "down", "message": "", "fields": {}}}
    mine["orders"].on("GET", "/api/v1/my-orders", (503, down))
    html = page(as_me(client), "/me", lang="en")
    assert "Your certificates and orders cannot be shown right now" in html
    assert 'href="/e/est-1"' in html and "42" in html
    mine["orders"].stop()  # not answering at all
    html = page(client, "/me", lang="en")
    assert "Your certificates and orders cannot be shown right now" in html and 'href="/e/est-1"' in html


@pytest.mark.parametrize("query", ["orders_before=" + "x" * 500, "estimates_before=%00%01", "orders_before="])
def test_hostile_show_more_cursors_never_fail(client, mine, query):
    page(as_me(client), f"/me?{query}")


# --- moving to another device -------------------------------------------------------------

def csrf_from(client, path="/me") -> str:
    return Markup(page(client, path)).find("input", name="csrf")[0]["value"]


def new_transfer(client) -> tuple[str, str]:
    """(grouped code, link) of a move created on ``client`` (the guest ME)."""
    response = client.post("/me/transfer", data={"csrf": csrf_from(client)})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    code = re.search(r"data-transfer-code>([A-Z0-9-]+)<", html)[1]
    link = re.search(r'href="(https://diandian\.example/me/claim/[^"]+)"', html)[1]
    return code, link


def cookie_of(response) -> str | None:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(participants.COOKIE_NAME + "="):
            return participants._serializer().loads(header.split(";")[0].split("=", 1)[1])
    return None


def test_a_code_moves_the_list_to_another_device(app, mine):
    first = as_me(app.test_client())
    code, _link = new_transfer(first)
    assert re.fullmatch(rf"[{CODE_ALPHABET}]{{4}}-[{CODE_ALPHABET}]{{4}}", code)
    second = app.test_client()
    assert "Nothing here yet" in page(second, "/me", lang="en")
    typed = code.lower().replace("-", " ")
    claimed = second.post("/me/claim", data={"csrf": csrf_from(second), "code": typed})
    assert claimed.status_code == 303 and claimed.headers["Location"].endswith("/me")
    assert cookie_of(claimed) == ME
    assert 'href="/c/cert_1"' in page(second, "/me")
    assert 'href="/c/cert_1"' in page(first, "/me")          # the first device keeps its access
    third = app.test_client()                                   # single use
    again = third.post("/me/claim", data={"csrf": csrf_from(third), "code": code})
    assert again.status_code == 400 and cookie_of(again) is None


def test_a_link_asks_before_it_moves_and_works_once(app, mine):
    _code, link = new_transfer(as_me(app.test_client()))
    path = link.removeprefix("https://diandian.example")
    second = app.test_client()
    confirm = page(second, path, lang="en")                     # a link preview spends nothing
    assert "Show my certificates here" in confirm
    assert "Show my certificates here" in page(second, path, lang="en")
    claimed = second.post(path, data={"csrf": csrf_from(second, path)})
    assert claimed.status_code == 303 and cookie_of(claimed) == ME
    third = app.test_client()
    assert "has been used or has expired" in page(third, path, lang="en", status=404)
    spent = third.post(path, data={"csrf": csrf_from(third)})
    assert spent.status_code == 404 and cookie_of(spent) is None


def test_the_table_keeps_neither_the_code_nor_the_token(app, mine):
    code, link = new_transfer(as_me(app.test_client()))
    token = link.rsplit("/", 1)[1]
    with app.extensions["keys"].database.transaction() as session:
        rows = session.execute(select(DeviceTransfer)).scalars().all()
        stored = " ".join(f"{r.id} {r.code_hash} {r.participant_id}" for r in rows)
    assert len(rows) == 1 and token not in stored and code.replace("-", "") not in stored


def test_an_expired_move_cannot_be_claimed(app, mine):
    moves: Transfers = app.extensions["device_transfers"]
    made = moves.create(ME, now=datetime.now(UTC) - timedelta(minutes=11))
    client = app.test_client()
    refused = client.post("/me/claim", data={"csrf": csrf_from(client), "code": made.code},
                          headers={"Accept-Language": "en"})
    assert refused.status_code == 400 and "wrong or has expired" in refused.get_data(as_text=True)
    assert page(client, f"/me/claim/{made.token}", status=404)
    assert moves.claim_token(made.token) is None


@pytest.mark.parametrize("code", ["", "WRONG123", "ABCD-EFGH", "0OIL1" * 2, "\x00\x01" * 4, "码" * 8,
                                  "A" * 5000, "\u202eABCDEFGH"])
def test_a_wrong_or_hostile_code_is_refused_on_the_page(app, mine, code):
    client = app.test_client()
    refused = client.post("/me/claim", data={"csrf": csrf_from(client), "code": code})
    assert refused.status_code in (400, 413) and cookie_of(refused) is None
    assert refused.mimetype == "text/html" or refused.status_code == 413


@pytest.mark.parametrize("token", ["x", "%E2%80%AE", "a" * 500, "..%2F..", "abc%00"])
def test_a_forged_link_is_not_found(client, mine, token):
    response = client.get(f"/me/claim/{token}")
    assert response.status_code in (400, 404) and cookie_of(response) is None


@pytest.mark.parametrize("path", ["/me/transfer", "/me/claim", "/me/claim/sometoken"])
def test_forms_without_their_csrf_token_are_refused(app, mine, path):
    client = as_me(app.test_client())
    page(client, "/me")  # the browser has the CSRF cookie; the forged form has no token
    for data in ({}, {"csrf": "forged"}, {"csrf": csrf_from(app.test_client())}):
        response = client.post(path, data={**data, "code": "ABCD2345"})
        assert response.status_code == 403 and cookie_of(response) is None
    another_browser = app.test_client()                  # a token without the cookie it belongs to
    token = csrf_from(client)
    assert another_browser.post(path, data={"csrf": token, "code": "ABCD2345"}).status_code == 403


def test_without_a_cookie_there_is_nothing_to_move(client, mine):
    response = client.post("/me/transfer", data={"csrf": csrf_from(client)})
    assert response.status_code == 400


def test_guessing_codes_is_stopped_with_429(services, mine, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_STORAGE_URL", "memory://")
    monkeypatch.setenv("RATE_LIMIT_TRANSFER_CLAIMS", "5/minute")
    app = create_app()
    code, _ = new_transfer(as_me(app.test_client()))
    guesser = app.test_client()
    csrf = csrf_from(guesser)
    statuses = [guesser.post("/me/claim", data={"csrf": csrf, "code": f"ZZZZ{n:04d}"}).status_code
                for n in range(2222, 2230)]
    assert statuses[:5] == [400] * 5 and set(statuses[5:]) == {429}
    limited = guesser.post("/me/claim", data={"csrf": csrf, "code": code})   # even the right one, for now
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert limited.mimetype == "text/html" and "尝试次数过多" in limited.get_data(as_text=True)
    assert cookie_of(limited) is None
    # a fresh cookie (another "browser" from the same address) does not escape it
    assert app.test_client().post("/me/claim", data={"csrf": csrf, "code": "ZZZZ3333"}).status_code == 429


@pytest.fixture(params=["sqlite", "postgresql"])
def moves(request, tmp_path):
    """The gateway's transfers on a migrated SQLite database, or a temporary PostgreSQL one."""
    if request.param == "sqlite":
        database = Database(migrated_sqlite_url("gateway", tmp_path))
        yield Transfers(database, "test-secret")
        database.dispose()
        return
    if not postgres_available():
        pytest.skip("no PostgreSQL server reachable")
    with temporary_postgres_database("gateway") as url:
        database = Database(url)
        yield Transfers(database, "test-secret")
        database.dispose()


@pytest.mark.parametrize("by", ["token", "code"])
def test_two_claims_at_once_only_one_wins(moves, by):
    for _ in range(5):
        made = moves.create(ME)
        barrier, results = threading.Barrier(2), []

        def claim(made=made, barrier=barrier, results=results):
            barrier.wait()
            results.append(moves.claim_token(made.token) if by == "token" else moves.claim_code(made.code))

        threads = [threading.Thread(target=claim) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results, key=str) == [None, ME]


def test_a_move_expires_after_ten_minutes(moves):
    made = moves.create(ME, now=datetime.now(UTC) - timedelta(minutes=10, seconds=1))
    assert moves.claim_code(made.code) is None and moves.claim_token(made.token) is None
    fresh = moves.create(ME, now=datetime.now(UTC) - timedelta(minutes=9))
    assert moves.claim_code(fresh.code) == ME


def test_codes_read_as_typed():
    assert normalized_code(" abcd-2345 ") == "ABCD2345"
    assert normalized_code("ABCD 2345") == "ABCD2345"
    assert normalized_code("ABCD-234") is None and normalized_code("ABCD-2340") is None  # 0 is no code letter
    assert normalized_code("A" * 100) is None and normalized_code(None) is None
    assert grouped("ABCD2345") == "ABCD-2345"


def test_an_expired_unpaid_order_is_not_offered_for_payment(client, mine):
    expired = {**UNPAID, "expires_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}
    for expires_at in (expired["expires_at"], "not a time", None):
        mine["orders"].on("GET", "/api/v1/my-orders", (200, {"items": [{**UNPAID, "expires_at": expires_at}],
                                                             "next_before": None}))
        assert 'href="/pay/ord_1"' not in page(as_me(client), "/me")
