"""Operator pages: scenes (QR codes, posters, a create form), a live dashboard per scene,
projects and their inventory. Behind a login with an operator API key.

The key is kept in a signed, httponly cookie limited to ``/operator`` (SameSite=Strict).
The login checks the key with the gateway's key store; whatever the pages then do with it
goes *through the gateway itself*: the request is dispatched in-process to this same app
with ``X-API-Key``, so scopes and rate limits are exactly those of any API client, and a
page never gets more rights than its key.
"""
from __future__ import annotations

import functools
import hmac
import secrets
from datetime import UTC, datetime

from flask import Flask, current_app, g, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.test import Client

from diandian_common import config
from diandian_common.auth import API_KEY_HEADER

from . import pages_render as render

COOKIE_NAME = "dd_operator"
COOKIE_PATH = "/operator"
MAX_KEY_LENGTH = 200
ORDER_PAGE = 200
MAX_ORDER_PAGES = 50   # a dashboard sums at most 10,000 orders per refresh
NEUTRALISED = ("retired", "completed")
SCENE_FIELDS = ("slug", "name", "name_en", "type", "location", "starts_on", "ends_on")
DASHBOARD_REFRESH_SECONDS = 10


def session_max_age() -> int:
    return config.env_int("OPERATOR_SESSION_HOURS", 12) * 3600


def _serializer() -> URLSafeTimedSerializer:
    secret = config.env("GATEWAY_SECRET_KEY", "diandian-local-development-secret")
    return URLSafeTimedSerializer(secret, salt="operator-session")


def current_session() -> dict | None:
    """``{"key", "csrf"}`` of a valid operator cookie, else None."""
    raw = request.cookies.get(COOKIE_NAME)
    if not raw:
        return None
    try:
        value = _serializer().loads(raw, max_age=session_max_age())
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("key"), str):
        return None
    return value


def logged_in(target: str, key: str):
    response = redirect(target, 303)
    value = _serializer().dumps({"key": key, "csrf": secrets.token_urlsafe(24)})
    response.set_cookie(COOKIE_NAME, value, max_age=session_max_age(), path=COOKIE_PATH,
                        httponly=True, samesite="Strict", secure=request.is_secure)
    return response


def logged_out(expired: bool = False):
    response = redirect(url_for("operator_login", expired="1" if expired else None), 303)
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH)
    return response


