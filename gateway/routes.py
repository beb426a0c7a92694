"""Which service owns which public path (SPEC §4)."""
from __future__ import annotations

API_PREFIX = "/api/v1/"

# First path segment after /api/v1/ → owning service.
OWNERS = {
    "scenes": "calculator",
    "estimates": "calculator",
    "factors": "calculator",
    "projects": "orders",
    "orders": "orders",
    "ledger": "orders",
    "payments": "orders",
    "settlements": "orders",
    "webhooks": "orders",
    "certificates": "certificates",
    "rankings": "ranking",
}


def owner_of(path: str) -> str | None:
    """The service owning an ``/api/v1/...`` path, or None."""
    if not path.startswith(API_PREFIX):
        return None
    segment = path[len(API_PREFIX):].split("/", 1)[0]
    return OWNERS.get(segment)
