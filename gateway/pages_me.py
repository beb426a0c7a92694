"""The guest's own page, /me: their certificates, ranks and footprints, and moving them to
another device (docs/contract.md §1).

A guest is nobody but their signed participant cookie, so /me reads the services *as that
guest* (the participant assertion): each service answers for the cookie's participant
only. No cookie, or a forged one, is simply a guest with nothing yet. Each part shows on
its own: a service that does not answer leaves its part saying so, the others still show.

Moving to another device (gateway/transfers.py): a POST form gives a one-time code and
link; the other device types the code here or opens the link, confirms, and gets the same
cookie. Forms carry a CSRF token: a random value in an httponly SameSite=Strict cookie
limited to /me and, in the form, its HMAC with the gateway's secret (another site can
neither read the one nor compute the other). Claims are rate-limited per address
(``RATE_LIMIT_TRANSFER_CLAIMS``); only failed claims count, so a guest who gets it right
is never held up by those who did not.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from flask import Blueprint, Flask, current_app, g, make_response, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_limiter import Limiter
from sqlalchemy.exc import SQLAlchemyError

from . import participants
from .limits import address_key, limit_from_env
from .pages import error_page, lang, public_url, reader
from .pages_render import parse_time, qr_svg, scene_name
from .transfers import MAX_CODE_INPUT, Transfers, grouped
from .transfers import TRANSFER_TTL as TTL

bp = Blueprint("me", __name__)

PAGE_SIZE = 10            # certificates and orders, footprints: each "show more" adds a page
MAX_CURSOR_LENGTH = 64    # an order or estimate id; a longer "show more" cursor is no cursor
RANK_SCENES = 20
CSRF_COOKIE = "dd_me_csrf"
CSRF_COOKIE_PATH = "/me"
CLAIM_LIMIT = ("RATE_LIMIT_TRANSFER_CLAIMS", "10/minute;60/hour")
COMPLETED, PENDING_PAYMENT = "completed", "pending_payment"
NOT_A_CLAIM = _l("This code is wrong or has expired. Ask for a new one on your other device.")
SPENT_LINK = _l("This link has been used or has expired. Ask for a new one on your other device.")


def transfers() -> Transfers:
    return current_app.extensions["device_transfers"]


# --- CSRF ---------------------------------------------------------------------------------

def _csrf_mac(nonce: str) -> str:
    key = participants.secret_key().encode()
    return hmac.new(key, f"me-form:{nonce}".encode(), hashlib.sha256).hexdigest()


def csrf_token() -> str:
    """The token this page's forms carry; the cookie it is checked against is set after
    the request (:func:`keep_csrf_cookie`) when the browser has none yet."""
    if "me_csrf_nonce" not in g:
        nonce = request.cookies.get(CSRF_COOKIE, "")
        g.me_csrf_new = not (0 < len(nonce) <= 64)
        g.me_csrf_nonce = secrets.token_urlsafe(24) if g.me_csrf_new else nonce
    return _csrf_mac(g.me_csrf_nonce)


@bp.after_request
def keep_csrf_cookie(response):
    if g.get("me_csrf_new"):
        response.set_cookie(CSRF_COOKIE, g.me_csrf_nonce, path=CSRF_COOKIE_PATH, httponly=True,
                            samesite="Strict", secure=request.is_secure)
    return response


def csrf_ok() -> bool:
    nonce, sent = request.cookies.get(CSRF_COOKIE, ""), request.form.get("csrf", "")
    return 0 < len(nonce) <= 64 and hmac.compare_digest(sent.encode(), _csrf_mac(nonce).encode())


def expired_form():
    return error_page(403, _l("The form has expired; reload the page and try again."))


def no_store(body, status: int = 200):
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- reading the guest's things -----------------------------------------------------------

def cursor(name: str) -> str | None:
    value = request.args.get(name) or None
    return value if value and len(value) <= MAX_CURSOR_LENGTH else None


def scene_names() -> dict[str, dict]:
    reply = reader().get("calculator", "/api/v1/scenes")
    return {s["slug"]: s for s in (reply.body or {}).get("items", []) if s.get("slug")} if reply.ok else {}


def order_rows(orders: list[dict], now: datetime) -> tuple[list[dict], list[dict], list[dict]]:
    """(certificates, orders waiting for payment, orders being completed) of a page of orders."""
    certificates, unpaid, underway = [], [], []
    for order in orders:
        if order.get("certificate"):
            certificates.append(order)
        elif order.get("status") == PENDING_PAYMENT:
            expires_at = parse_time(order.get("expires_at"))
            if expires_at is not None and expires_at.tzinfo is not None and expires_at > now:
                unpaid.append(order)
        elif order.get("status") not in ("cancelled", "failed", COMPLETED):
            underway.append(order)
    return certificates, unpaid, underway


def page(participant_id: str | None, *, transfer=None, code_error=None, status: int = 200):
    """/me as ``participant_id`` (None: nobody yet), with a move just created or a code refused."""
    parts = {"orders": None, "estimates": None, "standings": None}
    failed = set()
    if participant_id:
        params = {"orders": {"limit": PAGE_SIZE, "before": cursor("orders_before")},
                  "estimates": {"limit": PAGE_SIZE, "before": cursor("estimates_before")},
                  "standings": {"limit": RANK_SCENES}}
        for part, (service, path) in {"orders": ("orders", "/api/v1/my-orders"),
                                      "estimates": ("calculator", "/api/v1/my-estimates"),
                                      "standings": ("ranking", "/api/v1/my-standings")}.items():
            reply = reader().get(service, path, {k: v for k, v in params[part].items() if v}, as_guest=True)
            if reply.ok:
                parts[part] = reply.body
            elif reply.status == 422 and part != "standings":
                parts[part] = {"items": [], "next_before": None}  # a "show more" cursor not theirs
            else:
                failed.add(part)
    orders = (parts["orders"] or {}).get("items", [])
    certificates, unpaid, underway = order_rows(orders, datetime.now(UTC))
    estimates = (parts["estimates"] or {}).get("items", [])
    standings = parts["standings"] or {}
    names = scene_names() if participant_id else {}
    anything = bool(orders or estimates or standings.get("overall"))
    body = render_template(
        "me.html", participant=participant_id, anything=anything, failed=failed,
        certificates=certificates, unpaid=unpaid, underway=underway, estimates=estimates,
        orders_more=(parts["orders"] or {}).get("next_before"),
        estimates_more=(parts["estimates"] or {}).get("next_before"),
        overall=standings.get("overall"), scene_standings=standings.get("scenes", []),
        # The scene in the page's language when the calculator knows it, else as recorded.
        scene_label=lambda slug, recorded=None: scene_name(names[slug], lang()) if slug in names
        else (recorded or slug),
        transfer=transfer, code_error=code_error, csrf=csrf_token(), code_max=MAX_CODE_INPUT,
        ttl_minutes=int(TTL.total_seconds() // 60))
    return no_store(body, status)


# --- views --------------------------------------------------------------------------------

@bp.get("/me")
def me():
    return page(participants.participant_id_from_request(request))


@bp.post("/me/transfer")
def create_transfer():
    if not csrf_ok():
        return expired_form()
    participant_id = participants.participant_id_from_request(request)
    if participant_id is None:
        return error_page(400, _l("There is nothing on this device to move yet."))
    try:
        created = transfers().create(participant_id)
    except SQLAlchemyError:
        return error_page(503)
    link = public_url(url_for("me.claim_link", token=created.token))
    transfer = {"code": grouped(created.code), "link": link, "qr": qr_svg(link)}
    return page(participant_id, transfer=transfer)


@bp.post("/me/claim")
def claim_code():
    if not csrf_ok():
        return expired_form()
    try:
        participant_id = transfers().claim_code(request.form.get("code", ""))
    except SQLAlchemyError:
        return error_page(503)
    if participant_id is None:
        return page(participants.participant_id_from_request(request), code_error=NOT_A_CLAIM, status=400)
    return participants.give_cookie(redirect(url_for("me.me"), 303), participant_id)


@bp.get("/me/claim/<token>")
def claim_link(token):
    """The link's page asks before it claims: a chat app fetching the link to preview it
    must not spend it."""
    try:
        live = transfers().is_live(token)
    except SQLAlchemyError:
        return error_page(503)
    if not live:
        return no_store(render_template("me_claim.html", live=False, message=SPENT_LINK), 404)
    return no_store(render_template("me_claim.html", live=True, token=token, csrf=csrf_token(),
                                    replaces=participants.participant_id_from_request(request) is not None))


@bp.post("/me/claim/<token>")
def claim_link_confirmed(token):
    if not csrf_ok():
        return expired_form()
    try:
        participant_id = transfers().claim_token(token)
    except SQLAlchemyError:
        return error_page(503)
    if participant_id is None:
        return no_store(render_template("me_claim.html", live=False, message=SPENT_LINK), 404)
    return participants.give_cookie(redirect(url_for("me.me"), 303), participant_id)


@bp.errorhandler(429)
def too_many_claims(exc):
    response = make_response(error_page(429, _l("Too many attempts. Wait a minute and try again.")))
    response.headers["Retry-After"] = str(int(getattr(exc, "retry_after", 60) or 60))
    return response


def register(app: Flask, limiter: Limiter) -> None:
    app.extensions["device_transfers"] = Transfers(app.extensions["keys"].database, participants.secret_key())
    claim_limit = limit_from_env(*CLAIM_LIMIT)
    # Only failed claims count: a right code redirects (303).
    claims = limiter.shared_limit(lambda: claim_limit, scope="transfer-claims", key_func=address_key,
                                  deduct_when=lambda response: response.status_code != 303,
                                  override_defaults=False, error_message="too many attempts")
    app.register_blueprint(bp)
    # Flask-Limiter checks a decorated limit in the view's wrapper: wrap this app's views.
    for endpoint in ("me.claim_code", "me.claim_link_confirmed"):
        app.view_functions[endpoint] = claims(app.view_functions[endpoint])
