"""The one harness of the end-to-end tests and the benchmarks (its processes, ports and the
process table are read in tests/stack_processes.py): a whole Diandian stack on a
free block of ports derived from one ``GATEWAY_PORT``, with its data in a temporary
``var_dir`` (the machine's shared Redis/PostgreSQL are never touched), driven through its
gateway by ``stack.driver`` (:class:`diandian_common.testing.Driver`).

Two ways to run the same stack, sharing the environment, the ports and the driver:

- :class:`Stack` runs it the way ``make run`` does: ``scripts/start-stack.sh`` runs the
  migrations and seeds, then supervisord (diandian_common/supervise.py) starts Redis, the APIs
  (gunicorn), the Celery workers, the schedulers and the gateway (the session's ``stack`` of
  tests/conftest.py), and restarts any of them that dies while the others run on; stopping
  the stack stops the others first and Redis last. Which process has which pid:
  :meth:`Stack.pid`.
- :class:`ProcessStack` prepares the same stack as ``scripts/start-stack.sh`` (the variables
  of ``python -m diandian_common.config``, the script's ``GUNICORN_OPTS`` /
  ``CELERY_WORKER_OPTS`` defaults, migrations, the operator key, the demo data) and then
  starts each Procfile line as its own subprocess in its own process group: the fault tests
  and the benchmarks stop, start or kill any one of them.
"""
from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
import requests

from diandian_common.config import PORT_OFFSETS, SERVICES
from diandian_common.testing import Driver
from tests.stack_processes import (
    ROOT,
    START_SCRIPT,
    ProcessType,
    cpu_seconds_of,
    descendants,
    free_port_block,
    proc_table,
    read_procfile,
    script_defaults,
)

OPERATOR_KEY = "test-operator-key"

# Bursts from one test client: the limiter stays on (its own tests use tight limits and its
# Redis outage path is part of what the fault tests exercise), its limits out of reach.
UNLIMITED_RATES = {
    "RATE_LIMIT_ORDERS": "100000/minute", "RATE_LIMIT_READS": "100000/minute",
    "RATE_LIMIT_WRITES": "100000/minute", "RATE_LIMIT_PER_ADDRESS": "1000000/minute",
    "RATE_LIMIT_ORDERS_PER_ADDRESS": "100000/minute",
}


def require_redis_server() -> None:
    """Every stack starts a redis-server of its own: without one the test fails, never skips."""
    if shutil.which("redis-server") is None:
        import pytest  # only the tests call this: the benchmarks use the module without pytest

        pytest.fail("redis-server is required for the end-to-end and fault tests "
                    "(scripts/setup.sh installs it)")


VENV_BIN = Path(sys.executable).parent


# What the session's stack (make run's way) sets for the end-to-end tests.
E2E_ENV = {
    "CELERY_WORKER_OPTS": "--concurrency 2 --loglevel INFO",
    "GUNICORN_OPTS": "--workers 1 --worker-class gthread --threads 8 --timeout 30 --graceful-timeout 5",
    "ORDERS_OUTBOX_RELAY_SECONDS": "1",
    # One test client places many orders from one address in a minute; the
    # limiter stays on (its own tests use tight limits) but won't trip here.
    "RATE_LIMIT_ORDERS": "1000/minute",
    "RATE_LIMIT_ORDERS_PER_ADDRESS": "1000/minute",
    "RATE_LIMIT_WRITES": "1000/minute",
    # Webhook receivers in tests listen on plain http on 127.0.0.1.
    "WEBHOOK_ALLOW_HTTP": "true",
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    # Webhook retries within seconds instead of minutes.
    "WEBHOOK_RETRY_SCHEDULE": "1,2,4",
    "WEBHOOK_DISPATCH_SECONDS": "1",
}


