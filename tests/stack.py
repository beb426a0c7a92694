"""Start a whole Diandian stack for end-to-end tests, the way `make run` does.

``scripts/start-stack.sh`` runs migrations and seeds, then honcho starts Redis, the
APIs (gunicorn), the Celery workers, the scheduler and the gateway, all on free ports
derived from one ``GATEWAY_PORT``, with data in a temporary ``VAR_DIR``: the shared
Redis/PostgreSQL of the machine are never touched.
"""
from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

from diandian_common.config import PORT_OFFSETS, SERVICES

ROOT = Path(__file__).resolve().parent.parent
OPERATOR_KEY = "test-operator-key"


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block() -> int:
    """A gateway port whose derived ports (+1 … +9) are all free too."""
    span = max(PORT_OFFSETS.values())
    for _ in range(200):
        base = random.randint(20000, 60000)
        if all(_port_free(base + offset) for offset in range(span + 1)):
            return base
    raise RuntimeError("no free block of ports found")


class Stack:
    def __init__(self, var_dir: Path, extra_env: dict | None = None):
        self.var_dir = var_dir
        self.port = free_port_block()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = var_dir / "stack.log"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.endswith(("_URL", "_PORT", "DATABASE_URL")) and k not in ("VAR_DIR",)}
        self.env.update({
            "GATEWAY_PORT": str(self.port),
            "VAR_DIR": str(var_dir),
            "PUBLIC_BASE_URL": self.url,
            "OPERATOR_API_KEY": OPERATOR_KEY,
            "CELERY_WORKER_OPTS": "--concurrency 2 --loglevel INFO",
            "GUNICORN_OPTS": "--workers 1 --worker-class gthread --threads 8 --timeout 30 --graceful-timeout 5",
            "ORDERS_OUTBOX_RELAY_SECONDS": "1",
            # One test client places many orders from one address in a minute; the
            # limiter stays on (its own tests use tight limits) but won't trip here.
            "RATE_LIMIT_ORDERS": "1000/minute",
            "RATE_LIMIT_WRITES": "1000/minute",
            # Webhook receivers in tests listen on plain http on 127.0.0.1.
            "WEBHOOK_ALLOW_HTTP": "true",
            "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            # Webhook retries within seconds instead of minutes.
            "WEBHOOK_RETRY_SCHEDULE": "1,2,4",
            "WEBHOOK_DISPATCH_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
        })
        self.env.update(extra_env or {})
        self.process: subprocess.Popen | None = None
        self.http = requests.Session()

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.port + PORT_OFFSETS['redis']}/0"

    def service_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port + PORT_OFFSETS[service]}"

    def start(self, timeout: float = 120) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "start-stack.sh")], cwd=ROOT, env=self.env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the stack exited early ({self.process.returncode}):\n{self.tail()}")
            try:
                last = self.http.get(f"{self.url}/healthz", timeout=2)
                if last.status_code == 200:
                    return
            except requests.RequestException as exc:
                last = exc
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the stack did not become healthy in {timeout}s (last: {last!r}):\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        pgid = os.getpgid(self.process.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:  # anything honcho left behind
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    # --- helpers for tests ------------------------------------------------------------
    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 20)
        return self.http.request(method, f"{self.url}{path}", **kwargs)

    def wait_for(self, predicate, timeout: float = 60, interval: float = 0.3, what: str = "condition"):
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {value!r}\n{self.tail(40)}")


__all__ = ["Stack", "OPERATOR_KEY", "SERVICES"]
