"""Operator pages: scenes (QR codes, posters, a create form), a live dashboard per scene with
the organiser's inputs and the event report, the organiser's projector screen of a scene (its
live figures, the top of its board and the QR code to join, full-screen), projects and their
inventory. Behind a login with an operator API key.

The key is checked once, at the login, and never kept: the browser gets an opaque random
session token (an httponly cookie limited to ``/operator``, SameSite=Strict, Secure over
https), and the gateway's database keeps the token's hash with the key's id, a CSRF token
and an expiry (``OPERATOR_SESSION_TTL``). Every page looks the session up with its key, so
a revoked key ends its sessions at once; logging out deletes the session. Whatever the
pages do goes *through the gateway itself*: the request is dispatched in-process to this
same app as that key's operator, so scopes and rate limits are exactly those of any API
client, and a page never gets more rights than its key.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from flask import Flask, Response, current_app, g, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.test import Client, TestResponse

from diandian_common import config
from diandian_common.auth import API_KEY_HEADER, Operator
from diandian_common.db import Database

from . import event_report
from . import pages_figures as figures
from . import pages_render as render
from .event_report import MEDIA_TYPES as REPORT_FORMATS
from .keys import hash_key
from .models import ApiKey, OperatorSession

COOKIE_NAME = "dd_operator"
COOKIE_PATH = "/operator"
MAX_KEY_LENGTH = 200
MAX_TOKEN_LENGTH = 100
MAX_ORDER_PAGES = 50   # a dashboard sums at most 10,000 orders per refresh
SCENE_FIELDS = ("slug", "name", "name_en", "type", "location", "starts_on", "ends_on")
# The organiser's inputs form: the scene's province (a PATCH of the scene) and the inputs (a PUT).
ORGANISER_FIELDS = ("province", "attendees", "venue_kwh", "meat_meals", "vegetarian_meals", "waste_kg",
                    "waste_treatment")
CATERING_FIELDS = ("meat_meals", "vegetarian_meals")
WASTE_TREATMENTS = ("landfill", "combustion")
# ISO 3166-2:CN, as the calculator validates them (the calculator's domain/provinces.py).
PROVINCES = tuple(f"CN-{code}" for code in (
    "AH", "BJ", "CQ", "FJ", "GD", "GS", "GX", "GZ", "HA", "HB", "HE", "HI", "HK", "HL", "HN", "JL", "JS",
    "JX", "LN", "MO", "NM", "NX", "QH", "SC", "SD", "SH", "SN", "SX", "TJ", "TW", "XJ", "XZ", "YN", "ZJ"))
MAX_FORM_NUMBER = 20  # characters: more is no quantity anyone types
DASHBOARD_REFRESH_SECONDS = 10
DASHBOARD_BOARD_SIZE = 10
PROJECTOR_BOARD_SIZE = 8   # two columns of four rows: readable from the back of a room
# The projector screen's backgrounds: dark for a dim hall (the default), light for a bright one.
PROJECTOR_THEMES = ("dark", "light")
DEFAULT_SESSION_TTL = "8h"
TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Stands in the in-process request's X-API-Key header, which the scope check asks for;
# never read as a key, since the operator is already known (see through_gateway).
IN_PROCESS_KEY = "operator-session"


def parse_ttl(value: str) -> int:
    """Seconds of ``8h``, ``30m``, ``2d``, ``900s`` or ``900``."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", value.lower())
    if not match or int(match[1]) == 0:
        raise ValueError(f"OPERATOR_SESSION_TTL must be a positive duration like 8h, 30m or 900; got {value!r}")
    return int(match[1]) * TTL_UNITS[match[2]]


def session_ttl() -> int:
    """``OPERATOR_SESSION_TTL`` in seconds; ``OPERATOR_SESSION_HOURS`` (its older spelling)
    still counts when only it is set, so a deployment that shortened sessions keeps them short."""
    ttl = config.env("OPERATOR_SESSION_TTL")
    if ttl is None and config.env("OPERATOR_SESSION_HOURS") is not None:
        ttl = f"{config.env_int('OPERATOR_SESSION_HOURS', 8)}h"
    return parse_ttl(ttl or DEFAULT_SESSION_TTL)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class OperatorLogin:
    """A live session: the key's operator (its scopes as they are now) and the CSRF token."""

    operator: Operator
    csrf: str


