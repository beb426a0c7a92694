"""One Celery configuration for every service (docs/contract.md, "Messages").

Each service has its own Celery app whose worker consumes only the service's queue.
Tasks are sent by name to the owner's queue: the owner is the part of the task name
before the dot, its queue that name after ``CELERY_QUEUE_PREFIX`` (``certificates.render`` →
queue ``diandian.certificates``, :func:`diandian_common.config.celery_queue`). Only task names
with a contract in :mod:`diandian_common.contracts` can be sent, with payloads that keep it.

Delivery is at-least-once, so every handler is idempotent:
- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only
  after its task finished, and goes back to the queue when the worker process dies.
- ``worker_prefetch_multiplier=1``: a worker holds one unacknowledged message per
  process, so a dead worker strands at most that many and long renders don't queue
  behind one busy process.
- ``visibility_timeout`` (Redis transport): how long an unacknowledged message stays
  invisible before Redis hands it to another worker. It must exceed the longest task
  time limit; it is set once here for every app.

A broker entry that cannot be delivered as a message is parked, not fatal: kombu's Redis
transport raises on an entry that is not JSON (or not a message's envelope) from inside the
worker's event loop, and the worker dies on it, again at every restart while the entry waits
at the head of the queue. The transport here moves such an entry to the queue's dead-letter
list (``<queue>.dead``), logs it at ERROR and counts it (``celery_poison_messages_total``),
as the worker does with the messages Celery itself refuses (an unknown task, a body that is
not a task's): docs/operations.md, "Dead letters".
"""
from __future__ import annotations

import functools
import json
import logging
from contextlib import contextmanager

import redis
from celery import Celery
from celery.signals import (
    beat_init,
    setup_logging,
    task_postrun,
    task_prerun,
    task_rejected,
    task_unknown,
    worker_init,
)
from celery.worker.consumer import Consumer
from kombu import Connection, Exchange, Queue
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

from . import config, deployment
from .contracts import MESSAGE_VERSION, UnsupportedMessage, check, check_version  # noqa: F401 - re-exported
from .logs import configure_logging, order_id_var, request_id_var
from .metrics import count_poison_message, dead_letter_queue, install_celery_metrics

log = logging.getLogger(__name__)

VISIBILITY_TIMEOUT_S = config.env_int("CELERY_VISIBILITY_TIMEOUT", 3600)


def owner_of(task_name: str) -> str:
    """The service owning a task named ``{service}.{action}``."""
    service, _, action = task_name.partition(".")
    if not action:
        raise ValueError(f"task names look like 'service.action', got {task_name!r}")
    return service


def queue_for(task_name: str) -> str:
    """The broker queue of a task named ``{service}.{action}``: its owner's (``diandian.orders``)."""
    return config.celery_queue(owner_of(task_name))


# The longest part of an unreadable entry a log line shows: enough to recognise its sender.
POISON_LOG_CHARS = 200
# Why an entry was parked: the values of celery_poison_messages_total's ``reason`` label.
NOT_JSON, NOT_A_MESSAGE, UNKNOWN_TASK, REJECTED, UNDECODABLE_BODY = (
    "not_json", "not_a_message", "unknown_task", "rejected", "undecodable_body")


def _raw_text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return text if len(text) <= POISON_LOG_CHARS else f"{text[:POISON_LOG_CHARS]}… ({len(text)} characters)"


def park(client: redis.Redis, queue: str, raw: bytes | str, reason: str) -> None:
    """Log, count and move ``raw``, an entry of ``queue`` no task can run, to the queue's
    dead-letter list (pushed on the left, like a queue: the oldest is on the right).

    A failure to write it is logged with the entry and never raised: the caller is the
    worker's event loop, which an exception would stop."""
    dead = dead_letter_queue(queue)
    count_poison_message(queue, reason)
    try:
        client.lpush(dead, raw)
    except redis.RedisError as exc:
        log.error("an entry of %s that no task can run (%s) is LOST: %s could not take it (%s): %s",
                  queue, reason, dead, exc, _raw_text(raw))
        return
    log.error("an entry of %s that no task can run (%s) moved to %s: %s", queue, reason, dead, _raw_text(raw))


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

    def _get_client(self):
        if self.global_keyprefix:
            raise ValueError("global_keyprefix is not supported: CELERY_QUEUE_PREFIX names the queues")
        super()._get_client()   # kombu's check of redis-py's version
        return functools.partial(_ScreeningRedis, screen=self._deliverable)

    def _deliverable(self, key: bytes, raw: bytes) -> bool:
        """Whether kombu can deliver ``raw``, just popped from the list ``key``; if not, it is
        parked (:func:`park`) and the worker reads on as if the queue had been empty.

        kombu would decode it (JSON) and build its message from the envelope (``properties``
        with a ``delivery_tag`` and ``delivery_info``, a ``body`` in its ``body_encoding``)
        inside the event loop, where any exception stops the worker. The same steps are
        tried here first, on an entry already taken off the queue."""
        queue = bytes_to_str(key).rsplit(self.sep, 1)[0]   # a priority's list is queue + sep + step
        try:
            envelope = loads(bytes_to_str(raw))
        except ValueError:   # JSONDecodeError, or bytes that are not UTF-8
            reason = NOT_JSON
        else:
            try:
                delivery = self.Message(envelope, channel=self).delivery_info
                delivery["exchange"], delivery["routing_key"]   # what the ack emulation reads
                return True
            except Exception:   # whatever kombu's parsing raises on it is what would stop the worker
                reason = NOT_A_MESSAGE
        with self.conn_or_acquire() as client:
            park(client, queue, raw, reason)
        return False

    def park_message(self, message, reason: str) -> None:
        """Park a message Celery refused (its envelope, as kombu read it) in the dead-letter
        list of the queue it came from."""
        queue = (message.delivery_info or {}).get("routing_key") or "unknown"
        with self.conn_or_acquire() as client:
            park(client, queue, json.dumps(message._raw), reason)


