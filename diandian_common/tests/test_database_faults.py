"""Database faults are transient (issue 20), on real databases: a PostgreSQL backend
terminated with ``pg_terminate_backend`` from another connection, a SQLite write lock held
by another connection, a lock timeout, a missing table.

- diandian_common.db sorts them: what heals is :class:`DatabaseUnavailable` (``rerun`` when
  it heals at once), the rest keeps its class and is permanent.
- A request whose transaction lost its connection runs once more, on a fresh one; otherwise
  (twice lost, after an outside call, a lock timeout) it answers 503 ``database_unavailable``
  with ``Retry-After``; a permanent error stays the 500 of a bug, and never runs twice.
- A task retries only what heals; a permanent error fails its message at once, logged at
  ERROR with the task, the message id and the cause, and counted.
- The orders service on PostgreSQL: the ``SELECT … FOR UPDATE`` of ``POST /orders`` and of
  ``POST /orders/{id}/payment`` losing its connection (the issue's 17 × 500) answers 201 and
  202, each order placed and paid once.
"""
from __future__ import annotations

import logging
import secrets
import sqlite3
from contextlib import contextmanager

import psycopg
import pytest
from flask import jsonify
from sqlalchemy import event, func, select, text
from sqlalchemy import exc as sa_exc

from diandian_common import db as database_module
from diandian_common.celery_app import make_celery
from diandian_common.db import TRANSIENT_ERRORS, Database, DatabaseUnavailable, classify, is_permanent
from diandian_common.errors import register_error_handlers
from diandian_common.testing import (
    POSTGRES_ADMIN_URL,
    Driver,
    postgres_available,
    temporary_postgres_database,
)
from diandian_common.tests.metrics_support import local_samples, unique, value
from diandian_common.uow import UnitOfWork, called_outside
from diandian_common.web import ServiceFlask

ADMIN_URL = POSTGRES_ADMIN_URL.replace("+psycopg", "")
needs_postgres = pytest.mark.postgres


def terminate(pid: int) -> None:
    """``pg_terminate_backend`` from another connection, waiting until the backend is gone."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0]


def terminate_all(database_name: str) -> int:
    """Every backend connected to ``database_name`` terminated (what a failover does)."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        rows = admin.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                             "WHERE datname = %s AND pid <> pg_backend_pid()", (database_name,)).fetchall()
    return len(rows)


def database_errors(service: str, entrypoint: str, outcome: str) -> float:
    return value(local_samples(), "database_errors_total", service=service, entrypoint=entrypoint,
                 outcome=outcome)


# --- the classification ------------------------------------------------------------------------

@pytest.mark.parametrize(("sqlstate", "kind"), [
    ("57P01", "rerun"),   # admin_shutdown: pg_terminate_backend, a fast shutdown, a failover
    ("08006", "rerun"),   # connection_failure
    ("40P01", "rerun"),   # deadlock_detected
    ("40001", "rerun"),   # serialization_failure
    ("55P03", "wait"),    # lock_not_available
    ("57P03", "wait"),    # cannot_connect_now
    ("53300", "wait"),    # too_many_connections
    ("42883", None),      # undefined_function: a list compared with a varchar (the issue's)
    ("42P01", None),      # undefined_table
    ("22P02", None),      # invalid_text_representation
    ("23505", None),      # unique_violation
])
def test_postgresql_errors_are_sorted_by_their_sqlstate(sqlstate, kind):
    orig = psycopg.errors.lookup(sqlstate)("from the server")
    error = sa_exc.DBAPIError.instance("SELECT 1", {}, orig, psycopg.Error)
    assert classify(error) == kind
    assert is_permanent(error) is True   # as the driver raised it: the engine's hook converts


def test_sqlite_errors_are_sorted_by_their_result_code(tmp_path):
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (id INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    waiter = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError) as locked:
        waiter.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError) as missing:
        waiter.execute("SELECT * FROM no_such_table")
    holder.close()
    waiter.close()
    assert classify(sa_exc.OperationalError("BEGIN", {}, locked.value)) == "wait"
    assert classify(sa_exc.OperationalError("SELECT", {}, missing.value)) is None


