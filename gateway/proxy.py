"""Forwarding to the services through pooled HTTP connections.

Reads (GET/HEAD) are retried once on a connection failure; writes never are, since the
service may have acted before the connection broke (clients retry writes with their
``Idempotency-Key``). A service that does not answer gives 503 naming it, one that is
too slow 504; the other services keep working.
"""
from __future__ import annotations

import logging

import requests
from flask import Response, g, request
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from diandian_common import config
from diandian_common.errors import ApiError
from diandian_common.web import REQUEST_ID_HEADER

log = logging.getLogger(__name__)

# Hop-by-hop headers (RFC 9110 §7.6.1) and those the HTTP stack recomputes.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length",
              "content-encoding"}


class Upstreams:
    """One pooled session for all services; base URLs from ``{SERVICE}_URL``."""

    def __init__(self):
        self.base_urls = {s: config.service_url(s) for s in config.SERVICES}
        self.connect_timeout = config.env_float("GATEWAY_CONNECT_TIMEOUT", 2.0)
        self.read_timeout = config.env_float("GATEWAY_READ_TIMEOUT", 15.0)
        self.session = requests.Session()
        retry_reads = Retry(total=1, connect=1, read=0, status=0, backoff_factor=0.1,
                            allowed_methods={"GET", "HEAD"}, raise_on_status=False)
        pool = config.env_int("GATEWAY_POOL_SIZE", 32)
        adapter = HTTPAdapter(pool_connections=len(self.base_urls), pool_maxsize=pool, max_retries=retry_reads)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def forward(self, service: str) -> Response:
        url = self.base_urls[service] + request.full_path.rstrip("?")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers[REQUEST_ID_HEADER] = g.request_id
        headers["X-Forwarded-For"] = request.remote_addr or ""
        headers["X-Forwarded-Proto"] = request.scheme
        headers["X-Forwarded-Host"] = request.host
        try:
            upstream = self.session.request(
                request.method, url, headers=headers, data=request.get_data(),
                timeout=(self.connect_timeout, self.read_timeout), allow_redirects=False, stream=False)
        except requests.Timeout as exc:
            log.warning("%s timed out: %s", service, exc)
            raise ApiError(504, "gateway_timeout", f"the {service} service did not answer in time",
                           fields=None) from exc
        except requests.RequestException as exc:
            log.warning("%s unavailable: %s", service, exc)
            raise ApiError(503, "service_unavailable", f"the {service} service is unavailable") from exc
        response = Response(upstream.content, status=upstream.status_code)
        for key, value in upstream.headers.items():
            if key.lower() not in HOP_BY_HOP:
                response.headers[key] = value
        return response
