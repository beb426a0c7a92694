"""The Flask side every service shares: app factory plumbing, request ids, health.

A service's ``create_app`` calls :func:`create_service_app` and registers its own
blueprints; everything else (error shape, OpenAPI document, ``/healthz``, logs) is
identical across services by construction.
"""
from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Mapping, Sequence

import flask_smorest
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from flask import Flask, current_app, g, request
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api
from webargs import core as webargs_core
from webargs.flaskparser import FlaskParser, abort, is_json_request

from . import config, deployment, health, strict_json
from .db import Database
from .errors import ErrorSchema, http_exception_response, register_error_handlers
from .i18n import Catalogue
from .logs import configure_logging, request_id_var
from .metrics import install_flask_metrics
from .uow import rerun_on_lost_connection

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"


class ServiceApi(Api):
    """flask-smorest's Api answering (and documenting) errors in the platform's shape."""

    ERROR_SCHEMA = ErrorSchema

    def __init__(self, app=None, *, spec_kwargs=None, **kwargs):
        spec_kwargs = {"marshmallow_plugin": DocumentingPlugin(), **(spec_kwargs or {})}
        super().__init__(app, spec_kwargs=spec_kwargs, **kwargs)

    def handle_http_exception(self, error):  # noqa: D401 - flask-smorest hook
        return http_exception_response(error)

    def _register_responses(self):
        super()._register_responses()
        for name, (description, _status) in DOCUMENTED_ERRORS.items():
            self.spec.components.response(name, {"description": description, "content": {
                "application/json": {"schema": self.ERROR_SCHEMA}}}, lazy=True)


# --- the OpenAPI document -------------------------------------------------------------------
#
# What every service's /openapi.json says beyond flask-smorest's defaults, so that a client
# generated from it (tests/test_generated_client.py) and a fuzzer reading it
# (tests/test_hostile_api.py) meet the API as it is: a nested object that may be null keeps its
# type, a schema that is one of several variants says which, every error answer has the
# platform's error body, and every operation has a stable operationId.

# Error answers every service gives on the routes they apply to: response component name →
# (description, status). The gateway adds its own (401/403 of operator keys, 429, 503).
DOCUMENTED_ERRORS = {
    "INVALID_JSON": ("`invalid_json`: the body is not JSON, or breaks the limits of JSON the API "
                     "reads (size of numbers, nesting, NaN, lone surrogates)", 400),
    "UNKNOWN_ID": ("`not_found`: nothing has this id (or slug, or code)", 404),
}


@dataclass(frozen=True)
class OneOf:
    """Documentation only: the instances of the schema that carries this (as ``openapi_one_of``)
    are exactly one of ``variants``, marshmallow schemas documented in its place. With
    ``discriminator``, ``variants`` maps each value of that property to its variant (which may
    itself carry a :class:`OneOf`); validation stays the schema's own."""

    variants: Mapping[str, type] | Sequence[type]
    discriminator: str | None = None


class DocumentingConverter(OpenAPIConverter):
    def field2nullable(self, field, ret) -> dict:
        # apispec writes a nullable nested schema in OpenAPI 3.0 as anyOf a free-form object and
        # the reference, which generated clients read as "any object" and lose the type. The
        # 3.0 way that keeps it: allOf the reference, nullable.
        if field.allow_none and self.openapi_version.major == 3 and self.openapi_version.minor == 0:
            if "$ref" in ret:
                return {"allOf": [{"$ref": ret.pop("$ref")}], "nullable": True}
            if "allOf" in ret:
                return {"nullable": True}
        return super().field2nullable(field, ret)

    def schema2jsonschema(self, schema):
        one_of: OneOf | None = getattr(schema, "openapi_one_of", None)
        if one_of is None:
            return super().schema2jsonschema(schema)
        if isinstance(one_of.variants, Mapping):
            refs = {value: self.resolve_nested_schema(variant) for value, variant in one_of.variants.items()}
            document = {"oneOf": list(refs.values())}
            if one_of.discriminator:
                document["discriminator"] = {"propertyName": one_of.discriminator, "mapping": {
                    value: ref["$ref"] for value, ref in refs.items()}}
        else:
            document = {"oneOf": [self.resolve_nested_schema(variant) for variant in one_of.variants]}
        description = (getattr(schema, "__doc__", None) or "").strip()
        if description:
            document["description"] = " ".join(description.split())
        return document


