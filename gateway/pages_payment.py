"""The pay page's real payment (WeChat Pay, Alipay): the method by where the page is opened,
the provider the guest chose, and WeChat's silent web OAuth for JSAPI's openid.

Where the page is opened decides the method: inside WeChat's browser (``MicroMessenger`` in
the User-Agent) WeChat Pay JSAPI, in other phone browsers WeChat Pay H5 or Alipay wap (a
link to the provider's cashier), on large screens a QR code (WeChat Pay ``native``, Alipay
``qr``). The page opens the order's trade itself, as its guest (``POST
/api/v1/orders/{id}/checkout`` through the reader), and draws the provider's QR code on the
server: nobody can make the gateway draw a QR code of their own, and no script is needed.

JSAPI needs the guest's openid for the merchant's WeChat app id: the pay page sends WeChat's
browser to ``{WECHAT_OAUTH_BASE}/connect/oauth2/authorize`` (``snsapi_base``, silent) with a
random ``state`` kept in a signed cookie; :func:`oauth_callback` checks it, exchanges the
``code`` at ``{WECHAT_API_BASE_FOR_OAUTH}/sns/oauth2/access_token`` and keeps the openid in a
signed cookie bound to the guest, then returns to the pay page.
"""
from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import requests
from flask import redirect, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeTimedSerializer

from diandian_common import config

from . import pages, pages_render as render
from .participants import participant_id_from_request, secret_key

log = logging.getLogger(__name__)

WECHAT_BROWSER = "MicroMessenger"
PHONE_BROWSER = re.compile(r"Mobi|Android|iPhone|iPod|HarmonyOS", re.IGNORECASE)
# Where the page is opened → the method each provider pays by there.
METHODS = {
    "wechat": {"wechatpay": "jsapi", "alipay": "wap"},
    "phone": {"wechatpay": "h5", "alipay": "wap"},
    "screen": {"wechatpay": "native", "alipay": "qr"},
}
QR_FIELDS = {"native": "code_url", "qr": "qr_code"}
LINK_FIELDS = {"h5": "h5_url", "wap": "pay_url"}
PROVIDER_LABELS = {"wechatpay": _l("WeChat Pay"), "alipay": _l("Alipay")}

OPENID_COOKIE = "dd_wx_openid"
OPENID_MAX_AGE = 30 * 24 * 3600
STATE_COOKIE = "dd_wx_state"
STATE_MAX_AGE = 600  # seconds from the pay page to WeChat's callback
PRODUCTION_OAUTH_BASE = "https://open.weixin.qq.com"
PRODUCTION_OAUTH_API_BASE = "https://api.weixin.qq.com"


@dataclass
class Payment:
    """What the pay page shows of a real payment; empty for the sandbox and paid orders."""
    choices: list[str] = field(default_factory=list)   # the providers the guest may choose
    provider: str | None = None
    method: str | None = None
    qr: render.QrSvg | None = None
    link: str | None = None
    jsapi: str | None = None         # getBrandWCPayRequest's parameters, as JSON
    error: str | None = None
    redirect: str | None = None      # to WeChat's OAuth first
    state_cookie: str | None = None

    def label(self, provider: str | None = None) -> str:
        name = provider or self.provider or ""
        return str(PROVIDER_LABELS.get(name, name))


def where_opened(user_agent: str) -> str:
    if WECHAT_BROWSER in user_agent:
        return "wechat"
    return "phone" if PHONE_BROWSER.search(user_agent) else "screen"


def oauth_settings() -> dict | None:
    """The merchant's WeChat app id and its secret, None unless both are set (no JSAPI)."""
    appid, secret = config.env("WECHATPAY_APPID"), config.env("WECHAT_APP_SECRET")
    if not (appid and secret):
        return None
    return {
        "appid": appid, "secret": secret,
        "authorize": (config.env("WECHAT_OAUTH_BASE") or PRODUCTION_OAUTH_BASE).rstrip("/"),
        "api": (config.env("WECHAT_API_BASE_FOR_OAUTH") or PRODUCTION_OAUTH_API_BASE).rstrip("/"),
    }


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key(), salt=salt)


def openid_of_guest(appid: str) -> str | None:
    """The openid this browser's guest was given for ``appid``, from its signed cookie."""
    raw = request.cookies.get(OPENID_COOKIE)
    participant_id = participant_id_from_request(request)
    if not raw or not participant_id:
        return None
    try:
        kept = _serializer("wechat-openid").loads(raw, max_age=OPENID_MAX_AGE)
    except BadSignature:
        return None
    if not isinstance(kept, dict) or kept.get("p") != participant_id or kept.get("a") != appid:
        return None
    return kept.get("o") if isinstance(kept.get("o"), str) else None


def offered(order: dict, where: str) -> dict[str, str]:
    """Provider → method, in the order the orders service lists its enabled providers."""
    options = (order.get("payment") or {}).get("options") or []
    choices = {}
    for option in options:
        provider = option.get("provider")
        method = METHODS[where].get(provider)
        if method and method in (option.get("methods") or []):
            choices[provider] = method
    if where == "wechat" and choices.get("wechatpay") == "jsapi" and oauth_settings() is None:
        choices["wechatpay"] = "h5"  # no app secret here: no openid, so no JSAPI
    return choices


