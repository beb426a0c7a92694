import pytest

from diandian_common.testing import (Driver, migrated_sqlite_url, postgres_available,
                                     temporary_postgres_database)
from diandian_common.uow import UnitOfWork
from orders.app import create_app
from orders.cli import seed_demo_projects
from orders.payments.tests.emulated import emulator  # noqa: F401 (the payment emulator fixture)


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    url = migrated_sqlite_url("orders", tmp_path)
    monkeypatch.setenv("ORDERS_DATABASE_URL", url)
    application = create_app(database_url=url)
    with UnitOfWork(application.extensions["db"]) as uow:
        seed_demo_projects(uow)
    yield application
    application.extensions["db"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def database(app):
    return app.extensions["db"]


OPERATOR_KEY = "orders-test-operator-key"


@pytest.fixture
def operator(monkeypatch):
    """Headers of an operator's request."""
    monkeypatch.setenv("OPERATOR_API_KEY", OPERATOR_KEY)
    return {"X-API-Key": OPERATOR_KEY}


@pytest.fixture
def driver(client):
    """The one client of the tests (diandian_common.testing.Driver), on the service's test client."""
    return Driver(client, operator_key=OPERATOR_KEY)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path, monkeypatch):
    """A migrated orders database of the test's own, on SQLite and (when reachable) PostgreSQL:
    for the concurrency tests, whose races only PostgreSQL's row locks really settle."""
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    if request.param == "sqlite":
        yield migrated_sqlite_url("orders", tmp_path)
    else:
        if not postgres_available():
            pytest.skip("no PostgreSQL server reachable")
        with temporary_postgres_database("orders") as url:
            yield url
