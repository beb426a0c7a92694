"""Structured JSON logs, carrying the request id and order id when known.

Every process logs at ``LOG_LEVEL`` (default INFO) as JSON lines on stderr. A Celery process
started with ``--logfile`` (``make run`` gives each worker and scheduler one under
``$VAR_DIR/log``) writes its lines to that file instead and keeps only warnings and errors on
stderr, so a terminal running the whole stack stays readable while the stack is idle.

No line carries a task's arguments or result (:class:`TaskDetailsFilter`): they hold guests'
names and participant ids, and logs are kept, copied and read far more widely than the
databases.
"""
from __future__ import annotations

import contextvars
import logging
import logging.handlers
import os
import sys
from pathlib import Path

from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
order_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("order_id", default=None)

# What still reaches the terminal when a process writes its log to a file.
TERMINAL_LEVEL_WITH_LOGFILE = logging.WARNING
# What Celery's task lines would otherwise show of a task's payload and result.
TASK_DETAILS = ("args", "kwargs", "return_value")
NOT_LOGGED = "<not logged>"


class ContextFilter(logging.Filter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.request_id = getattr(record, "request_id", None) or request_id_var.get()
        record.order_id = getattr(record, "order_id", None) or order_id_var.get()
        return True


class TaskDetailsFilter(logging.Filter):
    """Takes the arguments and the result out of Celery's task lines.

    Celery logs ``Task … received`` and ``Task … succeeded in …s: <result>`` (and failures)
    at INFO with the task's ``args``, ``kwargs`` and ``return_value`` both as the message's
    %-arguments and again in ``extra={"data": …}``, which the JSON formatter writes out
    whole. Its own switches (``argsrepr`` at the sender, ``worker_log_format``) reach only
    some of those places, so every record of a ``celery`` logger is cleaned here, in the one
    place every line passes: the task's name, id and run time stay, the payload does not.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("celery"):
            return True
        if isinstance(record.args, dict) and any(key in record.args for key in TASK_DETAILS):
            record.args = {**record.args, **{key: NOT_LOGGED for key in TASK_DETAILS if key in record.args}}
        data = getattr(record, "data", None)
        if isinstance(data, dict) and any(key in data for key in TASK_DETAILS):
            record.data = {key: value for key, value in data.items() if key not in TASK_DETAILS}
        return True


_configured = False


def _json_handler(handler: logging.Handler, service: str) -> logging.Handler:
    handler.setFormatter(JsonFormatter(
        "{asctime}{levelname}{name}{message}{service}{request_id}{order_id}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    ))
    handler.addFilter(ContextFilter(service))
    handler.addFilter(TaskDetailsFilter())
    return handler


def configure_logging(service: str, logfile: str | os.PathLike | None = None) -> None:
    """Idempotent: the API factory and the Celery worker both call it.

    ``logfile`` (Celery's ``--logfile``): every record at ``LOG_LEVEL`` goes to that file,
    and stderr shows only warnings and errors.
    """
    global _configured
    if _configured:
        return
    terminal = _json_handler(logging.StreamHandler(sys.stderr), service)
    handlers = [terminal]
    if logfile:
        path = Path(logfile)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Watched: a log rotated away (logrotate, or by hand) is reopened, not written on unseen.
        handlers.append(_json_handler(logging.handlers.WatchedFileHandler(path, encoding="utf-8"), service))
        terminal.setLevel(TERMINAL_LEVEL_WITH_LOGFILE)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    _configured = True
