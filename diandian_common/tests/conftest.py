"""Fixtures shared by the plumbing's tests."""
from __future__ import annotations

import logging

import pytest

from diandian_common import logs


@pytest.fixture
def fresh_root(monkeypatch):
    """configure_logging as in a new process; the test session's root logger is put back."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    monkeypatch.setattr(logs, "_configured", False)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    yield root
    for handler in root.handlers:
        if handler not in saved[0]:
            handler.close()
    root.handlers[:], root.level = saved
