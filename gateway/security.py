"""The request guard (one reading of the path), response security headers, CORS for
configured origins, and ProxyFix behind a proxy."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

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


def install_request_guard(app: Flask) -> None:
    """Checks that come before anything else reads the request (register it before CORS
    and the limiter: Flask runs before_request functions in order)."""

    @app.before_request
    def _guard():
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
        return response


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


def install_proxy_fix(app: Flask) -> None:
    """Behind ``GATEWAY_PROXY_HOPS`` trusted proxies (``GATEWAY_BEHIND_PROXY=1``), take the
    client's address, scheme, host and prefix from their X-Forwarded-* headers: rate
    limits then key on the guest's address, not the proxy's, and links use https."""
    if not config.env_bool("GATEWAY_BEHIND_PROXY"):
        return
    hops = config.env_int("GATEWAY_PROXY_HOPS", 1)
    if hops < 1:
        raise ValueError("GATEWAY_PROXY_HOPS must be at least 1")
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops)
