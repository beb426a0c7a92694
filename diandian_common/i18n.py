"""The language of error messages (docs/contract.md §5 "Conventions").

Messages are written in English where they are raised, as plain sentences with their values
in them (``f"order {order_id} not found"``); the one error handler (diandian_common.errors)
translates ``error.message`` and every message in ``error.fields`` into the request's
language just before answering. A :class:`Catalogue` maps English *templates* with named
parameters (``"order {order_id} not found"``) to their Chinese templates (``"未找到订单
{order_id}"``): a message that matches a template whole is rewritten with the values it
carried, so raise sites stay ordinary Python and the machine-readable ``error.code`` and
field names never change. This module holds the plumbing and the generic messages
(marshmallow's, webargs', Werkzeug's, the CODES defaults); each service keeps its own
messages in its own catalogue (``<service>/messages.py``) and hands it to
:func:`diandian_common.web.create_service_app`.
"""
from __future__ import annotations

import string
from collections.abc import Iterable, Mapping

from flask import current_app, has_request_context, request

ENGLISH, CHINESE = "en", "zh"
LANGUAGES = (ENGLISH, CHINESE)
EXTENSION = "diandian_error_messages"

def language_of(accept_language) -> str:
    """The supported language a parsed Accept-Language (werkzeug's LanguageAccept, a list of
    (tag, quality)) prefers: the first by quality, ties in the client's order, whose primary
    subtag we speak. ``*``, an unknown language or nothing at all: English. (werkzeug's
    ``best_match`` is not used on purpose: for ``zh-CN, en`` it prefers the exact ``en`` over
    the primary-subtag ``zh``, against the client's order.)"""
    ranked = sorted(((tag, quality) for tag, quality in accept_language if quality > 0),
                    key=lambda item: -item[1])
    for tag, _quality in ranked:
        if tag == "*":
            return ENGLISH
        primary = tag.split("-", 1)[0].split("_", 1)[0].lower()
        if primary in LANGUAGES:
            return primary
    return ENGLISH


def request_language() -> str:
    """The current request's language for error messages (English outside a request)."""
    if not has_request_context():
        return ENGLISH
    return language_of(request.accept_languages)


def placeholders(template: str) -> list[str]:
    """The named parameters of a template, in order (``{name}``; ``{{`` is a literal brace)."""
    return [name for _text, name, _spec, _conv in string.Formatter().parse(template) if name is not None]


class _Template:
    """One English template with parameters, matched in linear time: its first text is the
    message's start, its last text the message's end, each text between is found at its
    first place after the previous one, and every parameter takes at least one character.
    (A regular expression of lazy groups would backtrack: quadratic or worse on a long hostile
    value, such as a path or a query of 8 KB, for every template it is tried against.)"""

    def __init__(self, english: str):
        texts, names, text_so_far = [], [], ""
        for text, name, _spec, _conversion in string.Formatter().parse(english):
            text_so_far += text  # "{{" comes as a text of its own
            if name is not None:
                texts.append(text_so_far)
                names.append(name)
                text_so_far = ""
        self.texts, self.names = [*texts, text_so_far], names

    def match(self, message: str) -> dict[str, str] | None:
        first, middle, last = self.texts[0], self.texts[1:-1], self.texts[-1]
        end = len(message) - len(last)
        if end < len(first) + len(self.names) or not message.startswith(first) or not message.endswith(last):
            return None
        values, position = {}, len(first)
        for name, text in zip(self.names, [*middle, None]):
            found = end if text is None else message.find(text, position + 1, end)
            if found < 0 or found <= position:
                return None
            values[name] = message[position:found]
            position = found + len(text or "")
        return values


