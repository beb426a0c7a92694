"""Server-rendered pages (docs/contract.md §1): the guest's way from a scene's QR code to a certificate
and a rank, the life footprint, rankings, verification, and the operators' pages.

Pages read the services through the same pooled client as the API, so a page never reads
a database. What changes something (an estimate, an order, a payment) the browser sends
itself to ``/api/v1/...`` on this origin (``static/app.js``), so pages and API clients go
through the same gateway rules. Chinese and English through Flask-Babel: the language
switch's ``dd_lang`` cookie, else ``Accept-Language``, else Chinese.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import requests
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Blueprint, Flask, current_app, g, redirect, render_template, request, url_for
from flask_babel import Babel, format_date, format_datetime, get_locale

from diandian_common import config
from diandian_common.auth import PARTICIPANT_ASSERTION_HEADER, Guest, sign_participant_assertion
from diandian_common.errors import http_exception_response

from . import pages_forms, pages_operator, pages_payment, pages_presets
from . import pages_render as render
from .participants import participant_id_from_request
from .proxy import Upstreams

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TRANSLATIONS = HERE / "translations"
LANGUAGES = ("zh", "en")
LANG_COOKIE = "dd_lang"
LANG_COOKIE_MAX_AGE = 400 * 24 * 3600
HTML_LANG = {"zh": "zh-CN", "en": "en"}
BOARDS = ("individual", "organization")
PERIODS = ("all", "day", "week", "month")
BOARD_LIMIT = 50
SCENE_SLUG_MAX = 64

bp = Blueprint("pages", __name__)


# --- reading the services ----------------------------------------------------------------

@dataclass(frozen=True)
class Reply:
    body: dict | None
    status: int

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.body is not None


class ServiceReader:
    """GETs on the services' APIs for pages: JSON or a status, never an exception."""

    def __init__(self, upstreams: Upstreams):
        self.upstreams = upstreams
        self._factor_sets: dict[str, dict[str, dict]] = {}

    def get(self, service: str, path: str, params: dict | None = None, *, as_guest: bool = False) -> Reply:
        """``as_guest``: read as the browser's guest (what only they may see, e.g. their order)."""
        return self._call("GET", service, path, params=params, as_guest=as_guest)

    def post_as_guest(self, service: str, path: str, body: dict) -> Reply:
        """A POST as the browser's guest, for what a page itself asks of a service on the
        guest's behalf (opening the trade of their order at checkout)."""
        return self._call("POST", service, path, json=body, as_guest=True)

    def _call(self, method: str, service: str, path: str, *, as_guest: bool, **kwargs) -> Reply:
        # The page's language, so a refusal the page shows is in it (the API's messages follow it).
        headers = {"X-Request-ID": g.get("request_id", ""), "Accept-Language": lang()}
        participant_id = participant_id_from_request(request) if as_guest else None
        if participant_id:
            headers[PARTICIPANT_ASSERTION_HEADER] = sign_participant_assertion(
                Guest(participant_id, request.remote_addr or ""), method, path)
        try:
            response = self.upstreams.session.request(
                method, self.upstreams.base_urls[service] + path, headers=headers,
                timeout=(self.upstreams.connect_timeout, self.upstreams.read_timeout), **kwargs)
        except requests.Timeout:
            log.warning("%s timed out for a page (%s %s)", service, method, path)
            return Reply(None, 504)
        except requests.RequestException:
            log.warning("%s unavailable for a page (%s %s)", service, method, path)
            return Reply(None, 503)
        try:
            body = response.json()
        except ValueError:
            body = None
        return Reply(body if isinstance(body, dict) else None, response.status_code)

    def factors(self, version: str | None) -> dict[str, dict]:
        """The calculator's factors by key for one factor-set version. A published version
        never changes (see the calculator's README), so each is fetched once per process."""
        key = version or ""
        if key not in self._factor_sets:
            reply = self.get("calculator", "/api/v1/factors", {"version": version} if version else None)
            if not reply.ok:
                return {}
            self._factor_sets[key] = {f["key"]: f for f in reply.body.get("items", []) if "key" in f}
        return self._factor_sets[key]