def test_the_engine_raises_what_heals_as_database_unavailable_and_keeps_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr(database_module, "SQLITE_BUSY_TIMEOUT_MS", 100)
    database = Database(f"sqlite:///{tmp_path / 'probe.db'}")
    with database.transaction() as session:
        session.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY)"))
    holder = sqlite3.connect(tmp_path / "probe.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseUnavailable) as locked, database.transaction() as session:
            session.execute(text("INSERT INTO probe (id) VALUES (1)"))
    finally:
        holder.close()
    assert isinstance(locked.value, sa_exc.OperationalError) and not locked.value.rerun
    assert isinstance(locked.value.orig, sqlite3.OperationalError)
    with pytest.raises(sa_exc.OperationalError) as missing, database.transaction() as session:
        session.execute(text("SELECT * FROM no_such_table"))
    assert not isinstance(missing.value, TRANSIENT_ERRORS) and is_permanent(missing.value)
    database.dispose()


# --- PostgreSQL ----------------------------------------------------------------------------------

@pytest.fixture
def postgres_url():
    """A database of this test's own on the machine's PostgreSQL, with a table ``probe``."""
    if not postgres_available():
        pytest.skip("no PostgreSQL server reachable")
    name = f"diandian_test_faults_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("CREATE TABLE probe (id INTEGER PRIMARY KEY)")
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@needs_postgres
def test_a_connection_killed_in_a_transaction_is_database_unavailable_to_rerun(postgres_url):
    database = Database(postgres_url)
    with pytest.raises(DatabaseUnavailable) as lost, database.transaction() as session:
        terminate(session.execute(text("SELECT pg_backend_pid()")).scalar())
        session.execute(text("SELECT id FROM probe FOR UPDATE"))
    assert lost.value.rerun and lost.value.connection_invalidated
    assert type(lost.value.orig).__name__ == "AdminShutdown"
    with database.transaction() as session:   # the pool gives a fresh connection
        assert session.execute(text("SELECT 1")).scalar() == 1
    database.dispose()


@needs_postgres
def test_connections_killed_while_pooled_are_replaced_unseen(postgres_url):
    database = Database(postgres_url)
    with database.transaction() as session:
        first = session.execute(text("SELECT pg_backend_pid()")).scalar()
    assert terminate_all(postgres_url.rsplit("/", 1)[1]) >= 1
    with database.transaction() as session:   # the pre-ping found it dead: no error
        assert session.execute(text("SELECT pg_backend_pid()")).scalar() != first
    database.dispose()


@needs_postgres
def test_a_server_that_refuses_connections_is_unavailable_for_a_while():
    database = Database("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(DatabaseUnavailable) as refused:
        database.ping()
    assert not refused.value.rerun
    database.dispose()


@needs_postgres
def test_a_list_compared_with_a_varchar_is_a_permanent_error(postgres_url):
    """The issue's payload: psycopg sends a list as an array, which no varchar equals."""
    database = Database(postgres_url)
    for wrong_value in ([1, 2], {"order_id": 1}):   # an array of smallint; a dict psycopg can't adapt
        with pytest.raises(sa_exc.ProgrammingError) as wrong, database.transaction() as session:
            session.execute(text("SELECT id FROM probe WHERE id::varchar = :id"), {"id": wrong_value})
        assert is_permanent(wrong.value) and not isinstance(wrong.value, TRANSIENT_ERRORS)
    database.dispose()


# --- requests ------------------------------------------------------------------------------------

class Probe:
    """A service app with one route writing one row in one unit of work; ``faults`` holds what
    befalls each run of the view (a function of its session, or None), in order."""

    def __init__(self, url: str):
        self.database = Database(url)
        self.service = unique("probe")
        self.app = ServiceFlask(self.service)
        register_error_handlers(self.app)
        self.runs = 0
        self.faults: list = []

        @self.app.post("/rows/<int:row_id>")
        def write(row_id):
            self.runs += 1
            fault = self.faults.pop(0) if self.faults else None
            with UnitOfWork(self.database) as uow:
                if fault is not None:
                    fault(uow.session)
                uow.session.execute(text("INSERT INTO probe (id) VALUES (:id)"), {"id": row_id})
                uow.session.execute(text("SELECT id FROM probe WHERE id = :id"), {"id": row_id})
            return jsonify(id=row_id), 201

        self.client = self.app.test_client()

    def rows(self) -> int:
        with self.database.transaction() as session:
            return session.execute(text("SELECT count(*) FROM probe")).scalar()

    def errors(self, outcome: str) -> float:
        return database_errors(self.service, "request", outcome)


def kill_own_connection(session) -> None:
    terminate(session.execute(text("SELECT pg_backend_pid()")).scalar())


@pytest.fixture
def probe(postgres_url):
    made = Probe(postgres_url)
    yield made
    made.database.dispose()


@needs_postgres
def test_a_request_whose_connection_is_lost_runs_once_more_on_a_fresh_one(probe):
    probe.faults = [kill_own_connection]
    answer = probe.client.post("/rows/1")
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert probe.runs == 2 and probe.rows() == 1
    assert probe.errors("rerun") == 1 and probe.errors("unavailable") == 0


@needs_postgres
def test_a_request_that_loses_its_connection_twice_answers_503_with_retry_after(probe):
    probe.faults = [kill_own_connection, kill_own_connection]
    answer = probe.client.post("/rows/1")
    assert answer.status_code == 503
    assert answer.get_json() == {"error": {
        "code": "database_unavailable",
        "message": "the database is briefly unavailable; send the same request again shortly"}}
    assert int(answer.headers["Retry-After"]) >= 1
    assert probe.runs == 2 and probe.rows() == 0
    assert probe.errors("rerun") == 1 and probe.errors("unavailable") == 1
    # The client sends it again: it is done.
    assert probe.client.post("/rows/1").status_code == 201 and probe.rows() == 1


@needs_postgres
def test_a_request_that_called_outside_is_not_run_again(probe):
    def call_outside_then_lose(session):
        called_outside("a payment provider")
        kill_own_connection(session)

    probe.faults = [call_outside_then_lose]
    answer = probe.client.post("/rows/1")
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert probe.runs == 1 and probe.rows() == 0
    assert probe.errors("rerun") == 0 and probe.errors("unavailable") == 1
    # The mark belongs to that request only.
    probe.faults = [kill_own_connection]
    assert probe.client.post("/rows/2").status_code == 201 and probe.runs == 3


@needs_postgres
def test_a_lock_timeout_answers_503_without_running_again(probe, postgres_url):
    with psycopg.connect(postgres_url.replace("+psycopg", "")) as holder:
        holder.execute("LOCK TABLE probe IN EXCLUSIVE MODE")   # held until the block ends

        def short_lock_timeout(session):
            session.execute(text("SET LOCAL lock_timeout = '100ms'"))

        probe.faults = [short_lock_timeout]
        answer = probe.client.post("/rows/1")   # its INSERT waits for the lock
    assert answer.status_code == 503 and answer.get_json()["error"]["code"] == "database_unavailable"
    assert probe.runs == 1 and probe.errors("unavailable") == 1 and probe.errors("rerun") == 0


@needs_postgres
def test_a_permanent_error_in_a_request_is_not_run_again(probe):
    def missing_table(session):
        session.execute(text("SELECT * FROM no_such_table"))

    probe.faults = [missing_table]
    answer = probe.client.post("/rows/1")
    assert answer.status_code == 500 and answer.get_json()["error"]["code"] == "internal_error"
    assert probe.runs == 1 and probe.rows() == 0
    assert probe.errors("rerun") == 0 and probe.errors("unavailable") == 0


def test_a_sqlite_write_lock_held_past_the_busy_timeout_answers_503(tmp_path, monkeypatch):
    monkeypatch.setattr(database_module, "SQLITE_BUSY_TIMEOUT_MS", 100)
    url = f"sqlite:///{tmp_path / 'probe.db'}"
    probe = Probe(url)
    with probe.database.transaction() as session:
        session.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY)"))
    holder = sqlite3.connect(tmp_path / "probe.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        answer = probe.client.post("/rows/1")
    finally:
        holder.close()
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert probe.runs == 1
    assert probe.client.post("/rows/1").status_code == 201 and probe.rows() == 1
    probe.database.dispose()


# --- tasks ---------------------------------------------------------------------------------------

@pytest.fixture
def sqlite_probe_database(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'tasks.db'}")
    with database.transaction() as session:
        session.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY)"))
    yield database
    database.dispose()


def probe_tasks(service: str, database: Database):
    app = make_celery(service, broker_url="memory://")
    attempts = []

    @app.task(name=f"{service}.write", bind=True, autoretry_for=TRANSIENT_ERRORS, max_retries=3,
              default_retry_delay=0)
    def write(self, payload):
        attempts.append(self.request.id)
        with UnitOfWork(database) as uow:
            if payload.get("lost"):
                raise DatabaseUnavailable("SELECT 1", {}, Exception("server closed the connection"))
            uow.session.execute(text(payload.get("sql", "INSERT INTO probe (id) VALUES (1)")))

    return write, attempts


def test_a_permanent_error_fails_the_message_at_once_with_an_error_log_and_a_count(
        sqlite_probe_database, caplog):
    service = unique("tasks")
    write, attempts = probe_tasks(service, sqlite_probe_database)
    with caplog.at_level(logging.ERROR, logger="diandian_common.uow"):
        result = write.apply(args=[{"sql": "INSERT INTO no_such_table (id) VALUES (1)"}], task_id="msg-42")
    assert result.failed() and len(attempts) == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "diandian_common.uow"]
    assert len(lines) == 1 and caplog.records[-1].levelno == logging.ERROR
    assert f"{service}.write[msg-42]" in lines[0] and "not retried" in lines[0]
    assert "OperationalError: no such table: no_such_table" in lines[0]
    assert database_errors(service, "task", "failed") == 1
    assert database_errors(service, "task", "retried") == 0


