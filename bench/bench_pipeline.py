"""The order pipeline under a burst: ``BENCH_PIPELINE_ORDERS`` (500) orders paid at once.

The whole stack of ``tests/stack.py`` (its ``ProcessStack``) runs as ``make run`` runs it (every Procfile
process, start-stack.sh's ``GUNICORN_OPTS`` and ``CELERY_WORKER_OPTS``, migrated and seeded),
except that the gateway's rate limits are raised: the load comes from one address. The
orders are placed first (not timed), then paid in a burst through the gateway by
``CLIENTS`` threads. Measured:

- wall time from the first payment to the last ``completed_at``, and orders per second;
- per order, ``paid_at`` → ``completed_at`` (the orders service's own timestamps): p50/p99;
- the baseline, measured in the same run before the stack starts: the certificate
  renderer's own ceiling, warm renders per second of one process
  (``bench_certificates.render_ceiling_per_second``) × the certificate worker's processes
  (``--concurrency``; at most one per core);
- where the CPU went meanwhile: CPU seconds of each process type (with its children),
  against the CPU seconds the machine had (wall time × cores).

The goal (issue 8): orders per second ≥ 0.8 × that ceiling.
"""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
import tempfile
import time
from datetime import datetime
from pathlib import Path


from diandian_common import config

from .bench_certificates import render_ceiling_per_second
from .common import Ratio, Report, summary_ms

CLIENTS = 16
GOAL = 0.8
PROJECT_CODE = "CDCER-CD-EBUS"                 # seeded by `flask --app orders.app seed-demo`
COMPLETION_TIMEOUT_S = 600
BENCH_ENV = {"RATE_LIMIT_ORDERS": "10000000/minute", "RATE_LIMIT_READS": "10000000/minute",
             "RATE_LIMIT_WRITES": "10000000/minute", "RATE_LIMIT_PER_ADDRESS": "10000000/minute",
             "RATE_LIMIT_ORDERS_PER_ADDRESS": "10000000/minute"}


def _worker_processes(celery_worker_options: str) -> int:
    match = re.search(r"(?:--concurrency[ =]|-c\s*)(\d+)", celery_worker_options)
    return int(match.group(1)) if match else (os.cpu_count() or 1)   # Celery's default: one per core


def _place(stack, project_id: str, count: int) -> list[str]:
    placed = stack.driver.place_orders(project_id, count, lambda i: {"id": f"bench-{i % 50}",
                                                                     "display_name": f"Bench guest {i % 50}"},
                                       kg=lambda i: 1 + i % 20, workers=CLIENTS)
    return list(placed)


def _pay(stack, order_ids: list[str]) -> None:
    stack.driver.pay_all(order_ids, workers=CLIENTS)


def _completed_count(stack, project_id: str) -> int:
    """Polled from the orders database itself (read-only): asking the API every half second
    would take CPU from the pipeline being measured."""
    with sqlite3.connect(f"file:{stack.var_dir / 'orders.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT COUNT(*) FROM orders WHERE project_id = ? AND status = 'completed'",
                          (project_id,)).fetchone()[0]


def _orders(stack, project_id: str, status: str) -> list[dict]:
    """Every order of the project in ``status`` (the operator's paged list)."""
    found, after = [], None
    while True:
        params = {"project": project_id, "status": status, "limit": 200}
        if after:
            params["after"] = after
        page = stack.driver.api("GET", "/api/v1/orders", params=params, operator=True).json()
        found += page["items"]
        after = page["next_after"]
        if not after:
            return found


def run() -> list[Report]:
    # The repository root is the working directory of `python -m bench`.
    from tests.stack import ProcessStack

    count = config.env_int("BENCH_PIPELINE_ORDERS", 500)
    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        stack = ProcessStack(workdir, BENCH_ENV)
        stack.driver.timeout = 30   # a request may wait behind the burst
        workers = _worker_processes(stack.env["CELERY_WORKER_OPTS"])
        ceiling = render_ceiling_per_second(workers)    # on a quieter machine: before the stack starts
        with stack:
            project = stack.driver.project(PROJECT_CODE)
            order_ids = _place(stack, project["id"], count)
            cpu_before = {name: stack.cpu_seconds(name) for name in stack.types}
            started = time.time()
            _pay(stack, order_ids)
            payments_s = time.time() - started
            deadline = time.monotonic() + COMPLETION_TIMEOUT_S
            while _completed_count(stack, project["id"]) < count and time.monotonic() < deadline:
                time.sleep(0.5)
            cpu = {name: round(stack.cpu_seconds(name) - cpu_before[name], 1) for name in stack.types}
            completed = _orders(stack, project["id"], "completed")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if len(completed) != count:
        raise RuntimeError(f"only {len(completed)} of {count} orders completed in {COMPLETION_TIMEOUT_S}s")

    paid_to_completed = [(datetime.fromisoformat(o["completed_at"]) - datetime.fromisoformat(o["paid_at"]))
                         .total_seconds() for o in completed]
    wall_s = max(datetime.fromisoformat(o["completed_at"]).timestamp() for o in completed) - started
    orders_per_s = count / wall_s
    latency = summary_ms(paid_to_completed)
    report = Report(f"pipeline: {count} orders paid in a burst, payment to completed", figures={
        "orders": count, "clients": CLIENTS, "payments_s": round(payments_s, 2),
        "burst_wall_s": round(wall_s, 2), "orders_per_s": round(orders_per_s, 2),
        "paid_to_completed_p50_s": round(latency["p50_ms"] / 1000, 2),
        "paid_to_completed_p99_s": round(latency["p99_ms"] / 1000, 2),
        "certificate_worker_processes": workers,
        "render_ceiling_per_s": round(ceiling, 2), "celery_worker_opts": stack.env["CELERY_WORKER_OPTS"],
        # Where the machine's CPU went from the first payment to the last completion.
        "cpu_s_by_process": dict(sorted(cpu.items(), key=lambda item: -item[1])),
        "cpu_s_available": round(wall_s * (os.cpu_count() or 1), 1),
    }, ratios=[Ratio("orders/s vs the renderer's ceiling", orders_per_s, ceiling, higher_is_better=True,
                     goal=GOAL)])
    return [report]
