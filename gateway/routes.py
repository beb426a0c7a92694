"""The public API's routing tables (docs/contract.md §2, §5): which service owns a path, which operator
scope a route needs, which routes count as order writes for rate limiting, and which
render documents and may take longer."""
from __future__ import annotations

import re

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

READS = frozenset({"GET", "HEAD"})
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ALL_METHODS = READS | WRITES

# (methods, path pattern, scope). The first match decides; a route matching none is
# public. Patterns match the whole path; a segment stands for any single id or slug.
OPERATOR_ROUTES: tuple[tuple[frozenset[str], re.Pattern, str], ...] = tuple(
    (methods, re.compile(pattern), scope) for methods, pattern, scope in (
        (WRITES, r"/api/v1/scenes(/.*)?", "scenes"),
        (WRITES, r"/api/v1/projects(/.*)?", "projects"),
        (READS, r"/api/v1/orders", "projects"),              # the list; one order by id is public
        (ALL_METHODS, r"/api/v1/settlements(/.*)?", "projects"),
        (ALL_METHODS, r"/api/v1/webhooks(/.*)?", "projects"),
        (frozenset({"POST"}), r"/api/v1/certificates/[^/]+/revoke", "admin"),
    ))

# Guests placing and paying orders: the strictly limited writes.
ORDER_WRITES = (re.compile(r"/api/v1/orders"), re.compile(r"/api/v1/orders/[^/]+/payment"))
# A payment provider's signed confirmations: many guests' payments from a few addresses.
PROVIDER_WEBHOOKS = re.compile(r"/api/v1/payments/[^/]+/webhook")
# Routes that render a PDF on demand get the longer read timeout.
RENDERING = (re.compile(r"/api/v1/certificates/[^/]+/pdf"), re.compile(r"/api/v1/scenes/[^/]+/poster\.pdf"))


def owner_of(path: str) -> str | None:
    """The service owning an ``/api/v1/...`` path, or None."""
    if not path.startswith(API_PREFIX):
        return None
    segment = path[len(API_PREFIX):].split("/", 1)[0]
    return OWNERS.get(segment)


def required_scope(method: str, path: str) -> str | None:
    """The operator scope ``method path`` needs, or None for a public route."""
    for methods, pattern, scope in OPERATOR_ROUTES:
        if method in methods and pattern.fullmatch(path):
            return scope
    return None


def is_order_write(method: str, path: str) -> bool:
    return method == "POST" and any(p.fullmatch(path) for p in ORDER_WRITES)


def is_provider_webhook(method: str, path: str) -> bool:
    return method == "POST" and PROVIDER_WEBHOOKS.fullmatch(path) is not None


def renders_document(path: str) -> bool:
    return any(p.fullmatch(path) for p in RENDERING)
