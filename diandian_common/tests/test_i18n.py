"""The language of error messages: which language a request gets, and how a catalogue
translates messages with their parameters (diandian_common.i18n)."""
from __future__ import annotations

import inspect
import time

import marshmallow
import pytest
from flask import Flask
from marshmallow import fields as ma_fields
from werkzeug import exceptions as http
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from diandian_common import i18n
from diandian_common.errors import CODES, ApiError, register_error_handlers
from diandian_common.testing import assert_error_language, untranslated_messages


@pytest.mark.parametrize("header, language", [
    ("zh", "zh"), ("zh-CN", "zh"), ("zh-Hans", "zh"), ("zh-TW", "zh"), ("zh-Hans-CN", "zh"), ("ZH-cn", "zh"),
    ("zh_CN", "zh"),
    ("zh-CN, en", "zh"),                       # equal quality: the client's order
    ("en, zh-CN", "en"),
    ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
    ("en;q=0.5, zh;q=0.8", "zh"),              # quality over order
    ("fr, zh;q=0.5", "zh"),                    # an unknown language is skipped
    ("en;q=0, zh", "zh"),
    ("zh;q=0", "en"),                          # q=0: not acceptable
    ("*", "en"), ("*;q=0.5, zh;q=0.2", "en"), ("fr", "en"), ("", "en"),
    ("garbage;;;q=x,,", "en"), ("zh;q=abc", "en"), ("\x00\xff", "en"), ("-" * 5000, "en"),
])
def test_language_of_an_accept_language_header(header, language):
    assert i18n.language_of(parse_accept_header(header, LanguageAccept)) == language


CATALOGUE = i18n.Catalogue({
    "cancelled": "已取消",
    # the less specific first on purpose: the catalogue tries the more specific first anyway
    "order {order_id} is {status}": "订单 {order_id} {status}",
    "order {order_id} is paid through {provider}": "订单 {order_id} 通过 {provider} 支付",
    "Length must be {equal}.": "长度必须为 {equal}。",
    "Length must be between {min} and {max}.": "长度必须在 {min} 到 {max} 之间。",
    "unknown IATA airport code {code}": "未知的 IATA 机场代码 {code}",
    "the request body is not valid JSON: {reason}": "请求正文不是有效的 JSON：{reason}",
    "a number longer than {max_chars} characters": "数字长度超过 {max_chars} 个字符",
    "Longer than maximum length {max}.": "超过最大长度 {max}。",
    "brace {{literal}} and {value}": "括号 {{literal}} 与 {value}",
})


@pytest.mark.parametrize("english, chinese", [
    ("unknown IATA airport code 'QQQ'", "未知的 IATA 机场代码 'QQQ'"),
    ("Longer than maximum length 64.", "超过最大长度 64。"),
    ("Length must be between 1 and 48.", "长度必须在 1 到 48 之间。"),
    ("Length must be 3.", "长度必须为 3。"),
    ("order ord_1 is paid through alipay", "订单 ord_1 通过 alipay 支付"),   # the more specific first
    ("order ord_1 is cancelled", "订单 ord_1 已取消"),                        # a known value is translated
    ("order ord_1 is ord 2 is odd", "订单 ord_1 ord 2 is odd"),              # an unknown one is kept
    ("the request body is not valid JSON: a number longer than 4300 characters",
     "请求正文不是有效的 JSON：数字长度超过 4300 个字符"),                   # a translated reason inside
    ("brace {literal} and x", "括号 {literal} 与 x"),
    ("unknown IATA airport code 'a\nb'", "未知的 IATA 机场代码 'a\nb'"),
])
def test_templates_translate_with_their_parameters(english, chinese):
    assert CATALOGUE.translate(english, "zh") == chinese
    assert CATALOGUE.translate(english, "en") == english


def test_a_message_without_entry_stays_and_is_found_untranslated():
    assert CATALOGUE.translate("something new", "zh") == "something new"
    body = {"error": {"code": "validation_error", "message": "订单 1 已取消",
                      "fields": {"activities": {"0": {"to": ["something new"]}}, "kind": ["已取消"]}}}
    assert untranslated_messages(body) == ["something new"]


def test_fields_are_translated_at_every_depth_and_keep_their_names():
    fields = {"activities": {"1": {"from": ["unknown IATA airport code 'XQZ'"], "kind": ["cancelled"]}},
              "name": ["Longer than maximum length 64."]}
    assert CATALOGUE.translate_fields(fields, "zh") == {
        "activities": {"1": {"from": ["未知的 IATA 机场代码 'XQZ'"], "kind": ["已取消"]}},
        "name": ["超过最大长度 64。"]}


def test_placeholders():
    assert i18n.placeholders("order {order_id} is {status}; {{not}} one") == ["order_id", "status"]


def _every_field_class():
    return [cls for _name, cls in inspect.getmembers(ma_fields, inspect.isclass)
            if issubclass(cls, ma_fields.Field)]


def _rendered(template: str) -> str:
    values = {name: "7" for name in i18n.placeholders(template)}
    return template.format(**values)