def test_a_transient_fault_is_retried_and_counted(sqlite_probe_database):
    service = unique("tasks")
    write, attempts = probe_tasks(service, sqlite_probe_database)
    result = write.apply(args=[{"lost": True}])   # eager: the retries run at once
    assert result.failed() and len(attempts) == write.max_retries + 1
    assert database_errors(service, "task", "retried") == write.max_retries
    assert database_errors(service, "task", "failed") == 0


def test_the_tasks_retry_only_what_heals():
    from certificates import tasks as certificates_tasks
    from orders import tasks as orders_tasks
    from ranking import tasks as ranking_tasks

    permanent = (sa_exc.ProgrammingError, sa_exc.DataError, sa_exc.IntegrityError, sa_exc.OperationalError)
    retried = {name: tuple(getattr(task, "autoretry_for", ()) or ())
               for app in (orders_tasks.celery, certificates_tasks.celery)
               for name, task in app.tasks.items() if not name.startswith("celery.")}
    retried["ranking.record/revoke"] = ranking_tasks.TEMPORARY_ERRORS
    assert retried["orders.retire_credits"]
    for name, errors in retried.items():
        assert not any(issubclass(error, errors) for error in permanent), name
        assert not any(issubclass(sa_exc.DBAPIError, error) for error in errors), name


