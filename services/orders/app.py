"""Orders service app factory (gunicorn "orders.app:create_app()")."""
from __future__ import annotations

from diandian_common.auth import API_KEY_HEADER
from diandian_common.web import create_service_app

from . import cli
from .blueprint import blp

# Every routes module attaches its routes when imported, in the order of the OpenAPI document.
from .catalogue import routes as _catalogue_routes  # noqa: F401
from .ledger import routes as _ledger_routes  # noqa: F401
from .messages import MESSAGES
from .ordering import routes as _ordering_routes  # noqa: F401
from .payments import routes as _payments_routes  # noqa: F401
from .settlement import routes as settlement_routes
from .webhooks import routes as webhooks_routes
from .wiring import wiring


def create_app(database_url: str | None = None):
    app, api = create_service_app("orders", title="Diandian orders", database_url=database_url, wiring=wiring,
                                  error_messages=MESSAGES)
    api.spec.components.security_scheme(
        "ApiKeyAuth", {"type": "apiKey", "in": "header", "name": API_KEY_HEADER})
    api.register_blueprint(blp)
    api.register_blueprint(settlement_routes.blp)
    api.register_blueprint(webhooks_routes.blp)
    cli.register(app)
    return app
