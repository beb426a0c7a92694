"""Shared by the Redis-backed ranking tests."""
from __future__ import annotations

from datetime import datetime, timedelta

import redis


def order(order_id: str, participant: str, kg, at: datetime, *, scene: str | None = "forum-2025",
          organization: str | None = None, name: str | None = None, mask: bool = False) -> dict:
    payload = {"v": 1, "order_id": order_id, "participant_id": participant,
               "display_name": name or f"Name of {participant}", "organization": organization,
               "scene": scene, "quantity_kg": kg, "occurred_at": at.isoformat()}
    if mask:
        payload["mask_name"] = True
    return payload


def minutes_before(now: datetime, minutes: float) -> datetime:
    return now - timedelta(minutes=minutes)


def dump(client: redis.Redis) -> dict:
    """Every ``rank:`` key with its type, full content and expiry time."""
    state = {}
    for key in sorted(client.scan_iter(match="rank:*")):
        kind = client.type(key).decode()
        if kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "hash":
            value = client.hgetall(key)
        else:
            value = client.get(key)
        state[key.decode()] = (kind, value, client.expiretime(key))
    return state


def board(client: redis.Redis, board_id: str) -> list[tuple[str, float]]:
    return [(m.decode(), s) for m, s in client.zrevrange(f"rank:board:{board_id}", 0, -1, withscores=True)]


def kg_on(client: redis.Redis, board_id: str) -> dict[str, float]:
    return {member: int(score) / 1000 for member, score in board(client, board_id)}
