"""WeChat Pay API v3 (direct merchants) and the WeChat OAuth that JSAPI payments start with.

Every ``/v3/`` call must carry the merchant's ``Authorization: WECHATPAY2-SHA256-RSA2048
mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…"``, the signature being
SHA256withRSA by the merchant's API certificate key over ``METHOD\\nURL\\ntimestamp\\nnonce\\nbody\\n``
(URL: path and query as sent); anything else is ``401 SIGN_ERROR``. Every answer is signed
by the platform key over ``timestamp\\nnonce\\nbody\\n`` in ``Wechatpay-Timestamp``,
``Wechatpay-Nonce``, ``Wechatpay-Signature``, ``Wechatpay-Serial`` and
``Wechatpay-Signature-Type``. ``Wechatpay-Serial`` follows WeChat Pay's rule for merchants in
either mode: the platform public key id when the request named it in its own
``Wechatpay-Serial`` header (what the SDK does in public-key mode), else the platform
certificate's serial. A trade's and a refund's notifications are signed the way their
creating request was answered.
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import re
import threading
import time
import uuid
from urllib.parse import quote, urlencode, urlsplit

from flask import Blueprint, Response, g, jsonify, redirect, render_template, request

from . import crypto
from .context import USER_COOKIE, Emulator, browser_user, current, new_browser_user, wechat_openid
from .money import FEE_BPS, fee_fen
from .store import CHINA, NotPayable, now, parse_time, rfc3339, trade_key

bp = Blueprint("wechatpay", __name__)

PROVIDER = "wechatpay"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
TIMESTAMP_TOLERANCE_S = 300
TRADE_TYPES = {"native": "NATIVE", "h5": "MWEB", "jsapi": "JSAPI", "app": "APP"}
STATE_DESC = {"NOTPAY": "订单未支付", "SUCCESS": "支付成功", "CLOSED": "订单已关闭", "REFUND": "转入退款"}
OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-*|]{6,32}$")
OUT_REFUND_NO = re.compile(r"^[0-9A-Za-z_\-*|@]{1,64}$")
AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')
BILL_TTL_S = 30
OAUTH_CODE_TTL_S = 300


class WeChatError(Exception):
    def __init__(self, status: int, code: str, message: str, detail: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail


def param_error(field: str, zh: str, en: str, value=None) -> WeChatError:
    detail = {"location": "body", "field": field}
    if value is not None:
        detail["value"] = value
    return WeChatError(400, "PARAM_ERROR", f"{zh} · {en}", detail)


def sign_error(zh: str, en: str) -> WeChatError:
    return WeChatError(401, "SIGN_ERROR", f"{zh} · {en}")


# --- signing ----------------------------------------------------------------------------------

def signature_headers(em: Emulator, body: str, signing: str) -> dict:
    timestamp, nonce = str(int(time.time())), crypto.random_string(32).upper()
    serial = em.keys.wechat_public_key_id if signing == "public_key" else em.keys.wechat_cert_serial
    return {"Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": crypto.sign(em.keys.wechat_private, f"{timestamp}\n{nonce}\n{body}\n"),
            "Wechatpay-Serial": serial, "Wechatpay-Signature-Type": SIGNATURE_TYPE}


def compact(payload) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def signed(payload, status: int = 200) -> Response:
    body = "" if payload is None else compact(payload)
    headers = signature_headers(current(), body, g.get("signing", "certificate"))
    headers["Request-ID"] = uuid.uuid4().hex
    response = Response(body.encode(), status=status, headers=headers)
    if payload is None:
        del response.headers["Content-Type"]
    else:
        response.headers["Content-Type"] = "application/json; charset=utf-8"
    return response


@bp.errorhandler(WeChatError)
def wechat_error(error: WeChatError):
    payload = {"code": error.code, "message": error.message}
    if error.detail:
        payload["detail"] = error.detail
    return signed(payload, error.status)


def request_uri() -> str:
    """The request target as the client signed it: path and query, as sent."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        return raw
    query = request.query_string.decode()
    return quote(request.path) + (f"?{query}" if query else "")


