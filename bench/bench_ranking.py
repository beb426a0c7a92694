"""Ranking at 1,000,000 participants: API reads against raw Redis, and record throughput.

Starts a redis-server of its own (``diandian_common.testing.redis_server``) and the ranking
API under gunicorn with the production options, seeds one board with ``flask ranking
seed-synthetic``, then measures in one run:

- top 100: ``GET /api/v1/rankings?limit=100`` against ``ZREVRANGE 0 99 WITHSCORES``;
- my rank: ``GET /api/v1/rankings/participants/{id}`` against ``ZREVRANK`` + ``ZSCORE``
  (pipelined: one round trip, the least raw Redis needs for a rank and its kilograms);
- an HTTP floor: a WSGI app answering a constant body under the same gunicorn options,
  i.e. what any HTTP endpoint costs here before doing anything;
- ``ranking.record`` applications per second (the task function as the worker runs it:
  database insert + Lua apply on every board), single process, against sequential ZINCRBY.

Reads use the same clients in the same process for both sides: ``CLIENTS`` threads, each
side with a pooled client (urllib3 connection pool / redis-py connection pool), both
decoding the reply into Python objects. The four read kinds are measured in interleaved
rounds so that a noisy moment on the machine does not fall on one side only.

``BENCH_RANKING_PARTICIPANTS`` (default 1,000,000) makes the board smaller for a quick try.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import redis
import urllib3

from diandian_common import config
from diandian_common.testing import free_port, migrated_sqlite_url, redis_server, stop_process, wait_for
from ranking.domain.boards import Kind, current_board
from ranking.domain.periods import Period
from ranking.synthetic import synthetic_participant_id

from .common import Ratio, Report, summary_ms

ROOT = Path(__file__).resolve().parent.parent
SCENE = "bench-1m"
CLIENTS = 4
REQUESTS = 2_000          # per kind of read, over all rounds
ROUNDS = 4
WARMUP = 200
RECORDS = 2_000
ZINCRBYS = 10_000
GOAL = 3.0                # API within 3× of raw Redis
GUNICORN_OPTIONS = ["--workers", "2", "--worker-class", "gthread", "--threads", "4",
                    "--timeout", "30", "--graceful-timeout", "10"]

_FLOOR_BODY = json.dumps({"rank": 310704, "kg": 57.0, "total": 1000000, "display_name": "访***",
                          "neighbours": [{"rank": 310702 + i, "participant_id": f"synthetic:{SCENE}:{i:07d}",
                                          "display_name": "Guest", "kg": 57.0} for i in range(4)]},
                         ensure_ascii=False).encode()


def http_floor_app(_environ, start_response):
    """The cheapest possible endpoint: a constant my-rank-sized JSON body (the HTTP floor)."""
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(_FLOOR_BODY)))])
    return [_FLOOR_BODY]


# --- processes --------------------------------------------------------------------

@contextlib.contextmanager
def _process(args: list[str], what: str, ready: Callable[[], bool], env: dict, log: Path) -> Iterator[None]:
    with open(log, "ab") as out:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        # A process that exits ends the wait at once; until it answers, errors are "not yet".
        wait_for(lambda: process.poll() is not None or ready(), timeout=60, what=f"{what} to start",
                 retry_on=(Exception,))
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        yield
    finally:
        stop_process(process)


def _http_ready(port: int) -> Callable[[], bool]:
    return lambda: urllib3.request("GET", f"http://127.0.0.1:{port}/healthz", timeout=2, retries=False).status == 200


def _gunicorn(app: str, port: int, env: dict, log: Path):
    return _process([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *GUNICORN_OPTIONS, app],
                    f"gunicorn {app}", _http_ready(port), env, log)


@contextlib.contextmanager
def _environ(values: dict) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# --- measuring --------------------------------------------------------------------

def _concurrently(call: Callable[[int], None], indexes: range) -> tuple[list[float], float]:
    """Run ``call(i)`` for every index on ``CLIENTS`` threads: (latencies in s, wall time)."""
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    failures: list[BaseException] = []

    def client(k: int) -> None:
        try:
            for i in indexes[k::CLIENTS]:
                started = time.perf_counter()
                call(i)
                latencies[k].append(time.perf_counter() - started)
        except BaseException as exc:  # surfaced below: a failed request must fail the benchmark
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return [s for per_client in latencies for s in per_client], time.perf_counter() - started


def _read_calls(api: urllib3.HTTPConnectionPool, floor: urllib3.HTTPConnectionPool, raw: redis.Redis,
                board_key: str, members: list[str]) -> dict[str, Callable[[int], None]]:
    def get(pool: urllib3.HTTPConnectionPool, path: str):
        response = pool.request("GET", path)
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {response.data[:200]!r}")
        return response.json()

    def my_rank_raw(i: int):
        pipe = raw.pipeline(transaction=False)
        pipe.zrevrank(board_key, members[i])
        pipe.zscore(board_key, members[i])
        rank, _score = pipe.execute()
        if rank is None:
            raise RuntimeError(f"{members[i]} is not on {board_key}")

    return {
        "top100_api": lambda i: get(api, "/api/v1/rankings?limit=100"),
        "top100_raw": lambda i: raw.zrevrange(board_key, 0, 99, withscores=True),
        "my_rank_api": lambda i: get(api, f"/api/v1/rankings/participants/{members[i]}"),
        "my_rank_raw": my_rank_raw,
        "http_floor": lambda i: get(floor, "/"),
    }


def _measure_reads(calls: dict[str, Callable[[int], None]]) -> dict[str, dict]:
    per_round = REQUESTS // ROUNDS
    samples: dict[str, list[float]] = {name: [] for name in calls}
    walls: dict[str, float] = {name: 0.0 for name in calls}
    for call in calls.values():
        _concurrently(call, range(WARMUP))
    for r in range(ROUNDS):
        for name, call in calls.items():
            first = WARMUP + r * per_round
            latencies, wall = _concurrently(call, range(first, first + per_round))
            samples[name] += latencies
            walls[name] += wall
    return {name: {**summary_ms(samples[name]), "per_s": round(len(samples[name]) / walls[name])}
            for name in calls}


def _record_payload(i: int, participants: int, now: datetime, rng: random.Random) -> dict:
    # Half of the orders add to a seeded participant (their score is read and rewritten),
    # half bring a new one; half name an organisation (eight more boards to update).
    existing = rng.random() < 0.5
    return {"v": 1, "order_id": f"bench-order-{i}-{uuid.uuid4().hex[:8]}",
            "participant_id": synthetic_participant_id(SCENE, rng.randrange(participants)) if existing
            else f"bench-guest-{i}", "display_name": f"Bench guest {i}",
            "organization": f"Bench organisation {rng.randrange(50)}" if rng.random() < 0.5 else None,
            "scene": SCENE, "quantity_kg": rng.randrange(1, 200), "occurred_at": now.isoformat(),
            "mask_name": rng.random() < 0.3}


def _measure_writes(raw: redis.Redis, board_key: str, members: list[str], participants: int) -> dict:
    from ranking import tasks  # imported here: its configuration is read from the environment set above
    rng = random.Random(7)
    now = datetime.now(timezone.utc)
    payloads = [_record_payload(i, participants, now, rng) for i in range(RECORDS)]
    started = time.perf_counter()
    for payload in payloads:
        outcome = tasks.record.run(payload)
        if outcome["boards"] != "applied":
            raise RuntimeError(f"record of {payload['order_id']} was {outcome}")
    record_s = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(ZINCRBYS):
        raw.zincrby(board_key, 1000, members[i % len(members)])
    zincrby_s = time.perf_counter() - started
    return {"records": RECORDS, "records_per_s": round(RECORDS / record_s),
            "zincrby": ZINCRBYS, "zincrby_per_s": round(ZINCRBYS / zincrby_s)}


def _check_top_matches_redis(api: urllib3.HTTPConnectionPool, raw: redis.Redis, board_key: str) -> None:
    """The API must answer what Redis holds (a fast wrong answer would be no result)."""
    items = api.request("GET", "/api/v1/rankings?limit=100").json()["items"]
    rows = raw.zrevrange(board_key, 0, 99, withscores=True)
    if [(i["participant_id"], i["kg"]) for i in items] != [(m.decode(), int(s) / 1000) for m, s in rows]:
        raise RuntimeError("the API's top 100 differs from ZREVRANGE")


# --- the benchmark ------------------------------------------------------------------

def run() -> list[Report]:
    participants = config.env_int("BENCH_RANKING_PARTICIPANTS", 1_000_000)
    workdir = Path(tempfile.mkdtemp(prefix="bench-ranking-"))
    api_port, floor_port = free_port(), free_port()
    try:
        with contextlib.ExitStack() as running:
            redis_url = running.enter_context(redis_server(workdir))
            env_values = {"RANKING_DATABASE_URL": migrated_sqlite_url("ranking", workdir),
                          "RANKING_REDIS_URL": redis_url, "REDIS_URL": redis_url,
                          "VAR_DIR": str(workdir / "var")}
            env = {**os.environ, **env_values}
            raw = redis.Redis.from_url(redis_url)
            running.callback(raw.close)

            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "flask", "--app", "ranking.app", "ranking", "seed-synthetic",
                            "--participants", str(participants), "--scene", SCENE],
                           cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
            seed_s = time.perf_counter() - started

            board_key = current_board(Kind.INDIVIDUAL, None, Period.ALL, datetime.now(timezone.utc),
                                      timezone.utc).key
            board_size = raw.zcard(board_key)
            rng = random.Random(1)
            members = [synthetic_participant_id(SCENE, rng.randrange(participants))
                       for _ in range(WARMUP + REQUESTS)]

            running.enter_context(_gunicorn("ranking.app:create_app()", api_port, env, workdir / "api.log"))
            running.enter_context(_gunicorn("bench.bench_ranking:http_floor_app", floor_port, env,
                                            workdir / "floor.log"))
            api = urllib3.HTTPConnectionPool("127.0.0.1", api_port, maxsize=CLIENTS, block=True, retries=False)
            floor = urllib3.HTTPConnectionPool("127.0.0.1", floor_port, maxsize=CLIENTS, block=True,
                                               retries=False)
            _check_top_matches_redis(api, raw, board_key)
            load_before = os.getloadavg()[0]
            reads = _measure_reads(_read_calls(api, floor, raw, board_key, members))
            load_after = os.getloadavg()[0]
            with _environ(env_values):
                writes = _measure_writes(raw, board_key, members, participants)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    reads_report = Report("ranking reads at %s participants" % f"{board_size:,}", figures={
        "board_members": board_size, "seed_s": round(seed_s, 1), "clients": CLIENTS,
        # other work on the machine shows up in every latency: say how busy it was
        "load_avg_1m_before_after": [round(load_before, 2), round(load_after, 2)],
        "gunicorn": " ".join(GUNICORN_OPTIONS), **reads})
    for read in ("top100", "my_rank"):
        for p in ("p50_ms", "p99_ms"):
            reads_report.ratios.append(Ratio(f"{read} {p[:3]} API/raw", reads[f"{read}_api"][p],
                                             reads[f"{read}_raw"][p], higher_is_better=False, goal=GOAL))
    reads_report.ratios.append(Ratio("HTTP floor p50 / my_rank raw p50", reads["http_floor"]["p50_ms"],
                                     reads["my_rank_raw"]["p50_ms"], higher_is_better=False))
    writes_report = Report("ranking.record throughput (single process)", figures=writes, ratios=[
        Ratio("ranking.record/s vs ZINCRBY/s", writes["records_per_s"], writes["zincrby_per_s"],
              higher_is_better=True)])
    return [reads_report, writes_report]
