"""Flask app of the ranking service (``gunicorn "ranking.app:create_app()"``)."""
from __future__ import annotations

from diandian_common.web import create_service_app

from . import cli, settings
from .api import blp
from .messages import MESSAGES
from .wiring import wiring


def create_app(database_url: str | None = None):
    settings.tz()  # an unknown RANKING_TIMEZONE fails here, at start-up, not on the first request
    app, api = create_service_app("ranking", title="Diandian ranking", database_url=database_url,
                                  extra_config={"REDIS_URL": settings.redis_url()}, wiring=wiring,
                                  error_messages=MESSAGES)
    api.register_blueprint(blp)
    cli.register(app)
    return app
