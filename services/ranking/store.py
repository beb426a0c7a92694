"""Redis side of the boards: clients, the exactly-once Lua scripts, and the reads.

Every write to a board goes through one Lua script per order, which runs atomically:
it first claims the order in the ``rank:orders`` marker hash and only then changes the
boards, so a message delivered twice, or retried after a crash between the database
commit and Redis, changes the boards once. While ``rank:lock:rebuild`` exists the
scripts change nothing and answer BUSY; the caller retries later (see
:mod:`ranking.rebuild` for why that makes rebuilds exact).
"""
from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

from . import settings
from .domain.boards import LOCK_KEY, MARKERS_KEY, Board, Kind, name_versions_key, names_key

APPLIED, ALREADY, BUSY, NOTHING_TO_REVOKE = 1, 0, -1, 2
RECORDED, REVOKED = "r", "x"

MAINTENANCE_TIMEOUT_S = 60

_clients: dict[tuple[str, str], redis.Redis] = {}
_clients_lock = threading.Lock()


def _client(kind: str, url: str, factory) -> redis.Redis:
    with _clients_lock:
        client = _clients.get((kind, url))
        if client is None:
            client = _clients[(kind, url)] = factory()
        return client


def reader() -> redis.Redis:
    """Client of the API: an unavailable Redis must become a prompt 503, not a hanging
    request. Short timeouts; one immediate retry only for a broken connection (a pooled
    connection after a Redis restart), never for a timeout; no client-info handshake,
    which would be one more round trip to wait for."""
    url, timeout = settings.redis_url(), settings.read_timeout()
    return _client(f"read:{timeout}", url, lambda: redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        driver_info=None, health_check_interval=30))


def writer() -> redis.Redis:
    """Client of tasks and maintenance commands (large pipelines, patient timeouts)."""
    url = settings.redis_url()
    return _client("write", url, lambda: redis.Redis.from_url(
        url, socket_timeout=MAINTENANCE_TIMEOUT_S, socket_connect_timeout=5, health_check_interval=30))


# Shared by the write scripts: the Lua twin of ranking.domain.scores (see its docstring).
# Numbers reach Redis as strings formatted by us: Lua's own number-to-string conversion
# keeps only 14 significant digits.
_SCORE_LUA = """
local TICK_SPAN = 4294967296
local MAX_TOTAL = 9007199254740991
local function decode(score)
  local grams = math.floor(score)
  return grams, (score - grams) * TICK_SPAN
end
local function encode(grams, earliness)
  local _, bits = math.frexp(grams)
  local cleared = bits - 21
  if cleared > 0 then
    local unit = 2 ^ cleared
    earliness = math.floor(earliness / unit) * unit
  end
  return string.format('%.17g', grams + earliness / TICK_SPAN)
end
"""

# Names: each member keeps the name of its latest contribution (highest id, revoked or
# not), whatever order the scripts run in. Needs `names_from` (first KEYS index of the
# m × (names, name versions) pairs) and `args_from` (first ARGV index of m × (member,
# name, version)).
_NAMES_LUA = """
local function set_names(m, names_from, args_from)
  for j = 0, m - 1 do
    local names, versions = KEYS[names_from + 2 * j], KEYS[names_from + 1 + 2 * j]
    local member, name, version = ARGV[args_from + 3 * j], ARGV[args_from + 1 + 3 * j], ARGV[args_from + 2 + 3 * j]
    local current = redis.call('HGET', versions, member)
    if not current or tonumber(current) <= tonumber(version) then
      redis.call('HSET', names, member, name)
      redis.call('HSET', versions, member, version)
    end
  end
end
"""

# KEYS: markers, lock, n × (board, total), m × (names, name versions)
# ARGV: order id, grams, earliness, n, m, n × (member, expire-at or 0), m × (member, name, version)
_RECORD_LUA = _SCORE_LUA + _NAMES_LUA + """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local grams, earliness = tonumber(ARGV[2]), tonumber(ARGV[3])
local n, m = tonumber(ARGV[4]), tonumber(ARGV[5])
local scores = {}
for i = 0, n - 1 do
  local total, reached = grams, earliness
  local old = redis.call('ZSCORE', KEYS[3 + 2 * i], ARGV[6 + 2 * i])
  if old then
    local old_grams, old_earliness = decode(tonumber(old))
    total = old_grams + grams
    reached = math.min(old_earliness, earliness)
  end
  if total > MAX_TOTAL then return redis.error_reply('board total exceeds 2^53 grams') end
  scores[i] = encode(total, reached)
end
redis.call('HSET', KEYS[1], ARGV[1], 'r')
for i = 0, n - 1 do
  local board, total_key = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local expire_at = ARGV[7 + 2 * i]
  redis.call('ZADD', board, scores[i], ARGV[6 + 2 * i])
  redis.call('INCRBY', total_key, ARGV[2])
  if expire_at ~= '0' then
    redis.call('EXPIREAT', board, expire_at)
    redis.call('EXPIREAT', total_key, expire_at)
  end
end
set_names(m, 3 + 2 * n, 6 + 2 * n)
return 1
"""

