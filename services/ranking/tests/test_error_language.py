"""The ranking service's refusals in the language the client asks for (diandian_common.i18n):
Chinese for ``Accept-Language: zh-CN`` (every message of ``error.fields`` too), English for
``en``. A new refusal of a new route belongs in the battery."""
from __future__ import annotations

import socket

import pytest

from diandian_common.testing import assert_errors_in_language
from ranking.app import create_app

REFUSED = [
    *[("GET", f"/api/v1/rankings?{query}", {}) for query in [
        "board=team", "period=year", "scene=Forum 2025", "scene=a:b", "limit=0", "limit=101", "limit=ten",
        "limit=1e2"]],
    ("GET", "/api/v1/rankings/participants/nobody", {}),
    ("GET", "/api/v1/rankings/participants/bob?period=decade", {}),
    ("GET", "/api/v1/rankings/participants/bob?scene=UPPER", {}),
    ("GET", "/api/v1/rankings/participants/" + "p" * 129, {}),
    ("GET", "/api/v1/rankings/participants/nobody/card.svg", {}),
    ("GET", "/api/v1/rankings/participants/bob/card.svg?scene_name=Forum", {}),
    ("GET", "/api/v1/rankings/participants/bob/card.svg?lang=fr&scene=forum-2025&scene_name=" + "x" * 121,
     {}),
    ("POST", "/api/v1/rankings", {}),
    ("GET", "/api/v1/rankings/nothing/here/at/all", {}),
]


@pytest.fixture
def client(env, redis_client):
    return create_app(database_url=env).test_client()


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_refusal_speaks_the_asked_language(client, language):
    assert_errors_in_language(client, REFUSED, language)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_an_unavailable_board_speaks_the_asked_language(env, monkeypatch, language):
    with socket.socket() as silent:          # accepts connections (backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        monkeypatch.setenv("RANKING_REDIS_URL", f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        monkeypatch.setenv("RANKING_REDIS_TIMEOUT_SECONDS", "0.2")
        assert_errors_in_language(create_app(database_url=env).test_client(),
                                  [("GET", "/api/v1/rankings", {})], language)