# --- the orders service on PostgreSQL --------------------------------------------------------------

@pytest.fixture
def orders_on_postgres(tmp_path, monkeypatch):
    if not postgres_available():
        pytest.skip("no PostgreSQL server reachable")
    from orders.app import create_app
    from orders.cli import seed_demo_projects

    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    with temporary_postgres_database("orders") as url:
        monkeypatch.setenv("ORDERS_DATABASE_URL", url)
        app = create_app(database_url=url)
        with UnitOfWork(app.extensions["db"]) as uow:
            seed_demo_projects(uow)
        yield app
        app.extensions["db"].dispose()


@contextmanager
def connection_lost_before(database: Database, marker: str, times: int = 1):
    """The connection about to run each of the next ``times`` statements containing ``marker``
    is terminated first (from another connection): the statement meets AdminShutdown."""
    left = [times]

    def before(conn, _cursor, statement, *_args):
        if marker in statement and left[0] > 0:
            left[0] -= 1
            terminate(conn.connection.dbapi_connection.info.backend_pid)

    event.listen(database.engine, "before_cursor_execute", before)
    try:
        yield left
    finally:
        event.remove(database.engine, "before_cursor_execute", before)


@needs_postgres
def test_orders_placed_and_paid_while_their_row_locks_lose_the_connection(orders_on_postgres):
    from orders.models import Order, OutboxMessage

    database = orders_on_postgres.extensions["db"]
    driver = Driver(orders_on_postgres.test_client())
    project = driver.projects()[0]["id"]
    with connection_lost_before(database, "FOR UPDATE") as left:
        placed = driver.place_order(project, 3, {"id": "guest-lost", "display_name": "Lost Connection"})
    assert left == [0]
    with connection_lost_before(database, "FOR UPDATE") as left:
        driver.pay(placed["id"])
    assert left == [0]
    with UnitOfWork(database) as uow:
        orders = uow.session.scalars(select(Order)).all()
        assert [(o.id, o.status) for o in orders] == [(placed["id"], "paid")]
        retirements = uow.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.task_name == "orders.retire_credits"))
        assert retirements == 1
    assert database_errors("orders", "request", "rerun") >= 2


