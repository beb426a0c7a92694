"""Where log lines go: stderr, or a Celery ``--logfile`` with only warnings left on stderr."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diandian_common import logs

ROOT = Path(__file__).resolve().parents[2]


def messages(text: str) -> list[tuple[str, str]]:
    return [(line["level"], line["message"]) for line in map(json.loads, text.splitlines())]


def test_without_a_logfile_everything_goes_to_stderr(fresh_root, capsys):
    logs.configure_logging("probe")
    logging.getLogger("probe").info("routine")
    logging.getLogger("probe").warning("look")
    assert messages(capsys.readouterr().err) == [("INFO", "routine"), ("WARNING", "look")]


def test_with_a_logfile_stderr_keeps_only_warnings_and_errors(fresh_root, capsys, tmp_path):
    logfile = tmp_path / "log" / "probe-worker.log"   # the directory is made
    logs.configure_logging("probe-worker", logfile=logfile)
    log = logging.getLogger("probe")
    log.debug("hidden at INFO")
    log.info("routine")
    log.warning("look")
    log.error("broken")
    assert messages(capsys.readouterr().err) == [("WARNING", "look"), ("ERROR", "broken")]
    lines = logfile.read_text().splitlines()
    assert messages("\n".join(lines)) == [("INFO", "routine"), ("WARNING", "look"), ("ERROR", "broken")]
    assert {json.loads(line)["service"] for line in lines} == {"probe-worker"}


def test_log_level_applies_to_the_file_too(fresh_root, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "debug")
    logfile = tmp_path / "probe.log"
    logs.configure_logging("probe", logfile=logfile)
    logging.getLogger("probe").debug("detail")
    assert messages(logfile.read_text()) == [("DEBUG", "detail")]
    assert capsys.readouterr().err == ""


def test_a_logfile_moved_away_is_reopened(fresh_root, tmp_path):
    logfile = tmp_path / "probe.log"
    logs.configure_logging("probe", logfile=logfile)
    logging.getLogger("probe").info("before")
    logfile.rename(tmp_path / "probe.log.1")
    logging.getLogger("probe").info("after")
    assert messages(logfile.read_text()) == [("INFO", "after")]


@pytest.mark.integration
def test_a_celery_worker_honours_quiet_and_logfile(tmp_path):
    """The Procfile's worker options, on a worker with an in-memory broker: no banner and no
    INFO lines on the terminal, every line (``ready.`` included) in the file named by ``%n``."""
    env = {**os.environ, "CELERY_BROKER_URL": "memory://", "PYTHONUNBUFFERED": "1"}
    env.pop("LOG_LEVEL", None)
    terminal = tmp_path / "terminal.out"
    celery = [sys.executable, "-m", "celery", "-A", "calculator.tasks", "--quiet", "worker", "--pool", "solo",
              "-Q", "calculator", "-n", "calculator@%h", "--loglevel", "INFO",
              "--logfile", str(tmp_path / "log" / "%n-worker.log")]
    with terminal.open("wb") as out:
        worker = subprocess.Popen(celery, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    logfile = tmp_path / "log" / "calculator-worker.log"
    try:
        deadline = time.monotonic() + 60
        while not (logfile.exists() and " ready." in logfile.read_text()):
            assert worker.poll() is None, terminal.read_text()
            assert time.monotonic() < deadline, f"never ready:\n{terminal.read_text()}"
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    shown = terminal.read_text()
    assert "[queues]" not in shown and "[tasks]" not in shown   # no banner
    assert '"level": "INFO"' not in shown and " ready." not in shown
    assert '"level": "INFO"' in logfile.read_text()
