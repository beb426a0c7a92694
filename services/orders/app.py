"""Orders service app factory (gunicorn "orders.app:create_app()")."""
from __future__ import annotations

from diandian_common.auth import API_KEY_HEADER
from diandian_common.web import create_service_app

from . import api_settlement, api_webhooks, cli
from .api import blp


def create_app(database_url: str | None = None):
    app, api = create_service_app("orders", title="Diandian orders", database_url=database_url)
    api.spec.components.security_scheme(
        "ApiKeyAuth", {"type": "apiKey", "in": "header", "name": API_KEY_HEADER})
    api.register_blueprint(blp)
    api.register_blueprint(api_settlement.blp)
    api.register_blueprint(api_webhooks.blp)
    cli.register(app)
    return app
