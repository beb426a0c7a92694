"""Flask app factory of the certificates service (gunicorn "certificates.app:create_app()")."""
from diandian_common import health
from diandian_common.web import create_service_app

from . import cli
from .api import blp
from .messages import MESSAGES
from .storage import storage_from_env
from .wiring import wiring


def storage_health() -> None:
    """``/healthz``'s ``storage`` check: whether the storage can take a certificate's file now
    (raises :class:`~certificates.storage.StorageUnavailable` saying why not)."""
    storage_from_env().check_writable()


def create_app(database_url: str | None = None):
    storage_from_env()  # a misconfigured storage stops the start, not the first request
    app, api = create_service_app("certificates", title="Diandian certificates",
                                  database_url=database_url, wiring=wiring,
                                  error_messages=MESSAGES)
    api.register_blueprint(blp)
    health.add_check(app, "storage", storage_health)
    cli.register(app)
    return app
