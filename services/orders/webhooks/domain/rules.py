"""Outbound webhooks: events, the payload and its signature, retries, and which addresses
may be called.

Receivers verify ``Diandian-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
"<t>.<raw body>")>`` (the scheme of :mod:`signatures`, which incoming provider calls use
too) and de-duplicate by the event id in the body.
"""
from __future__ import annotations

import ipaddress
import json
import random
from dataclasses import dataclass
from urllib.parse import urlsplit

from ...payments.domain import signatures

ORDER_PAID = "order.paid"
ORDER_COMPLETED = "order.completed"
CERTIFICATE_ISSUED = "certificate.issued"
CERTIFICATE_REVOKED = "certificate.revoked"
PROJECT_LOW_INVENTORY = "project.low_inventory"
EVENT_TYPES = (ORDER_PAID, ORDER_COMPLETED, CERTIFICATE_ISSUED, CERTIFICATE_REVOKED, PROJECT_LOW_INVENTORY)

SIGNATURE_HEADER = "Diandian-Signature"
MAX_URL_LENGTH = 500

# Delays before the 1st, 2nd, … retry: exponential (×6) from 10 s. Attempts at 0 s,
# ~10 s and ~70 s (the first three within two minutes), the seventh and last ~26 h after
# the first.
DEFAULT_RETRY_SCHEDULE = (10.0, 60.0, 360.0, 2160.0, 12960.0, 77760.0)
DEFAULT_JITTER = 0.1  # each delay is drawn from ±10 % of its nominal value

# IPv6 forms that carry an IPv4 address a packet may end up at (NAT64 well-known prefix).
NAT64 = ipaddress.ip_network("64:ff9b::/96")


# --- the payload ----------------------------------------------------------------------

def body(event_id: str, event_type: str, created_at: str, data: dict) -> bytes:
    """The exact bytes POSTed (and signed): the same for every attempt of an event."""
    payload = {"id": event_id, "type": event_type, "created_at": created_at, "data": data}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signature_header(secret: str, timestamp: int, raw_body: bytes) -> str:
    return signatures.header_value(secret, timestamp, raw_body)


def subscribed(events: list[str], scene: str | None, event_type: str, event_scene: str | None) -> bool:
    """An endpoint of a scene hears only that scene's events; one without hears all."""
    return event_type in events and (scene is None or scene == event_scene)


# --- retries --------------------------------------------------------------------------

def parse_schedule(text: str | None) -> tuple[float, ...]:
    """``"10,60,360"`` → delays in seconds before each retry; empty → the default."""
    if text is None or not text.strip():
        return DEFAULT_RETRY_SCHEDULE
    try:
        delays = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"a retry schedule is comma-separated seconds, not {text!r}") from None
    if not delays or any(not 0 < d < 7 * 86400 for d in delays):
        raise ValueError(f"retry delays must be between 0 and 7 days: {text!r}")
    return delays


def retry_delay(failures: int, schedule: tuple[float, ...], jitter: float = DEFAULT_JITTER,
                rng: random.Random | None = None) -> float | None:
    """Seconds to wait after the ``failures``-th failed attempt in a row, or None when
    that was the last attempt. Jitter spreads out retries of many deliveries that
    failed together (a receiver coming back up is not hit by all of them at once)."""
    if failures < 1:
        raise ValueError("retry_delay is for a failed attempt")
    if failures > len(schedule):
        return None
    spread = (rng or random).uniform(-jitter, jitter)
    return schedule[failures - 1] * (1 + spread)


def max_attempts(schedule: tuple[float, ...]) -> int:
    return len(schedule) + 1


# --- safe targets ---------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    scheme: str
    host: str          # a name or an IP address, without brackets
    port: int
    path: str          # path and query, what goes on the request line
    host_header: str


class UnsafeTarget(ValueError):
    """An endpoint the platform will not call; the message says why."""


def parse_target(url: str, allow_http: bool) -> Target:
    """The parts of an endpoint URL, or :class:`UnsafeTarget`."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise UnsafeTarget(f"a URL of 1 to {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise UnsafeTarget("a URL cannot contain white space or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeTarget("the URL must be https://…")
    if scheme == "http" and not allow_http:
        raise UnsafeTarget("only https:// endpoints are allowed (WEBHOOK_ALLOW_HTTP is off)")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("credentials in the URL are not allowed; authenticate by the signature")
    if parts.fragment:
        raise UnsafeTarget("a URL fragment is never sent; remove it")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeTarget("the URL has no host")
    port = port or (443 if scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == (443 if scheme == "https" else 80) else f"{shown}:{port}"
    return Target(scheme, host, port, path, host_header)


def parse_networks(text: str | None) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``WEBHOOK_ALLOWED_NETWORKS``: comma-separated CIDRs (``127.0.0.0/8,10.1.0.0/16``)."""
    networks = []
    for part in (text or "").split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ValueError(f"WEBHOOK_ALLOWED_NETWORKS: {part.strip()!r} is not a CIDR") from None
    return tuple(networks)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a 6to4, Teredo or NAT64 address delivers to."""
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _classify(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified:
        return "unspecified"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "not a public address"
    return None


def refusal(ip: str, allowed_networks=()) -> str | None:
    """Why ``ip`` may not be called (``"loopback"``, ``"private"``, …), or None.

    Addresses inside ``allowed_networks`` are called whatever they are (a test's
    127.0.0.1, a partner on the private network). An IPv4-mapped IPv6 address is the
    IPv4 address; one that delivers to an IPv4 address (6to4, Teredo, NAT64) must pass
    as both."""
    address = ipaddress.ip_address(ip.split("%", 1)[0])  # without an IPv6 zone id
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    candidates = [address]
    if address.version == 6 and (embedded := _embedded_ipv4(address)) is not None:
        candidates.append(embedded)
    if any(c.version == n.version and c in n for c in candidates for n in allowed_networks):
        return None
    for candidate in candidates:
        reason = _classify(candidate)
        if reason:
            return reason if candidate is address else f"{reason} (as {candidate})"
    return None