@needs_postgres
def test_an_order_whose_connection_is_lost_twice_is_placed_by_the_clients_retry(orders_on_postgres):
    from orders.models import Order

    database = orders_on_postgres.extensions["db"]
    client = orders_on_postgres.test_client()
    driver = Driver(client)
    project = driver.projects()[0]["id"]
    body = {"project_id": project, "quantity_kg": 2, "participant": {"display_name": "Twice Lost"}}
    headers = {"Idempotency-Key": "twice-lost"}
    with connection_lost_before(database, "FOR UPDATE", times=2):
        first = driver.api("POST", "/api/v1/orders", json=body, guest="guest-twice", headers=headers)
    assert first.status_code == 503 and first.json()["error"]["code"] == "database_unavailable"
    assert int(first.headers["Retry-After"]) >= 1
    again = driver.api("POST", "/api/v1/orders", json=body, guest="guest-twice", headers=headers)
    assert again.status_code == 201, again.text
    with UnitOfWork(database) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Order)) == 1


@needs_postgres
def test_a_retirement_hitting_a_programming_error_fails_at_once(orders_on_postgres, monkeypatch, caplog):
    """The issue's ``retire_credits`` whose query compared a list with an order id: retried ten
    times over 80 s before; now failed at once, the order failed and refunded, said and counted."""
    from orders import tasks
    from orders.ledger import service as ledger_service

    driver = Driver(orders_on_postgres.test_client())
    order = driver.place_order(driver.projects()[0]["id"], 4, {"id": "guest-bad", "display_name": "Bad Data"})
    driver.pay(order["id"])
    attempts = []

    def compare_with_a_list(uow, order_id):
        attempts.append(order_id)
        uow.session.execute(text("SELECT id FROM orders WHERE id = :id"), {"id": [len(order_id)]})

    monkeypatch.setattr(ledger_service, "retire", compare_with_a_list)
    failed_before = database_errors("orders", "task", "failed")
    with caplog.at_level(logging.ERROR, logger="diandian_common.uow"):
        result = tasks.retire_credits.apply(args=[{"v": 1, "order_id": order["id"]}], task_id="msg-list")
    assert result.failed() and attempts == [order["id"]]
    line = next(r.getMessage() for r in caplog.records if r.name == "diandian_common.uow")
    assert "orders.retire_credits[msg-list] failed at once" in line and "UndefinedFunction" in line
    assert database_errors("orders", "task", "failed") == failed_before + 1
    assert driver.order(order["id"])["status"] == "failed"