def operator_page(view):
    """Views that need a logged-in operator whose key is still valid (a revoked key ends
    the session); the session is in ``g.operator``."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        session = current_session()
        if session is None:
            return redirect(url_for("operator_login", next=request.full_path.rstrip("?")), 303)
        if check_key(session["key"]) == "invalid":
            return logged_out(expired=True)
        g.operator = session
        if request.method == "POST" and not hmac.compare_digest(
                request.form.get("csrf", ""), session.get("csrf", "")):
            return render_template("error.html", status=403,
                                   message=_l("The form has expired; reload the page and try again.")), 403
        return view(*args, **kwargs)

    return wrapper


def through_gateway(method: str, path: str, key: str, *, json=None, params=None) -> tuple[int, dict | None]:
    """Call this gateway's own ``/api/v1`` in-process with the operator's key, in a fresh
    application context (so this request's ``g`` stays untouched)."""
    app = current_app._get_current_object()
    headers = {API_KEY_HEADER: key, "Accept": "application/json",
               "X-Request-ID": g.get("request_id", "")}
    with app.app_context():
        # On the page's own host and scheme: the gateway may serve only its configured hosts.
        response = Client(app).open(path, method=method, json=json, query_string=params, headers=headers,
                                    base_url=request.host_url,
                                    environ_base={"REMOTE_ADDR": request.remote_addr or "127.0.0.1"})
        body = response.get_json(silent=True)
    return response.status_code, body if isinstance(body, dict) else None


def check_key(key: str) -> str:
    """``valid``, ``invalid`` or ``unavailable``, by the gateway's own key store (the one
    that authorises every API request)."""
    try:
        operator = current_app.extensions["keys"].authenticate(key)
    except SQLAlchemyError:
        return "unavailable"
    return "valid" if operator is not None else "invalid"


def operator_target(value: str | None) -> str:
    """Where to go after the login: an operator page, never another site."""
    if value and value.startswith(COOKIE_PATH + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return url_for("operator_scenes")


def scene_payload(form) -> dict:
    """The create form as ``POST /api/v1/scenes`` JSON: empty optional fields left out."""
    return {name: form.get(name, "").strip() for name in SCENE_FIELDS if form.get(name, "").strip()}


def neutralised_orders(key: str, slug: str) -> tuple[list[dict], bool, int]:
    """The scene's retired or completed orders (paged through), whether the list was cut
    short, and the status of the last read."""
    found, after = [], None
    for _ in range(MAX_ORDER_PAGES):
        params = {"scene": slug, "limit": ORDER_PAGE}
        if after:
            params["after"] = after
        status, body = through_gateway("GET", "/api/v1/orders", key, params=params)
        if status != 200 or body is None:
            return found, False, status
        found += [o for o in body.get("items", []) if o.get("status") in NEUTRALISED]
        after = body.get("next_after")
        if not after:
            return found, False, 200
    return found, True, 200


def register(app: Flask) -> None:
    from .pages import reader, segment  # pages imports this module first

    @app.route("/operator/login", methods=["GET", "POST"])
    def operator_login():
        target = operator_target(request.values.get("next"))
        if request.method == "GET":
            if current_session():
                return redirect(target, 303)
            return render_template("operator/login.html", next=target, expired=request.args.get("expired"))
        key = request.form.get("api_key", "").strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            return render_template("operator/login.html", next=target, error="invalid"), 401
        outcome = check_key(key)
        if outcome != "valid":
            return render_template("operator/login.html", next=target, error=outcome), \
                (401 if outcome == "invalid" else 503)
        return logged_in(target, key)

    @app.post("/operator/logout")
    @operator_page
    def operator_logout():
        return logged_out()

    @app.get("/operator")
    def operator_home():
        return redirect(url_for("operator_scenes"), 303)

    def scenes_page(status: int = 200, errors: dict | None = None, values: dict | None = None,
                    message=None):
        reply = reader().get("calculator", "/api/v1/scenes", {"include_archived": "true"})
        scenes = (reply.body or {}).get("items", []) if reply.ok else []
        return render_template("operator/scenes.html", scenes=scenes, unavailable=not reply.ok,
                               errors=errors or {}, values=values or {}, message=message,
                               created=request.args.get("created"), scene_types=render.SCENE_TYPE_LABELS,
                               csrf=g.operator["csrf"]), status

    @app.get("/operator/scenes")
    @operator_page
    def operator_scenes():
        return scenes_page()

    @app.post("/operator/scenes")
    @operator_page
    def operator_create_scene():
        payload = scene_payload(request.form)
        status, body = through_gateway("POST", "/api/v1/scenes", g.operator["key"], json=payload)
        if status == 201 and body:
            return redirect(url_for("operator_scenes", created=body["slug"]) + f"#scene-{body['slug']}", 303)
        if status == 401:
            return logged_out(expired=True)
        error = (body or {}).get("error", {})
        errors = dict(error.get("fields") or {})
        if error.get("code") == "slug_taken":
            errors["slug"] = [_l("This slug is already used by another scene.")]
        message = error.get("message") if not errors else None
        return scenes_page(status if status >= 400 else 502, errors, payload,
                           message or (_l("The scene could not be created.") if not errors else None))

    def dashboard_data(slug: str) -> dict | None:
        scene = reader().get("calculator", f"/api/v1/scenes/{segment(slug)}")
        if not scene.ok:
            return None
        footprint = reader().get("calculator", f"/api/v1/scenes/{segment(slug)}/footprint")
        people = reader().get("ranking", "/api/v1/rankings",
                              {"board": "individual", "scene": slug, "limit": 10})
        organizations = reader().get("ranking", "/api/v1/rankings",
                                     {"board": "organization", "scene": slug, "limit": 5})
        orders, truncated, orders_status = neutralised_orders(g.operator["key"], slug)
        events = [(when, float(o.get("quantity_kg") or 0)) for o in orders
                  if (when := render.parse_time((o.get("retirement") or {}).get("retired_at")))]
        estimated = float((footprint.body or {}).get("total_kg") or 0) if footprint.ok else None
        neutralised = sum(quantity for _, quantity in events)
        return {
            "scene": scene.body, "footprint": footprint.body if footprint.ok else None,
            "people": people.body if people.ok else None,
            "organizations": organizations.body if organizations.ok else None,
            "orders_count": len(orders), "orders_truncated": truncated, "orders_status": orders_status,
            "neutralised_kg": neutralised, "estimated_kg": estimated,
            "share": (neutralised / estimated) if estimated else None,
            "chart": render.cumulative_chart(events, estimated),
            "refreshed_at": datetime.now(UTC),
        }

    @app.get("/operator/scenes/<slug>")
    @operator_page
    def operator_dashboard(slug):
        data = dashboard_data(slug)
        if data is None:
            return render_template("error.html", status=404), 404
        return render_template("operator/dashboard.html", csrf=g.operator["csrf"],
                               refresh_seconds=DASHBOARD_REFRESH_SECONDS, **data)

    @app.get("/operator/scenes/<slug>/panel")
    @operator_page
    def operator_dashboard_panel(slug):
        data = dashboard_data(slug)
        if data is None:
            return render_template("error.html", status=404), 404
        return render_template("operator/dashboard_panel.html", **data), 200, {"Cache-Control": "no-store"}

    @app.get("/operator/projects")
    @operator_page
    def operator_projects():
        reply = reader().get("orders", "/api/v1/projects")
        projects = (reply.body or {}).get("items", []) if reply.ok else []
        return render_template("operator/projects.html", projects=projects, unavailable=not reply.ok,
                               csrf=g.operator["csrf"]), (200 if reply.ok else 503)
