"""The fake cashier pages the providers' payment links lead to, and the WeixinJSBridge stand-in.

- ``GET /cashier/wechat/<out_trade_no>`` (``code_url`` of a native order, ``h5_url`` of an H5
  order with the merchant's ``&redirect_url=…``): the trade and a "Pay ¥x.xx" button.
- ``GET /cashier/wechat/jsapi?prepay_id=…`` (optionally with the JSAPI invoke parameters
  ``appId``, ``timeStamp``, ``nonceStr``, ``package``, ``signType``, ``paySign``, which are then
  verified against the merchant's key as WeChat does, and ``return_url``).
- ``GET /cashier/alipay/<out_trade_no>`` (``qr_code`` of a precreate: opening it is scanning;
  where ``alipay.trade.wap.pay``/``page.pay`` URLs land).
- ``POST …/pay`` marks the trade paid and sends the notification, then goes to the merchant's
  ``redirect_url`` (WeChat H5), ``return_url`` (Alipay page payments, with the signed return
  parameters; JSAPI from ``/cashier/wechat/jsapi``) or back to the page.

A browser is one emulated buyer (a cookie): its WeChat openid per appid and its Alipay account.
"""
from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for

from . import alipay, crypto, wechat
from .context import USER_COOKIE, alipay_buyer, browser_user, current, new_browser_user, wechat_openid
from .store import NotPayable

bp = Blueprint("cashier", __name__)

STATE_LABELS = {
    "NOTPAY": ("待支付 · Awaiting payment", "open"), "WAIT_BUYER_PAY": ("待支付 · Awaiting payment", "open"),
    "SUCCESS": ("支付成功 · Paid", "paid"), "TRADE_SUCCESS": ("支付成功 · Paid", "paid"),
    "TRADE_FINISHED": ("交易完成 · Finished", "paid"), "REFUND": ("已支付，已退款 · Paid, refunded", "paid"),
    "CLOSED": ("订单已关闭 · This order is closed", "closed"),
    "TRADE_CLOSED": ("交易已关闭 · This trade is closed", "closed"),
    "EXPIRED": ("订单已过期 · This order has expired", "closed"),
}
BRANDS = {"wechat": ("微信支付 · WeChat Pay", "#07c160"), "alipay": ("支付宝 · Alipay", "#1677ff")}


def with_user(response, user: str):
    if request.cookies.get(USER_COOKIE) != user:
        response.set_cookie(USER_COOKIE, user, max_age=365 * 86400, httponly=True, samesite="Lax")
    return response


def page(provider: str, trade: dict, status: int = 200, message: str | None = None,
         hidden: dict | None = None, cancel_url: str | None = None, embedded: bool = False, user: str = ""):
    em = current()
    if provider == "wechat":
        merchant = em.merchants.wechat_merchant(trade["mchid"])
        description = trade["description"]
        payer = trade.get("payer_openid") or wechat_openid(trade["appid"], user)
        state = "EXPIRED" if trade["state"] == "NOTPAY" and wechat.expired(trade) else trade["state"]
        payable, number = state == "NOTPAY", trade.get("transaction_id")
        kind = {"NATIVE": "扫码支付 · Native (QR code)", "MWEB": "H5 支付 · H5",
                "JSAPI": "公众号支付 · JSAPI", "APP": "App 支付 · App"}[trade["trade_type"]]
    else:
        merchant = em.merchants.alipay_merchant(trade["app_id"])
        alipay.refresh(trade)
        description, state = trade["subject"], trade["state"]
        payer = trade.get("buyer_logon_id") or alipay_buyer(user)[1]
        payable, number = state == "WAIT_BUYER_PAY", trade["trade_no"] if trade.get("gmt_payment") else None
        kind = {"alipay.trade.precreate": "当面付扫码 · QR code (precreate)",
                "alipay.trade.wap.pay": "手机网站支付 · Mobile web (wap)",
                "alipay.trade.page.pay": "电脑网站支付 · Desktop web (page)",
                }.get(trade.get("method"), trade.get("method"))
    label, state_class = STATE_LABELS[state]
    brand, color = BRANDS[provider]
    html = render_template(
        "cashier.html", provider=provider, brand=brand, color=color,
        merchant=merchant.name if merchant else "",
        amount=f"{trade['total'] / 100:.2f}", description=description, out_trade_no=trade["out_trade_no"],
        number=number, kind=kind, payer=payer, payable=payable, state_label=label, state_class=state_class,
        message=message, hidden=hidden or {}, cancel_url=cancel_url, embedded=embedded,
        pay_action=url_for(f"cashier.{provider}_pay", out_trade_no=trade["out_trade_no"]))
    return with_user(Response(html, status, content_type="text/html; charset=utf-8"), user)


