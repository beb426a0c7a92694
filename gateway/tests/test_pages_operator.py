"""The operator pages (login, scenes, QR codes and posters, the dashboard), rendered by the real
gateway against stand-in services (gateway/tests/pages_support.py)."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from gateway.tests.pages_support import (
    Markup,
    csrf_of,
    login,
    page,
)


def test_operator_pages_need_a_login(client):
    response = client.get("/operator/scenes/forum")
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == "/operator/login"
    assert parse_qs(urlsplit(response.headers["Location"]).query)["next"] == ["/operator/scenes/forum"]
    assert login(client, "not-a-key").status_code == 401
    assert client.get("/operator/projects").status_code == 303


def test_operator_login_keeps_the_key_in_a_strict_httponly_cookie(client):
    response = login(client, next_path="//evil.example/")
    assert response.status_code == 303 and response.headers["Location"] == "/operator/scenes"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("dd_operator=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/operator" in cookie
    assert client.get("/operator/scenes").status_code == 200
    logout = client.post("/operator/logout", data={"csrf": csrf_of(page(client, "/operator/scenes"))})
    assert logout.status_code == 303 and client.get("/operator/scenes").status_code == 303


def test_a_revoked_key_ends_the_session(app, client):
    info, key = app.extensions["keys"].create("door staff", {"scenes"})
    login(client, key)
    assert client.get("/operator/scenes").status_code == 200
    app.extensions["keys"].revoke(info.id)
    response = client.get("/operator/scenes")
    assert response.status_code == 303 and response.headers["Location"] == "/operator/login?expired=1"
    assert "登录已过期" in page(client, "/operator/login?expired=1")


def test_operator_scenes_offer_qr_and_poster_downloads(client):
    login(client)
    markup = Markup(page(client, "/operator/scenes", lang="en"))
    assert markup.find("a", href="/api/v1/scenes/forum/qr.png", download="forum-qr.png")
    assert markup.find("a", href="/api/v1/scenes/forum/poster.pdf", download="forum-poster.pdf")
    assert markup.find("a", href="/operator/scenes/forum")
    slug = markup.find("input", name="slug")[0]
    assert slug["pattern"] == "[a-z0-9]+(-[a-z0-9]+)*" and slug["maxlength"] == "64" and "required" in slug


def test_operator_creates_a_scene_through_the_gateway(client, services):
    login(client)
    csrf = csrf_of(page(client, "/operator/scenes"))
    refused = client.post("/operator/scenes", data={"slug": "expo", "name": "博览会", "type": "conference"})
    assert refused.status_code == 403
    created = client.post("/operator/scenes", data={
        "csrf": csrf, "slug": "expo", "name": "博览会", "name_en": "Expo", "type": "conference",
        "location": "", "starts_on": "2025-10-01", "ends_on": ""})
    assert created.status_code == 303
    assert created.headers["Location"] == "/operator/scenes?created=expo#scene-expo"
    posted = [r for r in services["calculator"].requests if r["method"] == "POST"]
    assert posted[-1]["json"] == {"slug": "expo", "name": "博览会", "name_en": "Expo", "type": "conference",
                                  "starts_on": "2025-10-01"}  # empty optional fields left out
    taken = client.post("/operator/scenes",
                        data={"csrf": csrf, "slug": "forum", "name": "x", "type": "hotel"})
    assert taken.status_code == 409 and "该标识已被其他场景使用" in taken.get_data(as_text=True)
    assert 'value="x"' in taken.get_data(as_text=True)  # the form keeps what was typed


def test_a_key_without_the_scope_cannot_create_scenes(app, client, services):
    _, projects_only = app.extensions["keys"].create("finance", {"projects"})
    login(client, projects_only)
    csrf = csrf_of(page(client, "/operator/scenes"))
    response = client.post("/operator/scenes",
                           data={"csrf": csrf, "slug": "expo", "name": "x", "type": "hotel"})
    assert response.status_code == 403
    assert not [r for r in services["calculator"].requests if r["method"] == "POST"]


def test_operator_dashboard_shows_estimated_and_neutralised(client):
    login(client)
    html = page(client, "/operator/scenes/forum", lang="en")
    markup = Markup(html)
    stats = dict(zip([t.strip() for t in re.findall(r"<dt>([^<]+)</dt>", html)],
                     re.findall(r"<dd>([^<]+)</dd>", html)))
    assert stats["Participants who estimated"] == "42"
    assert stats["Participants who neutralised"] == "3,456"
    assert stats["Estimated"] == "1.07 t" and stats["Neutralised"] == "534 kg"
    assert stats["Share neutralised"] == "50%"
    assert markup.find("polyline") and markup.find("line", **{"class": "target"})
    panel = markup.find("div", id="live-panel")[0]
    assert panel["data-url"] == "/operator/scenes/forum/panel"
    assert "Participants who estimated" in page(client, panel["data-url"], lang="en")
    assert page(client, "/operator/scenes/nowhere", status=404)


def test_operator_projects_show_inventory(client):
    login(client)
    html = page(client, "/operator/projects", lang="en")
    assert "1,500 t" in html and Markup(html).find("meter", value="900")
    assert Markup(html).find("a", href="/api/v1/ledger?project=prj_bus")