def segment(value: str) -> str:
    """A path parameter made safe to put into an upstream URL."""
    return quote(value, safe="")


def reader() -> ServiceReader:
    return current_app.extensions["pages_reader"]


# --- language ---------------------------------------------------------------------------

def select_locale() -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES, default=LANGUAGES[0])


def lang() -> str:
    return str(get_locale() or LANGUAGES[0])[:2]


def compile_translations(target: Path) -> Path:
    """Compile ``translations/*/LC_MESSAGES/*.po`` to ``.mo`` under ``target`` (the .po
    files are the source of truth in git; a fresh clone needs no build step). Each file is
    written aside and renamed, so workers starting together never read half a file."""
    for po in TRANSLATIONS.glob("*/LC_MESSAGES/*.po"):
        mo = target / po.relative_to(TRANSLATIONS).with_suffix(".mo")
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as source:
            catalog = read_po(source)
        partial = mo.with_name(f"{mo.name}.{os.getpid()}.tmp")
        with partial.open("wb") as out:
            write_mo(out, catalog)
        os.replace(partial, mo)
    return target


def safe_next(value: str | None) -> str:
    """Only a path on this site: never ``//host`` or a scheme (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


@bp.get("/lang/<code>")
def switch_language(code):
    response = redirect(safe_next(request.args.get("next")), 303)
    if code in LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, max_age=LANG_COOKIE_MAX_AGE, samesite="Lax",
                            secure=request.is_secure, httponly=True)
    return response


# --- helpers for views --------------------------------------------------------------------

def error_page(status: int, message=None):
    return render_template("error.html", status=status, message=message), status


def unavailable(reply: Reply):
    """A page for a failed read: a refused id (404, or 422 for one that cannot exist) is
    "not found"; a service that failed or did not answer, "try again shortly"."""
    return error_page(404 if 400 <= reply.status < 500 else 503)


def public_url(path: str) -> str:
    return config.public_base_url() + path


def scene_of(slug: str | None) -> dict | None:
    if not slug:
        return None
    reply = reader().get("calculator", f"/api/v1/scenes/{segment(slug)}")
    return reply.body if reply.ok else None


def standing(participant_id: str | None, scene: str | None, period: str = "all") -> dict | None:
    """A participant's place on the individual board (scene or global), None when absent."""
    if not participant_id:
        return None
    params = {"period": period}
    if scene:
        params["scene"] = scene
    reply = reader().get("ranking", f"/api/v1/rankings/participants/{segment(participant_id)}", params)
    return reply.body if reply.ok else None


def rank_card_url(participant_id: str, scene: dict | None, period: str = "all") -> str:
    """The ranking service's shareable card (SVG) of a participant, in the page's language."""
    params = {"lang": lang(), "period": period}
    if scene and scene.get("slug"):
        params.update(scene=scene["slug"], scene_name=render.scene_name(scene, lang())[:200])
    return f"/api/v1/rankings/participants/{segment(participant_id)}/card.svg?{urlencode(params)}"


# --- guest pages --------------------------------------------------------------------------

@bp.get("/")
def index():
    reply = reader().get("calculator", "/api/v1/scenes")
    scenes = (reply.body or {}).get("items", []) if reply.ok else []
    return render_template("index.html", scenes=scenes, unavailable=not reply.ok), (200 if reply.ok else 503)


@bp.get("/s/<slug>")
def scene(slug):
    reply = reader().get("calculator", f"/api/v1/scenes/{segment(slug)}")
    if not reply.ok:
        return unavailable(reply)
    return render_template("scene.html", scene=reply.body)


@bp.get("/s/<slug>/form")
def scene_form(slug):
    reply = reader().get("calculator", f"/api/v1/scenes/{segment(slug)}")
    if not reply.ok:
        return unavailable(reply)
    scene = reply.body
    asked = pages_presets.section_order(
        scene.get("type"), [t for t in scene.get("form", []) if t in pages_forms.ACTIVITY_INPUTS])
    more = [t for t in pages_forms.ACTIVITY_INPUTS if t not in asked]
    return render_template("trip_form.html", scene=scene, asked=asked, more=more,
                           opened=pages_presets.open_sections(scene.get("type"), asked),
                           heading=pages_presets.heading_kind(scene.get("type")),
                           inputs=pages_forms.trip_inputs(scene, lang()))