@bp.before_request
def authenticate():
    if not request.path.startswith("/v3/"):
        return
    em = current()
    g.signing = "public_key" if request.headers.get("Wechatpay-Serial") == em.keys.wechat_public_key_id \
        else "certificate"
    scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
    if scheme != SIGNATURE_TYPE:
        raise sign_error("Http头Authorization值格式错误，认证类型应为WECHATPAY2-SHA256-RSA2048",
                         "the Authorization header must be WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,"
                         "signature=…,timestamp=…,serial_no=…")
    fields = dict(AUTH_PARAM.findall(rest))
    missing = [name for name in ("mchid", "nonce_str", "signature", "timestamp", "serial_no")
               if not fields.get(name)]
    if missing:
        raise sign_error(f"Http头Authorization值格式错误，缺少{','.join(missing)}",
                         f"the Authorization header lacks {', '.join(missing)}")
    merchant = em.merchants.wechat_merchant(fields["mchid"])
    if merchant is None:
        raise sign_error("商户号不存在", f"merchant {fields['mchid']} is not registered with the emulator")
    if fields["serial_no"].upper() != merchant.cert_serial_no:
        raise sign_error("商户证书序列号有误",
                         "serial_no is not the serial of the merchant's API certificate")
    try:
        timestamp = int(fields["timestamp"])
    except ValueError:
        raise sign_error("时间戳格式错误", "timestamp is not a number of seconds") from None
    if abs(time.time() - timestamp) > TIMESTAMP_TOLERANCE_S:
        raise sign_error("请求时间戳与当前时间相差过大", "timestamp is more than 5 minutes off the clock")
    body = request.get_data(cache=True).decode("utf-8", errors="replace")
    message = f"{request.method}\n{request_uri()}\n{fields['timestamp']}\n{fields['nonce_str']}\n{body}\n"
    if not crypto.verify(merchant.public_key, message, fields["signature"]):
        raise sign_error("签名错误，请检查签名串与签名私钥",
                         "the signature does not verify with the merchant's API certificate over "
                         "METHOD\\nURL\\ntimestamp\\nnonce\\nbody\\n")
    serial = request.headers.get("Wechatpay-Serial")
    if serial and serial not in (em.keys.wechat_public_key_id, em.keys.wechat_cert_serial):
        raise WeChatError(400, "PARAM_ERROR",
                          "Wechatpay-Serial 错误，不是微信支付公钥ID或平台证书序列号 · Wechatpay-Serial "
                          "names neither the platform public key id nor the platform certificate")
    g.merchant = merchant


# --- validation ---------------------------------------------------------------------------------

def json_body() -> dict:
    try:
        body = json.loads(request.get_data(cache=True) or b"")
    except ValueError:
        raise WeChatError(400, "PARAM_ERROR", "请求体不是合法的JSON · the body is not JSON") from None
    if not isinstance(body, dict):
        raise WeChatError(400, "PARAM_ERROR", "请求体应为JSON对象 · the body must be a JSON object")
    return body


