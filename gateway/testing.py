"""Helpers for the gateway's tests (imported by tests only): stand-in services on real
ports. (A Redis of the tests' own: the ``redis_url`` fixture of diandian_common.testing.)"""
from __future__ import annotations

import threading
import time

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from diandian_common.auth import check_operator, request_guest
from diandian_common.errors import ApiError, register_error_handlers
from diandian_common.testing import free_port
from diandian_common.web import install_request_id


class Upstream:
    """A service on a real port that echoes what it received, including who the operator
    and the guest are by the services' own rules (diandian_common.auth). ``?sleep=s`` makes it slow;
    ``openapi`` is served at /openapi.json."""

    def __init__(self, name: str, healthy: bool = True, openapi: dict | None = None):
        app = Flask(name)
        register_error_handlers(app)
        install_request_id(app)

        @app.route("/api/v1/<path:rest>", methods=["GET", "POST", "PATCH", "DELETE"])
        def echo(rest):
            time.sleep(float(request.args.get("sleep", 0)))
            try:
                operator = check_operator()
                seen_operator = {"key_id": operator.key_id, "scopes": sorted(operator.scopes)}
            except ApiError as exc:
                seen_operator = exc.code
            try:
                guest = request_guest()
                seen_guest = {"participant_id": guest.participant_id, "address": guest.address} if guest else None
            except ApiError as exc:
                seen_guest = exc.code
            return jsonify({"service": name, "path": request.path, "query": request.query_string.decode(),
                            "body": request.get_data(as_text=True), "headers": dict(request.headers),
                            "operator": seen_operator, "guest": seen_guest}), 201 if request.method == "POST" else 200

        @app.get("/healthz")
        def healthz():
            return jsonify({"status": "ok" if healthy else "error",
                            "checks": {"database": "ok" if healthy else "error: OperationalError"}}), \
                200 if healthy else 503

        @app.get("/openapi.json")
        def openapi_json():
            if openapi is None:
                return jsonify({"error": {"code": "not_found", "message": "no document"}}), 404
            return jsonify(openapi)

        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