@bp.get("/footprint")
def footprint():
    return render_template("footprint.html", sections=pages_forms.LIFE_SECTIONS)


@bp.get("/e/<estimate_id>")
def estimate(estimate_id):
    estimate_reply = reader().get("calculator", f"/api/v1/estimates/{segment(estimate_id)}")
    if not estimate_reply.ok:
        return unavailable(estimate_reply)
    body = estimate_reply.body
    total = float(body.get("total_kg") or 0)
    quantity = render.order_kg(total) if total > 0 else 0
    projects_reply = reader().get("orders", "/api/v1/projects")
    projects = []
    for project in (projects_reply.body or {}).get("items", []) if projects_reply.ok else []:
        price = render.price_fen(quantity, int(project.get("price_fen_per_tonne") or 0))
        projects.append({**project, "price_for_footprint_fen": price,
                         "enough": int(project.get("available_kg") or 0) >= quantity})
    return render_template(
        "result.html", estimate=body, scene=scene_of(body.get("scene")), quantity_kg=quantity,
        bars=render.category_bars(body.get("categories")),
        equivalents=render.equivalents(total, reader().factors(body.get("factor_set")),
                                       render.total_gases(body.get("items")).label),
        projects=projects, projects_unavailable=not projects_reply.ok)


@bp.get("/pay/<order_id>")
def pay(order_id):
    reply = reader().get("orders", f"/api/v1/orders/{segment(order_id)}", as_guest=True)
    if not reply.ok:
        return unavailable(reply)
    order = reply.body
    if "participant" not in order:  # someone else's order: its page is its guest's alone
        return error_page(404)
    payment = pages_payment.prepare(order)
    if payment.redirect:  # inside WeChat, JSAPI first needs the guest's openid (WeChat's OAuth)
        response = redirect(payment.redirect, 302)
        response.headers["Cache-Control"] = "no-store"
        return pages_payment.remember(response, payment)
    scene_ref = order.get("scene") or {}
    response = render_template("pay.html", order=order, steps=render.ORDER_STEPS, payment=payment,
                               scene=scene_of(scene_ref.get("slug")) or scene_ref)
    response = current_app.make_response((response, 200, {"Cache-Control": "no-store"}))
    return pages_payment.remember(response, payment)


@bp.get("/wechat/oauth")
def wechat_oauth():
    """WeChat's OAuth callback: the guest's openid for JSAPI, then back to the pay page."""
    return pages_payment.oauth_callback()


@bp.get("/c/<certificate_id>")
def certificate(certificate_id):
    reply = reader().get("certificates", f"/api/v1/certificates/{segment(certificate_id)}")
    if not reply.ok:
        return unavailable(reply)
    cert = reply.body
    # The holder's rank, when the holder is the viewer: the order tells only its own guest
    # who they are (a certificate shared with others shows no participant id).
    participant = {}
    if cert.get("order_id"):
        order = reader().get("orders", f"/api/v1/orders/{segment(cert['order_id'])}", as_guest=True)
        participant = (order.body or {}).get("participant") or {} if order.ok else {}
    scene_slug = (cert.get("scene") or {}).get("slug")
    card_path = f"/api/v1/certificates/{segment(cert['id'])}/card.png"  # gateway/share_card.py
    return render_template(
        "certificate.html", cert=cert, scene=scene_of(scene_slug) or cert.get("scene"),
        participant_id=participant.get("id"), rank=standing(participant.get("id"), scene_slug),
        global_rank=standing(participant.get("id"), None),
        verify_qr=render.qr_svg(cert["verify_url"]) if cert.get("verify_url") else None,
        page_url=public_url(url_for("pages.certificate", certificate_id=cert["id"])),
        card_path=card_path, card_url=public_url(card_path))


