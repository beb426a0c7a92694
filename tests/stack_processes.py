"""The stack's processes as the Procfile and scripts/start-stack.sh declare them, free blocks
of ports for a stack, and reading the process table (tests/stack.py runs them)."""
from __future__ import annotations

import os
import random
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from diandian_common.config import PORT_OFFSETS

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
START_SCRIPT = ROOT / "scripts" / "start-stack.sh"


# scripts/start-stack.sh's "export NAME=${NAME:-default}" lines whose defaults ProcessStack shares.
SCRIPT_DEFAULTS = ("GATEWAY_HOST", "GUNICORN_OPTS", "CELERY_WORKER_OPTS")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_ports() -> range:
    """The ports the kernel hands out to outgoing connections: a block in there may be taken
    by some client between the check and the bind, so blocks are chosen below it."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def free_port_block() -> int:
    """A gateway port whose derived ports (+1 … +9) are all free too, outside the ephemeral range."""
    span = max(PORT_OFFSETS.values())
    top = _ephemeral_ports().start - span - 1
    if top < 21000:   # no room below it: take the chance
        top = 60000
    for _ in range(200):
        base = random.randint(20000, top)
        if all(_port_free(base + offset) for offset in range(span + 1)):
            return base
    raise RuntimeError("no free block of ports found")


@dataclass(frozen=True)
class ProcessType:
    name: str
    command: str   # as written in the Procfile, ``$VARS`` unexpanded

    @property
    def kind(self) -> str:
        """``redis``, ``api`` (gunicorn), ``worker``, ``beat`` or ``other``."""
        words = self.command.split()
        if words[0] == "redis-server":
            return "redis"
        if words[0] == "gunicorn":
            return "api"
        if words[0] == "celery":
            return "beat" if "beat" in words else "worker" if "worker" in words else "other"
        return "other"


def read_procfile(path: Path = PROCFILE) -> dict[str, ProcessType]:
    types = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            types[name.strip()] = ProcessType(name.strip(), command.strip())
    return types


def script_defaults(path: Path = START_SCRIPT) -> dict[str, str]:
    """The defaults start-stack.sh gives ``SCRIPT_DEFAULTS`` (one source of truth)."""
    text = path.read_text()
    defaults = {}
    for name in SCRIPT_DEFAULTS:
        match = re.search(rf"^export {name}=\$\{{{name}:-(.*)\}}\s*$", text, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"{path} no longer sets a default for {name}; update tests/stack.py")
        defaults[name] = match.group(1)
    return defaults


def proc_table() -> dict[int, tuple[int, int]]:
    """pid → (parent pid, process group) of every process, from /proc."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU time of ``pid`` and of its children it has waited for."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")   # utime stime cutime cstime


def descendants(pid: int) -> list[int]:
    """Every living descendant of ``pid`` (children first, then theirs)."""
    table = proc_table()
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, (parent, _) in table.items() if parent in frontier]
        found += children
        frontier = children
    return found