class StackBase:
    """What both ways of running a stack share: its ports and URLs, its environment (nothing
    of the caller's own stack or test session leaks in: ports, URLs, CELERY_BROKER_URL=memory://
    of the root conftest, VAR_DIR) and its :class:`Driver`."""

    def __init__(self, var_dir: Path, extra_env: dict[str, str] | None = None):
        self.var_dir = Path(var_dir)
        self.port = free_port_block()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items()
               if not k.endswith(("_URL", "_PORT", "DATABASE_URL")) and k != "VAR_DIR"}
        env.update({
            "GATEWAY_PORT": str(self.port), "VAR_DIR": str(self.var_dir), "PUBLIC_BASE_URL": self.url,
            "OPERATOR_API_KEY": OPERATOR_KEY, "PYTHONUNBUFFERED": "1",
            # Every process's lines in its own output (stack.log, logs/<name>.log), where the
            # tests look for the workers' "ready." and "succeeded" (make run writes the workers'
            # and schedulers' to $VAR_DIR/log instead).
            "DIANDIAN_LOG_DIR": "",
        })
        self.env = self._environment(env, extra_env or {})
        self.driver = Driver(self.url, OPERATOR_KEY, on_timeout=self.diagnostics)

    def _environment(self, env: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
        return {**env, **extra}

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.port + PORT_OFFSETS['redis']}/0"

    def service_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port + PORT_OFFSETS[service]}"

    def diagnostics(self) -> str:
        """What a test that timed out waiting on the stack prints (see Driver's on_timeout)."""
        return ""

    def worker_logs(self) -> str:
        """Everything the Celery workers have logged so far (e.g. "<task>[<id>] succeeded")."""
        raise NotImplementedError


class Stack(StackBase):
    """The stack run by ``scripts/start-stack.sh`` under supervisord, as ``make run`` runs it,
    with :data:`E2E_ENV` (``extra_env`` overrides anything); every line in ``stack.log``,
    supervisord's own in :attr:`supervisor_log`."""

    SPAWNED = re.compile(r" spawned: '([^']+)' with pid (\d+)$", re.MULTILINE)

    def __init__(self, var_dir: Path, extra_env: dict | None = None):
        super().__init__(var_dir, {**E2E_ENV, **(extra_env or {})})
        self.log_path = self.var_dir / "stack.log"
        self.supervisor_log = self.var_dir / "supervisor" / "supervisord.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            ["bash", str(START_SCRIPT)], cwd=ROOT, env=self.env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the stack exited early ({self.process.returncode}):\n{self.tail()}")
            try:
                last = requests.get(f"{self.url}/healthz", timeout=2)
                if last.status_code == 200:
                    return
            except requests.RequestException as exc:
                last = exc
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the stack did not become healthy in {timeout}s (last: {last!r}):\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def diagnostics(self) -> str:
        return self.tail(40)

    def worker_logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pid(self, name: str) -> int | None:
        """The pid of the Procfile's process ``name`` as supervisord last started it, while it
        lives (for a Celery worker: its main process, which forks the pool's children)."""
        try:
            spawned = self.SPAWNED.findall(self.supervisor_log.read_text(errors="replace"))
        except OSError:
            return None
        pids = [int(pid) for spawned_name, pid in spawned if spawned_name == name]
        return pids[-1] if pids and session_of(pids[-1]) == self.session else None

    @property
    def session(self) -> int | None:
        """The stack's session: start-stack.sh starts it, every process of the stack is in it."""
        return self.process.pid if self.process is not None else None

    def stop(self, timeout: float = 90) -> None:
        """As Ctrl-C: SIGTERM to supervisord, which stops the others, then Redis; whatever is
        left of the stack after ``timeout`` is killed."""
        self.driver.close()
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        for pid in session_members(self.session):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)


