"""The public API's routing tables (docs/contract.md §2, §5): which service owns a path, which operator
scope a route needs, which routes count as order writes for rate limiting, and which
render documents and may take longer, and what an API path may look like at all."""
from __future__ import annotations

import re
import unicodedata

API_PREFIX = "/api/v1/"

# First path segment after /api/v1/ → owning service.
OWNERS = {
    "scenes": "calculator",
    "estimates": "calculator",
    "factors": "calculator",
    "airports": "calculator",  # the airport search (issue 21): public, GET only at the service
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
        (READS, r"/api/v1/scenes/[^/]+/report", "scenes"),   # the event report (gateway/event_report.py)
        # An organiser's venue energy, catering and waste are theirs to publish (in the report), not public.
        (READS, r"/api/v1/scenes/[^/]+/organiser-inputs", "scenes"),
        (WRITES, r"/api/v1/projects(/.*)?", "projects"),
        (READS, r"/api/v1/orders", "projects"),              # the list; one order by id is public
        (ALL_METHODS, r"/api/v1/settlements(/.*)?", "projects"),
        (ALL_METHODS, r"/api/v1/webhooks(/.*)?", "projects"),
        (frozenset({"POST"}), r"/api/v1/certificates/[^/]+/revoke", "admin"),
    ))

# Guests placing and paying orders: the strictly limited writes.
ORDER_WRITES = (re.compile(r"/api/v1/orders"), re.compile(r"/api/v1/orders/[^/]+/(payment|checkout)"))
# A payment provider's signed confirmations: many guests' payments from a few addresses.
PROVIDER_WEBHOOKS = re.compile(r"/api/v1/payments/[^/]+/webhook")
# Routes that render a PDF on demand get the longer read timeout.
RENDERING = (re.compile(r"/api/v1/certificates/[^/]+/pdf"), re.compile(r"/api/v1/scenes/[^/]+/poster\.pdf"))


# Percent-encodings that would let one path be read two ways: as the gateway classifies it
# (decoded once) and as the service routes it after the gateway re-quotes it and urllib3
# removes dot segments. "%2e" is a dot, "%2f"/"%5c" slashes, "%3f"/"%23" the query and
# fragment delimiters, "%25" a percent sign (a second decoding), and %00-%1f/%7f controls.
_ENCODED_DELIMITER = re.compile(r"%(2e|2f|5c|3f|23|25|[01][0-9a-f]|7f)", re.IGNORECASE)
_PERCENT_ESCAPE = re.compile(r"%(?![0-9a-f]{2})", re.IGNORECASE)


def is_api_path(path: str) -> bool:
    """Whether ``path`` (raw or decoded) is under /api, however many slashes lead it."""
    bare = path.lstrip("/")
    return bare == "api" or bare.startswith("api/")


def path_problem(path: str, *, decoded: bool) -> str | None:
    """Why an API path is refused, or None. ``path`` is the raw request target's path
    (``decoded=False``: still percent-encoded) or the path after decoding. Refused: dot
    segments, empty segments, backslashes, control characters, encoded delimiters (raw)
    and any percent sign left after decoding (it was encoded twice). What passes means the
    same thing decoded once or re-quoted and decoded again, so the path the gateway
    classifies is the path the service routes."""
    if any(unicodedata.category(c) == "Cc" for c in path):
        return "the path must not contain control characters"
    if "\\" in path:
        return "the path must not contain backslashes"
    if "//" in path:
        return "the path must not contain empty segments ('//')"
    if any(segment in (".", "..") for segment in path.split("/")):
        return "the path must not contain '.' or '..' segments"
    if decoded:
        if "%" in path:
            return "the path must not be percent-encoded twice"
        if "?" in path or "#" in path:
            return "the path must not contain an encoded '?' or '#'"
        return None
    if "#" in path:
        return "the path must not contain '#'"
    if _PERCENT_ESCAPE.search(path):
        return "the path has a '%' that starts no percent-encoding"
    if _ENCODED_DELIMITER.search(path):
        return "the path must not percent-encode '.', '/', '\\', '?', '#', '%' or control characters"
    return None


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