# KEYS: lock, m × (names, name versions); ARGV: m, m × (member, name, version)
_SET_NAMES_LUA = _NAMES_LUA + """
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
set_names(tonumber(ARGV[1]), 2, 2)
return 1
"""

# KEYS: markers, lock, n × (board, total)
# ARGV: order id, grams, n, n × (member, earliness of the member's latest remaining
#       contribution on that board, or '-' when none remains)
_REVOKE_LUA = _SCORE_LUA + """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local state = redis.call('HGET', KEYS[1], ARGV[1])
if state == 'x' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], 'x')
if not state then return 2 end
local grams = tonumber(ARGV[2])
for i = 0, tonumber(ARGV[3]) - 1 do
  local board, total_key = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local member, remaining = ARGV[4 + 2 * i], ARGV[5 + 2 * i]
  local old = redis.call('ZSCORE', board, member)
  if old then
    local left = decode(tonumber(old)) - grams
    if left <= 0 or remaining == '-' then
      redis.call('ZREM', board, member)
    else
      redis.call('ZADD', board, encode(left, tonumber(remaining)), member)
    end
    if redis.call('DECRBY', total_key, ARGV[2]) <= 0 then redis.call('DEL', total_key) end
  end
end
return 1
"""

# The reads answer with one JSON document built by Lua's cjson: a single bulk string
# is far cheaper for the API to receive than hundreds of RESP elements (the top 100
# would be 300). Grams travel as strings (cjson prints numbers with 14 digits only) and
# are taken from the exact scores here, where they are still doubles.
_ENTRIES_LUA = """
local function entries(rows, names)
  local out = {}
  for i = 1, #rows, 2 do
    out[#out + 1] = {rows[i], string.format('%.0f', math.floor(tonumber(rows[i + 1]))), names[(i + 1) / 2]}
  end
  return out
end
"""

# KEYS: board, names; ARGV: limit → {total, entries}
_TOP_LUA = _ENTRIES_LUA + """
local rows = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local members = {}
for i = 1, #rows, 2 do members[#members + 1] = rows[i] end
local names = {}
if #members > 0 then names = redis.call('HMGET', KEYS[2], unpack(members)) end
return cjson.encode({redis.call('ZCARD', KEYS[1]), entries(rows, names)})
"""

# KEYS: board, names; ARGV: member, neighbours on each side → {total, rank, first, entries} or nil
_STANDING_LUA = _ENTRIES_LUA + """
local rank = redis.call('ZREVRANK', KEYS[1], ARGV[1])
if not rank then return false end
local first = math.max(0, rank - tonumber(ARGV[2]))
local rows = redis.call('ZREVRANGE', KEYS[1], first, rank + tonumber(ARGV[2]), 'WITHSCORES')
local members = {}
for i = 1, #rows, 2 do members[#members + 1] = rows[i] end
local names = redis.call('HMGET', KEYS[2], unpack(members))
return cjson.encode({redis.call('ZCARD', KEYS[1]), rank, first, entries(rows, names)})
"""

# KEYS: lock; ARGV: token, milliseconds
_EXTEND_LOCK_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
_RELEASE_LOCK_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_scripts: dict[str, Script] = {}


def _run(client: redis.Redis, source: str, keys: list, args: list):
    """EVALSHA ``source`` on ``client`` (loading it on NOSCRIPT)."""
    script = _scripts.get(source)
    if script is None:
        script = _scripts[source] = client.register_script(source)
    return script(keys=keys, args=args, client=client)


def _expire_arg(expires_at: datetime | None) -> str:
    return "0" if expires_at is None else str(int(expires_at.timestamp()))