class _ScreeningRedis(redis.Redis):
    """redis-py's client, with each entry BRPOP takes off a queue screened before kombu reads
    it: an entry ``screen`` refuses (it parked it) is read as BRPOP's "nothing came", after
    which kombu sends the next BRPOP as usual."""

    def __init__(self, *args, screen, **kwargs):
        super().__init__(*args, **kwargs)
        self._screen = screen

    def parse_response(self, connection, command_name, **options):
        reply = super().parse_response(connection, command_name, **options)
        if command_name == "BRPOP" and reply and not self._screen(*reply):
            return None
        return reply


class RedisTransport(kombu_redis.Transport):
    Channel = _RedisChannel


class ParkingConsumer(Consumer):
    """Celery's consumer, parking a message whose body its serializer cannot decode (Celery
    logs it and acknowledges it, so it would be gone) like those it rejects (see
    :func:`_park_refused`)."""

    def on_decode_error(self, message, exc):
        _park_refused(message, UNDECODABLE_BODY)
        super().on_decode_error(message, exc)


def _park_refused(message, reason: str) -> None:
    channel = getattr(message, "channel", None)
    if isinstance(channel, _RedisChannel):
        channel.park_message(message, reason)


@task_unknown.connect
def _park_unknown_task(message=None, **_kwargs):
    """A task name no worker of this queue knows (a sender deployed before its receiver, a
    typo): Celery logs and drops it; parked, it can be sent again once the task exists."""
    _park_refused(message, UNKNOWN_TASK)


@task_rejected.connect
def _park_rejected(message=None, **_kwargs):
    """A message Celery cannot take as a task (no task name, a content type it does not
    accept, arguments that are not a task's): logged and dropped by Celery, parked here."""
    _park_refused(message, REJECTED)


def make_celery(service: str, **overrides) -> Celery:
    app = Celery(service)
    broker_url = config.celery_broker_url()
    if broker_url.startswith(("redis://", "rediss://")):
        app.conf.broker_transport = "diandian_common.celery_app:RedisTransport"
    # The service's own queue, under its prefixed name; its alias (the bare service name) is
    # what ``celery worker -Q orders`` selects, so the prefix is set in one place only.
    queue = config.celery_queue(service)
    own_queue = Queue(queue, Exchange(queue), routing_key=queue, alias=service)
    app.conf.update(
        broker_url=broker_url,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        task_queues=[own_queue],
        task_default_queue=queue,
        task_routes={f"{s}.*": {"queue": config.celery_queue(s)} for s in config.SERVICES},
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
        worker_consumer="diandian_common.celery_app:ParkingConsumer",
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 3, "interval_start": 0.2,
                                   "interval_step": 0.5, "interval_max": 2},
        timezone="UTC",
        enable_utc=True,
        # The scheduler writes its heartbeat, which /healthz reads (diandian_common.heartbeat).
        beat_scheduler="diandian_common.heartbeat:HeartbeatScheduler",
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
    if owner_of(task_name) in config.SERVICES:
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


def give_back_held_messages(broker_url: str | None = None) -> int:
    """Put every message the Redis broker holds for a consumer (its ``unacked`` set) back on its
    queue; how many. Only for when no worker runs: ``make run``'s supervisor calls it after the
    workers stopped and before Redis stops, so a message a worker still held when its warm
    shutdown ran out of time (and it was killed) is delivered again at the next start instead of
    an hour later (``visibility_timeout``). kombu's own restore does the move, atomically per
    message."""
    with Connection(broker_url or config.celery_broker_url()) as connection:
        channel = connection.default_channel
        qos = channel.qos
        tags = channel.client.hkeys(qos.unacked_key)
        for tag in tags:
            qos.restore_by_tag(tag, leftmost=True)
    return len(tags)