class OperatorSessions:
    """The operator pages' sessions in the gateway's database, by the hash of their token."""

    def __init__(self, database: Database, ttl_seconds: int):
        self.database = database
        self.ttl = timedelta(seconds=ttl_seconds)

    def create(self, operator: Operator, raw_key: str) -> str:
        """A new session of ``operator`` (just authenticated with ``raw_key``): its token.
        Expired sessions are cleared on the way."""
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self.database.transaction() as session:
            session.execute(delete(OperatorSession).where(OperatorSession.expires_at <= now))
            session.add(OperatorSession(id=hash_token(token), key_id=operator.key_id, key_hash=hash_key(raw_key),
                                        csrf=secrets.token_urlsafe(24), created_at=now, expires_at=now + self.ttl))
        return token

    def find(self, token: str) -> OperatorLogin | None:
        """The live session of ``token``; None when there is none, it expired, or its key
        was revoked or replaced since the login (the session is then deleted)."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        with self.database.transaction() as session:
            row = session.get(OperatorSession, hash_token(token))
            if row is None:
                return None
            key = session.scalar(select(ApiKey).where(ApiKey.id == row.key_id))
            alive = (row.expires_at > datetime.now(UTC) and key is not None and key.revoked_at is None
                     and hmac.compare_digest(key.key_hash, row.key_hash))
            if not alive:
                session.delete(row)
                return None
            return OperatorLogin(Operator(key.id, key.scope_set), row.csrf)

    def end(self, token: str) -> None:
        if token and len(token) <= MAX_TOKEN_LENGTH:
            with self.database.transaction() as session:
                session.execute(delete(OperatorSession).where(OperatorSession.id == hash_token(token)))


def sessions() -> OperatorSessions:
    return current_app.extensions["operator_sessions"]


def current_session() -> OperatorLogin | None:
    """The live session of the request's cookie, else None."""
    return sessions().find(request.cookies.get(COOKIE_NAME, ""))


def logged_in(target: str, operator: Operator, raw_key: str):
    sessions().end(request.cookies.get(COOKIE_NAME, ""))  # a login never reuses a session
    response = redirect(target, 303)
    response.set_cookie(COOKIE_NAME, sessions().create(operator, raw_key), max_age=int(sessions().ttl.total_seconds()),
                        path=COOKIE_PATH, httponly=True, samesite="Strict", secure=request.is_secure)
    return response


def logged_out(expired: bool = False):
    response = redirect(url_for("operator_login", expired="1" if expired else None), 303)
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, httponly=True, samesite="Strict",
                           secure=request.is_secure)
    return response


def unavailable_page():
    return render_template("error.html", status=503), 503


