"""GET /api/v1/airports through the Flask test client: the contract's shape, the issue's
examples, and hostile queries answering a clear 422 (or nothing), never a 500."""
from __future__ import annotations

from urllib.parse import quote

import pytest

FIELDS = {"iata", "name", "city", "name_zh", "city_zh", "country"}


def search(client, query: str, **params):
    extra = "".join(f"&{key}={value}" for key, value in params.items())
    return client.get(f"/api/v1/airports?q={quote(query)}{extra}")


def codes(response):
    assert response.status_code == 200, response.get_json()
    return [airport["iata"] for airport in response.get_json()]


def test_answers_an_array_of_airports_in_the_contracts_shape(client):
    response = search(client, "成都")
    assert response.status_code == 200
    body = response.get_json()
    assert isinstance(body, list)
    assert body[0] == {"iata": "CTU", "name": "Chengdu Shuangliu International Airport", "city": "Chengdu",
                       "name_zh": "成都双流国际机场", "city_zh": "成都", "country": "CN"}
    assert all(set(airport) == FIELDS for airport in body)
    assert response.headers["Cache-Control"] == "public, max-age=3600"  # reference data, same all day


def test_an_airport_without_a_chinese_name_has_nulls(client):
    airports = search(client, "YXU").get_json()  # London, Ontario: no scheduled service to China
    assert airports[0]["iata"] == "YXU"
    assert (airports[0]["name_zh"], airports[0]["city_zh"], airports[0]["country"]) == (None, None, "CA")


@pytest.mark.parametrize("query, first", [
    ("CTU", ["CTU"]), ("ctu", ["CTU"]), ("ＣＴＵ", ["CTU"]), ("chengdu", ["CTU", "TFU"]), ("tianfu", ["TFU"]),
    ("heathrow", ["LHR"]), ("hong kong", ["HKG"]), ("成都", ["CTU", "TFU"]), ("北京", ["PEK", "PKX"]),
    ("上海", ["PVG", "SHA"]), ("香港", ["HKG"]), ("澳门", ["MFM"]), ("台北", ["TPE", "TSA"]),
    ("臺北", ["TPE", "TSA"]), ("天府", ["TFU"]),
])
def test_finds_the_issues_examples(client, query, first):
    assert codes(search(client, query))[:len(first)] == first


def test_limit_defaults_to_8_and_caps_the_answer(client):
    assert len(codes(search(client, "international"))) == 8
    assert len(codes(search(client, "international", limit=20))) == 20
    assert codes(search(client, "成都", limit=1)) == ["CTU"]


@pytest.mark.parametrize("query", ["%", ".*", "' OR 1=1", "%' --", "(", "[", "\\", "*", "?", "<script>",
                                   "xyzzyq", "🛫🛬", "成都成都成都"])
def test_sql_or_regex_looking_text_simply_finds_nothing(client, query):
    assert codes(search(client, query)) == []


def error(response, status=422):
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()["error"]


@pytest.mark.parametrize("path", ["/api/v1/airports", "/api/v1/airports?q=", "/api/v1/airports?q=%20%20",
                                  "/api/v1/airports?q=%E3%80%80", "/api/v1/airports?limit=3"])
def test_a_missing_or_blank_query_is_422_on_q(client, path):
    body = error(client.get(path))
    assert body["code"] == "validation_error" and list(body["fields"]) == ["q"]


@pytest.mark.parametrize("query", ["a\x00b", "a\nb", "ctu\x7f", "\x1b[31m", "a\u200bb", "\u202ectu"])
def test_control_characters_are_422(client, query):
    assert error(search(client, query))["fields"] == {"q": ["must not contain control characters"]}


def test_a_query_longer_than_64_characters_is_422(client):
    assert codes(search(client, "成" * 64)) == []
    assert "q" in error(search(client, "a" * 65))["fields"]
    assert "q" in error(search(client, "成" * 10_000))["fields"]


@pytest.mark.parametrize("limit", ["0", "21", "-1", "x", "1.5", "1e1", "", "99999999999999999999"])
def test_a_limit_out_of_range_or_not_an_integer_is_422_on_limit(client, limit):
    assert list(error(search(client, "ctu", limit=limit))["fields"]) == ["limit"]


def test_unknown_query_parameters_are_ignored_as_on_the_other_calculator_reads(client):
    assert codes(client.get("/api/v1/airports?q=ctu&lang=zh&x=%00")) == ["CTU"]


def test_only_get_and_head(client):
    assert client.head("/api/v1/airports?q=ctu").status_code == 200
    for method in ("post", "put", "patch", "delete"):
        assert error(getattr(client, method)("/api/v1/airports?q=ctu"), 405)["code"] == "method_not_allowed"


def test_the_search_is_documented_in_the_openapi_document(client):
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/airports"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"q", "limit"}
    assert "422" in operation["responses"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["type"] == "array"
    assert set(spec["components"]["schemas"]["Airport"]["properties"]) == FIELDS


@pytest.mark.parametrize("raw, status", [
    ("q=%ED%A0%80", 200), ("q=%FF%FE", 200), ("q=%F0%9F%9B%AB", 200),  # a lone surrogate, not UTF-8, an emoji
    ("q=%EF%BF%BF", 422), ("q=%C2%A0", 422), ("q=ctu&limit=%00", 422),  # a noncharacter, a no-break space
])
def test_odd_bytes_in_the_query_find_nothing_or_are_422(client, raw, status):
    response = client.get(f"/api/v1/airports?{raw}")
    assert response.status_code == status
    if status == 200:
        assert response.get_json() == []
    else:
        assert list(response.get_json()["error"]["fields"]) in (["q"], ["limit"])
