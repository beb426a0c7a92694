"""The session's stack. It is started in the background as soon as the tests are collected
(if any selected test uses it), and the tests that need it run after those that do not, so
that its start-up (migrations, seeds, a dozen processes) overlaps the rest of the suite."""
import shutil
import threading

import pytest

from tests.stack import Stack, require_redis_server


class _Starting:
    """A :class:`Stack` starting in a thread; ``result()`` waits for it (or raises its error)."""

    def __init__(self, var_dir):
        self.stack = Stack(var_dir)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._start, name="session-stack", daemon=True)
        self.thread.start()

    def _start(self):
        try:
            self.stack.start()
        except BaseException as exc:   # handed to the first test that needs the stack
            self.error = exc

    def result(self) -> Stack:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.stack


_starting: _Starting | None = None


def _uses_stack(item) -> bool:
    return "stack" in getattr(item, "fixturenames", ()) and item.get_closest_marker("compose") is None \
        and item.get_closest_marker("faults") is None


def pytest_collection_modifyitems(config, items):
    """Tests of the session's stack last (their order among themselves unchanged)."""
    items[:] = [item for item in items if not _uses_stack(item)] + [item for item in items if _uses_stack(item)]


def pytest_collection_finish(session):
    global _starting
    if session.config.option.collectonly or shutil.which("redis-server") is None:
        return
    if any(_uses_stack(item) for item in session.items):
        _starting = _Starting(session.config._tmp_path_factory.mktemp("stack"))


def pytest_sessionfinish(session):
    if _starting is not None:
        _starting.thread.join()
        _starting.stack.stop()


@pytest.fixture(scope="session")
def stack():
    """One real stack (Redis, 4 APIs, 4 workers, schedulers, gateway) for the session, run as
    ``make run`` runs it (tests/stack.py)."""
    require_redis_server()
    assert _starting is not None, "the session's stack was not started (tests/conftest.py)"
    return _starting.result()


@pytest.fixture(scope="module")
def driver(stack):
    """The client of the module's ``stack`` (diandian_common.testing.Driver), through its gateway."""
    return stack.driver
