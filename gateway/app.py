"""Gateway app factory (gunicorn "gateway.app:create_app()")."""
from __future__ import annotations

from flask import Flask, jsonify, request

from diandian_common.errors import ApiError, register_error_handlers
from diandian_common.logs import configure_logging
from diandian_common.web import install_request_id

from . import health, pages, participants
from .proxy import Upstreams
from .routes import owner_of

API_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def create_app() -> Flask:
    configure_logging("gateway")
    app = Flask("gateway")
    app.config["MAX_CONTENT_LENGTH"] = 1 * 1024 * 1024
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    register_error_handlers(app)
    install_request_id(app)
    upstreams = Upstreams()
    app.extensions["upstreams"] = upstreams

    @app.route("/api/v1/<path:_rest>", methods=API_METHODS)
    def api(_rest):
        service = owner_of(request.path)
        if service is None:
            raise ApiError(404, "not_found", f"no API at {request.path}")
        return upstreams.forward(service)

    @app.get("/healthz")
    def healthz():
        ok, statuses = health.check_all(upstreams.session, upstreams.base_urls)
        return jsonify({"status": "ok" if ok else "error", "services": statuses}), (200 if ok else 503)

    pages.register(app, upstreams)
    app.after_request(participants.set_cookie)
    return app