class Catalogue:
    """English templates → Chinese templates. A template without parameters is looked up
    exactly; one with parameters matches a whole message, the most specific template (the
    most text besides its parameters) first. The values a template matched are themselves
    looked up as whole messages, so a status or a reason named in a sentence is translated
    when the catalogue knows it, and kept (an id, a code) when not."""

    def __init__(self, entries: Mapping[str, str], *more: Catalogue):
        self.entries = dict(entries)
        for other in more:
            for english, chinese in other.entries.items():
                self.entries.setdefault(english, chinese)
        self._exact = {english: chinese for english, chinese in self.entries.items()
                       if not placeholders(english)}
        # The template with more text of its own is the more specific: "Length must be between
        # {min} and {max}." is tried before "Length must be {equal}.", which would match it too.
        templates = sorted((english for english in self.entries if placeholders(english)),
                           key=lambda english: -len("".join(_Template(english).texts)))
        self._templates = [(_Template(english), self.entries[english]) for english in templates]

    def __add__(self, other: Catalogue) -> Catalogue:
        return Catalogue(self.entries, other)

    def lookup(self, message: str) -> str | None:
        """The Chinese of one English message, or None when no entry matches it."""
        if message in self._exact:
            return self._exact[message]
        for template, chinese in self._templates:
            matched = template.match(message)
            if matched is not None:
                return chinese.format(**{name: self._value(value) for name, value in matched.items()})
        return None

    def _value(self, value: str) -> str:
        # A value is shorter than the message it was found in (every template has text of
        # its own besides its parameters), so this recursion ends.
        found = self.lookup(value)
        return value if found is None else found

    def translate(self, message, language: str):
        """``message`` in ``language``; a message without an entry stays as it is (the tests'
        :func:`diandian_common.testing.untranslated_messages` finds those)."""
        if language == ENGLISH or not isinstance(message, str):
            return message
        found = self.lookup(message)
        return message if found is None else found

    def translate_fields(self, messages, language: str):
        """Every message in an ``error.fields`` tree (dicts of lists of messages, nested by
        field name or list index); the keys, which are field names, stay."""
        if language == ENGLISH:
            return messages
        if isinstance(messages, Mapping):
            return {key: self.translate_fields(value, language) for key, value in messages.items()}
        if isinstance(messages, (list, tuple)):
            return [self.translate_fields(value, language) for value in messages]
        return self.translate(messages, language)


def merged(*catalogues: Catalogue) -> Catalogue:
    return Catalogue({}, *catalogues)


def install(app, catalogue: Catalogue) -> None:
    """The app's error messages: ``catalogue`` (its own) over the generic ones."""
    app.extensions[EXTENSION] = merged(catalogue, GENERIC)


def app_catalogue() -> Catalogue:
    return current_app.extensions.get(EXTENSION, GENERIC) if has_request_context() else GENERIC


def localise(message: str, fields=None) -> tuple[str, object]:
    """(message, fields) of an error body in the current request's language."""
    language = request_language()
    catalogue = app_catalogue()
    return (catalogue.translate(message, language),
            catalogue.translate_fields(fields, language) if fields else fields)


def iter_messages(fields) -> Iterable[str]:
    """Every message string in an ``error.fields`` tree."""
    if isinstance(fields, Mapping):
        for value in fields.values():
            yield from iter_messages(value)
    elif isinstance(fields, (list, tuple)):
        for value in fields:
            yield from iter_messages(value)
    elif isinstance(fields, str):
        yield fields


# --- the generic messages: the platform's own, marshmallow's, webargs', Werkzeug's -----------

