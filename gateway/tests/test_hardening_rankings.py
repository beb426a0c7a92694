"""A rankings page for a scene slug that cannot exist is "not found", not "unavailable"
(issue #17), against the real ranking service on a real port: its 422 reaches API clients
as it is, and the page says there is nothing at that address."""
from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from diandian_common.testing import free_port, migrated_sqlite_url
from gateway.tests.pages_support import Markup


@pytest.fixture
def ranking_service(redis_url, tmp_path, monkeypatch):
    """The ranking service's own app on its own port (as gunicorn would serve it)."""
    from ranking.app import create_app as create_ranking_app
    from ranking.wiring import wiring

    monkeypatch.setenv("RANKING_REDIS_URL", redis_url)
    app = create_ranking_app(migrated_sqlite_url("ranking", tmp_path))
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    wiring.bind(None)


@pytest.fixture
def real_ranking_client(services, ranking_service, monkeypatch):
    monkeypatch.setenv("RANKING_URL", ranking_service)
    from gateway.app import create_app

    return create_app().test_client()


@pytest.mark.parametrize("query", ["scene=A", "scene=no%20such%20scene", "scene=%3Cscript%3E"])
def test_the_api_passes_the_ranking_services_422_on(real_ranking_client, query):
    response = real_ranking_client.get(f"/api/v1/rankings?{query}")
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and "scene" in error["fields"]


@pytest.mark.parametrize("query", ["scene=A", "scene=A&board=organization&period=week", "scene=..%2F.."])
def test_a_rankings_page_for_an_impossible_scene_is_not_found(real_ranking_client, query):
    response = real_ranking_client.get(f"/rankings?{query}", headers={"Accept-Language": "en"})
    assert response.status_code == 404 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Page not found" in "".join(Markup(html).text) and "unavailable" not in html


def test_a_rankings_page_for_a_possible_scene_is_a_board(real_ranking_client):
    response = real_ranking_client.get("/rankings?scene=forum", headers={"Accept-Language": "en"})
    assert response.status_code == 200
    assert "No one is on this board yet" in response.get_data(as_text=True)
