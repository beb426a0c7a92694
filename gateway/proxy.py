"""Forwarding to the services through pooled HTTP connections.

Reads (GET/HEAD) are retried once on a connection failure; writes never are, since the
service may have acted before the connection broke (clients retry writes with their
``Idempotency-Key``). A service that does not answer gives 503 naming it, one that is
too slow 504; the other services keep working. Routes that render a PDF get the longer
``GATEWAY_RENDER_TIMEOUT``.

The client's ``X-API-Key`` never travels further: an authenticated operator is passed on
as a signed operator assertion (diandian_common.auth), and an assertion a client sent
itself is dropped. Likewise the guest: their signed cookie becomes a participant
assertion, and one a client sent is dropped.

Forwarding uses urllib3's connection pools directly: it passes bytes through and needs
none of what ``requests`` adds per call (environment proxy lookup, hooks, cookies, URL
re-parsing), which was the largest part of the gateway's own CPU (`make bench
BENCH=gateway`). The gateway's own calls to the services' APIs (health, pages, the OpenAPI
document) keep the ``requests`` session.
"""
from __future__ import annotations

import logging

import requests
import urllib3
from flask import Response, g, request
from requests.adapters import HTTPAdapter
from requests.utils import requote_uri
from urllib3.exceptions import HTTPError, MaxRetryError, ReadTimeoutError
from urllib3.util.retry import Retry

from diandian_common import config
from diandian_common.auth import (API_KEY_HEADER, OPERATOR_ASSERTION_HEADER, PARTICIPANT_ASSERTION_HEADER, Guest,
                                  Operator, sign_operator_assertion, sign_participant_assertion)
from diandian_common.errors import ApiError
from diandian_common.web import REQUEST_ID_HEADER

from .routes import renders_document

log = logging.getLogger(__name__)

# Hop-by-hop headers (RFC 9110 §7.6.1) and those the HTTP stack recomputes.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length",
              "content-encoding"}
# Credentials meant for the gateway alone.
NOT_FORWARDED = HOP_BY_HOP | {API_KEY_HEADER.lower(), OPERATOR_ASSERTION_HEADER.lower(),
                              PARTICIPANT_ASSERTION_HEADER.lower()}


class Upstreams:
    """Pooled connections to every service; base URLs from ``{SERVICE}_URL``."""

    def __init__(self):
        self.base_urls = {s: config.service_url(s) for s in config.SERVICES}
        self.connect_timeout = config.env_float("GATEWAY_CONNECT_TIMEOUT", 2.0)
        self.read_timeout = config.env_float("GATEWAY_READ_TIMEOUT", 15.0)
        self.render_timeout = config.env_float("GATEWAY_RENDER_TIMEOUT", 60.0)
        self.session = requests.Session()
        # read=False: a read timeout is raised as itself (→ 504), never retried, and not
        # wrapped as a connection error (which would read as "down", 503).
        retry_reads = Retry(total=1, connect=1, read=False, status=0, backoff_factor=0.1,
                            allowed_methods={"GET", "HEAD"}, raise_on_status=False)
        pool = config.env_int("GATEWAY_POOL_SIZE", 32)
        adapter = HTTPAdapter(pool_connections=len(self.base_urls), pool_maxsize=pool,
                              max_retries=retry_reads)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.pools = urllib3.PoolManager(num_pools=len(self.base_urls), maxsize=pool, retries=retry_reads)

    def timeout_for(self, path: str) -> tuple[float, float]:
        """(connect, read) timeouts of a request to ``path``."""
        return self.connect_timeout, (self.render_timeout if renders_document(path) else self.read_timeout)

    def forward(self, service: str, operator: Operator | None = None, guest: Guest | None = None) -> Response:
        url = self.base_urls[service] + requote_uri(request.full_path.rstrip("?"))
        # Case-insensitive: the X-Request-ID set below replaces a client's "X-Request-Id".
        headers = urllib3.HTTPHeaderDict(
            {k: v for k, v in request.headers.items() if k.lower() not in NOT_FORWARDED})
        if operator is not None:
            headers[OPERATOR_ASSERTION_HEADER] = sign_operator_assertion(
                operator, request.method, request.path)
        if guest is not None:
            headers[PARTICIPANT_ASSERTION_HEADER] = sign_participant_assertion(guest, request.method, request.path)
        headers[REQUEST_ID_HEADER] = g.request_id
        headers["X-Forwarded-For"] = request.remote_addr or ""
        headers["X-Forwarded-Proto"] = request.scheme
        headers["X-Forwarded-Host"] = request.host
        connect, read = self.timeout_for(request.path)
        try:
            upstream = self.pools.request(
                request.method, url, body=request.get_data() or None, headers=headers,
                timeout=urllib3.Timeout(connect=connect, read=read), redirect=False)
        except ReadTimeoutError as exc:  # connected, no answer in time (never retried)
            log.warning("%s timed out: %s", service, exc)
            raise ApiError(504, "gateway_timeout", f"the {service} service did not answer in time") from exc
        except (MaxRetryError, HTTPError, OSError) as exc:  # down or unreachable: not slow
            log.warning("%s unavailable: %s", service, exc)
            raise ApiError(503, "service_unavailable", f"the {service} service is unavailable") from exc
        return Response(upstream.data, status=upstream.status,
                        headers=[(key, value) for key, value in upstream.headers.items()
                                 if key.lower() not in HOP_BY_HOP])