def not_found(what: str):
    return render_template("message.html", title="找不到订单 · No such trade",
                           message=f"模拟器中没有这笔订单 · the emulator has no trade {what}"), 404


# --- WeChat Pay ---------------------------------------------------------------------------------

@bp.get("/cashier/wechat/<out_trade_no>")
def wechat_page(out_trade_no):
    em, user = current(), browser_user() or new_browser_user()
    found = em.store.find_trade(wechat.PROVIDER, out_trade_no, request.args.get("mchid"))
    if found is None:
        return not_found(out_trade_no)
    trade = found[1]
    redirect_url = request.args.get("redirect_url")
    embedded = request.args.get("embedded") == "1"
    hidden = {"mchid": trade["mchid"], "redirect_url": redirect_url or "",
              "embedded": "1" if embedded else ""}
    return page("wechat", trade, hidden=hidden, cancel_url=redirect_url, embedded=embedded, user=user)


@bp.get("/cashier/wechat/jsapi")
def wechat_jsapi_page():
    em, user = current(), browser_user() or new_browser_user()
    prepay_id = request.args.get("prepay_id") or request.args.get("package", "").removeprefix("prepay_id=")
    found = em.store.find_by(wechat.PROVIDER, "prepay_id", prepay_id) if prepay_id else None
    if found is None:
        return not_found(f"prepay_id={prepay_id}")
    trade = found[1]
    if request.args.get("paySign"):
        problem = jsapi_signature_problem(trade)
        if problem:
            return render_template("message.html", title="支付验证签名失败 · JSAPI payment refused",
                                   code="paySign", message=problem), 400
    return_url = request.args.get("return_url")
    embedded = request.args.get("embedded") == "1"
    hidden = {"mchid": trade["mchid"], "redirect_url": return_url or "",
              "embedded": "1" if embedded else ""}
    return page("wechat", trade, hidden=hidden, cancel_url=return_url, embedded=embedded, user=user)


def jsapi_signature_problem(trade: dict) -> str | None:
    """What is wrong with the ``getBrandWCPayRequest`` parameters, or None: ``paySign`` is the
    merchant's SHA256withRSA over ``appId\\ntimeStamp\\nnonceStr\\npackage\\n``."""
    args = request.args
    if args.get("appId") != trade["appid"]:
        return "appId 与下单的 appid 不一致 · appId is not the order's appid"
    if args.get("package") != f"prepay_id={trade['prepay_id']}":
        return "package 应为 prepay_id=… · package must be prepay_id=<the order's prepay_id>"
    if args.get("signType") != "RSA":
        return "signType 应为 RSA · signType must be RSA"
    merchant = current().merchants.wechat_merchant(trade["mchid"])
    message = "".join(f"{args.get(name, '')}\n" for name in ("appId", "timeStamp", "nonceStr", "package"))
    if merchant is None or not crypto.verify(merchant.public_key, message, args.get("paySign", "")):
        return ("paySign 验证失败 · paySign does not verify with the merchant's API certificate over "
                "appId\\ntimeStamp\\nnonceStr\\npackage\\n")
    return None


