"""Rate limits (Flask-Limiter on Redis).

Each request falls in one category with its own counter per client:

- ``orders``: placing and paying orders (strict, ``RATE_LIMIT_ORDERS``),
- ``reads``: GET/HEAD of the API and the pages (generous, ``RATE_LIMIT_READS``),
- ``writes``: every other write (``RATE_LIMIT_WRITES``),
- ``provider_webhooks``: payment providers' signed confirmations (``RATE_LIMIT_PROVIDER_WEBHOOKS``).

The client is the operator's API key, else the guest's signed participant cookie, else the
address: a venue's Wi-Fi puts hundreds of phones behind one address, so guests are told
apart by their cookie. Since anyone can get a fresh cookie, every address also has one
overall ceiling (``RATE_LIMIT_PER_ADDRESS``) and one for placing and paying orders without
an operator key (``RATE_LIMIT_ORDERS_PER_ADDRESS``): a fresh cookie per request escapes
the per-guest order limit, never the address's. That one is generous (a venue's guests
share the address) but far below the overall ceiling, since each order reserves credits.
An operator key is not counted there: it cannot be rotated, and a partner placing orders
for many guests sends them all from its own address. Limits are ``limits`` strings
("20/minute", "5/second;100/hour"); ``off`` switches that limit off.

Over a limit: 429 in the platform's error shape with ``Retry-After``. If Redis is down the
gateway serves without limits rather than failing (errors are logged).
"""
from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limit, Limiter
from limits import parse_many

from diandian_common import config
from diandian_common.errors import ApiError

from . import participants
from .keys import request_operator
from .routes import is_order_write, is_provider_webhook

CATEGORY_LIMITS = {  # category → (variable, default)
    "orders": ("RATE_LIMIT_ORDERS", "20/minute"),
    "reads": ("RATE_LIMIT_READS", "600/minute"),
    "writes": ("RATE_LIMIT_WRITES", "120/minute"),
    "provider_webhooks": ("RATE_LIMIT_PROVIDER_WEBHOOKS", "3000/minute"),
}
PER_ADDRESS_LIMIT = ("RATE_LIMIT_PER_ADDRESS", "6000/minute")
ORDERS_PER_ADDRESS_LIMIT = ("RATE_LIMIT_ORDERS_PER_ADDRESS", "60/minute")
NOT_LIMITED_PATHS = frozenset({"/healthz"})
MESSAGE = "too many requests; retry after the number of seconds in Retry-After"
# Fail fast to "no limit" when Redis does not answer, instead of stalling every request.
REDIS_TIMEOUT_S = 0.5


def request_category() -> str:
    """The request's category; "" (not limited) for health checks, static files and
    CORS preflights."""
    method, path = request.method, request.path
    is_static = (request.endpoint or "").rsplit(".", 1)[-1] == "static"
    if method == "OPTIONS" or path in NOT_LIMITED_PATHS or is_static:
        return ""
    if is_order_write(method, path):
        return "orders"
    if is_provider_webhook(method, path):
        return "provider_webhooks"
    return "reads" if method in ("GET", "HEAD") else "writes"


def client_key() -> str:
    operator = request_operator()
    if operator is not None:
        return f"key:{operator.key_id}"
    participant = participants.participant_id_from_request(request)
    if participant:
        return f"participant:{participant}"
    return f"address:{request.remote_addr}"


def address_key() -> str:
    return f"address:{request.remote_addr}"


def counts_as_anonymous_order(category: str) -> bool:
    """An order write without a valid operator key (the address's order ceiling applies)."""
    if category != "orders":
        return False
    try:
        return request_operator() is None
    except ApiError:  # the key store is down: the request counts as anyone's
        return True


def limit_from_env(variable: str, default: str) -> str:
    """A limit from the environment (unset or empty: the default; ``off``: no limit),
    checked now so a typo stops the start instead of silently disabling the limit."""
    value = (config.env(variable, default) or "").strip()
    if value.lower() == "off":
        return ""
    parse_many(value)  # raises ValueError on a malformed limit
    return value


def install(app: Flask) -> Limiter:
    by_category = {category: limit_from_env(*setting) for category, setting in CATEGORY_LIMITS.items()}
    per_address = limit_from_env(*PER_ADDRESS_LIMIT)
    orders_per_address = limit_from_env(*ORDERS_PER_ADDRESS_LIMIT)
    limiter = Limiter(
        client_key,
        # The category stands in for the endpoint, so a category's counter spans all its
        # routes (20 orders a minute, whichever order routes they went to).
        request_identifier=request_category,
        default_limits=[
            Limit(lambda: by_category.get(request_category(), ""), error_message=MESSAGE),
            Limit(lambda: per_address, key_function=address_key, scope="per-address", shared=True,
                  error_message=MESSAGE),
            Limit(lambda: orders_per_address if counts_as_anonymous_order(request_category()) else "",
                  key_function=address_key, scope="orders-per-address", shared=True, error_message=MESSAGE),
        ],
        storage_uri=config.env("RATE_LIMIT_STORAGE_URL", config.redis_url()),
        storage_options={"socket_connect_timeout": REDIS_TIMEOUT_S, "socket_timeout": REDIS_TIMEOUT_S},
        strategy="sliding-window-counter",
        headers_enabled=True,
        swallow_errors=True,
        key_prefix="gateway",
        enabled=config.env_bool("RATE_LIMIT_ENABLED", True),
    )
    limiter.init_app(app)
    return limiter
