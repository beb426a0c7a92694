"""Gateway app factory (gunicorn "gateway.app:create_app()")."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, request

from diandian_common import config, deployment
from diandian_common.auth import DEVELOPMENT_GATEWAY_SECRET, DEVELOPMENT_INTERNAL_SECRET, internal_secret
from diandian_common.db import Database
from diandian_common.errors import ApiError, register_error_handlers
from diandian_common.logs import configure_logging
from diandian_common.metrics import install_flask_metrics
from diandian_common.web import install_request_id

from . import apidocs, cli, event_report, health, limits, pages, participants, security, share_card
from .keys import KeyStore, authorize_request
from .openapi import MergedDocument
from .proxy import Upstreams
from .routes import owner_of

log = logging.getLogger(__name__)

API_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def create_app(database_url: str | None = None) -> Flask:
    configure_logging("gateway")
    deployment.check("gateway")  # production refuses public or missing secrets
    app = Flask("gateway")
    app.config["MAX_CONTENT_LENGTH"] = 1 * 1024 * 1024
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    security.install_proxy_fix(app)
    register_error_handlers(app)
    install_request_id(app)
    install_flask_metrics(app, "gateway")
    # Order matters: the guard reads the request before anything else looks at its path,
    # and CORS preflights are answered before the limiter counts anything.
    security.install_request_guard(app)
    security.install_cors(app, security.cors_origins())
    app.extensions["keys"] = KeyStore(Database(database_url or config.database_url("gateway")))
    limits.install(app)
    security.install_security_headers(app)
    upstreams = Upstreams()
    app.extensions["upstreams"] = upstreams
    app.extensions["openapi"] = MergedDocument(upstreams)
    if internal_secret() == DEVELOPMENT_INTERNAL_SECRET:
        log.warning("INTERNAL_API_SECRET is not set: using the development secret, fine locally only")
    if participants.secret_key() == DEVELOPMENT_GATEWAY_SECRET:
        log.warning("GATEWAY_SECRET_KEY is not set: guests' cookies are signed with the public development "
                    "key, so anyone can forge them; fine locally only")

    @app.route("/api/v1/<path:_rest>", methods=API_METHODS)
    def api(_rest):
        service = owner_of(request.path)
        if service is None:
            raise ApiError(404, "not_found", f"no API at {request.path}")
        return upstreams.forward(service, operator=authorize_request(), guest=participants.request_guest())

    @app.get("/healthz")
    def healthz():
        ok, body = health.check_all(upstreams.session, upstreams.base_urls)
        return jsonify(body), (200 if ok else 503)

    event_report.register(app)  # before the proxy: a more specific rule than /api/v1/<path>
    share_card.register(app)    # likewise; every other /api/v1/certificates path is proxied
    app.register_blueprint(apidocs.blp)
    pages.register(app, upstreams)
    app.after_request(participants.set_cookie)
    cli.register(app)
    return app