GENERIC = Catalogue({
    # diandian_common.errors and the CODES defaults (ApiError without a message says its code)
    "some fields are invalid": "部分字段无效",
    "an unexpected error occurred": "发生了意外错误",
    "the request body nests too deeply": "请求正文嵌套层数过多",
    "the request body is not valid JSON": "请求正文不是有效的 JSON",
    "the request body is not valid JSON: {reason}": "请求正文不是有效的 JSON：{reason}",
    "the database is briefly unavailable; send the same request again shortly":
        "数据库暂时不可用；请稍后重新发送同一请求",
    "this resource is at {location}; repeat the request there":
        "此资源位于 {location}；请向该地址重新发送请求",
    "permanent redirect": "永久重定向",
    "bad request": "请求有误",
    "unauthorized": "未经授权",
    "forbidden": "禁止访问",
    "not found": "未找到",
    "method not allowed": "不允许使用此方法",
    "not acceptable": "无法提供可接受的格式",
    "conflict": "冲突",
    "payload too large": "请求正文过大",
    "uri too long": "URL 过长",
    "unsupported media type": "不支持的媒体类型",
    "validation error": "校验错误",
    "rate limited": "请求过于频繁",
    "request header fields too large": "请求头过大",
    "internal error": "内部错误",
    "bad gateway": "网关错误",
    "service unavailable": "服务不可用",
    "gateway timeout": "网关超时",
    # diandian_common.strict_json's reasons, inside "Invalid JSON body: {reason}"
    "Invalid JSON body.": "JSON 正文无效。",
    "Invalid JSON body: {reason}": "JSON 正文无效：{reason}",
    "a number longer than {max_chars} characters": "数字长度超过 {max_chars} 个字符",
    "{name} is not a number JSON allows": "{name} 不是 JSON 允许的数字",
    "a string holds a lone surrogate (invalid Unicode)": "字符串含有孤立的代理码位（无效的 Unicode）",
    "the body is not UTF-8 ({reason})": "正文不是 UTF-8 编码（{reason}）",
    # diandian_common.contract_fields and diandian_common.auth
    "must be a string or an integer": "必须是字符串或整数",
    "must be 1 to 100 characters": "长度必须为 1 到 100 个字符",
    "must be an ISO-8601 date-time string": "必须是 ISO-8601 日期时间字符串",
    "must be a number": "必须是数字",
    "must be a finite number": "必须是有限数",
    "has more than three decimals": "小数位超过三位",
    "must be above 0": "必须大于 0",
    "must be a boolean": "必须是布尔值",
    "must not be blank": "不能为空白",
    "the participant assertion is invalid or expired": "参与者凭证无效或已过期",
    "the operator assertion is invalid or expired": "运营方凭证无效或已过期",
    "this endpoint needs an operator key in {header}": "此接口需要在 {header} 中提供运营方密钥",
    "the API key is not valid for this endpoint": "此 API 密钥对该接口无效",
    "this endpoint needs an operator key with the {scope} scope":
        "此接口需要具有 {scope} 权限范围的运营方密钥",
    "participant ids are assigned by the platform (the browser's cookie); naming a guest needs an "
    "operator key with the {scope} scope":
        "参与者 ID 由平台分配（浏览器的 Cookie）；指定访客需要具有 {scope} 权限范围的运营方密钥",
    # diandian_common.metrics
    "the metrics need 'Authorization: Bearer <METRICS_TOKEN>'":
        "指标接口需要 'Authorization: Bearer <METRICS_TOKEN>'",
    "the metrics token is not valid": "指标令牌无效",
    # marshmallow's fields (4.x default_error_messages)
    "Missing data for required field.": "缺少必填字段。",
    "Field may not be null.": "字段不能为 null。",
    "Invalid value.": "值无效。",
    "Unknown field.": "未知字段。",
    "Invalid input type.": "输入类型无效。",
    "Not a valid string.": "不是有效的字符串。",
    "Not a valid utf-8 string.": "不是有效的 UTF-8 字符串。",
    "Not a valid integer.": "不是有效的整数。",
    "Not a valid number.": "不是有效的数字。",
    "Number too large.": "数字过大。",
    "Special numeric values (nan or infinity) are not permitted.": "不允许使用特殊数值（nan 或 infinity）。",
    "Not a valid boolean.": "不是有效的布尔值。",
    "Not a valid datetime.": "不是有效的日期时间。",
    "Not a valid date.": "不是有效的日期。",
    "Not a valid time.": "不是有效的时间。",
    "Not a valid aware datetime.": "不是有效的带时区日期时间。",
    "Not a valid naive datetime.": "不是有效的不带时区日期时间。",
    "Not a valid {obj_type}.": "不是有效的 {obj_type}。",
    "Not a valid period of time.": "不是有效的时间段。",
    "Cannot be formatted as a {obj_type}.": "无法格式化为 {obj_type}。",
    "\"{input}\" cannot be formatted as a {obj_type}.": "“{input}”无法格式化为 {obj_type}。",
    "{input} cannot be formatted as a timedelta.": "{input} 无法格式化为时间段。",
    "Invalid type.": "类型无效。",
    "Not a valid mapping type.": "不是有效的映射类型。",
    "Not a valid list.": "不是有效的列表。",
    "Not a valid tuple.": "不是有效的元组。",
    "Not a valid UUID.": "不是有效的 UUID。",
    "Not a valid URL.": "不是有效的 URL。",
    "Not a valid email address.": "不是有效的电子邮件地址。",
    "Not a valid IP address.": "不是有效的 IP 地址。",
    "Not a valid IPv4 address.": "不是有效的 IPv4 地址。",
    "Not a valid IPv6 address.": "不是有效的 IPv6 地址。",
    "Not a valid IP interface.": "不是有效的 IP 接口。",
    "Not a valid IPv4 interface.": "不是有效的 IPv4 接口。",
    "Not a valid IPv6 interface.": "不是有效的 IPv6 接口。",
    "Must be one of: {choices}.": "必须是以下之一：{choices}。",
    "Not a valid value.": "不是有效的值。",
    # marshmallow's validators
    "Shorter than minimum length {min}.": "短于最小长度 {min}。",
    "Longer than maximum length {max}.": "超过最大长度 {max}。",
    "Length must be between {min} and {max}.": "长度必须在 {min} 到 {max} 之间。",
    "Length must be {equal}.": "长度必须为 {equal}。",
    "Must be greater than or equal to {min} and less than or equal to {max}.":
        "必须大于等于 {min} 且小于等于 {max}。",
    "Must be greater than or equal to {min} and less than {max}.": "必须大于等于 {min} 且小于 {max}。",
    "Must be greater than {min} and less than or equal to {max}.": "必须大于 {min} 且小于等于 {max}。",
    "Must be greater than {min} and less than {max}.": "必须大于 {min} 且小于 {max}。",
    "Must be greater than or equal to {min}.": "必须大于等于 {min}。",
    "Must be greater than {min}.": "必须大于 {min}。",
    "Must be less than or equal to {max}.": "必须小于等于 {max}。",
    "Must be less than {max}.": "必须小于 {max}。",
    "Must be equal to {other}.": "必须等于 {other}。",
    "String does not match expected pattern.": "字符串与预期格式不符。",
    "Invalid input.": "输入无效。",
    "One or more of the choices you made was not in: {choices}.":
        "所选的一项或多项不在以下范围内：{choices}。",
    "One or more of the choices you made was in: {values}.": "所选的一项或多项属于不允许的值：{values}。",
    # Werkzeug's descriptions of the statuses the services answer themselves
    "The browser (or proxy) sent a request that this server could not understand.":
        "浏览器（或代理）发送了服务器无法理解的请求。",
    "The requested URL was not found on the server. If you entered the URL manually please check "
    "your spelling and try again.": "服务器上没有请求的 URL。如果是手动输入的 URL，请检查拼写后重试。",
    "The request was well-formed but was unable to be followed due to semantic errors.":
        "请求格式正确，但因语义错误无法处理。",
    "The method is not allowed for the requested URL.": "请求的 URL 不允许使用此方法。",
    "The data value transmitted exceeds the capacity limit.": "发送的数据超过了容量上限。",
    "The server does not support the media type transmitted in the request.":
        "服务器不支持请求中的媒体类型。",
    "The server could not verify that you are authorized to access the URL requested. You either "
    "supplied the wrong credentials (e.g. a bad password), or your browser doesn't understand how to "
    "supply the credentials required.": "服务器无法确认您有权访问请求的 URL。",
    "You don't have the permission to access the requested resource. It is either read-protected or "
    "not readable by the server.": "您没有访问所请求资源的权限。",
    "A conflict happened while processing the request. The resource might have been modified while "
    "the request was being processed.": "处理请求时发生冲突，资源可能在处理期间被修改。",
    "The resource could not be found with the given criteria.": "找不到符合条件的资源。",
    "The resource identified by the request is only capable of generating response entities which "
    "have content characteristics not acceptable according to the accept headers sent in the "
    "request.": "所请求资源只能生成请求的 Accept 头不接受的内容。",
    "The length of the requested URL exceeds the capacity limit for this server. The request cannot "
    "be processed.": "请求的 URL 长度超过了服务器的上限，无法处理该请求。",
    "One or more header fields exceeds the maximum size.": "一个或多个请求头字段超过了最大长度。",
    "This user has exceeded an allotted request count. Try again later.":
        "此用户的请求次数已超出限额，请稍后重试。",
    "The server encountered an internal error and was unable to complete your request. Either the "
    "server is overloaded or there is an error in the application.": "服务器发生内部错误，无法完成请求。",
    "The proxy server received an invalid response from an upstream server.":
        "代理服务器从上游服务器收到无效响应。",
    "The server is temporarily unable to service your request due to maintenance downtime or "
    "capacity problems. Please try again later.": "服务器因维护或容量问题暂时无法处理请求，请稍后重试。",
    "The connection to an upstream server timed out.": "连接上游服务器超时。",
    "The server cannot process the request because it is malformed. It should not be retried.":
        "请求格式错误，服务器无法处理，请勿重试。",
})
