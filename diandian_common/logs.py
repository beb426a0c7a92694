"""Structured JSON logs on stderr, carrying the request id and order id when known."""
from __future__ import annotations

import contextvars
import logging
import os
import sys

from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
order_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("order_id", default=None)


class ContextFilter(logging.Filter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.request_id = getattr(record, "request_id", None) or request_id_var.get()
        record.order_id = getattr(record, "order_id", None) or order_id_var.get()
        return True


_configured = False


def configure_logging(service: str) -> None:
    """Idempotent: the API factory and the Celery worker both call it."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(
        "{asctime}{levelname}{name}{message}{service}{request_id}{order_id}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    ))
    handler.addFilter(ContextFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    _configured = True
