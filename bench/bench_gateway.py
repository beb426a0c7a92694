"""The gateway's cost: ``POST /api/v1/estimates`` through it against a bare Flask app.

One run starts, from the ``ProcessStack`` of ``tests/stack.py`` (migrated and seeded as ``make run``
does), Redis, the calculator API and the gateway, plus a bare Flask app answering a constant
JSON body, all under gunicorn with the same options (``GUNICORN_OPTS``, start-stack.sh's
default). Then the same load generator, ``CLIENTS`` keep-alive connections sending requests
back to back, measures in interleaved rounds (so that a noisy moment on the machine does not
fall on one side only). The load generator is ``wrk`` when it is installed (``apt-get install
wrk``: written in C, its clients take little of the CPU the servers need), else Python
threads with pooled urllib3 connections; the report names the one used. The targets:

- ``gateway``: a small trip estimate through the gateway (rate limiter on, with limits no
  client reaches here; the calculator computes and stores the estimate);
- ``bare``: the bare Flask app, the floor of any endpoint under these server settings;
- ``calculator_direct``: the same estimate straight to the calculator, which splits the
  gateway's own cost (proxying, limiter, keys) from the endpoint's work;
- ``two_hop_floor``: a Flask app doing nothing but forwarding the request to the bare app
  through a urllib3 connection pool, as the gateway forwards: the least any Python gateway
  in front of a Python service costs under these settings, i.e. how close to the goal an
  architecture with two HTTP hops can come on this machine at all.

The goal (issue 8): gateway throughput ≥ 0.5 × bare throughput.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import urllib3
from flask import Flask, request

from diandian_common.testing import free_port

from .common import Ratio, Report, summary_ms

CLIENTS = 16
ROUNDS = 3
ROUND_SECONDS = 5.0
WARMUP_SECONDS = 2.0
GOAL = 0.5
ESTIMATE = {"kind": "trip", "activities": [{"type": "rail", "distance_km": 100}]}
# The limiter keeps counting in Redis (its cost is part of the gateway's); no limit is reached.
BENCH_ENV = {"RATE_LIMIT_ORDERS": "10000000/minute", "RATE_LIMIT_READS": "10000000/minute",
             "RATE_LIMIT_WRITES": "10000000/minute", "RATE_LIMIT_PER_ADDRESS": "10000000/minute",
             "RATE_LIMIT_ORDERS_PER_ADDRESS": "10000000/minute"}

bare_app = Flask("bare")
_BARE_BODY = json.dumps({"id": "est_0123456789abcdef0123", "kind": "trip", "total_kg": 4.1,
                         "factor_set": "2025.1"}).encode()


@bare_app.post("/api/v1/estimates")
def bare_estimate():
    """A constant JSON answer: what any endpoint costs under these server settings."""
    return bare_app.response_class(_BARE_BODY, status=201, mimetype="application/json")


floor_app = Flask("two_hop_floor")
_floor_pool = urllib3.PoolManager(maxsize=32)


@floor_app.post("/api/v1/estimates")
def floor_estimate():
    """The request forwarded to the bare app (BENCH_BARE_URL) through a urllib3 pool, as the
    gateway forwards, and its answer returned; nothing else: no limiter, no keys, no header
    filtering, no validation, no database."""
    upstream = _floor_pool.request("POST", os.environ["BENCH_BARE_URL"] + "/api/v1/estimates",
                                   body=request.get_data(), headers={"Content-Type": "application/json"},
                                   timeout=10)
    return floor_app.response_class(upstream.data, status=upstream.status, mimetype="application/json")


def _load(pool: urllib3.HTTPConnectionPool, path: str, seconds: float) -> tuple[list[float], float]:
    """``CLIENTS`` threads sending the estimate for ``seconds``: (latencies in s, wall time)."""
    body = json.dumps(ESTIMATE).encode()
    headers = {"Content-Type": "application/json"}
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    failures: list[str] = []
    deadline = time.perf_counter() + seconds

    def client(k: int) -> None:
        while time.perf_counter() < deadline and not failures:
            started = time.perf_counter()
            response = pool.request("POST", path, body=body, headers=headers)
            if response.status != 201:
                failures.append(f"POST {pool.port}{path}: {response.status} {response.data[:200]!r}")
                return
            latencies[k].append(time.perf_counter() - started)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(failures[0])
    return [s for per_client in latencies for s in per_client], time.perf_counter() - started


def _measure_threads(ports: dict[str, int]) -> dict[str, dict]:
    pools = {name: urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=CLIENTS, block=True, retries=False)
             for name, port in ports.items()}
    samples = {name: [] for name in ports}
    walls = {name: 0.0 for name in ports}
    for pool in pools.values():
        _load(pool, "/api/v1/estimates", WARMUP_SECONDS)
    for _ in range(ROUNDS):
        for name, pool in pools.items():
            latencies, wall = _load(pool, "/api/v1/estimates", ROUND_SECONDS)
            samples[name] += latencies
            walls[name] += wall
    return {name: {"per_s": round(len(samples[name]) / walls[name]), **summary_ms(samples[name])}
            for name in ports}


_WRK_SCRIPT = f"""wrk.method = "POST"
wrk.body = '{json.dumps(ESTIMATE)}'
wrk.headers["Content-Type"] = "application/json"
"""
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(script: Path, port: int, seconds: float) -> dict:
    """One wrk run: requests, requests per second and the latency percentiles it prints."""
    out = subprocess.run(["wrk", "-t", "2", "-c", str(CLIENTS), "-d", f"{seconds:g}s", "--latency",
                          "-s", str(script), f"http://127.0.0.1:{port}/api/v1/estimates"],
                         check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw failed requests on port {port}:\n{out}")
    percentiles = {int(p): float(v) * _UNIT_MS[unit]
                   for p, v, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)$", out, re.MULTILINE)}
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {"n": requests, "per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": percentiles[50], "p99_ms": percentiles[99]}


def _measure_wrk(ports: dict[str, int], workdir: Path) -> dict[str, dict]:
    script = workdir / "estimate.lua"
    script.write_text(_WRK_SCRIPT)
    runs = {name: [] for name in ports}
    for port in ports.values():
        _wrk(script, port, WARMUP_SECONDS)
    for _ in range(ROUNDS):
        for name, port in ports.items():
            runs[name].append(_wrk(script, port, ROUND_SECONDS))
    # Rounds are equally long: throughput is their mean; the percentiles of each round are
    # combined by taking the worst round (wrk does not hand out its samples).
    return {name: {"n": sum(r["n"] for r in rounds),
                   "per_s": round(sum(r["per_s"] for r in rounds) / len(rounds)),
                   "p50_ms": round(max(r["p50_ms"] for r in rounds), 3),
                   "p99_ms": round(max(r["p99_ms"] for r in rounds), 3)}
            for name, rounds in runs.items()}


def run() -> list[Report]:
    from tests.stack import ProcessStack   # the repository root is the working directory

    workdir = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    load_before = os.getloadavg()[0]
    stack = ProcessStack(workdir, BENCH_ENV)
    bare_port = free_port()
    floor_port = free_port()
    stack.add("bare", f"gunicorn --bind 127.0.0.1:{bare_port} $GUNICORN_OPTS bench.bench_gateway:bare_app")
    stack.add("floor", f"gunicorn --bind 127.0.0.1:{floor_port} $GUNICORN_OPTS bench.bench_gateway:floor_app")
    stack.env["BENCH_BARE_URL"] = f"http://127.0.0.1:{bare_port}"
    try:
        stack.prepare()
        for name in ("redis", "calculator", "gateway", "bare", "floor"):
            stack.start(name)
        ports = {"gateway": stack.port, "bare": bare_port,
                 "calculator_direct": int(stack.env["CALCULATOR_PORT"]), "two_hop_floor": floor_port}
        generator = "wrk" if shutil.which("wrk") else "python threads (urllib3)"
        results = _measure_wrk(ports, workdir) if shutil.which("wrk") else _measure_threads(ports)
        gunicorn_options = stack.env["GUNICORN_OPTS"]
    finally:
        stack.close()
        shutil.rmtree(workdir, ignore_errors=True)

    gateway, bare, direct = results["gateway"], results["bare"], results["calculator_direct"]
    floor = results["two_hop_floor"]
    report = Report("gateway: POST /api/v1/estimates through the gateway vs a bare Flask app", figures={
        "load_generator": generator, "connections": CLIENTS, "seconds_per_side": ROUNDS * ROUND_SECONDS,
        "gunicorn": gunicorn_options,
        "cpus": os.cpu_count(), "load_average_1min_before": round(load_before, 2),
        "gateway": gateway, "bare": bare, "calculator_direct": direct, "two_hop_floor": floor,
    }, ratios=[
        Ratio("throughput gateway / bare Flask", gateway["per_s"], bare["per_s"], higher_is_better=True,
              goal=GOAL),
        Ratio("p99 ms gateway / bare Flask", gateway["p99_ms"], bare["p99_ms"], higher_is_better=False),
        Ratio("throughput gateway / calculator direct (the gateway's own cost)", gateway["per_s"],
              direct["per_s"], higher_is_better=True),
        Ratio("throughput two-hop floor / bare Flask (the most any two-hop design reaches here)",
              floor["per_s"], bare["per_s"], higher_is_better=True),
        Ratio("throughput gateway / two-hop floor", gateway["per_s"], floor["per_s"], higher_is_better=True),
    ])
    return [report]