@bp.post("/cashier/wechat/<out_trade_no>/pay")
def wechat_pay(out_trade_no):
    em, user = current(), browser_user() or new_browser_user()
    found = em.store.find_trade(wechat.PROVIDER, out_trade_no, request.form.get("mchid") or None)
    if found is None:
        return not_found(out_trade_no)
    key, trade = found
    redirect_url = request.form.get("redirect_url") or None
    embedded = request.form.get("embedded") == "1"
    try:
        trade = wechat.pay(em, key, openid=wechat_openid(trade["appid"], user))
    except NotPayable:
        return page("wechat", trade, 409, message="这笔订单不能再支付 · this order cannot be paid",
                    cancel_url=redirect_url, embedded=embedded, user=user)
    if redirect_url and not embedded:
        return with_user(redirect(redirect_url, 302), user)
    target = url_for("cashier.wechat_page", out_trade_no=out_trade_no, mchid=trade["mchid"],
                     embedded="1" if embedded else None, paid="1")
    return with_user(redirect(target, 303), user)


# --- Alipay -------------------------------------------------------------------------------------

@bp.get("/cashier/alipay/<out_trade_no>")
def alipay_page(out_trade_no):
    em, user = current(), browser_user() or new_browser_user()
    with em.store.lock:
        found = em.store.find_trade(alipay.PROVIDER, out_trade_no, request.args.get("app_id"))
        if found is None:
            return not_found(out_trade_no)
        trade = found[1]
        if not trade["exists"]:   # a precreated trade exists once its QR code is scanned
            trade["exists"] = True
            em.store.save()
    hidden = {"app_id": trade["app_id"]}
    return page("alipay", trade, hidden=hidden, cancel_url=trade.get("quit_url"), user=user)


@bp.post("/cashier/alipay/<out_trade_no>/pay")
def alipay_pay(out_trade_no):
    em, user = current(), browser_user() or new_browser_user()
    found = em.store.find_trade(alipay.PROVIDER, out_trade_no, request.form.get("app_id") or None)
    if found is None:
        return not_found(out_trade_no)
    key, trade = found
    try:
        trade = alipay.pay(em, key, user)
    except NotPayable:
        return page("alipay", trade, 409, message="这笔交易不能再支付 · this trade cannot be paid",
                    cancel_url=trade.get("quit_url"), user=user)
    back = alipay.return_url(em, trade)
    if back:
        return with_user(redirect(back, 302), user)
    page_url = url_for("cashier.alipay_page", out_trade_no=out_trade_no, app_id=trade["app_id"])
    return with_user(redirect(page_url, 303), user)


# --- WeixinJSBridge stand-in ---------------------------------------------------------------------

JSBRIDGE = r"""/* Payment emulator: a stand-in for WeChat's in-app WeixinJSBridge, for pages opened in an
   ordinary browser. getBrandWCPayRequest opens the emulator's cashier over the page; the callback
   gets {err_msg: "get_brand_wcpay_request:ok"} once paid, ":cancel" when closed. */
(function () {
  if (window.WeixinJSBridge && !window.WeixinJSBridge.emulated) return;
  var script = document.currentScript;
  var base = script ? new URL(script.src).origin : "";
  window.WeixinJSBridge = {
    emulated: true,
    invoke: function (name, params, callback) {
      callback = callback || function () {};
      if (name !== "getBrandWCPayRequest") { callback({err_msg: name + ":fail emulator"}); return; }
      var query = new URLSearchParams(params || {});
      query.set("prepay_id", String((params || {})["package"] || "").replace(/^prepay_id=/, ""));
      query.set("embedded", "1");
      var frame = document.createElement("iframe");
      frame.src = base + "/cashier/wechat/jsapi?" + query.toString();
      frame.style.cssText = "position:fixed;inset:0;width:100%;height:100%;border:0;" +
        "z-index:2147483647;background:#fff";
      function done(event) {
        if (event.origin !== base || !event.data || !event.data.paymentEmulator) return;
        window.removeEventListener("message", done);
        frame.remove();
        callback({err_msg: event.data.err_msg});
      }
      window.addEventListener("message", done);
      document.body.appendChild(frame);
    }
  };
  var ready = function () { document.dispatchEvent(new Event("WeixinJSBridgeReady")); };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else setTimeout(ready, 0);
})();
"""


@bp.get("/_emulator/weixin-jsbridge.js")
def jsbridge():
    return Response(JSBRIDGE, content_type="application/javascript; charset=utf-8")