def test_every_marshmallow_message_has_chinese():
    """marshmallow's own messages, for every field and validator it has (so an upgrade that
    adds one fails here): what a client meets on any field of any schema."""
    messages = {message for cls in _every_field_class() for cls_ in cls.__mro__
                for message in getattr(cls_, "default_error_messages", {}).values()}
    messages.add(marshmallow.Schema._default_error_messages["unknown"])
    messages.add(marshmallow.Schema._default_error_messages["type"])
    validate = marshmallow.validate
    messages |= {validate.Length.message_min, validate.Length.message_max, validate.Length.message_all,
                 validate.Length.message_equal}
    messages |= {validator.default_message for validator in (
        validate.OneOf, validate.Equal, validate.Regexp, validate.NoneOf, validate.URL, validate.Email,
        validate.ContainsOnly, validate.ContainsNoneOf)}
    for lower in ("greater than or equal to", "greater than"):
        for upper in ("less than or equal to", "less than"):
            messages.add(f"Must be {lower} {{min}} and {upper} {{max}}.")
        messages.add(f"Must be {lower} {{min}}.")
    messages |= {"Must be less than or equal to {max}.", "Must be less than {max}."}
    missing = sorted(m for m in messages if i18n.GENERIC.lookup(_rendered(m)) is None)
    assert not missing, missing


def test_every_status_description_and_code_default_has_chinese():
    """Werkzeug's description of each status the platform answers, and the message of an
    ApiError raised with its status only (the code, spelled out)."""
    for status, code in CODES.items():
        if status >= 400:
            assert i18n.GENERIC.lookup(code.replace("_", " ")), code
            description = http.default_exceptions[status].description
            assert i18n.GENERIC.lookup(description), description
    assert i18n.GENERIC.lookup(http.BadRequest.description)


def _app() -> Flask:
    app = Flask("i18n")
    register_error_handlers(app, i18n.Catalogue({"order {order_id} not found": "未找到订单 {order_id}"}))

    @app.get("/order/<order_id>")
    def order(order_id):
        raise ApiError(404, "not_found", f"order {order_id} not found")

    @app.get("/field")
    def field():
        raise ApiError(422, "validation_error", "some fields are invalid",
                       {"count": ["Must be greater than or equal to 1 and less than or equal to 20."]})

    @app.get("/things/")
    def things():
        return {"things": []}

    @app.get("/boom")
    def boom():
        raise RuntimeError("unexpected")
    return app


@pytest.mark.parametrize("path", ["/order/ord_9", "/field", "/boom", "/nowhere"])
@pytest.mark.parametrize("header, language", [("zh-CN", "zh"), ("zh-TW,en;q=0.5", "zh"), ("en", "en"),
                                              ("*", "en"), ("de", "en"), (";;;q=q", "en"), (None, "en")])
def test_the_error_handler_answers_in_the_requests_language(path, header, language):
    headers = {"Accept-Language": header} if header is not None else {}
    response = _app().test_client().get(path, headers=headers)
    assert_error_language(response, language)
    if language == "zh" and path == "/order/ord_9":
        assert response.get_json()["error"] == {"code": "not_found", "message": "未找到订单 ord_9"}


def test_a_method_not_allowed_and_a_redirect_are_translated_too():
    client = _app().test_client()
    assert_error_language(client.post("/field", headers={"Accept-Language": "zh"}), "zh")
    redirected = client.get("/things", headers={"Accept-Language": "zh"})
    assert redirected.status_code == 308
    assert_error_language(redirected, "zh")


def test_a_long_hostile_message_is_matched_in_linear_time():
    """A value of 1 MB full of the texts between parameters: every template is still tried
    quickly (no backtracking), and the message comes out whole."""
    catalogue = i18n.Catalogue({
        "{header} {key} was used for a different request": "{header} {key} 已用于另一个请求",
        "unknown order {after}": "未知订单 {after}"}) + i18n.GENERIC
    hostile = "unknown order " + " was used" * 100_000 + " a b" * 100_000
    started = time.monotonic()
    assert catalogue.translate(hostile, "zh") == "未知订单 " + hostile[len("unknown order "):]
    assert catalogue.translate("x " * 500_000, "zh") == "x " * 500_000
    assert time.monotonic() - started < 2


def test_a_template_needs_each_parameter_filled():
    catalogue = i18n.Catalogue({"order {order_id} is {status}": "订单 {order_id} {status}",
                                "{a} and {b}": "{a} 与 {b}"})
    assert catalogue.lookup("order  is paid") is None
    assert catalogue.lookup("order 1 is ") is None
    # the first "and" splits; the rest, a value, is itself a message the catalogue knows
    assert catalogue.lookup("x and y and z") == "x 与 y 与 z"


def test_the_metrics_refusals_have_chinese(monkeypatch):
    from diandian_common.metrics import _token_refusal
    from diandian_common.testing import has_chinese

    monkeypatch.setenv("METRICS_TOKEN", "scrape-secret")
    for presented in (None, "Bearer guess"):
        _status, _code, message = _token_refusal(presented)
        assert has_chinese(i18n.GENERIC.translate(message, "zh")), message