def session_of(pid: int) -> int | None:
    """The session id of a living ``pid``."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[3])


def session_members(session: int) -> list[int]:
    """Every living process of ``session`` (supervisord gives each process its own group,
    so a group no longer holds a stack; its session does)."""
    return [pid for pid in (int(e.name) for e in os.scandir("/proc") if e.name.isdigit())
            if session_of(pid) == session]


class ProcessStack(StackBase):
    """Redis, the APIs, the workers, the schedulers and the gateway as separate processes, each
    logging to ``logs/<name>.log``; start-stack.sh's defaults, ``extra_env`` overriding anything
    (e.g. ``CELERY_WORKER_OPTS``, ``RATE_LIMIT_ENABLED``).
    Use as a context manager, or call :meth:`prepare`, :meth:`start_all` and :meth:`close`.
    """

    def __init__(self, var_dir: Path, extra_env: dict[str, str] | None = None):
        self.types = read_procfile()
        # The payment emulator is make run's demo: these stacks pay by the sandbox unless
        # ``extra_env`` asks for it as scripts/start-stack.sh does (DIANDIAN_PAYMENT_DEMO=emulator,
        # see :meth:`_payment_emulator_environment`).
        self.emulator = (extra_env or {}).get("DIANDIAN_PAYMENT_DEMO") == "emulator"
        if not self.emulator:
            self.types.pop("payment-emulator", None)
        self.processes: dict[str, subprocess.Popen] = {}
        super().__init__(var_dir, extra_env)
        self.logs_dir = self.var_dir / "logs"
        self.logs_dir.mkdir(parents=True, exist_ok=True)

    # --- environment and one-off steps ------------------------------------------------
    def _environment(self, env: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        env.update(script_defaults())
        env.update(extra)
        if not env.get("INTERNAL_API_SECRET"):   # as start-stack.sh: the stack's own secret
            env["INTERNAL_API_SECRET"] = secrets.token_urlsafe(32)
        exports = subprocess.run([sys.executable, "-m", "diandian_common.config"], cwd=ROOT, env=env,
                                 check=True, capture_output=True, text=True).stdout
        for line in exports.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = shlex.split(value)[0] if value else ""
        if env.get("DIANDIAN_OWN_REDIS") != "1":
            raise RuntimeError("a ProcessStack runs its own Redis; do not pass REDIS_URL")
        if self.emulator:
            self._payment_emulator_environment(env, extra)
        return env

    def _payment_emulator_environment(self, env: dict[str, str], extra: dict[str, str]) -> None:
        """What start-stack.sh does for DIANDIAN_PAYMENT_DEMO=emulator: the emulator on the
        gateway's port + 8, its merchant key set made in ``var_dir``, its payment.env given to
        every process, both providers enabled unless ``extra_env`` names providers."""
        env.setdefault("PAYMENT_EMULATOR_PORT", str(self.port + 8))
        merchant = self.var_dir / "payment-merchant"
        subprocess.run([sys.executable, "-m", "payment_emulator", "keys", "--out", str(merchant),
                        "--state-dir", str(self.var_dir / "payment-emulator"),
                        "--port", env["PAYMENT_EMULATOR_PORT"]],
                       cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        for line in (merchant / "payment.env").read_text().splitlines():
            name, sep, value = line.removeprefix("export ").partition("=")
            if sep and not name.lstrip().startswith("#"):
                env[name.strip()] = shlex.split(value)[0] if value.strip() else ""
        env.setdefault("WECHAT_API_BASE_FOR_OAUTH", env.get("WECHAT_OAUTH_BASE", ""))
        if not (extra.get("PAYMENT_PROVIDERS") or extra.get("PAYMENT_PROVIDER")):
            env["PAYMENT_PROVIDERS"] = "wechatpay,alipay"
        env.update({k: v for k, v in extra.items() if k.startswith(("PAYMENT_", "WECHAT", "ALIPAY"))})

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PAYMENT_EMULATOR_PORT']}"

    @property
    def redis_url(self) -> str:
        return self.env["REDIS_URL"]

    def _run(self, *args: str) -> None:
        with open(self.logs_dir / "setup.log", "ab") as log:
            done = subprocess.run(list(args), cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{self.tail('setup')}")

    def prepare(self) -> None:
        """What start-stack.sh does before supervisord: migrations, operator key, demo data."""
        (self.var_dir / "redis").mkdir(exist_ok=True)
        self._run("python", "-m", "diandian_common.migrate", "upgrade")
        self._run("flask", "--app", "gateway.app", "keys", "ensure-operator")
        self._run("flask", "--app", "calculator.app", "seed-demo")
        self._run("flask", "--app", "orders.app", "seed-demo")

    # --- processes ----------------------------------------------------------------------
    def expanded(self, name: str) -> str:
        """The process's command with the stack's variables substituted (as bash does)."""
        return re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda m: self.env.get(m.group(1) or m.group(2), ""),
                      self.types[name].command)

    def add(self, name: str, command: str) -> None:
        """Another process type managed like the Procfile's (e.g. a benchmark's baseline server)."""
        if name in self.types:
            raise ValueError(f"{name} is already a process of this stack")
        self.types[name] = ProcessType(name, command)

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def _log_size(self, name: str) -> int:
        path = self.log_path(name)
        return path.stat().st_size if path.exists() else 0

    def start(self, name: str, wait: bool = True, timeout: float = 90) -> None:
        if self.running(name):
            raise RuntimeError(f"{name} is already running")
        log_offset = self._log_size(name)
        with open(self.log_path(name), "ab") as log:
            # bash expands the $VARS as start-stack.sh's supervisord does; exec keeps one process
            # per line.
            self.processes[name] = subprocess.Popen(
                ["bash", "-c", f"exec {self.types[name].command}"], cwd=ROOT, env=self.env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            self.wait_ready(name, log_offset, timeout)

    def start_all(self, timeout: float = 120) -> None:
        offsets = {}
        for name in self.types:
            offsets[name] = self._log_size(name)
            self.start(name, wait=False)
            if self.types[name].kind == "redis":   # everything else connects to it
                self.wait_ready(name, offsets[name], timeout)
        for name in self.types:
            self.wait_ready(name, offsets[name], timeout)

    def wait_ready(self, name: str, log_offset: int = 0, timeout: float = 90) -> None:
        kind = self.types[name].kind
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self.processes[name]
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.tail(name)}")
            if self._ready(name, kind, log_offset):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{name} was not ready within {timeout}s:\n{self.tail(name)}")

    def _ready(self, name: str, kind: str, log_offset: int) -> bool:
        try:
            if kind == "redis":
                client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=1, socket_timeout=1)
                try:
                    return bool(client.ping())
                finally:
                    client.close()
            if kind == "api":  # listening and answering; /healthz may well be 503 in a fault test
                bind = re.search(r"--bind\s+(\S+)", self.expanded(name)).group(1)
                requests.get(f"http://{bind}/healthz", timeout=2)
                return True
            if name == "payment-emulator":
                return requests.get(f"{self.emulator_url}/healthz", timeout=2).status_code == 200
        except (redis.RedisError, requests.RequestException):
            return False
        if kind == "worker":  # Celery's "<name>@<host> ready." (logged at INFO, the Procfile's level)
            with open(self.log_path(name), "rb") as log:
                log.seek(log_offset)
                return b" ready." in log.read()
        return True  # beat and others: running is all we can tell

    def running(self, name: str) -> bool:
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    def exited(self) -> dict[str, int]:
        """Processes that were started and have exited since: name → return code."""
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

    def revive(self) -> list[str]:
        """Start again every process that has exited (what a supervisor's restart policy
        does); returns their names."""
        dead = list(self.exited())
        for name in dead:
            self.start(name)
        return dead

    def pids(self, name: str) -> list[int]:
        """The process's pid followed by its descendants' (e.g. Celery's prefork children)."""
        if not self.running(name):
            return []
        leader = self.processes[name].pid
        return [leader, *descendants(leader)]

    def cpu_seconds(self, name: str) -> float:
        """CPU time used so far by the process and its living (and reaped) descendants."""
        return sum(cpu_seconds_of(pid) for pid in self.pids(name))

    def children(self, name: str) -> list[int]:
        return self.pids(name)[1:]

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole process group (a crash of that process, not a shutdown).
        To hit one Celery child instead: ``os.kill(stack.children(name)[0], SIGKILL)``."""
        process = self.processes[name]
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self._reap(name, timeout=30)

    def stop(self, name: str, timeout: float = 30) -> None:
        """Graceful stop: SIGTERM to the process itself (gunicorn and Celery then finish their
        requests and tasks, Redis writes its append-only file), then SIGKILL leftovers."""
        self._terminate([name], timeout)

    def _terminate(self, names: list[str], timeout: float) -> None:
        for name in names:
            if self.running(name):
                self.processes[name].send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in names:
            if name in self.processes:
                self._reap(name, timeout=max(0.1, deadline - time.monotonic()))

    def _reap(self, name: str, timeout: float) -> None:
        process = self.processes[name]
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self._kill_group(process.pid)
        process.wait(timeout=10)

    @staticmethod
    def _kill_group(pgid: int) -> None:
        """SIGKILL whatever is left in the group (e.g. Celery children of a killed parent).
        A group id is never reused while any member lives, so every member found is ours."""
        for pid, (_, group) in proc_table().items():
            if group == pgid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def close(self) -> None:
        """Stop everything (clients first, Redis last) and leave no process behind."""
        order = [n for n in self.processes if self.types[n].kind != "redis"]
        self._terminate(order, timeout=30)
        self._terminate([n for n in self.processes if n not in order], timeout=15)
        for process in self.processes.values():
            self._kill_group(process.pid)
        self.driver.close()

    def __enter__(self) -> "ProcessStack":
        try:
            self.prepare()
            self.start_all()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # --- helpers for tests and benchmarks ------------------------------------------------
    def service_url(self, service: str) -> str:
        return self.env[f"{service.upper()}_URL"]

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.logs_dir / f"{name}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def diagnostics(self) -> str:
        return "\n".join(f"{name} exited ({code}):\n{self.tail(name, 15)}" for name, code in self.exited().items())

    def worker_logs(self) -> str:
        return "".join(self.log_path(name).read_text(errors="replace") for name, kind in self.types.items()
                       if kind.kind == "worker" and self.log_path(name).exists())
__all__ = ["Stack", "ProcessStack", "OPERATOR_KEY", "SERVICES", "ROOT", "read_procfile"]