def record(client: redis.Redis, order_id: str, grams: int, earliness: int,
           memberships: list[tuple[Board, str]], names: list[tuple[Kind, str, str, int]]) -> int:
    """Add ``grams`` to ``member`` on every board of ``memberships``, once per order.

    ``names``: (kind, member, display name, version) to store when ``version`` (the
    contribution id) is not older than the stored one. Returns APPLIED, ALREADY or BUSY.
    """
    grace = settings.period_grace()
    keys, args = [MARKERS_KEY, LOCK_KEY], [order_id, str(grams), str(earliness), str(len(memberships)),
                                           str(len(names))]
    for board, member in memberships:
        keys += [board.key, board.total_key]
        args += [member, _expire_arg(board.expires_at(grace))]
    for kind, member, display_name, version in names:
        keys += [names_key(kind), name_versions_key(kind)]
        args += [member, display_name, str(version)]
    return int(_run(client, _RECORD_LUA, keys=keys, args=args))


def set_names(client: redis.Redis, names: list[tuple[Kind, str, str, int]]) -> int:
    """Store names as :func:`record` does, without touching any board. APPLIED or BUSY."""
    keys, args = [LOCK_KEY], [str(len(names))]
    for kind, member, display_name, version in names:
        keys += [names_key(kind), name_versions_key(kind)]
        args += [member, display_name, str(version)]
    return int(_run(client, _SET_NAMES_LUA, keys=keys, args=args))


def revoke(client: redis.Redis, order_id: str, grams: int,
           memberships: list[tuple[Board, str, int | None]]) -> int:
    """Take an order's ``grams`` off every board once. ``memberships``: (board, member,
    earliness of the member's latest remaining contribution there, or None).
    Returns APPLIED, ALREADY, BUSY or NOTHING_TO_REVOKE (the order was never counted)."""
    keys, args = [MARKERS_KEY, LOCK_KEY], [order_id, str(grams), str(len(memberships))]
    for board, member, remaining in memberships:
        keys += [board.key, board.total_key]
        args += [member, "-" if remaining is None else str(remaining)]
    return int(_run(client, _REVOKE_LUA, keys=keys, args=args))


@dataclass(frozen=True)
class Entry:
    rank: int       # 1-based
    member: str
    display_name: str
    grams: int


def _decoded(reply: bytes):
    # Members and names are validated text, but a stray byte in Redis must not become a 500.
    return json.loads(reply.decode("utf-8", "replace"))


def _entries(items: list, first_rank: int) -> list[Entry]:
    # an empty Lua table comes back as {} (cjson cannot tell it from an empty array)
    return [Entry(first_rank + i, member, name or member, int(grams))
            for i, (member, grams, name) in enumerate(items or [])]


def top(client: redis.Redis, board: Board, limit: int) -> tuple[int, list[Entry]]:
    """(members on the board, the first ``limit`` entries)."""
    total, items = _decoded(_run(client, _TOP_LUA, keys=[board.key, names_key(board.kind)], args=[limit]))
    return int(total), _entries(items, 1)


@dataclass(frozen=True)
class Standing:
    total: int
    entry: Entry
    neighbours: list[Entry]


def standing(client: redis.Redis, board: Board, member: str, around: int = 2) -> Standing | None:
    """``member``'s entry with up to ``around`` neighbours on each side; None when absent."""
    reply = _run(client, _STANDING_LUA, keys=[board.key, names_key(board.kind)], args=[member, around])
    if not reply:
        return None
    total, rank, first, items = _decoded(reply)
    entries = _entries(items, int(first) + 1)
    own = next(e for e in entries if e.rank == int(rank) + 1)
    return Standing(int(total), own, [e for e in entries if e is not own])


# --- the rebuild lock -------------------------------------------------------------

LOCK_TTL_MS = 10 * 60 * 1000


class LockHeld(RuntimeError):
    """Another rebuild (or seeding) holds ``rank:lock:rebuild``."""


class Lock:
    """``rank:lock:rebuild`` held by us; expires by itself if we die."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self.token = uuid.uuid4().hex

    def acquire(self) -> "Lock":
        if not self.client.set(LOCK_KEY, self.token, nx=True, px=LOCK_TTL_MS):
            raise LockHeld("a rebuild is already running (rank:lock:rebuild is held)")
        return self

    def extend(self) -> None:
        if not _run(self.client, _EXTEND_LOCK_LUA, keys=[LOCK_KEY], args=[self.token, LOCK_TTL_MS]):
            raise LockHeld("lost rank:lock:rebuild while holding it")

    def release(self) -> None:
        _run(self.client, _RELEASE_LOCK_LUA, keys=[LOCK_KEY], args=[self.token])

    def __enter__(self) -> "Lock":
        return self.acquire()

    def __exit__(self, *_exc) -> None:
        self.release()
