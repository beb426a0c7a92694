"""Test controls under ``/_emulator/`` (no provider has them; the emulator listens on loopback
unless told otherwise). ``<provider>`` is ``wechatpay`` (or ``wechat``) or ``alipay``; a
trade is named by the merchant's out_trade_no, with ``?merchant=<mchid or app_id>`` when two
merchants used the same one.

- ``GET  /_emulator/``: this list, and the emulator's keys.
- ``GET  /_emulator/trades[?provider=…]``: every trade with its refunds and notifications
  (each delivery attempt: time, status, answer).
- ``GET  /_emulator/trades/<provider>/<out_trade_no>``: one trade.
- ``POST /_emulator/trades/<provider>/<out_trade_no>/pay`` ``{"notify": false}``: the buyer pays;
  with ``notify`` false the notification is lost (kept, not sent) until ``…/notify``.
- ``POST /_emulator/trades/<provider>/<out_trade_no>/notify`` ``{"id": …}`` (optional): send the
  trade's last notification (or the one with that id) once more, now, and answer the attempt
  (a lost one is sent for the first time; a delivered one is a duplicate, as providers send).
- ``POST /_emulator/reset``: forget every trade and refund (keys and merchants stay).
- ``GET  /_emulator/keys``: the platform public keys, public key id and certificate.
- ``GET  /healthz``.
"""
from __future__ import annotations

import json

from flask import Blueprint, jsonify, request

from . import alipay, wechat
from .context import current
from .store import NotPayable

bp = Blueprint("controls", __name__)

PROVIDERS = {"wechatpay": wechat.PROVIDER, "wechat": wechat.PROVIDER, "alipay": alipay.PROVIDER}


def em():
    return current()


def error(status: int, code: str, message: str):
    return jsonify(error={"code": code, "message": message}), status


def keys_view() -> dict:
    keys = em().keys
    return {"wechatpay": {"public_key_id": keys.wechat_public_key_id, "public_key": keys.wechat_public_pem,
                          "certificate_serial_no": keys.wechat_cert_serial,
                          "certificate": keys.wechat_cert_pem},
            "alipay": {"public_key": keys.alipay_public_pem}}


def trade_view(key: str, trade: dict) -> dict:
    view = {k: v for k, v in trade.items() if k != "fingerprint"}
    view["key"] = key
    if trade["provider"] == wechat.PROVIDER:
        view["refunds"] = [r for r in em().store.refunds.values() if r["trade_key"] == key]
    notifications = []
    for notification in trade.get("notifications", []):
        shown = dict(notification)
        if "resource" in shown:
            shown["resource"] = json.loads(shown["resource"])
        notifications.append(shown)
    view["notifications"] = notifications
    return view


def find(provider: str, out_trade_no: str):
    name = PROVIDERS.get(provider)
    if name is None:
        return None
    return em().store.find_trade(name, out_trade_no, request.args.get("merchant"))


@bp.get("/_emulator/")
def index():
    controls = " ".join(__doc__.split("\n- ", 1)[1].split()).split(" - ")
    return jsonify(emulator="payment emulator: WeChat Pay API v3 and Alipay (RSA2), no money moves",
                   controls=controls, keys=keys_view())


@bp.get("/_emulator/keys")
def keys():
    return jsonify(keys_view())


@bp.get("/_emulator/trades")
def trades():
    provider = PROVIDERS.get(request.args.get("provider", ""), None)
    with em().store.lock:
        return jsonify(trades=[trade_view(key, trade) for key, trade in em().store.trades.items()
                               if provider is None or trade["provider"] == provider])


@bp.get("/_emulator/trades/<provider>/<out_trade_no>")
def trade(provider, out_trade_no):
    with em().store.lock:
        found = find(provider, out_trade_no)
        if found is None:
            return error(404, "not_found", f"no {provider} trade {out_trade_no}")
        return jsonify(trade_view(*found))


@bp.post("/_emulator/trades/<provider>/<out_trade_no>/pay")
def pay(provider, out_trade_no):
    found = find(provider, out_trade_no)
    if found is None:
        return error(404, "not_found", f"no {provider} trade {out_trade_no}")
    notify = (request.get_json(silent=True) or {}).get("notify", True) is not False
    key, current_trade = found
    try:
        if current_trade["provider"] == wechat.PROVIDER:
            wechat.pay(em(), key, notify=notify)
        else:
            alipay.pay(em(), key, "", notify=notify)
    except NotPayable as exc:
        return error(409, "not_payable", f"the trade is {exc}, not waiting for a payment")
    with em().store.lock:
        return jsonify(trade_view(key, em().store.trades[key]))


@bp.post("/_emulator/trades/<provider>/<out_trade_no>/notify")
def notify(provider, out_trade_no):
    found = find(provider, out_trade_no)
    if found is None:
        return error(404, "not_found", f"no {provider} trade {out_trade_no}")
    key, current_trade = found
    wanted = (request.get_json(silent=True) or {}).get("id")
    notifications = current_trade.get("notifications", [])
    chosen = next((n for n in notifications if n["id"] == wanted), None) if wanted else \
        (notifications[-1] if notifications else None)
    if wanted and chosen is None:
        return error(404, "not_found", f"the trade has no notification {wanted}")
    if chosen is None:
        return error(409, "no_notification", "the trade has no notification: it is not paid yet "
                     "(POST …/pay first), or it has no notify_url")
    attempt = em().dispatcher.attempt(key, chosen["id"])
    return jsonify(notification_id=chosen["id"], attempt=attempt)


@bp.post("/_emulator/reset")
def reset():
    em().store.reset()
    with em().tokens_lock:
        em().tokens.clear()
    return jsonify(status="reset")


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")
