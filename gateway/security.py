"""The request guard (one reading of the path, only the configured hosts), response
security headers, CORS for configured origins, and ProxyFix behind a proxy."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.sansio.utils import host_is_trusted

from diandian_common import config
from diandian_common.auth import API_KEY_HEADER
from diandian_common.errors import ApiError
from diandian_common.web import REQUEST_ID_HEADER

from .routes import is_api_path, path_problem

# Everything the pages need comes from the gateway itself (no CDN, no inline code).
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                           "frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}

HSTS_MAX_AGE_S = 365 * 24 * 3600

# The X-Forwarded-* headers ProxyFix can apply; a proxy is trusted for those listed in
# GATEWAY_TRUST_FORWARDED. The client's address and scheme are what every proxy sets;
# host, port and prefix change the links and redirects the gateway builds, so they are
# believed only when the deployer says their proxy sets them (and overwrites a client's).
FORWARDED_PARTS = ("for", "proto", "host", "port", "prefix")
DEFAULT_TRUSTED_FORWARDED = "for,proto"
# What a path prefix from X-Forwarded-Prefix may look like: plain path segments (none of
# them "." or ".."), so links built on it never become "//host/..." or "/\\host/...".
SCRIPT_ROOT = re.compile(r"(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*")
# Answered whatever the Host: monitoring reaches them by address, and they build no links.
HOST_UNCHECKED_PATHS = frozenset({"/healthz", "/metrics"})
# Below gunicorn's own limits (a 4094-byte request line, 8190 bytes per header field), whose
# refusals are HTML it writes itself: requests up to those limits get the JSON 414 or 431.
MAX_URL_BYTES = 3072
MAX_HEADER_BYTES = 16 * 1024

CORS_PATH_PREFIX = "/api/"
CORS_ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
CORS_ALLOWED_HEADERS = (f"Content-Type, Accept, Accept-Language, {API_KEY_HEADER}, Idempotency-Key, "
                        f"{REQUEST_ID_HEADER}")
CORS_EXPOSED_HEADERS = (f"{REQUEST_ID_HEADER}, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, "
                        "X-RateLimit-Reset, Content-Disposition")
CORS_MAX_AGE_S = 600


def raw_request_path(environ) -> str | None:
    """The path of the request target exactly as the client sent it (gunicorn's
    ``RAW_URI``, mod_wsgi's and Werkzeug's ``REQUEST_URI``), without the query; None when
    the server keeps no raw form. An absolute-form target (``http://host/path``) gives its path."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw is None:
        return None
    if not raw.startswith("/"):
        raw = urlsplit(raw).path if "://" in raw else raw
    return raw.split("?", 1)[0]


def check_path() -> None:
    """400 ``invalid_path`` for an API path that could be read two ways (routes.path_problem),
    checked on the raw target and on the decoded path: the limiter, the scope table and the
    forwarding then all see one path, and the service routes that same path."""
    raw = raw_request_path(request.environ)
    # PATH_INFO as Werkzeug decodes it for request.path, but with its leading slashes kept.
    decoded = (request.environ.get("PATH_INFO") or "").encode("latin-1", "replace").decode("utf-8", "replace")
    if not (is_api_path(decoded) or (raw is not None and is_api_path(raw))):
        return
    problem = (path_problem(raw, decoded=False) if raw is not None else None) \
        or path_problem(decoded, decoded=True)
    if problem:
        raise ApiError(400, "invalid_path", problem)


def allowed_hosts() -> tuple[str, ...]:
    """``GATEWAY_ALLOWED_HOSTS``: host names this gateway serves, comma-separated (a leading
    dot also allows subdomains, ports are ignored); empty: any valid host."""
    listed = (config.env("GATEWAY_ALLOWED_HOSTS", "") or "").split(",")
    return tuple(host.strip().lower() for host in listed if host.strip())


def check_host(allowed: tuple[str, ...]) -> None:
    """400 ``invalid_host`` for a Host (or trusted X-Forwarded-Host) that is not a host name
    (Werkzeug then reads it as empty), or, when hosts are configured, none of them."""
    if request.path in HOST_UNCHECKED_PATHS:
        return
    host = request.host
    if request.environ.get("HTTP_HOST") is not None and not host:
        raise ApiError(400, "invalid_host", "the Host header is not a valid host name")
    if allowed and not host_is_trusted(host.lower(), allowed):
        raise ApiError(400, "invalid_host", "this gateway does not serve the host named in the request")


def check_script_root() -> None:
    """400 for a path prefix (X-Forwarded-Prefix, when trusted) that is not plain path
    segments: every link and redirect starts with it."""
    if not SCRIPT_ROOT.fullmatch(request.script_root):
        raise ApiError(400, "invalid_forwarded_prefix", "the forwarded path prefix is not a plain path")


def size_limit(variable: str, default: int) -> int:
    value = config.env_int(variable, default)
    if value < 1:
        raise ValueError(f"{variable} must be a positive number of bytes")
    return value


def check_sizes(max_url: int, max_headers: int) -> None:
    """414 for a request target (path and query, as sent) over ``max_url`` bytes, 431 for
    header fields over ``max_headers`` bytes in all."""
    environ = request.environ
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or (
        environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", ""))
    if len(target) > max_url:  # WSGI strings are bytes as latin-1: one character, one byte
        raise ApiError(414, "uri_too_long", f"the URL is longer than {max_url} bytes")
    if sum(len(name) + len(value) + 4 for name, value in request.headers.items()) > max_headers:
        raise ApiError(431, "request_header_fields_too_large",
                       f"the request's header fields are larger than {max_headers} bytes in all")


def install_request_guard(app: Flask) -> None:
    """Checks that come before anything else reads the request (register it before CORS
    and the limiter: Flask runs before_request functions in order)."""
    allowed = allowed_hosts()
    max_url = size_limit("GATEWAY_MAX_URL_BYTES", MAX_URL_BYTES)
    max_headers = size_limit("GATEWAY_MAX_HEADER_BYTES", MAX_HEADER_BYTES)

    @app.before_request
    def _guard():
        check_sizes(max_url, max_headers)
        check_host(allowed)
        check_script_root()
        check_path()


def hsts_max_age() -> int:
    """``GATEWAY_HSTS_MAX_AGE`` seconds (0: no Strict-Transport-Security)."""
    max_age = config.env_int("GATEWAY_HSTS_MAX_AGE", HSTS_MAX_AGE_S)
    if max_age < 0:
        raise ValueError("GATEWAY_HSTS_MAX_AGE must be 0 (off) or a number of seconds")
    return max_age


def install_security_headers(app: Flask) -> None:
    max_age = hsts_max_age()
    # Only on https (the scheme after ProxyFix): browsers ignore it on http, and sending it
    # there would tell a local or venue deployment without TLS nothing true.
    hsts = f"max-age={max_age}; includeSubDomains" if max_age else None

    @app.after_request
    def _secure(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if hsts and request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", hsts)
        location = response.headers.get("Location")
        if location:
            response.headers["Location"] = same_site_location(location)
        return response


def same_site_location(location: str) -> str:
    """A relative redirect kept on this site: browsers read "//host/x" and "/\\host/x" (after
    dropping leading blanks, tabs and line breaks) as another site's address, so those
    become "/host/x". Absolute URLs (a scheme) are left alone: they were built on purpose."""
    # Browsers also drop tabs and line breaks anywhere in a URL.
    read = re.sub(r"[\t\n\r]", "", location.lstrip("".join(map(chr, range(0x21)))))
    if urlsplit(read).scheme:
        return location
    if read.startswith(("//", "/\\", "\\")):
        return "/" + read.lstrip("/\\")
    return location


def cors_origins() -> frozenset[str]:
    """``CORS_ORIGINS``: comma-separated origins (``https://a.example``) or ``*``; none by default."""
    listed = (config.env("CORS_ORIGINS", "") or "").split(",")
    return frozenset(origin.strip().rstrip("/") for origin in listed if origin.strip())


def install_cors(app: Flask, origins: frozenset[str]) -> None:
    """Cross-origin access to the API for ``origins``. No credentials: a page of another
    origin can call the API with an API key, never with a guest's cookie. Preflights are
    answered here (the services know nothing of CORS), also for origins not allowed,
    which then get no Access-Control-Allow-Origin and so no access."""

    def allowed_origin() -> str | None:
        origin = request.headers.get("Origin")
        if not origin or not request.path.startswith(CORS_PATH_PREFIX):
            return None
        if "*" in origins:
            return "*"
        return origin if origin in origins else None

    @app.before_request
    def _preflight():
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers \
                and request.path.startswith(CORS_PATH_PREFIX):
            response = Response(status=204)
            if allowed_origin():
                response.headers["Access-Control-Allow-Methods"] = CORS_ALLOWED_METHODS
                response.headers["Access-Control-Allow-Headers"] = CORS_ALLOWED_HEADERS
                response.headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE_S)
            return response
        return None

    @app.after_request
    def _cors(response: Response) -> Response:
        if request.path.startswith(CORS_PATH_PREFIX):
            response.vary.add("Origin")
        origin = allowed_origin()
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
        return response


def trusted_forwarded() -> frozenset[str]:
    """``GATEWAY_TRUST_FORWARDED``: which X-Forwarded-* headers the proxies set (some of
    for, proto, host, port, prefix), checked now so a typo stops the start."""
    listed = (config.env("GATEWAY_TRUST_FORWARDED", DEFAULT_TRUSTED_FORWARDED) or "").split(",")
    chosen = frozenset(part.strip().lower() for part in listed if part.strip())
    unknown = chosen - set(FORWARDED_PARTS)
    if unknown:
        raise ValueError(f"GATEWAY_TRUST_FORWARDED must list some of {', '.join(FORWARDED_PARTS)}; "
                         f"got {', '.join(sorted(unknown))}")
    return chosen


def install_proxy_fix(app: Flask) -> None:
    """Behind ``GATEWAY_PROXY_HOPS`` trusted proxies (``GATEWAY_BEHIND_PROXY=1``), take what
    ``GATEWAY_TRUST_FORWARDED`` lists (by default the client's address and scheme) from
    their X-Forwarded-* headers: rate limits then key on the guest's address, not the
    proxy's, and https is known as such. The others stay what this server saw."""
    trusted = trusted_forwarded()
    if not config.env_bool("GATEWAY_BEHIND_PROXY"):
        return
    hops = config.env_int("GATEWAY_PROXY_HOPS", 1)
    if hops < 1:
        raise ValueError("GATEWAY_PROXY_HOPS must be at least 1")
    app.wsgi_app = ProxyFix(app.wsgi_app, **{f"x_{part}": hops if part in trusted else 0
                                             for part in FORWARDED_PARTS})