def operator_page(view):
    """Views that need a live session (whose key is still valid); it is in ``g.operator``.
    A cookie without one (expired, logged out, key revoked) leads to the login, saying so."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            login = current_session()
        except SQLAlchemyError:
            return unavailable_page()
        if login is None:
            if request.cookies.get(COOKIE_NAME):
                return logged_out(expired=True)
            return redirect(url_for("operator_login", next=request.full_path.rstrip("?")), 303)
        g.operator = login
        if request.method == "POST" and not hmac.compare_digest(request.form.get("csrf", ""), login.csrf):
            return render_template("error.html", status=403,
                                   message=_l("The form has expired; reload the page and try again.")), 403
        return view(*args, **kwargs)

    return wrapper


def through_gateway(method: str, path: str, operator: Operator, *, json=None,
                    params=None) -> tuple[int, dict | None]:
    """Call this gateway's own ``/api/v1`` in-process as ``operator``, in a fresh
    application context (so this request's ``g`` stays untouched)."""
    response = _in_process(method, path, operator, json=json, params=params, accept="application/json")
    body = response.get_json(silent=True)
    return response.status_code, body if isinstance(body, dict) else None


def _in_process(method: str, path: str, operator: Operator, *, json=None, params=None,
                accept: str) -> TestResponse:
    """The in-process answer of this gateway to ``method path`` as ``operator``, read whole."""
    app = current_app._get_current_object()
    headers = {API_KEY_HEADER: IN_PROCESS_KEY, "Accept": accept, "X-Request-ID": g.get("request_id", "")}
    with app.app_context():
        # The in-process request runs in this application context (Flask pushes none of its
        # own for the same app), so the operator put where keys.request_operator keeps what
        # it found is the request's operator: the session's key was checked just now, and
        # its scopes and limits apply as to any client of that key.
        g.api_key_operator = operator
        # On the page's own host and scheme: the gateway may serve only its configured hosts.
        response = Client(app).open(path, method=method, json=json, query_string=params, headers=headers,
                                    base_url=request.host_url,
                                    environ_base={"REMOTE_ADDR": request.remote_addr or "127.0.0.1"})
        response.get_data()  # read inside the context the request ran in
    return response


def check_key(key: str) -> tuple[str, Operator | None]:
    """``valid`` and its operator, ``invalid`` or ``unavailable``, by the gateway's own key
    store (the one that authorises every API request)."""
    try:
        operator = current_app.extensions["keys"].authenticate(key)
    except SQLAlchemyError:
        return "unavailable", None
    return ("valid", operator) if operator is not None else ("invalid", None)


def operator_target(value: str | None) -> str:
    """Where to go after the login: an operator page, never another site."""
    if value and value.startswith(COOKIE_PATH + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return url_for("operator_scenes")


def scene_payload(form) -> dict:
    """The create form as ``POST /api/v1/scenes`` JSON: empty optional fields left out."""
    return {name: form.get(name, "").strip() for name in SCENE_FIELDS if form.get(name, "").strip()}


def projector_theme(value: str | None) -> str:
    """The asked theme when it is one, else the default (a stray value is no error: the screen
    still shows)."""
    return value if value in PROJECTOR_THEMES else PROJECTOR_THEMES[0]


def form_number(text: str):
    """A typed quantity as JSON: whole numbers as integers, decimals as floats; anything else
    goes as typed, for the API to refuse on its field (so the page shows the API's message)."""
    if len(text) <= MAX_FORM_NUMBER and re.fullmatch(r"\d+", text):
        return int(text)
    if len(text) <= MAX_FORM_NUMBER and re.fullmatch(r"\d+\.\d+", text):
        return float(text)
    return text


def organiser_payload(form) -> dict:
    """The organiser's form as ``PUT /api/v1/scenes/<slug>/organiser-inputs`` JSON: a field left
    empty is not entered."""
    values = {name: form.get(name, "").strip() for name in ORGANISER_FIELDS}
    payload: dict = {name: form_number(values[name]) for name in ("attendees", "venue_kwh", "waste_kg")
                     if values[name]}
    catering = {name: form_number(values[name]) for name in CATERING_FIELDS if values[name]}
    if catering:
        payload["catering"] = catering
    if values["waste_treatment"]:
        payload["waste_treatment"] = values["waste_treatment"]
    return payload


def organiser_values(inputs: dict | None, scene: dict) -> dict:
    """The form's fields as stored (the organiser's inputs and the scene's province)."""
    inputs = inputs or {}
    catering = inputs.get("catering") or {}

    def text(value) -> str:
        if value is None:
            return ""
        return format(Decimal(str(value)).normalize(), "f") if isinstance(value, float) else str(value)

    return {"province": scene.get("province") or "", "attendees": text(inputs.get("attendees")),
            "venue_kwh": text(inputs.get("venue_kwh")), "waste_kg": text(inputs.get("waste_kg")),
            "waste_treatment": inputs.get("waste_treatment") or "",
            **{name: text(catering.get(name)) for name in CATERING_FIELDS}}


def field_errors(body: dict | None) -> dict[str, list[str]]:
    """The API's field errors by the form's names (``catering.meat_meals`` is ``meat_meals``)."""
    found: dict[str, list[str]] = {}
    for name, messages in (((body or {}).get("error") or {}).get("fields") or {}).items():
        nested = messages if isinstance(messages, dict) else {name: messages}
        for inner, inner_messages in nested.items():
            target = inner if inner in ORGANISER_FIELDS else name
            listed = inner_messages if isinstance(inner_messages, list) else [inner_messages]
            found.setdefault(target, []).extend(str(message) for message in listed)
    return found


def neutralised_orders(operator: Operator, slug: str) -> tuple[list[dict], bool, int]:
    """The scene's retired or completed orders (paged through), whether the list was cut
    short, and the status of the last read."""
    status = 200

    def read_page(params: dict) -> dict | None:
        nonlocal status
        status, body = through_gateway("GET", "/api/v1/orders", operator, params=params)
        return body if status == 200 else None

    found, cut_short = event_report.neutralised_orders(read_page, slug, MAX_ORDER_PAGES)
    return found, cut_short, status


def register(app: Flask) -> None:
    from .pages import reader, segment  # pages imports this module first

    app.extensions["operator_sessions"] = OperatorSessions(app.extensions["keys"].database, session_ttl())

    @app.route("/operator/login", methods=["GET", "POST"])
    def operator_login():
        target = operator_target(request.values.get("next"))
        if request.method == "GET":
            try:
                if current_session():
                    return redirect(target, 303)
            except SQLAlchemyError:
                return unavailable_page()
            return render_template("operator/login.html", next=target, expired=request.args.get("expired"))
        key = request.form.get("api_key", "").strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            return render_template("operator/login.html", next=target, error="invalid"), 401
        outcome, operator = check_key(key)
        if operator is None:
            return render_template("operator/login.html", next=target, error=outcome), \
                (401 if outcome == "invalid" else 503)
        try:
            return logged_in(target, operator, key)
        except SQLAlchemyError:
            return render_template("operator/login.html", next=target, error="unavailable"), 503

    @app.post("/operator/logout")
    @operator_page
    def operator_logout():
        sessions().end(request.cookies.get(COOKIE_NAME, ""))
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
                               csrf=g.operator.csrf), status

    @app.get("/operator/scenes")
    @operator_page
    def operator_scenes():
        return scenes_page()

    @app.post("/operator/scenes")
    @operator_page
    def operator_create_scene():
        payload = scene_payload(request.form)
        status, body = through_gateway("POST", "/api/v1/scenes", g.operator.operator, json=payload)
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

    def scene_figures(slug: str, board_size: int) -> dict | int:
        """The scene and the live figures the dashboard and the projector screen both show,
        or the status of the page when the scene cannot be read: 404 for a slug that names
        no scene (or could name none), 503 when the calculator does not answer."""
        scene = reader().get("calculator", f"/api/v1/scenes/{segment(slug)}")
        if not scene.ok:
            return 404 if 400 <= scene.status < 500 else 503
        footprint = reader().get("calculator", f"/api/v1/scenes/{segment(slug)}/footprint")
        people = reader().get("ranking", "/api/v1/rankings",
                              {"board": "individual", "scene": slug, "limit": board_size})
        orders, truncated, orders_status = neutralised_orders(g.operator.operator, slug)
        events = [(when, float(o.get("quantity_kg") or 0)) for o in orders
                  if (when := render.parse_time((o.get("retirement") or {}).get("retired_at")))]
        estimated = float((footprint.body or {}).get("total_kg") or 0) if footprint.ok else None
        neutralised = sum(quantity for _, quantity in events)
        return {
            "scene": scene.body, "footprint": footprint.body if footprint.ok else None,
            "people": people.body if people.ok else None,
            "orders_count": len(orders), "orders_truncated": truncated, "orders_status": orders_status,
            "neutralised_kg": neutralised, "estimated_kg": estimated,
            "coverage": figures.coverage(neutralised, estimated), "events": events,
            "refreshed_at": datetime.now(UTC),
        }

    def dashboard_data(slug: str) -> dict | int:
        data = scene_figures(slug, DASHBOARD_BOARD_SIZE)
        if isinstance(data, int):
            return data
        organizations = reader().get("ranking", "/api/v1/rankings",
                                     {"board": "organization", "scene": slug, "limit": 5})
        organiser = reader().get("calculator", f"/api/v1/scenes/{segment(slug)}/organiser-inputs")
        chart = render.cumulative_chart(data.pop("events"), data["estimated_kg"])
        return {**data, "organiser": organiser.body if organiser.ok else None,
                "organizations": organizations.body if organizations.ok else None, "chart": chart}

    def projector_data(slug: str) -> dict | int:
        data = scene_figures(slug, PROJECTOR_BOARD_SIZE)
        if isinstance(data, int):
            return data
        del data["events"]
        # The neutralised kilograms choose the unit; the estimate beside them is said in the same.
        unit = figures.unit_for(data["neutralised_kg"])
        board = (data["people"] or {}).get("items") or []
        board_unit = figures.unit_for(*(item.get("kg") for item in board))
        return {**data, "unit": unit, "neutralised_text": figures.amount(data["neutralised_kg"], unit),
                "board": [{"rank": item.get("rank"), "display_name": item.get("display_name"),
                           "amount": f"{figures.amount(item.get('kg'), board_unit)} {board_unit}"}
                          for item in board],
                "estimated_text": figures.amount(data["estimated_kg"], unit)
                if data["estimated_kg"] is not None else None}

    def dashboard_page(slug: str, status: int = 200, errors: dict | None = None, values: dict | None = None,
                       message=None):
        data = dashboard_data(slug)
        if isinstance(data, int):
            return render_template("error.html", status=data), data
        return render_template("operator/dashboard.html", csrf=g.operator.csrf,
                               refresh_seconds=DASHBOARD_REFRESH_SECONDS, errors=errors or {},
                               values=values if values is not None else organiser_values(data["organiser"],
                                                                                         data["scene"]),
                               message=message, saved=request.args.get("saved"), provinces=PROVINCES,
                               waste_treatments=WASTE_TREATMENTS, **data), status

    @app.get("/operator/scenes/<slug>")
    @operator_page
    def operator_dashboard(slug):
        return dashboard_page(slug)

    @app.post("/operator/scenes/<slug>/organiser-inputs")
    @operator_page
    def operator_organiser_inputs(slug):
        """The organiser's inputs form: the scene's province if it changed (PATCH), then the
        inputs (PUT), both through the gateway as the session's key; errors by field."""
        values = {name: request.form.get(name, "").strip() for name in ORGANISER_FIELDS}
        scene = reader().get("calculator", f"/api/v1/scenes/{segment(slug)}")
        if not scene.ok:
            return render_template("error.html", status=404 if scene.status == 404 else 503), \
                (404 if scene.status == 404 else 503)
        operator, errors, failed = g.operator.operator, {}, []
        if values["province"] != (scene.body.get("province") or ""):
            status, body = through_gateway("PATCH", f"/api/v1/scenes/{segment(slug)}", operator,
                                           json={"province": values["province"] or None})
            if status != 200:
                failed.append((status, body))
        status, body = through_gateway("PUT", f"/api/v1/scenes/{segment(slug)}/organiser-inputs", operator,
                                       json=organiser_payload(request.form))
        if status != 200:
            failed.append((status, body))
        if not failed:
            return redirect(url_for("operator_dashboard", slug=slug, saved="1") + "#organiser-inputs", 303)
        if any(status == 401 for status, _ in failed):
            return logged_out(expired=True)
        for _, body in failed:
            errors.update(field_errors(body))
        worst = max(status for status, _ in failed)
        message = None if errors else (((failed[-1][1] or {}).get("error") or {}).get("message")
                                       or _l("The inputs could not be saved."))
        return dashboard_page(slug, worst if worst >= 400 else 502, errors, values, message)

    @app.get("/operator/scenes/<slug>/report.<any(pdf, csv):chosen>")
    @operator_page
    def operator_event_report(slug, chosen):
        """The event report through the gateway as the session's key (its scope decides)."""
        answer = _in_process("GET", f"/api/v1/scenes/{segment(slug)}/report", g.operator.operator,
                             params={"format": chosen}, accept=REPORT_FORMATS[chosen])
        if answer.status_code == 200:
            return Response(answer.get_data(), headers={name: answer.headers[name] for name in (
                "Content-Type", "Content-Disposition", "Cache-Control") if name in answer.headers})
        if answer.status_code == 401:
            return logged_out(expired=True)
        if answer.status_code == 403:
            return render_template("error.html", status=403, message=_l(
                "Your key may not read the event report: it needs the scenes scope.")), 403
        status = 404 if answer.status_code in (404, 422) else 503
        return render_template("error.html", status=status), status

    @app.get("/operator/scenes/<slug>/panel")
    @operator_page
    def operator_dashboard_panel(slug):
        data = dashboard_data(slug)
        if isinstance(data, int):
            return render_template("error.html", status=data), data
        return render_template("operator/dashboard_panel.html", **data), 200, {"Cache-Control": "no-store"}

    @app.get("/operator/scenes/<slug>/projector")
    @operator_page
    def operator_projector(slug):
        """The organiser's screen for a projector: the live figures, the top of the board and
        the QR code to join, filling the screen; ``?theme=light`` for a bright room."""
        data = projector_data(slug)
        if isinstance(data, int):
            return render_template("error.html", status=data), data
        theme = projector_theme(request.args.get("theme"))
        return render_template("operator/projector.html", csrf=g.operator.csrf, theme=theme,
                               other_theme=PROJECTOR_THEMES[1 - PROJECTOR_THEMES.index(theme)],
                               refresh_seconds=DASHBOARD_REFRESH_SECONDS, **data)

    @app.get("/operator/scenes/<slug>/projector/panel")
    @operator_page
    def operator_projector_panel(slug):
        data = projector_data(slug)
        if isinstance(data, int):
            return render_template("error.html", status=data), data
        return render_template("operator/projector_panel.html", **data), 200, {"Cache-Control": "no-store"}

    @app.get("/operator/projects")
    @operator_page
    def operator_projects():
        reply = reader().get("orders", "/api/v1/projects")
        projects = (reply.body or {}).get("items", []) if reply.ok else []
        return render_template("operator/projects.html", projects=projects, unavailable=not reply.ok,
                               csrf=g.operator.csrf), (200 if reply.ok else 503)
