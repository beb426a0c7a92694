"""The Flask side every service shares: app factory plumbing, request ids, health.

A service's ``create_app`` calls :func:`create_service_app` and registers its own
blueprints; everything else (error shape, OpenAPI document, ``/healthz``, logs) is
identical across services by construction.
"""
from __future__ import annotations

import logging
import time
import uuid

import flask_smorest
import redis
from flask import Flask, current_app, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api
from webargs import core as webargs_core
from webargs.flaskparser import FlaskParser, abort, is_json_request

from . import config, strict_json
from .db import Database
from .errors import ErrorSchema, http_exception_response, register_error_handlers
from .logs import configure_logging, request_id_var
from .metrics import install_flask_metrics

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"


class ServiceApi(Api):
    """flask-smorest's Api answering (and documenting) errors in the platform's shape."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error):  # noqa: D401 - flask-smorest hook
        return http_exception_response(error)


class StrictJsonParser(FlaskParser):
    """webargs' Flask parser reading JSON bodies with :mod:`diandian_common.strict_json`."""

    def _raw_load_json(self, req):
        if not is_json_request(req):
            return webargs_core.missing
        return strict_json.loads(req.get_data(cache=True))

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        # JSON the limits refuse says why; a syntax error keeps the plain message.
        reason = error.reason if isinstance(error, strict_json.UnsafeJson) else None
        abort(400, exc=error, messages={"json": [f"Invalid JSON body: {reason}" if reason else "Invalid JSON body."]})


class Blueprint(flask_smorest.Blueprint):
    """The services' blueprint: request bodies parsed by :class:`StrictJsonParser`."""

    ARGUMENTS_PARSER = StrictJsonParser()


class StrictJSONProvider(DefaultJSONProvider):
    """``request.get_json()`` with the same limits as the blueprints' parser."""

    def loads(self, s, **kwargs):
        return strict_json.loads(s)


def create_service_app(service: str, *, title: str, database_url: str | None = None,
                       extra_config: dict | None = None, wiring=None) -> tuple[Flask, ServiceApi]:
    """The Flask app and its flask-smorest Api. With ``wiring`` (a service's
    :class:`~diandian_common.uow.ServiceWiring`), the app and the service's tasks share one
    database: the wiring is bound to ``database_url`` and the app uses the wiring's."""
    configure_logging(service)
    app = Flask(service)
    app.config.update(
        API_TITLE=title,
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=1 * 1024 * 1024,
        JSON_SORT_KEYS=False,
        SERVICE_NAME=service,
        DATABASE_URL=database_url or config.database_url(service),
        REDIS_URL=config.redis_url(),
        PUBLIC_BASE_URL=config.public_base_url(),
    )
    app.config.update(extra_config or {})
    app.json = StrictJSONProvider(app)
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    if wiring is not None:
        wiring.bind(app.config["DATABASE_URL"])
        app.extensions["db"] = wiring.database()
    else:
        app.extensions["db"] = Database(app.config["DATABASE_URL"])
    api = ServiceApi(app)
    register_error_handlers(app)
    install_request_id(app)
    install_flask_metrics(app, service)
    app.add_url_rule("/healthz", "healthz", healthz)
    return app, api


def db() -> Database:
    """The current app's :class:`Database`."""
    return current_app.extensions["db"]


def install_request_id(app: Flask) -> None:
    """``X-Request-ID`` from the caller (the gateway) or a new one; echoed and logged."""
    @app.before_request
    def _start():
        rid = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        g.request_id = rid[:128]
        g.request_started = time.perf_counter()
        g._rid_token = request_id_var.set(g.request_id)

    @app.after_request
    def _finish(response):
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        started = g.get("request_started")
        if started is not None and request.path != "/healthz":
            log.info("%s %s %s", request.method, request.path, response.status_code,
                     extra={"status": response.status_code,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 2)})
        return response

    @app.teardown_request
    def _reset(_exc):
        token = g.pop("_rid_token", None)
        if token is not None:
            request_id_var.reset(token)


def check_redis(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


def healthz():
    """Same in every service: the database and Redis must answer."""
    checks = {}
    try:
        db().ping()
        checks["database"] = "ok"
    except Exception as exc:  # report, don't raise: this is the health endpoint
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        check_redis(current_app.config["REDIS_URL"])
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {exc.__class__.__name__}"
    ok = all(v == "ok" for v in checks.values())
    body = {"status": "ok" if ok else "error", "service": current_app.config["SERVICE_NAME"],
            "checks": checks}
    return jsonify(body), (200 if ok else 503)
