"""The emulator and the merchant's notification receiver the tests share (one per module);
see helpers.py."""
from __future__ import annotations

import pytest

from payment_emulator.tests.helpers import Receiver, start_emulator


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.stop()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory, receiver):
    started = start_emulator(tmp_path_factory.mktemp("emulator"), receiver)
    yield started
    started.server.stop()
