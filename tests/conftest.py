import shutil

import pytest

from tests.stack import Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """One real stack (Redis, 4 APIs, 4 workers, scheduler, gateway) for the session."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is required for the end-to-end tests (scripts/setup.sh installs it)")
    running = Stack(tmp_path_factory.mktemp("stack"))
    running.start()
    yield running
    running.stop()
