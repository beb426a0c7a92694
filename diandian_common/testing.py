"""Helpers for the tests (imported by tests only): databases, a Redis of the tests' own,
:func:`wait_for`, and :class:`Driver`, the one client of the platform's HTTP API the tests
use (a real gateway or stack over HTTP, or one service's Flask test client).

It is also a pytest plugin (registered by the root ``conftest.py``): the ``redis_server``
and ``redis_url`` fixtures.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis
import requests

from .auth import PARTICIPANT_ASSERTION_HEADER, Guest, sign_participant_assertion
from .i18n import iter_messages
from .migrate import upgrade

# The machine's PostgreSQL (trust auth). Tests only ever create and drop databases of
# their own on it, named diandian_test_*.
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def migrated_sqlite_url(service: str, directory: Path) -> str:
    """A fresh SQLite database for ``service`` at head, in ``directory``."""
    url = f"sqlite:///{directory / (service + '.db')}"
    upgrade(service, url)
    return url


def postgres_available() -> bool:
    try:
        import psycopg
        with psycopg.connect(POSTGRES_ADMIN_URL.replace("+psycopg", ""), connect_timeout=2):
            return True
    except Exception:
        return False


@contextlib.contextmanager
def temporary_postgres_database(service: str) -> Iterator[str]:
    """A new PostgreSQL database migrated to head for ``service``; dropped afterwards."""
    import psycopg
    name = f"diandian_test_{service}_{secrets.token_hex(4)}"
    admin = POSTGRES_ADMIN_URL.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(service, url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- waiting ------------------------------------------------------------------------------

def wait_for(predicate: Callable[[], Any], timeout: float = 60, *, interval: float = 0.1,
             what: str = "condition", retry_on: tuple[type[BaseException], ...] = (),
             on_timeout: Callable[[], str] | None = None):
    """Call ``predicate`` until it returns something truthy and return that; after ``timeout``
    seconds raise AssertionError naming ``what``, the last value and ``on_timeout()`` (a log
    tail, say). Exceptions of ``retry_on`` count as "not yet" (e.g. a restarting server's
    dropped connections). The predicate is called at least once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except retry_on as exc:
            value = exc
        if value and not isinstance(value, BaseException):
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    detail = on_timeout() if on_timeout is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {value!r}"
                         + (f"\n{detail}" if detail else ""))


# --- a Redis of the tests' own ------------------------------------------------------------

REDIS_SERVER_MISSING = ("redis-server is not installed "
                        "(scripts/setup.sh installs it; Debian: apt-get install redis-server)")