@bp.get("/rankings")
def rankings():
    board = request.args.get("board") if request.args.get("board") in BOARDS else BOARDS[0]
    period = request.args.get("period") if request.args.get("period") in PERIODS else PERIODS[0]
    slug = (request.args.get("scene") or "").strip()[:SCENE_SLUG_MAX] or None
    params = {"board": board, "period": period, "limit": BOARD_LIMIT}
    if slug:
        params["scene"] = slug
    reply = reader().get("ranking", "/api/v1/rankings", params)
    if 400 <= reply.status < 500:
        # The ranking service refuses a scene slug that cannot exist (422): there is no
        # such board to show, which is not the rankings being unavailable.
        return error_page(404)
    scenes_reply = reader().get("calculator", "/api/v1/scenes")
    scenes = (scenes_reply.body or {}).get("items", []) if scenes_reply.ok else []
    me = participant_id_from_request(request)
    mine = standing(me, slug, period) if board == "individual" else None
    items = (reply.body or {}).get("items", []) if reply.ok else []
    on_page = any(item.get("participant_id") == me for item in items) if me else False
    around = []
    if mine and not on_page:
        own = {"rank": mine["rank"], "participant_id": me, "display_name": mine.get("display_name"),
               "kg": mine["kg"]}
        around = sorted([*mine.get("neighbours", []), own], key=lambda item: item["rank"])
    return render_template(
        "rankings.html", board=board, period=period, slug=slug, scene=scene_of(slug),
        scenes=scenes, items=items, total=(reply.body or {}).get("total", 0), me=me, mine=mine,
        around=around, unavailable=not reply.ok), (200 if reply.ok else 503)


@bp.get("/v/<code>")
def verify(code):
    masked = request.args.get("mask") == "1"
    reply = reader().get("certificates", f"/api/v1/certificates/verify/{segment(code)}",
                         {"mask_holder": "true" if masked else "false"})
    if reply.status == 404:
        return render_template("verify.html", found=False, code=code), 404
    if not reply.ok:
        return unavailable(reply)
    cert = reply.body.get("certificate") or {}
    scene_ref = cert.get("scene") or {}
    return render_template("verify.html", found=True, code=code, masked=masked, result=reply.body, cert=cert,
                           scene=scene_of(scene_ref.get("slug")) or scene_ref)


# --- registration -------------------------------------------------------------------------

def asset_versions() -> dict[str, str]:
    """A content hash per static file, appended to its URL so browsers may cache it."""
    versions = {}
    for path in (HERE / "static").rglob("*"):
        if path.is_file():
            versions[path.relative_to(HERE / "static").as_posix()] = \
                hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return versions


def register(app: Flask, upstreams: Upstreams) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", LANGUAGES[0])
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", config.env("GATEWAY_TIMEZONE", "Asia/Shanghai"))
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(
        compile_translations(config.var_dir() / "gateway" / "translations"))
    Babel(app, locale_selector=select_locale)
    versions = asset_versions()

    def asset(filename: str) -> str:
        return url_for("static", filename=filename, v=versions.get(filename))

    app.jinja_env.globals.update(
        asset=asset, lang=lang, html_lang=lambda: HTML_LANG[lang()], languages=LANGUAGES, render=render,
        forms=pages_forms, rank_card_url=rank_card_url, scene_name=lambda s: render.scene_name(s, lang()),
        project_name=lambda p: render.project_name(p, lang()))
    app.jinja_env.filters.update(
        kg=render.kg, money=render.money, number=render.number,
        date=lambda v: format_date(render.parse_date(v), "medium") if render.parse_date(v) else "",
        datetime=lambda v: format_datetime(render.parse_time(v), "medium") if render.parse_time(v) else "")

    @app.after_request
    def vary_on_language(response):
        if response.mimetype == "text/html":
            response.vary.add("Accept-Language")
            response.vary.add("Cookie")
        return response

    @app.errorhandler(404)
    def not_found(exc):
        """A mistyped address in a browser is a page in the guest's language (issue 21); API
        paths and clients that do not ask for HTML first keep the JSON error."""
        accept = request.accept_mimetypes  # a browser's navigation prefers HTML to JSON
        wants_page = accept.quality("text/html") > accept.quality("application/json")
        if wants_page and not request.path.startswith("/api/"):
            return error_page(404)
        return http_exception_response(exc)

    app.extensions["pages_reader"] = ServiceReader(upstreams)
    app.register_blueprint(bp)
    pages_operator.register(app)
