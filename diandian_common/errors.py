"""The one error shape of the platform (docs/contract.md §5 "Conventions").

``{"error": {"code": "...", "message": "...", "fields": {...}}}`` with 400 for unreadable
JSON, 422 for invalid fields, 404 for unknown ids, 409 for conflicts, and never a bare 500.
Werkzeug's own answers (405, 413, and the 308 of a URL with doubled slashes, which Flask
never hands to error handlers) have the same shape. A database fault that can heal
(:data:`diandian_common.db.TRANSIENT_ERRORS`: a lost connection the request's re-run did
not mend, a lock timeout, a server refusing connections) is 503 ``database_unavailable``
with ``Retry-After``: the client sends the same request again (with the same
Idempotency-Key), never a 500.

Every message is answered in the request's language (Accept-Language, zh or en: see
:mod:`diandian_common.i18n`); ``code`` and the field names never change. Error responses say
which language they speak (``Content-Language``) and that it depends on the request
(``Vary: Accept-Language``).
"""
from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

from flask import Flask, jsonify, request
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from . import i18n
from .db import TRANSIENT_ERRORS

log = logging.getLogger(__name__)

# Seconds a client waits before sending a request the database could not serve again: a
# lost connection is replaced at once, a restart or failover takes a few seconds.
DATABASE_RETRY_AFTER_S = 2

CODES = {
    308: "permanent_redirect",
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    431: "request_header_fields_too_large",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


class ErrorDetailSchema(Schema):
    code = fields.String(required=True, metadata={"example": "validation_error"})
    message = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields", metadata={"description": "each invalid field and why"})


class ErrorSchema(Schema):
    """The error body of every response with status ≥ 400 (for the OpenAPI document)."""

    error = fields.Nested(ErrorDetailSchema, required=True)


class ApiError(Exception):
    """Raise anywhere in a request to answer with the platform's error shape."""

    def __init__(self, status: int, code: str | None = None, message: str | None = None,
                 fields: dict | None = None, headers: dict | None = None):
        super().__init__(message or code)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message or self.code.replace("_", " ")
        self.fields = fields
        self.headers = headers or {}


class NotFound(ApiError):
    def __init__(self, what: str, ident):
        super().__init__(404, "not_found", f"{what} {ident!s} not found")


def error_body(status: int, code: str, message: str, fields: dict | None = None) -> dict:
    """The error shape, its messages in the current request's language."""
    message, fields = i18n.localise(message, fields)
    error = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def error_response(status: int, code: str, message: str, fields: dict | None = None,
                   headers: dict | None = None):
    response = jsonify(error_body(status, code, message, fields))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return says_language(response)


def says_language(response):
    """``Content-Language`` (unless an upstream's answer relayed by the gateway says it
    already) and ``Vary: Accept-Language`` on an error response."""
    response.headers.setdefault("Content-Language", i18n.request_language())
    response.vary.add("Accept-Language")
    return response


def error_language_headers(response):
    """After-request hook: every JSON answer with an error status, including those a route
    built with :func:`error_body`, says its language."""
    if response.status_code >= 400 and response.mimetype == "application/json":
        says_language(response)
    return response


def _fields_from_webargs(messages) -> dict | None:
    """webargs reports ``{"json": {...}, "query": {...}}``; callers want the fields."""
    if not isinstance(messages, dict):
        return None
    fields: dict = {}
    for location_messages in messages.values():
        if isinstance(location_messages, dict):
            fields.update(location_messages)
        elif location_messages:
            fields.setdefault("_schema", []).extend(location_messages)
    return fields or None


def http_exception_response(exc: HTTPException):
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    fields = _fields_from_webargs(messages)
    code = CODES.get(status, "error")
    message = exc.description or code
    invalid_json = [str(m) for m in (fields or {}).get("_schema", []) if "Invalid JSON" in str(m)]
    if status == 400 and invalid_json:
        reason = invalid_json[0].partition("Invalid JSON body: ")[2]
        code, fields = "invalid_json", None
        message = f"the request body is not valid JSON: {reason}" if reason else "the request body is not valid JSON"
    elif status == 422:
        message = "some fields are invalid"
    headers = {}
    if exc.response is not None and "Retry-After" in exc.response.headers:
        headers["Retry-After"] = exc.response.headers["Retry-After"]
    if status == 405 and getattr(exc, "valid_methods", None):
        headers["Allow"] = ", ".join(exc.valid_methods)
    return error_response(status, code, message, fields, headers)


def redirect_location(url: str) -> str:
    """A routing redirect's target as a path on this site: Werkzeug builds it from the Host
    the client sent, which a relative Location neither repeats nor needs."""
    target = urlsplit(url)
    path = "/" + target.path.lstrip("/")  # never "//host": that is another site
    return path + (f"?{target.query}" if target.query else "")


def routing_redirect_as_json(response):
    """After-request hook: the HTML page of a routing redirect (Werkzeug's 308 to the URL
    with doubled slashes merged, or with the trailing slash a route has) becomes the
    platform's error shape, in place, so every other hook's headers stay."""
    redirect = request.routing_exception
    if not isinstance(redirect, RequestRedirect) or response.status_code != redirect.code:
        return response
    location = redirect_location(redirect.new_url)
    body = error_body(redirect.code, CODES.get(redirect.code, "redirect"),
                      f"this resource is at {location}; repeat the request there")
    response.set_data(json.dumps(body, ensure_ascii=False))
    response.mimetype = "application/json"
    response.headers["Location"] = location
    return says_language(response)


def database_unavailable_response(exc: Exception):
    """503 ``database_unavailable`` with ``Retry-After``, for a fault of TRANSIENT_ERRORS."""
    log.warning("database unavailable, answered 503: %s: %s", exc.__class__.__name__,
                getattr(exc, "orig", None) or exc)
    return error_response(503, "database_unavailable",
                          "the database is briefly unavailable; send the same request again shortly",
                          headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)})


def register_error_handlers(app: Flask, messages: i18n.Catalogue | None = None) -> None:
    """The one error handler; ``messages``: the app's own catalogue of error messages, used
    with the generic ones (diandian_common.i18n)."""
    i18n.install(app, messages or i18n.Catalogue({}))
    app.after_request(routing_redirect_as_json)
    app.after_request(error_language_headers)
    for transient in TRANSIENT_ERRORS:
        app.register_error_handler(transient, database_unavailable_response)

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.fields, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return http_exception_response(exc)

    @app.errorhandler(RecursionError)
    def _too_deeply_nested(_exc):
        # The JSON parser recurses once per nesting level: a body of 100,000 "[" is not
        # JSON any client means to send, and must not become a 500.
        return error_response(400, "invalid_json", "the request body nests too deeply")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "an unexpected error occurred")