def operation_id(method: str, view) -> str:
    """A view's operationId: a function's name (``create_scene``), or a MethodView's method and
    class (``post_order_payment`` for ``OrderPayment.post``)."""
    if isinstance(view, type):
        words = re.sub(r"(?<!^)(?=[A-Z])", "_", view.__name__).lower()
        return f"{method.lower()}_{words}"
    return view.__name__


def _is_json(content: dict | None) -> bool:
    return bool(content) and any(media.endswith("json") for media in content)


class DocumentingPlugin(MarshmallowPlugin):
    """apispec's marshmallow plugin with :class:`DocumentingConverter`, documenting on every
    operation the errors it can answer, in the platform's error shape: a JSON body's
    ``invalid_json`` (400), an unknown id in the path (404), and the error body on every error
    answer documented by its description alone (``alt_response(409, description=...)``)."""

    Converter = DocumentingConverter

    def operation_helper(self, path=None, operations=None, **kwargs):
        for operation in (operations or {}).values():
            # flask-smorest keys responses by the status as the decorators gave it (201 or "201")
            responses = {str(status): response for status, response in operation.get("responses", {}).items()}
            if _is_json(operation.get("requestBody", {}).get("content")):
                responses.setdefault("400", "INVALID_JSON")
            if path and "{" in path:
                responses.setdefault("404", "UNKNOWN_ID")
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400 and isinstance(response, dict) \
                        and "content" not in response and "$ref" not in response:
                    response["content"] = {"application/json": {"schema": ErrorSchema}}
            operation["responses"] = responses
        super().operation_helper(path=path, operations=operations, **kwargs)


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
    """The services' blueprint: request bodies parsed by :class:`StrictJsonParser`, and every
    operation documented with an operationId (:func:`operation_id`; ``@blp.doc(operationId=...)``
    overrides it), which names the functions of generated clients and which links refer to."""

    ARGUMENTS_PARSER = StrictJsonParser()

    def _store_endpoint_docs(self, endpoint, obj, parameters, tags, **options):
        super()._store_endpoint_docs(endpoint, obj, parameters, tags, **options)
        for method, doc in self._docs[endpoint].items():
            if method != "parameters":
                doc["docstring"].setdefault("operationId", operation_id(method, obj))


class StrictJSONProvider(DefaultJSONProvider):
    """``request.get_json()`` with the same limits as the blueprints' parser."""

    def loads(self, s, **kwargs):
        return strict_json.loads(s)


class ServiceFlask(Flask):
    """A service's Flask app: each view runs under :func:`~diandian_common.uow.rerun_on_lost_connection`,
    so a request whose transaction lost its database connection is run once more on a fresh one."""

    def dispatch_request(self):
        return rerun_on_lost_connection(super().dispatch_request, self.name)


def create_service_app(service: str, *, title: str, database_url: str | None = None,
                       extra_config: dict | None = None, wiring=None,
                       error_messages: Catalogue | None = None) -> tuple[Flask, ServiceApi]:
    """The Flask app and its flask-smorest Api. With ``wiring`` (a service's
    :class:`~diandian_common.uow.ServiceWiring`), the app and the service's tasks share one
    database: the wiring is bound to ``database_url`` and the app uses the wiring's.
    ``error_messages``: the service's own catalogue of translated error messages
    (diandian_common.i18n).
    In production it refuses to build with public or missing secrets (diandian_common.deployment)."""
    configure_logging(service)
    deployment.check(service)
    app = ServiceFlask(service)
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
    register_error_handlers(app, error_messages)
    install_request_id(app)
    install_flask_metrics(app, service)
    # Its scheduler's heartbeat counts where the service has a beat schedule (diandian_common.health).
    health.install(app, service, scheduled=bool(wiring is not None and wiring.celery is not None
                                                 and wiring.celery.conf.beat_schedule))
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