def prepare(order: dict) -> Payment:
    """The real payment of a pending order that a provider other than the sandbox pays."""
    provider_now = (order.get("payment") or {}).get("provider")
    if order.get("status") != "pending_payment" or provider_now in (None, "sandbox"):
        return Payment()
    choices = offered(order, where_opened(request.headers.get("User-Agent", "")))
    if not choices:
        return Payment()
    asked = request.args.get("provider")
    if asked in choices:
        provider = asked
    else:
        provider = provider_now if provider_now in choices else next(iter(choices))
    payment = Payment(choices=list(choices), provider=provider, method=choices[provider])
    body = {"method": payment.method, "provider": provider}
    if payment.method == "jsapi":
        settings = oauth_settings()
        openid = openid_of_guest(settings["appid"])
        if not openid:
            return _to_wechat_oauth(payment, settings, order["id"], provider)
        body["openid"] = openid
    path = f"/api/v1/orders/{pages.segment(order['id'])}/checkout"
    reply = pages.reader().post_as_guest("orders", path, body)
    if not reply.ok:
        log.warning("checkout of %s by %s:%s answered %s", order["id"], provider, payment.method,
                    reply.status)
        payment.error = _("%(provider)s could not be reached just now; please reload this page to try again.",
                          provider=payment.label())
        return payment
    opened = reply.body
    if payment.method in QR_FIELDS and opened.get(QR_FIELDS[payment.method]):
        payment.qr = render.qr_svg(opened[QR_FIELDS[payment.method]])
    elif payment.method == "h5" and opened.get("h5_url"):
        # WeChat's cashier returns the guest to redirect_url (encoded, appended as WeChat asks).
        back = pages.public_url(url_for("pages.pay", order_id=order["id"]))
        payment.link = f"{opened['h5_url']}&redirect_url={quote(back, safe='')}"
    elif payment.method in LINK_FIELDS and opened.get(LINK_FIELDS[payment.method]):
        payment.link = opened[LINK_FIELDS[payment.method]]
    elif payment.method == "jsapi" and isinstance(opened.get("jsapi"), dict):
        payment.jsapi = json.dumps(opened["jsapi"], separators=(",", ":"))
    else:
        payment.error = _("%(provider)s could not be reached just now; please reload this page to try again.",
                          provider=payment.label())
    return payment


def _to_wechat_oauth(payment: Payment, settings: dict, order_id: str, provider: str) -> Payment:
    state = secrets.token_urlsafe(16)
    payment.state_cookie = _serializer("wechat-state").dumps({"s": state, "o": order_id})
    callback = pages.public_url(url_for("pages.wechat_oauth"))
    query = urlencode({"appid": settings["appid"], "redirect_uri": callback, "response_type": "code",
                       "scope": "snsapi_base", "state": state})
    payment.redirect = f"{settings['authorize']}/connect/oauth2/authorize?{query}#wechat_redirect"
    return payment


def remember(response, payment: Payment):
    """Set the OAuth state cookie of a redirect to WeChat."""
    if payment.state_cookie:
        response.set_cookie(STATE_COOKIE, payment.state_cookie, max_age=STATE_MAX_AGE, httponly=True,
                            samesite="Lax", secure=request.is_secure, path=url_for("pages.wechat_oauth"))
    return response


def oauth_callback():
    """WeChat's browser back from ``/connect/oauth2/authorize`` with ``code`` and ``state``."""
    raw = request.cookies.get(STATE_COOKIE)
    try:
        expected = _serializer("wechat-state").loads(raw, max_age=STATE_MAX_AGE) if raw else None
    except BadSignature:
        expected = None
    state = request.args.get("state", "")
    if not isinstance(expected, dict) or not hmac.compare_digest(str(expected.get("s", "")), state):
        return pages.error_page(400, _("This WeChat sign-in link is not valid here; please open the payment "
                                       "page again."))
    order_id = str(expected.get("o", ""))
    code = request.args.get("code", "")
    settings = oauth_settings()
    participant_id = participant_id_from_request(request)
    if not code or settings is None or not participant_id:
        return pages.error_page(400, _("WeChat did not confirm who you are, so WeChat Pay cannot be used; "
                                       "please open the payment page again."))
    try:
        answer = requests.get(f"{settings['api']}/sns/oauth2/access_token", timeout=(3, 10), params={
            "appid": settings["appid"], "secret": settings["secret"], "code": code,
            "grant_type": "authorization_code"}).json()
    except (requests.RequestException, ValueError):
        log.warning("WeChat's OAuth token endpoint did not answer")
        answer = None
    openid = answer.get("openid") if isinstance(answer, dict) else None
    if not isinstance(openid, str) or not openid:
        if isinstance(answer, dict):
            log.warning("WeChat refused the OAuth code: %s %s", answer.get("errcode"), answer.get("errmsg"))
        return pages.error_page(502, _("WeChat did not confirm who you are, so WeChat Pay cannot be used; "
                                       "please open the payment page again."))
    response = redirect(url_for("pages.pay", order_id=order_id), 303)
    response.set_cookie(OPENID_COOKIE, _serializer("wechat-openid").dumps(
        {"p": participant_id, "a": settings["appid"], "o": openid}), max_age=OPENID_MAX_AGE, httponly=True,
        samesite="Lax", secure=request.is_secure)
    response.delete_cookie(STATE_COOKIE, path=url_for("pages.wechat_oauth"))
    response.headers["Cache-Control"] = "no-store"
    return response
