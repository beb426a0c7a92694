"""Response security headers, CORS for configured origins, and ProxyFix behind a proxy."""
from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

from diandian_common import config
from diandian_common.auth import API_KEY_HEADER
from diandian_common.web import REQUEST_ID_HEADER

# Everything the pages need comes from the gateway itself (no CDN, no inline code).
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                           "frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}

CORS_PATH_PREFIX = "/api/"
CORS_ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
CORS_ALLOWED_HEADERS = (f"Content-Type, Accept, Accept-Language, {API_KEY_HEADER}, Idempotency-Key, "
                        f"{REQUEST_ID_HEADER}")
CORS_EXPOSED_HEADERS = (f"{REQUEST_ID_HEADER}, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, "
                        "X-RateLimit-Reset, Content-Disposition")
CORS_MAX_AGE_S = 600


def install_security_headers(app: Flask) -> None:
    @app.after_request
    def _secure(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
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
