"""One Celery configuration for every service (docs/contract.md, "Messages").

Each service has its own Celery app whose worker consumes only the service's queue.
Tasks are sent by name to the owner's queue: the queue is the part of the task name
before the dot (``certificates.render`` → queue ``certificates``). Only task names with
a contract in :mod:`diandian_common.contracts` can be sent, with payloads that keep it.

Delivery is at-least-once, so every handler is idempotent:
- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only
  after its task finished, and goes back to the queue when the worker process dies.
- ``worker_prefetch_multiplier=1``: a worker holds one unacknowledged message per
  process, so a dead worker strands at most that many and long renders don't queue
  behind one busy process.
- ``visibility_timeout`` (Redis transport): how long an unacknowledged message stays
  invisible before Redis hands it to another worker. It must exceed the longest task
  time limit; it is set once here for every app.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

import redis
from celery import Celery
from celery.signals import beat_init, setup_logging, task_postrun, task_prerun, worker_init
from kombu.transport import redis as kombu_redis

from . import config, deployment
from .contracts import MESSAGE_VERSION, UnsupportedMessage, check, check_version  # noqa: F401 - re-exported
from .logs import configure_logging, order_id_var, request_id_var
from .metrics import install_celery_metrics

log = logging.getLogger(__name__)

VISIBILITY_TIMEOUT_S = config.env_int("CELERY_VISIBILITY_TIMEOUT", 3600)


def queue_for(task_name: str) -> str:
    """The owner's queue of a task named ``{service}.{action}``."""
    service, _, action = task_name.partition(".")
    if not action:
        raise ValueError(f"task names look like 'service.action', got {task_name!r}")
    return service


class _RedisChannel(kombu_redis.Channel):
    """kombu's Redis channel, surviving a second close after the broker went away.

    When Redis disappears while a worker holds unacknowledged messages, Celery closes
    the lost connection twice; the second close tries to restore those messages through
    a transport with no client left and raises AttributeError, which kills the worker
    (and, under honcho, the whole local stack). Raising a connection error instead lets
    kombu ignore that close; the messages stay in Redis's unacked set and come back after
    the visibility timeout, which the idempotent handlers absorb.
    """

    def _connparams(self, asynchronous=False):
        if self.connection.client is None:
            raise redis.ConnectionError("the broker connection was closed")
        return super()._connparams(asynchronous=asynchronous)

    @contextmanager
    def conn_or_acquire(self, client=None):
        """kombu builds a new ``redis.Redis`` around the channel's pool for every publish
        and ack, and building one (its table of response callbacks) costs more than the
        command it sends. The client holds no connection of its own (each command borrows
        one from the pool), so one per pool serves them all; a new pool (after a
        reconnection) gets a new client."""
        if client:
            yield client
            return
        pool = self.pool
        cached = self.__dict__.get("_pool_client")
        if cached is None or cached.connection_pool is not pool:
            cached = self._pool_client = self._create_client()
        yield cached


class RedisTransport(kombu_redis.Transport):
    Channel = _RedisChannel


def make_celery(service: str, **overrides) -> Celery:
    app = Celery(service)
    broker_url = config.env("CELERY_BROKER_URL", config.redis_url())
    if broker_url.startswith(("redis://", "rediss://")):
        app.conf.broker_transport = "diandian_common.celery_app:RedisTransport"
    app.conf.update(
        broker_url=broker_url,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        task_default_queue=service,
        task_routes={f"{s}.*": {"queue": s} for s in config.SERVICES},
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=config.env_int("CELERY_TASK_SOFT_TIME_LIMIT", 60),
        task_time_limit=config.env_int("CELERY_TASK_TIME_LIMIT", 90),
        worker_max_tasks_per_child=config.env_int("CELERY_MAX_TASKS_PER_CHILD", 1000),
        worker_max_memory_per_child=config.env_int("CELERY_MAX_MEMORY_PER_CHILD_KB", 400_000),
        worker_hijack_root_logger=False,
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 3, "interval_start": 0.2,
                                   "interval_step": 0.5, "interval_max": 2},
        timezone="UTC",
        enable_utc=True,
    )
    app.conf.update(overrides)

    @setup_logging.connect(weak=False)
    def _logging(logfile=None, **_kwargs):
        # Celery hands its --logfile over (formatted: %n is the node's name); the level is
        # LOG_LEVEL's, like every other process's, whatever --loglevel says.
        configure_logging(f"{service}-worker", logfile=logfile)

    def _refuse_insecure_start(process: str) -> None:
        # Celery logs and swallows an Exception raised by a signal handler, and the process
        # would run on: SystemExit stops the worker (or beat) before it takes any message.
        try:
            deployment.check(process)
        except deployment.InsecureDeployment as exc:
            raise SystemExit(f"{exc}") from None

    @worker_init.connect(weak=False)
    def _check_worker(sender=None, **_kwargs):
        if getattr(sender, "app", None) is app:
            _refuse_insecure_start(f"{service}-worker")

    @beat_init.connect(weak=False)
    def _check_beat(sender=None, **_kwargs):
        if getattr(sender, "app", None) is app:
            _refuse_insecure_start(f"{service}-beat")

    install_celery_metrics(app, service)
    return app


def send(celery: Celery, task_name: str, payload: dict, **options) -> None:
    """Send ``payload`` to the task's owner, by name (no import of its code).

    A message to one of the platform's queues (``config.SERVICES``) is checked against its
    task's contract first: a task name without one raises ``contracts.NoContract``, a
    payload that breaks it ``contracts.InvalidMessage``. Other queues are not the
    platform's (a test's probe app) and have no contracts."""
    if queue_for(task_name) in config.SERVICES:
        payload = check(task_name, payload)
    publish(celery, task_name, payload, **options)


def publish(celery: Celery, task_name: str, payload: dict, **options) -> None:
    """Send a payload that was checked already (an outbox row, checked when it was enqueued)."""
    if payload.get("v") != MESSAGE_VERSION:
        payload = {"v": MESSAGE_VERSION, **payload}
    headers = dict(options.pop("headers", None) or {})
    rid = request_id_var.get()
    if rid:
        headers.setdefault("request_id", rid)
    # argsrepr travels in the message and the task events (Flower shows it): by default it
    # is the payload's repr, guests' names included; the field names say enough.
    options.setdefault("argsrepr", f"[<payload: {', '.join(sorted(payload))}>]")
    options.setdefault("kwargsrepr", "{}")
    celery.send_task(task_name, args=[payload], queue=queue_for(task_name), headers=headers, **options)


@task_prerun.connect
def _bind_log_context(task=None, args=None, **_kwargs):
    payload = args[0] if args else None
    request = getattr(task, "request", None)
    rid = getattr(request, "request_id", None) if request else None
    if rid is None and request is not None:
        rid = (getattr(request, "headers", None) or {}).get("request_id")
    request_id_var.set(rid)
    order_id_var.set(payload.get("order_id") if isinstance(payload, dict) else None)


@task_postrun.connect
def _unbind_log_context(**_kwargs):
    request_id_var.set(None)
    order_id_var.set(None)
