"""Application factory: ``gunicorn "calculator.app:create_app()"``."""
from diandian_common.auth import API_KEY_HEADER
from diandian_common.web import create_service_app

from . import cli
from .api import blp
from .messages import MESSAGES
from .wiring import wiring


def create_app(database_url: str | None = None):
    app, api = create_service_app("calculator", title="Diandian calculator",
                                  database_url=database_url, wiring=wiring,
                                  error_messages=MESSAGES)
    api.spec.components.security_scheme(
        "ApiKeyAuth", {"type": "apiKey", "in": "header", "name": API_KEY_HEADER})
    api.register_blueprint(blp)
    cli.register(app)
    return app
