"""The operator pages' session is an opaque token (issue #17): the cookie carries nothing of
the key, the gateway's database keeps only the token's hash, and logging out, revoking or
replacing the key, or the expiry end it. Against the real gateway and its database, with
the stand-in services of gateway/tests/conftest.py."""
from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update

from gateway.app import create_app
from gateway.models import ApiKey, OperatorSession
from gateway.pages_operator import COOKIE_NAME
from gateway.tests.pages_support import OPERATOR_KEY, csrf_of, login, page


def session_cookie(response) -> tuple[str, str]:
    """(value, the whole Set-Cookie line) of the operator cookie a response sets."""
    line = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{COOKIE_NAME}="))
    return line.split(";", 1)[0].split("=", 1)[1], line


def stored_sessions(app) -> list[OperatorSession]:
    with app.extensions["keys"].database.transaction() as session:
        return list(session.scalars(select(OperatorSession)))


def decodings(value: str) -> list[str]:
    """The cookie as sent, and as base64 of any flavour would read it."""
    found = [value]
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            found.append(decode(value + "=" * (-len(value) % 4)).decode("latin-1"))
        except ValueError:
            pass
    return found


def pieces(secret: str, size: int = 6) -> set[str]:
    return {secret[i:i + size] for i in range(len(secret) - size + 1)}


def test_the_cookie_holds_nothing_of_the_key(app, client):
    info, key = app.extensions["keys"].create("door staff", {"scenes"})
    token, line = session_cookie(login(client, key))
    assert "HttpOnly" in line and "SameSite=Strict" in line and "Path=/operator" in line
    assert "Secure" not in line  # plain http here; see the https test
    assert f"Max-Age={8 * 3600}" in line
    for readable in decodings(token):
        assert key not in readable and info.id not in readable
        assert not any(piece in readable for piece in pieces(key))
    assert client.get("/operator/scenes").status_code == 200


def test_the_database_keeps_the_tokens_hash_not_the_token(app, client):
    info, key = app.extensions["keys"].create("door staff", {"scenes"})
    token, _ = session_cookie(login(client, key))
    [row] = stored_sessions(app)
    assert row.id == hashlib.sha256(token.encode()).hexdigest() and token not in (row.id, row.csrf)
    assert row.key_id == info.id and row.expires_at - row.created_at == timedelta(hours=8)
    with app.extensions["keys"].database.transaction() as session:
        assert row.key_hash == session.get(ApiKey, info.id).key_hash  # the key's hash, never the key


def test_over_https_the_cookie_is_secure(app):
    client = app.test_client()
    response = client.post("/operator/login", data={"api_key": OPERATOR_KEY}, base_url="https://diandian.example")
    assert "Secure" in session_cookie(response)[1]


def test_logout_ends_the_session_for_a_copy_of_the_cookie_too(app, client):
    token, _ = session_cookie(login(client))
    copy = app.test_client()
    copy.set_cookie(COOKIE_NAME, token, path="/operator")
    assert copy.get("/operator/scenes").status_code == 200
    logout = client.post("/operator/logout", data={"csrf": csrf_of(page(client, "/operator/scenes"))})
    assert logout.status_code == 303 and stored_sessions(app) == []
    assert f"{COOKIE_NAME}=;" in session_cookie(logout)[1] or "Max-Age=0" in session_cookie(logout)[1]
    replayed = copy.get("/operator/scenes")
    assert replayed.status_code == 303 and urlsplit(replayed.headers["Location"]).path == "/operator/login"


def test_logout_needs_the_sessions_csrf_token(app, client):
    login(client)
    assert client.post("/operator/logout", data={"csrf": "guess"}).status_code == 403
    assert client.get("/operator/scenes").status_code == 200 and len(stored_sessions(app)) == 1


def test_revoking_the_key_ends_its_sessions(app, client):
    info, key = app.extensions["keys"].create("door staff", {"scenes"})
    token, _ = session_cookie(login(client, key))
    other = app.test_client()
    login(other)  # another key's session lives on
    app.extensions["keys"].revoke(info.id)
    response = client.get("/operator/scenes")
    assert response.status_code == 303 and response.headers["Location"] == "/operator/login?expired=1"
    assert [row.key_id for row in stored_sessions(app)] == ["env"]
    replay = app.test_client()
    replay.set_cookie(COOKIE_NAME, token, path="/operator")
    assert replay.get("/operator/scenes").status_code == 303
    assert other.get("/operator/scenes").status_code == 200


def test_replacing_operator_api_key_ends_the_sessions_of_the_old_one(app, client):
    login(client)  # OPERATOR_API_KEY, the "env" row
    app.extensions["keys"].ensure_operator("another-operator-key-of-at-least-32-chars")
    assert client.get("/operator/scenes").headers["Location"] == "/operator/login?expired=1"


def test_an_expired_session_is_over(app, client):
    login(client)
    with app.extensions["keys"].database.transaction() as session:
        session.execute(update(OperatorSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert client.get("/operator/scenes").headers["Location"] == "/operator/login?expired=1"
    assert stored_sessions(app) == []


def test_a_new_login_replaces_the_browsers_session(app, client):
    first, _ = session_cookie(login(client))
    second, _ = session_cookie(login(client))
    assert first != second and len(stored_sessions(app)) == 1


@pytest.mark.parametrize("cookie", ["", "x", "a" * 3900, "eyJrZXkiOiAiZGRfIn0.forged.sig", "\u00e9\u00e9"])
def test_a_made_up_cookie_is_no_session(client, cookie):
    client.set_cookie(COOKIE_NAME, cookie, path="/operator")
    response = client.get("/operator/scenes")
    assert response.status_code == 303 and urlsplit(response.headers["Location"]).path == "/operator/login"


def test_a_session_is_the_gateways_not_one_processs(app, client, services):
    """Every gunicorn worker of the gateway finds the session: it is in the database."""
    login(client)
    csrf = csrf_of(page(client, "/operator/scenes"))
    elsewhere = create_app().test_client()
    elsewhere.set_cookie(COOKIE_NAME, client.get_cookie(COOKIE_NAME, path="/operator").value, path="/operator")
    created = elsewhere.post("/operator/scenes", data={"csrf": csrf, "slug": "expo", "name": "x", "type": "hotel"})
    assert created.status_code == 303
    posted = [r for r in services["calculator"].requests if r["method"] == "POST"]
    assert posted[-1]["json"]["slug"] == "expo"


@pytest.mark.parametrize("variables, seconds", [
    ({"OPERATOR_SESSION_TTL": "30m"}, 1800), ({"OPERATOR_SESSION_TTL": "900"}, 900),
    ({"OPERATOR_SESSION_TTL": "2d"}, 2 * 86400), ({"OPERATOR_SESSION_HOURS": "2"}, 7200),
    ({"OPERATOR_SESSION_TTL": "1h", "OPERATOR_SESSION_HOURS": "12"}, 3600),
])
def test_the_session_lifetime_comes_from_the_environment(services, monkeypatch, variables, seconds):
    for name in ("OPERATOR_SESSION_TTL", "OPERATOR_SESSION_HOURS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    app = create_app()
    app.extensions["keys"].ensure_operator(OPERATOR_KEY)
    assert f"Max-Age={seconds}" in session_cookie(login(app.test_client()))[1]


@pytest.mark.parametrize("value", ["eight hours", "0", "-1h", "8 weeks"])
def test_a_malformed_session_lifetime_stops_the_start(services, monkeypatch, value):
    monkeypatch.setenv("OPERATOR_SESSION_TTL", value)
    with pytest.raises(ValueError, match="OPERATOR_SESSION_TTL"):
        create_app()
