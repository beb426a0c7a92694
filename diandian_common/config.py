"""Configuration from environment variables, with safe local defaults.

Every port the stack opens is derived from ``GATEWAY_PORT`` unless set explicitly,
so two stacks can run side by side (README.md, Configuration).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

SERVICES = ("calculator", "orders", "certificates", "ranking")

# Offsets from GATEWAY_PORT for the other listeners of one stack.
PORT_OFFSETS = {
    "calculator": 1,
    "orders": 2,
    "certificates": 3,
    "ranking": 4,
    "flower": 5,
    "redis": 9,
}


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_int(name: str, default: int) -> int:
    return int(env(name, str(default)))


def env_float(name: str, default: float) -> float:
    return float(env(name, str(default)))


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def gateway_port() -> int:
    return env_int("GATEWAY_PORT", 8000)


def port(component: str) -> int:
    """Port of ``component`` (``calculator``, ``redis``, ...): ``{NAME}_PORT`` or derived."""
    return env_int(f"{component.upper()}_PORT", gateway_port() + PORT_OFFSETS[component])


# VAR_DIR holds the databases (guests' names, orders), the certificates and the logs: when
# the platform creates it, only its own user may enter it (0700); the SQLite databases are
# created 0600 (diandian_common.db).
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private(path: Path, mode: int = PRIVATE_FILE_MODE) -> None:
    """Take group and other permissions away from the file ``path`` when this user owns it
    (a database made by an earlier version): someone else's is the deployment's business."""
    try:
        info = path.stat()
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & ~mode:
            path.chmod(stat.S_IMODE(info.st_mode) & mode)
    except OSError:
        pass


def private_dir(path: Path) -> Path:
    """``path``, created 0700 if missing, with its missing parents. A directory that exists
    is left as it is: it may be shared on purpose (``/tmp``, a mounted volume)."""
    missing = [parent for parent in (path, *path.parents) if not parent.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
    return path


def var_dir() -> Path:
    return private_dir(Path(env("VAR_DIR", "./var")).resolve())


def public_base_url() -> str:
    return env("PUBLIC_BASE_URL", f"http://localhost:{gateway_port()}").rstrip("/")


def redis_url() -> str:
    return env("REDIS_URL", f"redis://127.0.0.1:{port('redis')}/0")


def celery_broker_url() -> str:
    """The broker of every Celery app and of the stack's give-back step: ``CELERY_BROKER_URL``,
    else the platform's Redis."""
    return env("CELERY_BROKER_URL", redis_url())


def celery_queue(service: str) -> str:
    """The broker queue ``service``'s worker consumes: ``CELERY_QUEUE_PREFIX`` (default
    ``diandian.``) + the service's name, e.g. ``diandian.orders``. On Redis it is also the
    list's key, so the prefix keeps the platform's queues apart from anyone else's keys in
    a shared database (and two stacks' queues apart, with a prefix each)."""
    return env("CELERY_QUEUE_PREFIX", "diandian.") + service


def service_url(service: str) -> str:
    """Base URL of a service's API as seen from inside the platform."""
    return env(f"{service.upper()}_URL", f"http://127.0.0.1:{port(service)}").rstrip("/")


def database_url(service: str) -> str:
    """``{SERVICE}_DATABASE_URL``, else ``DATABASE_URL``, else a SQLite file under VAR_DIR.

    ``DATABASE_URL`` alone is meant for one container running one service; when several
    services share an environment (``make run``) each gets its own SQLite file.
    """
    url = env(f"{service.upper()}_DATABASE_URL") or env("DATABASE_URL")
    if url:
        # Accept the common "postgres://" / "postgresql://" spellings and use psycopg 3.
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url
    return f"sqlite:///{var_dir() / (service + '.db')}"


def scheduler_heartbeat_seconds() -> float:
    """How often each scheduler (``celery beat``) writes its heartbeat into Redis."""
    seconds = env_float("SCHEDULER_HEARTBEAT_SECONDS", 10.0)
    if seconds <= 0:
        raise ValueError(f"SCHEDULER_HEARTBEAT_SECONDS must be positive, not {seconds}")
    return seconds


def scheduler_stale_seconds() -> float:
    """Age past which ``/healthz`` calls a scheduler's heartbeat stale: three heartbeat
    periods unless set, so one late tick on a busy machine is not an alarm."""
    seconds = env_float("SCHEDULER_STALE_SECONDS", 3 * scheduler_heartbeat_seconds())
    if seconds <= 0:
        raise ValueError(f"SCHEDULER_STALE_SECONDS must be positive, not {seconds}")
    return seconds


def pipeline_audit_seconds() -> float:
    """``PIPELINE_AUDIT_SECONDS``: how often the pipeline audits run (orders' ``audit_pipeline``,
    certificates' ``audit_revocations``), and how long an acknowledgement may take before its
    message is sent again."""
    seconds = env_float("PIPELINE_AUDIT_SECONDS", 300.0)
    if seconds < 0:
        raise ValueError(f"PIPELINE_AUDIT_SECONDS must not be negative, not {seconds}")
    return seconds


def stack_exports() -> dict[str, str]:
    """The variables one local stack's processes share (used by scripts/start-stack.sh)."""
    values = {
        "GATEWAY_PORT": str(gateway_port()),
        "VAR_DIR": str(var_dir()),
        "PUBLIC_BASE_URL": public_base_url(),
        "REDIS_PORT": str(port("redis")),
        "REDIS_URL": redis_url(),
    }
    for service in SERVICES:
        values[f"{service.upper()}_PORT"] = str(port(service))
        values[f"{service.upper()}_URL"] = service_url(service)
        values[f"{service.upper()}_DATABASE_URL"] = database_url(service)
    return values


if __name__ == "__main__":
    import shlex

    for key, value in stack_exports().items():
        print(f"export {key}={shlex.quote(value)}")
    # Start our own Redis unless the caller pointed REDIS_URL elsewhere.
    print(f"export DIANDIAN_OWN_REDIS={'0' if env('REDIS_URL') else '1'}")
