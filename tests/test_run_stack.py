"""``make run`` as a newcomer meets it (scripts/start-stack.sh): the line saying the stack is up."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

UP_LINE = "[stack] Diandian is up: "


def wait_for_line(path: Path, text: str, timeout: float = 90) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text(errors="replace").splitlines()
        if any(text in line for line in lines):
            return lines
        time.sleep(0.3)
    raise AssertionError(f"{text!r} never appeared in {path}:\n" + "\n".join(lines[-40:]))


@pytest.mark.integration
def test_make_run_says_again_when_the_stack_is_up(stack):
    lines = wait_for_line(stack.log_path, UP_LINE)
    assert f"{UP_LINE}{stack.url}/" in "\n".join(lines)
    assert not [line for line in lines if "did not come up" in line]