def stop_process(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if ``process`` has not exited within ``timeout`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _answers_ping(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.2, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@contextlib.contextmanager
def redis_server(directory: Path | None = None, timeout: float = 10) -> Iterator[str]:
    """A throw-away redis-server on a free port of 127.0.0.1 (never the machine's shared one),
    persisting nothing; yields its URL and stops it afterwards. ``directory`` is its working
    directory (default: the current one; it writes nothing there)."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError(REDIS_SERVER_MISSING)
    for attempt in range(3):   # the free port may be taken between finding it and binding it
        port = free_port()
        command = [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        if directory is not None:
            command += ["--dir", str(directory)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            wait_for(lambda: process.poll() is not None or _answers_ping(url), timeout=timeout, interval=0.02,
                     what=f"redis-server on port {port}")
            if process.poll() is None:
                break
            if attempt == 2:
                raise RuntimeError(f"redis-server exited with {process.returncode} on port {port}")
        except BaseException:
            process.kill()
            process.wait(timeout=10)
            raise
    try:
        yield url
    finally:
        stop_process(process, timeout=10)


# --- pytest fixtures (a plugin: the root conftest.py registers this module) ---------------

@pytest.fixture(scope="session", name="redis_server")
def _redis_server_fixture() -> Iterator[str]:
    """The URL of one redis-server of the test session's own (see :func:`redis_server`)."""
    if shutil.which("redis-server") is None:
        pytest.skip(REDIS_SERVER_MISSING)
    with redis_server() as url:
        yield url


@pytest.fixture(name="redis_url")
def _redis_url_fixture(redis_server: str) -> str:
    """The session's redis-server, emptied for this test: its URL."""
    client = redis.Redis.from_url(redis_server)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server


# --- the client -----------------------------------------------------------------------------

def guest_headers(participant_id: str, method: str, path: str, address: str = "127.0.0.1") -> dict[str, str]:
    """The participant assertion the gateway would send for this guest's ``method path``."""
    return {PARTICIPANT_ASSERTION_HEADER: sign_participant_assertion(
        Guest(participant_id, address), method, path.split("?", 1)[0])}


class GuestClient:
    """A service's Flask test client acting as one guest, vouched for as the gateway would
    (:func:`guest_headers` on every request): ``GuestClient(client, "alice").post(...)``."""

    def __init__(self, client, participant_id: str, address: str = "127.0.0.1"):
        self.client, self.participant_id, self.address = client, participant_id, address

    def open(self, path: str, method: str = "GET", headers: dict | None = None, **kwargs):
        headers = {**(headers or {}), **guest_headers(self.participant_id, method, path, self.address)}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs):
        return self.open(path, "GET", **kwargs)

    def post(self, path: str, **kwargs):
        return self.open(path, "POST", **kwargs)



class Answer:
    """A Flask test client's response with the face of a ``requests.Response`` (what
    :meth:`Driver.api` returns either way): ``status_code``, ``headers``, ``content``,
    ``text`` and ``json()``."""

    def __init__(self, response):
        self.raw = response
        self.status_code = response.status_code
        self.headers = response.headers
        self.content = response.get_data()

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self):
        return json.loads(self.content)


class Driver:
    """The one client the tests drive Diandian's HTTP API with, as a guest's page or an
    operator's script would: over HTTP to a gateway (``target`` a base URL: a stack of
    tests/stack.py, the Compose stack) or straight into one service (``target`` its Flask
    test client). Every test that places or pays an order does it through here.

    Guests are named by the test (``participant={"id": "alice", ...}``, ``guest="alice"``)
    and act as the platform knows them: through a gateway each name is a browser of its
    own (a cookie jar; the platform assigns the participant id, :meth:`participant_id`
    tells it), straight into a service each name is vouched for with a participant
    assertion as the gateway would sign it (the id is then the name itself).

    ``operator_key`` is sent by ``api(..., operator=True)``; ``retry_on`` and ``on_timeout``
    are handed to :func:`wait_for` (e.g. a stack's log tail when a wait times out)."""

    GUEST_ADDRESS = "127.0.0.1"

    def __init__(self, target, operator_key: str | None = None, *, timeout: float = 20, interval: float = 0.3,
                 retry_on: tuple[type[BaseException], ...] = (), on_timeout: Callable[[], str] | None = None):
        if isinstance(target, str):
            self.url, self.client, self.http = target.rstrip("/"), None, requests.Session()
        else:
            self.url, self.client, self.http = "", target, None
        self.operator = {"X-API-Key": operator_key} if operator_key else {}
        self.timeout, self.interval = timeout, interval
        self.retry_on, self.on_timeout = retry_on, on_timeout
        self.browsers: dict[str, requests.Session] = {}
        self._joining: dict[str, threading.Lock] = {}  # guest name → held over their first order
        self._joining_guard = threading.Lock()
        self.participant_ids: dict[str, str] = {}  # guest name → participant id the platform assigned
        self.order_guests: dict[str, str] = {}     # order id → the guest name that placed it

    # --- requests and waiting ----------------------------------------------------------
    def api(self, method: str, path: str, *, operator: bool = False, guest: str | None = None, **kwargs):
        """One request; ``operator=True`` adds the operator's key to ``headers``, ``guest``
        makes it that guest's (their browser, or their assertion straight into a service)."""
        headers = {**(self.operator if operator else {}), **(kwargs.pop("headers", None) or {})}
        if self.http is not None:
            kwargs.setdefault("timeout", self.timeout)
            http = self.browser(guest) if guest is not None else self.http
            return http.request(method, f"{self.url}{path}", headers=headers, **kwargs)
        kwargs.pop("timeout", None)
        if "params" in kwargs:
            kwargs["query_string"] = kwargs.pop("params")
        if guest is not None:
            headers.update(guest_headers(guest, method, path, self.GUEST_ADDRESS))
        return Answer(self.client.open(path, method=method, headers=headers, **kwargs))

    def browser(self, guest: str) -> requests.Session:
        """The guest's own browser (cookie jar) for requests over HTTP."""
        if guest not in self.browsers:
            self.browsers[guest] = requests.Session()
        return self.browsers[guest]

    def _joining_lock(self, guest: str):
        if self.http is None or guest in self.participant_ids:
            return contextlib.nullcontext()
        with self._joining_guard:
            return self._joining.setdefault(guest, threading.Lock())

    def guest_of(self, order: dict | str) -> str | None:
        """The name of the guest who placed ``order`` (its JSON or id) through this driver."""
        return self.order_guests.get(order if isinstance(order, str) else order["id"])

    def participant_id(self, guest: str) -> str:
        """The participant id the platform gave ``guest`` (their first order tells it); a
        name that placed no order is taken as an id as it is."""
        return self.participant_ids.get(guest, guest)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 60, *, interval: float | None = None,
                 what: str = "condition"):
        return wait_for(predicate, timeout, interval=self.interval if interval is None else interval,
                        what=what, retry_on=self.retry_on, on_timeout=self.on_timeout)

    @staticmethod
    def in_parallel(function: Callable[[Any], Any], items, workers: int = 8) -> list:
        """``function`` of every item, called from ``workers`` threads at once (a burst)."""
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(function, items))

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
        for browser in self.browsers.values():
            browser.close()

    # --- the catalogue -------------------------------------------------------------------
    def projects(self) -> list[dict]:
        return self.api("GET", "/api/v1/projects").json()["items"]

    def project(self, code: str) -> dict:
        return next(p for p in self.projects() if p["code"] == code)

    # --- orders --------------------------------------------------------------------------
    @staticmethod
    def new_participant(prefix: str = "guest", **fields) -> dict:
        """A new guest: ``id`` is the test's name for them (see the class docstring)."""
        return {"id": f"{prefix}-{uuid.uuid4().hex[:8]}", "display_name": "Test Guest", **fields}

    def place_order(self, project_id: str | None = None, kg=None, participant: dict | None = None, *,
                    scene: str | None = None, key: str | None = None, **fields) -> dict:
        """Place an order as the guest ``participant["id"]`` names (POST /api/v1/orders, a new
        Idempotency-Key unless ``key``) and return the answer's JSON, asserting 201. The body's
        participant carries the names, never the id. ``project_id`` defaults to the first
        project listed; ``kg`` is the quantity (omit it with an ``estimate_id=``); ``scene`` is
        sent when given; ``fields`` go into the body as they are."""
        project_id = project_id or self.projects()[0]["id"]
        participant = dict(participant or self.new_participant())
        guest = participant.pop("id", None) or f"guest-{uuid.uuid4().hex[:8]}"
        body = {"project_id": project_id, "participant": participant}
        if kg is not None:
            body["quantity_kg"] = kg
        if scene is not None:
            body["scene"] = scene
        body.update(fields)
        # A browser's first order is when the platform gives it its id (the cookie): a burst of
        # one guest's orders waits for it, as a real browser's second tab would have the cookie.
        with self._joining_lock(guest):
            response = self.api("POST", "/api/v1/orders", json=body, guest=guest,
                                headers={"Idempotency-Key": key or uuid.uuid4().hex})
        assert response.status_code == 201, response.text
        placed = response.json()
        self.order_guests[placed["id"]] = guest
        self.participant_ids[guest] = placed["participant"]["id"]
        return placed

    def pay(self, order_id: str) -> dict:
        """Pay an order in the sandbox as the guest who placed it (POST .../payment), asserting 202."""
        paid = self.api("POST", f"/api/v1/orders/{order_id}/payment", guest=self.guest_of(order_id))
        assert paid.status_code == 202, paid.text
        return paid.json()

    def order(self, order_id: str) -> dict:
        """The order as the guest who placed it sees it (all of it)."""
        return self.api("GET", f"/api/v1/orders/{order_id}", guest=self.guest_of(order_id)).json()

    def completed(self, order_id: str) -> dict | None:
        """The order's JSON if it is completed, else None."""
        order = self.order(order_id)
        return order if order["status"] == "completed" else None

    def wait_completed(self, order_id: str, timeout: float = 90) -> dict:
        return self.wait_for(lambda: self.completed(order_id), timeout, what=f"{order_id} completed")

    def place_and_pay_order(self, project_id: str | None = None, kg=None, participant: dict | None = None, *,
                            scene: str | None = None, complete: bool = False, timeout: float = 90,
                            **fields) -> dict:
        """Place an order and pay it (see :meth:`place_order`, :meth:`pay`). Returns the order as
        placed, or with ``complete=True`` the order once completed (waiting up to ``timeout``)."""
        placed = self.place_order(project_id, kg, participant, scene=scene, **fields)
        self.pay(placed["id"])
        return self.wait_completed(placed["id"], timeout) if complete else placed

    def place_orders(self, project_id: str, count: int, participant: Callable[[int], dict], *,
                     kg: Callable[[int], Any] = lambda i: 1 + i % 7, scene: str | None = None,
                     workers: int = 8) -> dict[str, dict]:
        """A burst: ``count`` orders placed from ``workers`` threads at once, the i-th for
        ``kg(i)`` kilograms by ``participant(i)``; order id → the order as placed."""
        placed = self.in_parallel(lambda i: self.place_order(project_id, kg(i), participant(i), scene=scene),
                                  range(count), workers)
        return {order["id"]: order for order in placed}

    def pay_all(self, order_ids, workers: int = 8) -> None:
        self.in_parallel(self.pay, list(order_ids), workers)

    # --- what the ledger and the boards say -------------------------------------------------
    def ledger_entries(self, project_id: str) -> list[dict]:
        """Every public ledger entry of the project (all pages)."""
        entries, after = [], 0
        while after is not None:
            response = self.api("GET", "/api/v1/ledger", params={"project": project_id, "after": after,
                                                                 "limit": 1000})
            assert response.status_code == 200, response.text
            page = response.json()
            entries += page["items"]
            after = page["next_after"]
        return entries

    def standing(self, participant_id: str, *, expect: tuple[int, ...] | None = None,
                 **params) -> dict | None:
        """The participant's place on a board (``scene=``, ``period=``), or None when it has none
        (or the board does not answer); ``expect`` asserts the status is one of those.
        ``participant_id`` is an id or the name of a guest of this driver."""
        response = self.api("GET", f"/api/v1/rankings/participants/{self.participant_id(participant_id)}",
                            params=params)
        if expect is not None:
            assert response.status_code in expect, response.text
        return response.json() if response.status_code == 200 else None


# --- the language of error messages (diandian_common.i18n) ---------------------------------

def has_chinese(text: str) -> bool:
    """Whether ``text`` holds a CJK ideograph (a message translated into Chinese does)."""
    return any("\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf" for char in text)


def error_messages(body: dict) -> list[str]:
    """``error.message`` and every message inside ``error.fields`` of an error body."""
    error = body["error"]
    return [error["message"], *iter_messages(error.get("fields"))]


def untranslated_messages(body: dict) -> list[str]:
    """The messages of an error body with no Chinese in them: empty when all are translated."""
    return [message for message in error_messages(body) if not has_chinese(message)]


def assert_error_language(response, language: str) -> None:
    """An error response (a Flask test client's or ``requests``') answered in ``language``:
    ``zh``: every message has Chinese, naming those that have none (add them to the catalogue
    of the service that raises them, see README "Error messages in Chinese"); ``en``: none has.
    Both: ``Content-Language`` and ``Vary: Accept-Language``."""
    status = getattr(response, "status_code", None)
    assert status is not None and (status >= 400 or status == 308), status
    body = response.json() if callable(getattr(response, "json", None)) else response.get_json()
    if language == "zh":
        missing = untranslated_messages(body)
        assert not missing, f"untranslated error messages (status {status}): {missing}"
    else:
        translated = [message for message in error_messages(body) if has_chinese(message)]
        assert not translated, f"messages not in English (status {status}): {translated}"
    assert response.headers.get("Content-Language") == language, response.headers.get("Content-Language")
    assert "accept-language" in response.headers.get("Vary", "").lower(), response.headers.get("Vary")


ACCEPT_LANGUAGE = {"zh": "zh-CN,zh;q=0.9,en;q=0.5", "en": "en-GB,en;q=0.9"}


def assert_errors_in_language(client, requests_: list[tuple], language: str) -> None:
    """Send every ``(method, path, kwargs)`` of a battery of refused requests through
    ``client`` (a Flask test client, a :class:`GuestClient` or a ``requests.Session``) with
    Accept-Language asking for ``language``, and fail naming each request whose error is
    not in that language (:func:`assert_error_language`). A new route adds its refusals to
    its service's battery (tests/test_error_language.py)."""
    failures = []
    for method, path, kwargs in requests_:
        kwargs = dict(kwargs)
        kwargs["headers"] = {**kwargs.get("headers", {}), "Accept-Language": ACCEPT_LANGUAGE[language]}
        if hasattr(client, "open"):  # a Flask test client or a GuestClient
            response = client.open(path, method=method, **kwargs)
        else:
            response = client.request(method, path, **kwargs)
        try:
            assert_error_language(response, language)
        except AssertionError as exc:
            failures.append(f"{method} {path}: {exc}")
    assert not failures, "\n".join(failures)