def text(body: dict, name: str, low: int, high: int, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise param_error(name, f"缺少必填参数 {name}", f"{name} is required")
        return None
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise param_error(name, f"{name} 应为长度 {low}–{high} 的字符串", f"{name} must be a string of "
                          f"{low} to {high} characters", value)
    return value


def local_http_allowed(url: str) -> bool:
    return current().dispatcher.destinations.allowed(url)


def check_notify_url(body: dict, required: bool) -> str | None:
    url = text(body, "notify_url", 1, 255, required)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise param_error("notify_url", "notify_url 格式错误", "notify_url must be an absolute URL", url)
    if parts.scheme == "http" and not local_http_allowed(url):
        raise param_error("notify_url", "notify_url 必须为 https 地址",
                          "notify_url must be https (plain http only to the emulator's allowed local "
                          "destinations)", url)
    if parts.query:
        raise param_error("notify_url", "notify_url 不能携带参数", "notify_url must not carry a query", url)
    return url


def amount(body: dict, refund: bool = False) -> dict:
    value = body.get("amount")
    if not isinstance(value, dict):
        raise param_error("amount", "缺少必填参数 amount", "amount is required ({total, currency})")
    names = ("refund", "total") if refund else ("total",)
    for name in names:
        number = value.get(name)
        if not isinstance(number, int) or isinstance(number, bool):
            raise param_error(f"amount.{name}", f"amount.{name} 应为整数（单位：分）",
                              f"amount.{name} must be an integer number of fen", number)
        if number < 1:
            raise param_error(f"amount.{name}", f"amount.{name} 值低于最小值 1",
                              f"amount.{name} must be at least 1 fen", number)
    currency = value.get("currency")
    if currency is None and refund:
        raise param_error("amount.currency", "缺少必填参数 amount.currency", "amount.currency is required")
    if currency not in (None, "CNY"):
        raise param_error("amount.currency", "目前只支持人民币 CNY", "the only currency is CNY", currency)
    return value


# --- payments -----------------------------------------------------------------------------------

def transaction_view(trade: dict) -> dict:
    view = {"appid": trade["appid"], "mchid": trade["mchid"], "out_trade_no": trade["out_trade_no"],
            "trade_type": trade["trade_type"], "trade_state": trade["state"],
            "trade_state_desc": STATE_DESC[trade["state"]], "attach": trade.get("attach") or "",
            "amount": {"total": trade["total"], "currency": "CNY", "payer_currency": "CNY"}}
    if trade.get("transaction_id"):
        view.update(transaction_id=trade["transaction_id"], bank_type="OTHERS",
                    success_time=trade["success_time"], payer={"openid": trade["payer_openid"]})
        view["amount"]["payer_total"] = trade["total"]
    return view


def create_answer(em: Emulator, kind: str, trade: dict) -> dict:
    cashier = f"{em.base_url()}/cashier/wechat/{trade['out_trade_no']}?mchid={trade['mchid']}"
    if kind == "native":
        return {"code_url": cashier}
    if kind == "h5":
        return {"h5_url": f"{cashier}&prepay_id={trade['prepay_id']}"}
    return {"prepay_id": trade["prepay_id"]}


@bp.post("/v3/pay/transactions/<kind>")
def create_transaction(kind):
    if kind not in TRADE_TYPES:
        raise WeChatError(404, "NOT_FOUND", f"无效的请求路径 · no such API: {request.path}")
    em, merchant, body = current(), g.merchant, json_body()
    appid = text(body, "appid", 1, 32)
    mchid = text(body, "mchid", 1, 32)
    if mchid != merchant.mchid:
        raise param_error("mchid", "mchid 与请求头中的商户号不一致",
                          "mchid differs from the Authorization's", mchid)
    if appid not in merchant.apps:
        raise WeChatError(400, "APPID_MCHID_NOT_MATCH",
                          "appid和mch_id不匹配 · appid is not bound to this mchid")
    description = text(body, "description", 1, 127)
    out_trade_no = text(body, "out_trade_no", 6, 32)
    if not OUT_TRADE_NO.match(out_trade_no):
        raise param_error("out_trade_no", "out_trade_no 只能是数字、大小写字母_-|*",
                          "out_trade_no may hold only digits, letters and _-|*", out_trade_no)
    notify_url = check_notify_url(body, required=True)
    total = amount(body)["total"]
    attach = text(body, "attach", 1, 128, required=False)
    time_expire = text(body, "time_expire", 1, 64, required=False)
    if time_expire is not None:
        try:
            if parse_time(time_expire).tzinfo is None:
                raise ValueError
        except ValueError:
            raise param_error("time_expire", "time_expire 应为 RFC3339 格式", "time_expire must be RFC 3339, "
                              "e.g. 2024-06-08T10:34:56+08:00", time_expire) from None
    openid = None
    if kind == "jsapi":
        payer = body.get("payer")
        openid = payer.get("openid") if isinstance(payer, dict) else None
        if not isinstance(openid, str) or not 1 <= len(openid) <= 128:
            raise param_error("payer.openid", "JSAPI 下单缺少 payer.openid",
                              "a JSAPI order needs payer.openid")
    scene_info = body.get("scene_info")
    if kind == "h5":
        h5_info = scene_info.get("h5_info") if isinstance(scene_info, dict) else None
        if not isinstance(scene_info, dict) or not scene_info.get("payer_client_ip"):
            raise param_error("scene_info.payer_client_ip", "H5 下单缺少 scene_info.payer_client_ip",
                              "an H5 order needs scene_info.payer_client_ip")
        if not isinstance(h5_info, dict) or not h5_info.get("type"):
            raise param_error("scene_info.h5_info.type", "H5 下单缺少 scene_info.h5_info.type",
                              "an H5 order needs scene_info.h5_info.type (Wap, iOS, Android)")
    fingerprint = compact({"kind": kind, "appid": appid, "description": description, "notify_url": notify_url,
                           "total": total, "attach": attach, "openid": openid, "time_expire": time_expire})
    key = trade_key(PROVIDER, mchid, out_trade_no)
    with em.store.lock:
        trade = em.store.trades.get(key)
        if trade is not None:
            if trade["state"] in ("SUCCESS", "REFUND"):
                raise WeChatError(400, "ORDERPAID", "该订单已支付 · this out_trade_no is paid already")
            if trade["state"] == "CLOSED":
                raise WeChatError(400, "ORDER_CLOSED",
                                  "订单已关闭 · this out_trade_no is closed; use a new one")
            if trade["fingerprint"] != fingerprint:
                raise WeChatError(403, "OUT_TRADE_NO_USED", "商户订单号重复，且参数与首次下单不一致 · "
                                  "out_trade_no was used with other parameters")
        else:
            created = now()
            trade = {"provider": PROVIDER, "mchid": mchid, "appid": appid, "out_trade_no": out_trade_no,
                     "trade_type": TRADE_TYPES[kind], "kind": kind, "description": description,
                     "attach": attach, "notify_url": notify_url, "total": total, "currency": "CNY",
                     "time_expire": time_expire, "payer_openid": openid,
                     "prepay_id": "wx" + created.strftime("%d%H%M%S") + crypto.random_digits(26),
                     "state": "NOTPAY", "transaction_id": None, "success_time": None,
                     "create_time": rfc3339(created), "fingerprint": fingerprint, "signing": g.signing,
                     "refunded": 0, "notifications": []}
            em.store.trades[key] = trade
            em.store.save()
        answer = create_answer(em, kind, trade)
    return signed(answer)


def merchant_trade(out_trade_no: str) -> tuple[str, dict]:
    mchid = request.args.get("mchid")
    if not mchid:
        raise WeChatError(400, "PARAM_ERROR", "缺少参数 mchid · the query needs mchid")
    if mchid != g.merchant.mchid:
        raise WeChatError(400, "PARAM_ERROR", "mchid 与请求头中的商户号不一致 · mchid differs from the "
                          "Authorization's")
    found = current().store.find_trade(PROVIDER, out_trade_no, mchid)
    if found is None:
        raise WeChatError(404, "ORDER_NOT_EXIST", "订单不存在 · no such trade")
    return found


@bp.get("/v3/pay/transactions/out-trade-no/<out_trade_no>")
def query_by_out_trade_no(out_trade_no):
    _, trade = merchant_trade(out_trade_no)
    return signed(transaction_view(trade))


@bp.get("/v3/pay/transactions/id/<transaction_id>")
def query_by_transaction_id(transaction_id):
    mchid = request.args.get("mchid")
    if mchid != g.merchant.mchid:
        raise WeChatError(400, "PARAM_ERROR", "mchid 缺失或与请求头中的商户号不一致 · mchid is missing or "
                          "differs from the Authorization's")
    found = current().store.find_by(PROVIDER, "transaction_id", transaction_id)
    if found is None or found[1]["mchid"] != mchid:
        raise WeChatError(404, "ORDER_NOT_EXIST", "订单不存在 · no such trade")
    return signed(transaction_view(found[1]))


@bp.post("/v3/pay/transactions/out-trade-no/<out_trade_no>/close")
def close_transaction(out_trade_no):
    em, body = current(), json_body()
    if body.get("mchid") != g.merchant.mchid:
        raise param_error("mchid", "mchid 缺失或与请求头中的商户号不一致",
                          "mchid is missing or differs from the Authorization's", body.get("mchid"))
    with em.store.lock:
        found = em.store.find_trade(PROVIDER, out_trade_no, g.merchant.mchid)
        if found is None:
            raise WeChatError(404, "ORDER_NOT_EXIST", "订单不存在 · no such trade")
        trade = found[1]
        if trade["state"] in ("SUCCESS", "REFUND"):
            raise WeChatError(400, "ORDERPAID",
                              "订单已支付，不能关闭 · the trade is paid and cannot be closed")
        trade["state"] = "CLOSED"
        trade["close_time"] = rfc3339(now())
        em.store.save()
    return signed(None, 204)


def expired(trade: dict) -> bool:
    return bool(trade.get("time_expire")) and parse_time(trade["time_expire"]) < now()


def pay(em: Emulator, key: str, openid: str | None = None, notify: bool = True) -> dict:
    """The buyer pays: the trade is SUCCESS and its TRANSACTION.SUCCESS notification is sent
    (or, with ``notify`` false, kept as lost until a test control sends it)."""
    with em.store.lock:
        trade = em.store.trades[key]
        if trade["state"] != "NOTPAY":
            raise NotPayable(trade["state"])
        if expired(trade):
            raise NotPayable("EXPIRED")
        paid = now()
        trade.update(state="SUCCESS", success_time=rfc3339(paid),
                     transaction_id="42000" + paid.strftime("%Y%m%d") + crypto.random_digits(15),
                     payer_openid=trade.get("payer_openid") or openid
                     or wechat_openid(trade["appid"], "emulator"))
        notification = {"id": str(uuid.uuid4()), "kind": "payment", "event_type": "TRANSACTION.SUCCESS",
                        "summary": "支付成功", "original_type": "transaction", "url": trade["notify_url"],
                        "resource": compact(transaction_view(trade)), "create_time": rfc3339(paid),
                        "signing": trade.get("signing", "certificate")}
        em.store.save()
    em.dispatcher.add(key, notification, deliver=notify)
    return trade


def notification_request(em: Emulator):
    """The dispatcher's builder: the event, its resource encrypted with the merchant's APIv3
    key, signed by the platform key at each attempt."""

    def build(trade: dict, notification: dict) -> tuple[dict, bytes]:
        merchant = em.merchants.wechat_merchant(trade["mchid"])
        resource = crypto.aes_gcm_encrypt(merchant.apiv3_key, notification["resource"],
                                          notification["original_type"])
        event = {"id": notification["id"], "create_time": notification["create_time"],
                 "resource_type": "encrypt-resource", "event_type": notification["event_type"],
                 "summary": notification["summary"],
                 "resource": {"original_type": notification["original_type"], **resource}}
        body = compact(event)
        headers = signature_headers(em, body, notification.get("signing", "certificate"))
        headers.update({"Content-Type": "application/json", "User-Agent": "Mozilla/4.0 (payment emulator)"})
        return headers, body.encode()

    return build


def accepted(response) -> bool:
    return 200 <= response.status_code < 300


# --- refunds ------------------------------------------------------------------------------------

def refund_view(refund: dict) -> dict:
    view = {"refund_id": refund["refund_id"], "out_refund_no": refund["out_refund_no"],
            "transaction_id": refund["transaction_id"], "out_trade_no": refund["out_trade_no"],
            "channel": "ORIGINAL", "user_received_account": "支付用户零钱",
            "create_time": refund["create_time"],
            "status": refund["status"], "funds_account": refund.get("funds_account") or "AVAILABLE",
            "amount": {"total": refund["total"], "refund": refund["refund"], "payer_total": refund["total"],
                       "payer_refund": refund["refund"], "settlement_total": refund["total"],
                       "settlement_refund": refund["refund"], "discount_refund": 0, "currency": "CNY",
                       "refund_fee": 0},
            "promotion_detail": []}
    if refund.get("success_time"):
        view["success_time"] = refund["success_time"]
    return view


@bp.post("/v3/refund/domestic/refunds")
def create_refund():
    em, merchant, body = current(), g.merchant, json_body()
    out_refund_no = text(body, "out_refund_no", 1, 64)
    if not OUT_REFUND_NO.match(out_refund_no):
        raise param_error("out_refund_no", "out_refund_no 只能是数字、大小写字母_-|*@",
                          "out_refund_no may hold only digits, letters and _-|*@", out_refund_no)
    transaction_id = text(body, "transaction_id", 1, 32, required=False)
    out_trade_no = text(body, "out_trade_no", 6, 32, required=False)
    if not transaction_id and not out_trade_no:
        raise param_error("out_trade_no", "transaction_id 和 out_trade_no 必须二选一",
                          "one of transaction_id and out_trade_no is required")
    reason = text(body, "reason", 1, 80, required=False)
    notify_url = check_notify_url(body, required=False)
    money = amount(body, refund=True)
    funds_account = text(body, "funds_account", 1, 32, required=False)
    with em.store.lock:
        found = (em.store.find_by(PROVIDER, "transaction_id", transaction_id) if transaction_id
                 else em.store.find_trade(PROVIDER, out_trade_no, merchant.mchid))
        if found is None or found[1]["mchid"] != merchant.mchid:
            raise WeChatError(404, "RESOURCE_NOT_EXISTS", "订单不存在 · no such trade")
        key, trade = found
        refund_key = trade_key(PROVIDER, merchant.mchid, out_refund_no)
        existing = em.store.refunds.get(refund_key)
        if existing is not None:
            if existing["out_trade_no"] != trade["out_trade_no"] or existing["refund"] != money["refund"]:
                raise WeChatError(400, "INVALID_REQUEST",
                                  "退款单号已存在，且参数与首次请求不一致 · out_refund_no "
                                  "was used with other parameters")
            return signed(refund_view(existing))
        if trade["state"] not in ("SUCCESS", "REFUND"):
            raise WeChatError(400, "INVALID_REQUEST", "订单未支付，不能退款 · the trade is not paid")
        if money["total"] != trade["total"]:
            raise WeChatError(400, "INVALID_REQUEST",
                              "订单金额与原订单不一致 · amount.total is not the trade's "
                              f"total ({trade['total']})")
        if trade.get("refunded", 0) + money["refund"] > trade["total"]:
            raise WeChatError(400, "INVALID_REQUEST",
                              "申请退款金额超过订单可退金额 · the refunds would exceed the "
                              f"trade's total ({trade['total'] - trade.get('refunded', 0)} fen left)")
        created = now()
        refund = {"provider": PROVIDER, "mchid": merchant.mchid, "out_refund_no": out_refund_no,
                  "refund_id": "50" + created.strftime("%Y%m%d") + crypto.random_digits(19),
                  "out_trade_no": trade["out_trade_no"], "transaction_id": trade["transaction_id"],
                  "trade_key": key, "refund": money["refund"], "total": trade["total"], "reason": reason,
                  "notify_url": notify_url, "funds_account": funds_account, "status": "PROCESSING",
                  "create_time": rfc3339(created), "success_time": None, "signing": g.signing}
        em.store.refunds[refund_key] = refund
        trade["refunded"] = trade.get("refunded", 0) + money["refund"]
        trade["state"] = "REFUND"
        em.store.save()
        view = refund_view(refund)
    schedule_refund(em, refund_key)
    return signed(view)


def schedule_refund(em: Emulator, refund_key: str) -> None:
    timer = threading.Timer(em.refund_seconds, complete_refund, (em, refund_key))
    timer.daemon = True
    timer.start()


def complete_refund(em: Emulator, refund_key: str) -> None:
    """PROCESSING → SUCCESS, and the REFUND.SUCCESS notification when the refund named a notify_url."""
    with em.store.lock:
        refund = em.store.refunds.get(refund_key)
        if refund is None or refund["status"] != "PROCESSING":
            return
        refund["status"] = "SUCCESS"
        refund["success_time"] = rfc3339(now())
        em.store.save()
        if not refund.get("notify_url") or refund["trade_key"] not in em.store.trades:
            return
        resource = {"mchid": refund["mchid"], "out_trade_no": refund["out_trade_no"],
                    "transaction_id": refund["transaction_id"], "out_refund_no": refund["out_refund_no"],
                    "refund_id": refund["refund_id"], "refund_status": "SUCCESS",
                    "success_time": refund["success_time"], "user_received_account": "支付用户零钱",
                    "amount": {"total": refund["total"], "refund": refund["refund"],
                               "payer_total": refund["total"], "payer_refund": refund["refund"]}}
        notification = {"id": str(uuid.uuid4()), "kind": "refund", "out_refund_no": refund["out_refund_no"],
                        "event_type": "REFUND.SUCCESS", "summary": "退款成功", "original_type": "refund",
                        "url": refund["notify_url"], "resource": compact(resource),
                        "create_time": refund["success_time"],
                        "signing": refund.get("signing", "certificate")}
    em.dispatcher.add(refund["trade_key"], notification)


def resume_refunds(em: Emulator) -> None:
    with em.store.lock:
        processing = [key for key, refund in em.store.refunds.items() if refund["status"] == "PROCESSING"]
    for key in processing:
        schedule_refund(em, key)


@bp.get("/v3/refund/domestic/refunds/<out_refund_no>")
def query_refund(out_refund_no):
    refund = current().store.refunds.get(trade_key(PROVIDER, g.merchant.mchid, out_refund_no))
    if refund is None:
        raise WeChatError(404, "RESOURCE_NOT_EXISTS", "退款单不存在 · no such refund")
    return signed(refund_view(refund))


# --- platform certificates ----------------------------------------------------------------------

@bp.get("/v3/certificates")
def certificates():
    em = current()
    certificate = em.keys.wechat_cert
    encrypted = crypto.aes_gcm_encrypt(g.merchant.apiv3_key, em.keys.wechat_cert_pem, "certificate")
    return signed({"data": [{"serial_no": em.keys.wechat_cert_serial,
                             "effective_time": rfc3339(certificate.not_valid_before_utc),
                             "expire_time": rfc3339(certificate.not_valid_after_utc),
                             "encrypt_certificate": encrypted}]})


# --- bills --------------------------------------------------------------------------------------

BILL_COMMON = ("交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号",
               "用户标识", "交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额")
BILL_HEADERS = {
    "ALL": ",".join(BILL_COMMON + (
        "微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态", "商品名称",
        "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注")),
    "SUCCESS": ",".join(BILL_COMMON + ("商品名称", "商户数据包", "手续费", "费率", "订单金额", "费率备注")),
    "REFUND": ",".join(BILL_COMMON + (
        "退款申请时间", "退款成功时间", "微信退款单号", "商户退款单号", "退款金额", "充值券退款金额",
        "退款类型", "退款状态", "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额",
        "费率备注")),
}
BILL_SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"


def yuan(fen: int) -> str:
    return f"{fen / 100:.2f}"


def fee(fen: int) -> float:
    return fee_fen(fen) / 100


def bill_time(value: str) -> str:
    return parse_time(value).astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def trade_bill(em: Emulator, mchid: str, day: dt.date, bill_type: str) -> str | None:
    """The day's trade bill in WeChat Pay's format (every field after a backtick, a summary
    after the rows), or None when the day has no trades."""
    rows = []
    with em.store.lock:
        trades = [t for t in em.store.trades.values() if t["provider"] == PROVIDER and t["mchid"] == mchid]
        refunds = [r for r in em.store.refunds.values() if r["mchid"] == mchid and r.get("success_time")]
        by_trade = {t["out_trade_no"]: t for t in trades}
        for trade in trades:
            if bill_type in ("ALL", "SUCCESS") and trade.get("success_time") \
                    and parse_time(trade["success_time"]).astimezone(CHINA).date() == day:
                rows.append(bill_row(trade, None))
        for refund in refunds:
            trade = by_trade.get(refund["out_trade_no"])
            if bill_type in ("ALL", "REFUND") and trade \
                    and parse_time(refund["success_time"]).astimezone(CHINA).date() == day:
                rows.append(bill_row(trade, refund))
    if not rows:
        return None
    rows.sort(key=lambda row: row["交易时间"])
    header = BILL_HEADERS[bill_type].split(",")
    lines = [BILL_HEADERS[bill_type]]
    lines += [",".join("`" + str(row.get(column, "")) for column in header) for row in rows]
    settled = sum(row["_settled"] for row in rows)
    refunded = sum(row["_refunded"] for row in rows)
    fees = sum(row["_fee"] for row in rows)
    ordered = sum(row["_ordered"] for row in rows)
    lines.append(BILL_SUMMARY)
    lines.append(",".join("`" + value for value in (
        str(len(rows)), yuan(settled), yuan(refunded), "0.00", f"{fees:.5f}", yuan(ordered), yuan(refunded))))
    return "\r\n".join(lines) + "\r\n"


def bill_row(trade: dict, refund: dict | None) -> dict:
    row = {"交易时间": bill_time(trade["success_time"]), "公众账号ID": trade["appid"],
           "商户号": trade["mchid"], "特约商户号": "0", "设备号": "", "微信订单号": trade["transaction_id"],
           "商户订单号": trade["out_trade_no"], "用户标识": trade.get("payer_openid") or "",
           "交易类型": trade["trade_type"], "付款银行": "OTHERS", "货币种类": "CNY", "代金券金额": "0.00",
           "充值券退款金额": "0.00", "商品名称": trade["description"],
           "商户数据包": trade.get("attach") or "", "费率": f"{FEE_BPS / 10_000:.2%}", "费率备注": ""}
    if refund is None:
        row.update({"交易状态": "SUCCESS", "应结订单金额": yuan(trade["total"]), "微信退款单号": "0",
                    "商户退款单号": "0", "退款金额": "0.00", "退款类型": "", "退款状态": "",
                    "手续费": f"{fee(trade['total']):.5f}", "订单金额": yuan(trade["total"]),
                    "申请退款金额": "0.00", "_settled": trade["total"], "_refunded": 0,
                    "_fee": fee(trade["total"]), "_ordered": trade["total"]})
    else:
        row.update({"交易时间": bill_time(refund["success_time"]), "交易状态": "REFUND",
                    "应结订单金额": "0.00", "退款申请时间": bill_time(refund["create_time"]),
                    "退款成功时间": bill_time(refund["success_time"]),
                    "微信退款单号": refund["refund_id"], "商户退款单号": refund["out_refund_no"],
                    "退款金额": yuan(refund["refund"]), "退款类型": "ORIGINAL", "退款状态": "SUCCESS",
                    "手续费": f"{-fee(refund['refund']):.5f}", "订单金额": "0.00",
                    "申请退款金额": yuan(refund["refund"]), "_settled": 0, "_refunded": refund["refund"],
                    "_fee": -fee(refund["refund"]), "_ordered": 0})
    return row


@bp.get("/v3/bill/tradebill")
def request_trade_bill():
    em = current()
    bill_date = request.args.get("bill_date", "")
    try:
        day = dt.date.fromisoformat(bill_date)
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", bill_date):
            raise ValueError
    except ValueError:
        raise WeChatError(400, "PARAM_ERROR",
                          "bill_date 格式应为 YYYY-MM-DD · bill_date must be YYYY-MM-DD") from None
    if day > now().date():
        raise WeChatError(400, "INVALID_REQUEST", "账单日期不能晚于今天 · bill_date is in the future")
    bill_type = request.args.get("bill_type") or "ALL"
    if bill_type not in BILL_HEADERS:
        raise WeChatError(400, "PARAM_ERROR",
                          "bill_type 应为 ALL、SUCCESS 或 REFUND · bill_type must be ALL, SUCCESS or REFUND")
    tar_type = request.args.get("tar_type") or None
    if tar_type not in (None, "GZIP"):
        raise WeChatError(400, "PARAM_ERROR", "tar_type 只能为 GZIP · tar_type can only be GZIP")
    content = trade_bill(em, g.merchant.mchid, day, bill_type)
    if content is None:
        raise WeChatError(400, "NO_STATEMENT_EXIST",
                          "账单文件不存在，当日没有交易 · no bill: no trades that day")
    raw = content.encode("utf-8")
    payload = gzip.compress(raw) if tar_type == "GZIP" else raw
    token = em.put_token("wechat-bill", {"mchid": g.merchant.mchid, "body": payload, "gzip": bool(tar_type)},
                         BILL_TTL_S)
    return signed({"hash_type": "SHA1", "hash_value": hashlib.sha1(raw).hexdigest(),
                   "download_url": f"{request.host_url.rstrip('/')}/v3/billdownload/file?token={token}"})


@bp.get("/v3/billdownload/file")
def download_bill():
    """The bill file (a signed request; the answer, as WeChat Pay's, is not signed: the hash
    in the bill request's answer vouches for it)."""
    entry = current().get_token("wechat-bill", request.args.get("token", ""))
    if entry is None:
        raise WeChatError(400, "INVALID_REQUEST",
                          "下载链接已失效，请重新申请账单 · the download link expired "
                          f"({BILL_TTL_S} s) or is unknown")
    if entry["mchid"] != g.merchant.mchid:
        raise WeChatError(403, "NO_AUTH", "无权下载该账单 · the bill is another merchant's")
    return Response(entry["body"], 200, content_type="application/octet-stream" if entry["gzip"]
                    else "text/plain; charset=utf-8")


@bp.route("/v3/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown_api(rest):
    raise WeChatError(404, "NOT_FOUND",
                      f"无效的请求路径 · the emulator has no API {request.method} /v3/{rest}")


# --- WeChat OAuth (official accounts' web pages, for JSAPI payments' openid) ---------------------

def oauth_error_page(message: str):
    return render_template("message.html", title="微信授权错误 · WeChat OAuth error", message=message), 400


@bp.get("/connect/oauth2/authorize")
def oauth_authorize():
    em = current()
    appid = request.args.get("appid", "")
    redirect_uri = request.args.get("redirect_uri", "")
    if em.merchants.wechat_app(appid) is None:
        return oauth_error_page(f"appid 参数错误 · unknown appid {appid!r}")
    if request.args.get("response_type") != "code":
        return oauth_error_page("response_type 参数错误，应为 code · response_type must be code")
    scope = request.args.get("scope", "")
    if scope not in ("snsapi_base", "snsapi_userinfo"):
        return oauth_error_page("scope 参数错误或没有 scope 权限 · "
                                "scope must be snsapi_base or snsapi_userinfo")
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return oauth_error_page("redirect_uri 参数错误 · redirect_uri must be an absolute http(s) URL")
    user = browser_user() or new_browser_user()
    code = em.put_token("oauth-code", {"appid": appid, "openid": wechat_openid(appid, user), "scope": scope},
                        OAUTH_CODE_TTL_S)
    query = urlencode({"code": code, "state": request.args.get("state", "")})
    response = redirect(f"{redirect_uri}{'&' if parts.query else '?'}{query}", 302)
    response.set_cookie(USER_COOKIE, user, max_age=365 * 86400, httponly=True, samesite="Lax")
    return response


@bp.get("/sns/oauth2/access_token")
def oauth_access_token():
    em = current()
    appid = request.args.get("appid", "")
    app = em.merchants.wechat_app(appid)
    if app is None:
        return jsonify(errcode=40013, errmsg="invalid appid")
    if request.args.get("secret") != app[1]:
        return jsonify(errcode=40125, errmsg="invalid appsecret")
    if request.args.get("grant_type") != "authorization_code":
        return jsonify(errcode=40002, errmsg="invalid grant_type")
    code = request.args.get("code", "")
    entry = em.get_token("oauth-code", code, consume=True)
    if entry is None:
        used = em.get_token("oauth-code-used", code)
        if used:
            return jsonify(errcode=40163, errmsg="code been used")
        return jsonify(errcode=40029, errmsg="invalid code")
    if entry["appid"] != appid:
        return jsonify(errcode=40029, errmsg="invalid code")
    with em.tokens_lock:
        em.tokens[code] = ("oauth-code-used", {"used": True}, time.time() + OAUTH_CODE_TTL_S)
    return jsonify(access_token=crypto.random_string(88), expires_in=7200,
                   refresh_token=crypto.random_string(88), openid=entry["openid"], scope=entry["scope"])
