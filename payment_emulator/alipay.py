"""Alipay's open platform gateway (``/gateway.do``), RSA2 only, as python-alipay-sdk speaks it.

A request is the public parameters (``app_id``, ``method``, ``charset``, ``sign_type``,
``timestamp``, ``version``, ``notify_url``/``return_url``, ``biz_content`` as JSON) and ``sign``:
SHA256withRSA by the application's private key over every other non-empty parameter,
sorted by name, joined as ``k=v`` with ``&`` (values not URL-encoded). It may come as the
query of a GET (what the SDK sends) or as a form POST.

Answers are ``{"<method with _>_response": {...}, "sign": "…"}``, the signature being over
the exact text of the ``*_response`` object. Business failures are signed answers with code
``40004`` and a ``sub_code`` (``ACQ.TRADE_NOT_EXIST``…); failures to authenticate
(``40001``/``40002``, ``isv.*``) are not signed, as Alipay's are not.

Notifications (``notify_type=trade_status_sync``) are POSTed form-encoded to the trade's
``notify_url`` and signed over the sorted non-empty parameters without ``sign`` and
``sign_type``; the merchant answers the plain text ``success``, or they are sent again.
"""
from __future__ import annotations

import calendar
import datetime as dt
import io
import json
import re
import uuid
import zipfile
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, redirect, render_template, request

from . import crypto
from .context import Emulator, alipay_buyer, current
from .money import fee_fen
from .store import CHINA, NotPayable, alipay_time, now, parse_time, rfc3339, trade_key

bp = Blueprint("alipay", __name__)

PROVIDER = "alipay"
PAGE_METHODS = ("alipay.trade.wap.pay", "alipay.trade.page.pay")
BILL_TTL_S = 30
OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-]{1,64}$")
STATES_PAID = ("TRADE_SUCCESS", "TRADE_FINISHED")
DEFAULT_TIMEOUT = {"alipay.trade.precreate": "2h"}
DEFAULT_TIMEOUT_ANY = "15d"


class SystemError_(Exception):
    """Refused before any business rule: not signed (``40001``/``40002``)."""

    def __init__(self, code: str, sub_code: str, sub_msg: str):
        super().__init__(sub_msg)
        self.code, self.sub_code, self.sub_msg = code, sub_code, sub_msg
        self.msg = "Missing Required Arguments" if code == "40001" else "Invalid Arguments"


class BusinessError(Exception):
    """A signed ``40004 Business Failed`` answer."""

    def __init__(self, sub_code: str, sub_msg: str):
        super().__init__(sub_msg)
        self.sub_code, self.sub_msg = sub_code, sub_msg


def invalid(field: str, zh: str, en: str) -> BusinessError:
    return BusinessError("ACQ.INVALID_PARAMETER", f"参数无效：{field} {zh} · invalid {field}: {en}")


# --- signing ------------------------------------------------------------------------------------

def sign_content(params: dict, exclude=("sign",)) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in exclude and v not in ("", None))


def signed_params(em: Emulator, params: dict) -> dict:
    """Notification and return parameters, signed as Alipay signs them (without sign, sign_type)."""
    params = {k: v for k, v in params.items() if v not in ("", None)}
    params["sign"] = crypto.sign(em.keys.alipay_private, sign_content(params, exclude=("sign", "sign_type")))
    params["sign_type"] = "RSA2"
    return params


def answer(method: str, content: dict, sign: bool = True) -> Response:
    name = "error_response" if method is None else method.replace(".", "_") + "_response"
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    body = f'{{"{name}":{text}'
    if sign:
        body += f',"sign":"{crypto.sign(current().keys.alipay_private, text)}"'
    body += "}"
    return Response(body.encode("utf-8"), 200, content_type="application/json;charset=utf-8")


# --- the gateway --------------------------------------------------------------------------------

def authenticate(em: Emulator, params: dict):
    for name, sub in (("app_id", "isv.missing-app-id"), ("method", "isv.missing-method"),
                      ("sign_type", "isv.missing-signature-type"), ("sign", "isv.missing-signature"),
                      ("timestamp", "isv.missing-timestamp"), ("version", "isv.missing-version")):
        if not params.get(name):
            raise SystemError_("40001", sub, f"缺少{name}参数 · {name} is missing")
    merchant = em.merchants.alipay_merchant(params["app_id"])
    if merchant is None:
        raise SystemError_("40002", "isv.invalid-app-id",
                           "无效的AppID参数 · app_id is not registered with the emulator")
    if params.get("charset", "utf-8").lower() != "utf-8":
        raise SystemError_("40002", "isv.invalid-charset", "字符集错误，仅支持 utf-8 · charset must be utf-8")
    if params["sign_type"] != "RSA2":
        raise SystemError_("40002", "isv.invalid-signature-type",
                           "无效签名类型，仅支持 RSA2 · sign_type must be RSA2")
    if params["version"] != "1.0":
        raise SystemError_("40002", "isv.invalid-version", "版本号错误，应为 1.0 · version must be 1.0")
    try:
        dt.datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise SystemError_("40002", "isv.invalid-timestamp", "非法的时间戳参数，格式为 yyyy-MM-dd HH:mm:ss · "
                           "timestamp must be yyyy-MM-dd HH:mm:ss") from None
    content = sign_content(params)
    if not crypto.verify(merchant.public_key, content, params["sign"]):
        raise SystemError_("40002", "isv.invalid-signature",
                           "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，"
                           f"网关生成的验签字符串为：{content}")
    return merchant


def biz_content(params: dict) -> dict:
    raw = params.get("biz_content") or "{}"
    try:
        value = json.loads(raw)
    except ValueError:
        raise invalid("biz_content", "不是合法的JSON", "not JSON") from None
    if not isinstance(value, dict):
        raise invalid("biz_content", "应为JSON对象", "must be a JSON object")
    return value


@bp.route("/gateway.do", methods=["GET", "POST"])
def gateway():
    em = current()
    params = {name: request.values.get(name) for name in request.values.keys()}
    method = params.get("method") or ""
    page = method in PAGE_METHODS
    handler = SERVER_METHODS.get(method)
    try:
        if method and not page and handler is None:
            authenticate(em, {**params, "method": method})
            raise SystemError_("40002", "isv.invalid-method",
                               f"不存在的方法名 · no method {method!r} in the emulator")
        merchant = authenticate(em, params)
        if page:
            return start_page_payment(em, merchant, method, params, biz_content(params))
        content = handler(em, merchant, biz_content(params), params)
        return answer(method, {"code": "10000", "msg": "Success", **content})
    except SystemError_ as error:
        if page:
            return error_page(error.sub_code, error.sub_msg)
        content = {"code": error.code, "msg": error.msg, "sub_code": error.sub_code, "sub_msg": error.sub_msg}
        return answer(method if handler else None, content, sign=False)
    except BusinessError as error:
        if page:
            return error_page(error.sub_code, error.sub_msg)
        return answer(method, {"code": "40004", "msg": "Business Failed", "sub_code": error.sub_code,
                               "sub_msg": error.sub_msg})


def error_page(code: str, message: str):
    return render_template("message.html", title="支付宝 · 出错了 · Alipay error", code=code,
                           message=message), 400


# --- trades -------------------------------------------------------------------------------------

def fen(value, field: str) -> int:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise invalid(field, "应为金额（元）", "must be an amount in yuan") from None
    if not number.is_finite() or number != number.quantize(Decimal("0.01")):
        raise invalid(field, "最多两位小数", "has more than two decimals")
    if not Decimal("0.01") <= number <= Decimal("100000000"):
        raise invalid(field, "取值范围 [0.01,100000000]", "must be between 0.01 and 100000000")
    return int(number * 100)


def yuan(amount_fen: int) -> str:
    return f"{amount_fen / 100:.2f}"


def timeout_at(created: dt.datetime, express: str) -> dt.datetime:
    """Alipay's ``timeout_express``: ``90m``, ``2h``, ``3d`` or ``1c`` (the end of the day)."""
    match = re.fullmatch(r"(\d+)([mhdc])", express or "")
    if not match:
        raise invalid("timeout_express", "格式为 1m～15d", "must be like 90m, 2h, 3d or 1c")
    number, unit = int(match.group(1)), match.group(2)
    if unit == "c":
        return dt.datetime.combine(created.date() + dt.timedelta(days=1), dt.time(), CHINA)
    return created + dt.timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: number})


def refresh(trade: dict) -> None:
    """An unpaid trade past its timeout is closed."""
    if trade["state"] == "WAIT_BUYER_PAY" and trade.get("timeout_at") \
            and parse_time(trade["timeout_at"]) < now():
        trade["state"] = "TRADE_CLOSED"


def new_trade_no(moment: dt.datetime) -> str:
    return moment.strftime("%Y%m%d") + "2200" + crypto.random_digits(16)


def place(em: Emulator, merchant, method: str, biz: dict, params: dict, exists: bool) -> dict:
    """Create the trade (or find the same one again) for precreate and the page payments."""
    out_trade_no = biz.get("out_trade_no")
    if not isinstance(out_trade_no, str) or not OUT_TRADE_NO.match(out_trade_no):
        raise invalid("out_trade_no", "必填，最长64位字母、数字、下划线",
                      "is required: up to 64 letters, digits, _ or -")
    total = fen(biz.get("total_amount"), "total_amount")
    subject = biz.get("subject")
    if not isinstance(subject, str) or not 1 <= len(subject) <= 256:
        raise invalid("subject", "必填，最长256个字符", "is required, up to 256 characters")
    for name in ("notify_url", "return_url"):
        url = params.get(name)
        if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname):
            raise invalid(name, "应为 http(s) 地址", "must be an absolute http(s) URL")
    express = biz.get("timeout_express") or biz.get("qr_code_timeout_express") \
        or DEFAULT_TIMEOUT.get(method, DEFAULT_TIMEOUT_ANY)
    created = now()
    deadline = timeout_at(created, express)
    fingerprint = json.dumps({"total": total, "subject": subject}, ensure_ascii=False)
    key = trade_key(PROVIDER, merchant.app_id, out_trade_no)
    with em.store.lock:
        trade = em.store.trades.get(key)
        if trade is not None:
            refresh(trade)
            if trade["state"] in STATES_PAID:
                raise BusinessError("ACQ.TRADE_HAS_SUCCESS", "交易已被支付 · the trade is paid already")
            if trade["state"] == "TRADE_CLOSED":
                raise BusinessError("ACQ.TRADE_HAS_CLOSE",
                                    "交易已经关闭 · the trade is closed; use a new out_trade_no")
            if trade["fingerprint"] != fingerprint:
                raise BusinessError("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改 · out_trade_no was used with "
                                    "another amount or subject")
            trade.update(method=method, notify_url=params.get("notify_url") or trade.get("notify_url"),
                         return_url=params.get("return_url"), quit_url=biz.get("quit_url"),
                         exists=trade["exists"] or exists)
        else:
            trade = {"provider": PROVIDER, "app_id": merchant.app_id, "seller_id": merchant.seller_id,
                     "out_trade_no": out_trade_no, "trade_no": new_trade_no(created), "subject": subject,
                     "body": biz.get("body") if isinstance(biz.get("body"), str) else None, "total": total,
                     "product_code": biz.get("product_code"), "method": method,
                     "notify_url": params.get("notify_url"), "return_url": params.get("return_url"),
                     "quit_url": biz.get("quit_url"), "state": "WAIT_BUYER_PAY", "exists": exists,
                     "create_time": rfc3339(created), "timeout_at": rfc3339(deadline), "gmt_payment": None,
                     "buyer_user_id": None, "buyer_logon_id": None, "refunded": 0, "refunds": {},
                     "fingerprint": fingerprint, "notifications": []}
            em.store.trades[key] = trade
        em.store.save()
        return trade


def cashier_url(em: Emulator, trade: dict) -> str:
    return f"{em.base_url()}/cashier/alipay/{trade['out_trade_no']}?app_id={trade['app_id']}"


def precreate(em: Emulator, merchant, biz: dict, params: dict) -> dict:
    trade = place(em, merchant, "alipay.trade.precreate", biz, params, exists=False)
    return {"out_trade_no": trade["out_trade_no"], "qr_code": cashier_url(em, trade)}


def start_page_payment(em: Emulator, merchant, method: str, params: dict, biz: dict):
    """``alipay.trade.wap.pay`` / ``page.pay``: the buyer's browser opens the signed URL and
    lands on the cashier."""
    trade = place(em, merchant, method, biz, params, exists=True)
    return redirect(cashier_url(em, trade), 302)


def existing_trade(em: Emulator, merchant, biz: dict) -> tuple[str, dict]:
    """The trade named by out_trade_no or trade_no, if Alipay would know it (a precreated trade
    exists only once its QR code is scanned)."""
    out_trade_no, trade_no = biz.get("out_trade_no"), biz.get("trade_no")
    if not out_trade_no and not trade_no:
        raise invalid("out_trade_no", "out_trade_no 和 trade_no 不能同时为空",
                      "one of out_trade_no and trade_no is required")
    found = (em.store.find_trade(PROVIDER, out_trade_no, merchant.app_id) if out_trade_no
             else em.store.find_by(PROVIDER, "trade_no", trade_no))
    if found is None or found[1]["app_id"] != merchant.app_id or not found[1]["exists"] \
            or (trade_no and found[1]["trade_no"] != trade_no):
        raise BusinessError("ACQ.TRADE_NOT_EXIST", "交易不存在 · no such trade")
    refresh(found[1])
    return found


def query(em: Emulator, merchant, biz: dict, params: dict) -> dict:
    with em.store.lock:
        _, trade = existing_trade(em, merchant, biz)
        paid = trade.get("gmt_payment") is not None
        view = {"trade_no": trade["trade_no"], "out_trade_no": trade["out_trade_no"],
                "trade_status": trade["state"], "total_amount": yuan(trade["total"]),
                "buyer_pay_amount": yuan(trade["total"]) if paid else "0.00", "point_amount": "0.00",
                "invoice_amount": yuan(trade["total"]) if paid else "0.00",
                "receipt_amount": yuan(trade["total"]) if paid else "0.00"}
        if trade.get("buyer_user_id"):
            view.update(buyer_logon_id=trade["buyer_logon_id"], buyer_user_id=trade["buyer_user_id"])
        if paid:
            view.update(send_pay_date=alipay_time(parse_time(trade["gmt_payment"])),
                        fund_bill_list=[{"amount": yuan(trade["total"]), "fund_channel": "ALIPAYACCOUNT"}])
        em.store.save()
        return view


def close(em: Emulator, merchant, biz: dict, params: dict) -> dict:
    with em.store.lock:
        _, trade = existing_trade(em, merchant, biz)
        if trade.get("gmt_payment"):
            raise BusinessError("ACQ.TRADE_STATUS_ERROR",
                                "交易状态不合法，已支付的交易不能关闭 · a paid trade cannot be closed")
        trade["state"] = "TRADE_CLOSED"
        trade["close_time"] = rfc3339(now())
        em.store.save()
        return {"trade_no": trade["trade_no"], "out_trade_no": trade["out_trade_no"]}


def refund(em: Emulator, merchant, biz: dict, params: dict) -> dict:
    amount = fen(biz.get("refund_amount"), "refund_amount")
    with em.store.lock:
        key, trade = existing_trade(em, merchant, biz)
        request_no = biz.get("out_request_no") or trade["out_trade_no"]
        if not isinstance(request_no, str) or not 1 <= len(request_no) <= 64:
            raise invalid("out_request_no", "最长64位", "must be up to 64 characters")
        view = {"trade_no": trade["trade_no"], "out_trade_no": trade["out_trade_no"],
                "buyer_logon_id": trade.get("buyer_logon_id") or "",
                "buyer_user_id": trade.get("buyer_user_id") or ""}
        done = trade["refunds"].get(request_no)
        if done is not None:
            if done["refund_amount"] != amount:
                raise invalid("out_request_no", "已用于另一金额的退款",
                              "was used for a refund of another amount")
            return {**view, "fund_change": "N", "refund_fee": yuan(trade["refunded"]),
                    "gmt_refund_pay": done["gmt_refund_pay"]}
        if not trade.get("gmt_payment"):
            raise BusinessError("ACQ.TRADE_STATUS_ERROR",
                                "交易状态不合法，未支付的交易不能退款 · the trade is not paid")
        if trade["refunded"] + amount > trade["total"]:
            raise BusinessError("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
                                "退款金额超限 · the refunds would exceed the "
                                f"trade's total ({yuan(trade['total'] - trade['refunded'])} left)")
        moment = now()
        trade["refunds"][request_no] = {"out_request_no": request_no, "refund_amount": amount,
                                        "refund_reason": biz.get("refund_reason"),
                                        "gmt_refund_pay": alipay_time(moment)}
        trade["refunded"] += amount
        if trade["refunded"] == trade["total"]:
            trade["state"] = "TRADE_CLOSED"
            trade["close_time"] = rfc3339(moment)
        em.store.save()
        notification = trade_notification(em, trade, moment, refund=trade["refunds"][request_no]) \
            if trade.get("notify_url") else None
    if notification:
        em.dispatcher.add(key, notification)
    return {**view, "fund_change": "Y", "refund_fee": yuan(trade["refunded"]),
            "gmt_refund_pay": alipay_time(moment)}


def refund_query(em: Emulator, merchant, biz: dict, params: dict) -> dict:
    request_no = biz.get("out_request_no")
    if not isinstance(request_no, str) or not request_no:
        raise invalid("out_request_no", "必填", "is required")
    with em.store.lock:
        _, trade = existing_trade(em, merchant, biz)
        view = {"trade_no": trade["trade_no"], "out_trade_no": trade["out_trade_no"]}
        done = trade["refunds"].get(request_no)
        if done is None:
            return view   # as Alipay: a success without refund fields means "no such refund"
        return {**view, "out_request_no": request_no, "total_amount": yuan(trade["total"]),
                "refund_amount": yuan(done["refund_amount"]), "refund_status": "REFUND_SUCCESS",
                "gmt_refund_pay": done["gmt_refund_pay"]}


def pay(em: Emulator, key: str, user: str, notify: bool = True) -> dict:
    """The buyer pays: TRADE_SUCCESS, and the trade_status_sync notification is sent (or, with
    ``notify`` false, kept as lost until a test control sends it)."""
    with em.store.lock:
        trade = em.store.trades[key]
        refresh(trade)
        if trade["state"] != "WAIT_BUYER_PAY":
            raise NotPayable(trade["state"])
        moment = now()
        buyer_user_id, buyer_logon_id = alipay_buyer(user or "emulator")
        trade.update(state="TRADE_SUCCESS", exists=True, gmt_payment=rfc3339(moment),
                     buyer_user_id=buyer_user_id, buyer_logon_id=buyer_logon_id)
        notification = trade_notification(em, trade, moment) if trade.get("notify_url") else None
        em.store.save()
    if notification:
        em.dispatcher.add(key, notification, deliver=notify)
    return trade


def trade_notification(em: Emulator, trade: dict, moment: dt.datetime, refund: dict | None = None) -> dict:
    paid = parse_time(trade["gmt_payment"])
    params = {"notify_type": "trade_status_sync", "notify_id": uuid.uuid4().hex + crypto.random_digits(8),
              "notify_time": alipay_time(moment), "charset": "utf-8", "version": "1.0",
              "app_id": trade["app_id"], "auth_app_id": trade["app_id"], "seller_id": trade["seller_id"],
              "out_trade_no": trade["out_trade_no"], "trade_no": trade["trade_no"],
              "trade_status": "TRADE_CLOSED" if refund and trade["state"] == "TRADE_CLOSED"
              else "TRADE_SUCCESS",
              "total_amount": yuan(trade["total"]), "receipt_amount": yuan(trade["total"]),
              "invoice_amount": yuan(trade["total"]), "buyer_pay_amount": yuan(trade["total"]),
              "point_amount": "0.00", "subject": trade["subject"], "body": trade.get("body"),
              "buyer_id": trade["buyer_user_id"], "buyer_logon_id": trade["buyer_logon_id"],
              "gmt_create": alipay_time(parse_time(trade["create_time"])), "gmt_payment": alipay_time(paid),
              "fund_bill_list": json.dumps([{"amount": yuan(trade["total"]), "fundChannel": "ALIPAYACCOUNT"}],
                                           separators=(",", ":"))}
    if refund:
        params.update(refund_fee=yuan(trade["refunded"]), gmt_refund=alipay_time(moment) + ".000",
                      out_biz_no=refund["out_request_no"])
        if trade["state"] == "TRADE_CLOSED":
            params["gmt_close"] = alipay_time(moment)
    return {"id": params["notify_id"], "kind": "refund" if refund else "payment",
            "event_type": f"trade_status_sync:{params['trade_status']}", "url": trade["notify_url"],
            "params": signed_params(em, params), "create_time": rfc3339(moment)}


def notification_request(em: Emulator):
    def build(trade: dict, notification: dict) -> tuple[dict, bytes]:
        return ({"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                 "User-Agent": "Mozilla/4.0 (payment emulator)"}, urlencode(notification["params"]).encode())

    return build


def accepted(response) -> bool:
    return response.status_code == 200 and response.text.strip() == "success"


def return_url(em: Emulator, trade: dict) -> str | None:
    """Where the buyer's browser goes after paying a page payment: the merchant's return_url
    with the signed synchronous parameters."""
    if not trade.get("return_url"):
        return None
    params = signed_params(em, {"charset": "utf-8", "out_trade_no": trade["out_trade_no"],
                                "method": f"{trade['method']}.return", "total_amount": yuan(trade["total"]),
                                "trade_no": trade["trade_no"], "auth_app_id": trade["app_id"],
                                "version": "1.0",
                                "app_id": trade["app_id"], "seller_id": trade["seller_id"],
                                "timestamp": alipay_time(now())})
    separator = "&" if urlsplit(trade["return_url"]).query else "?"
    return f"{trade['return_url']}{separator}{urlencode(params)}"


# --- bills --------------------------------------------------------------------------------------

TRADE_COLUMNS = ",".join((
    "支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号", "门店名称",
    "操作员", "终端号", "对方账户", "订单金额（元）", "商家实收（元）", "支付宝红包（元）", "集分宝（元）",
    "支付宝优惠（元）", "商家优惠（元）", "券核销金额（元）", "券名称", "商家红包消费金额（元）",
    "卡消费金额（元）", "退款批次号/请求号", "服务费（元）", "分润（元）", "备注"))
ACCOUNT_COLUMNS = ",".join((
    "账务流水号", "业务流水号", "商户订单号", "商品名称", "发生时间", "对方账号", "收入金额（+元）",
    "支出金额（-元）", "账户余额（元）", "交易渠道", "业务类型", "备注"))


def bill_period(bill_date: str) -> tuple[dt.date, dt.date]:
    """(first day, last day) of ``yyyy-MM-dd`` or ``yyyy-MM``."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", bill_date):
            day = dt.date.fromisoformat(bill_date)
            return day, day
        if re.fullmatch(r"\d{4}-\d{2}", bill_date):
            year, month = map(int, bill_date.split("-"))
            return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])
    except ValueError:
        pass
    raise invalid("bill_date", "格式为 yyyy-MM-dd 或 yyyy-MM", "must be yyyy-MM-dd or yyyy-MM")


def bill_events(em: Emulator, app_id: str, first: dt.date, last: dt.date) -> list[dict]:
    events = []
    with em.store.lock:
        for trade in em.store.trades.values():
            if trade["provider"] != PROVIDER or trade["app_id"] != app_id or not trade.get("gmt_payment"):
                continue
            paid = parse_time(trade["gmt_payment"]).astimezone(CHINA)
            if first <= paid.date() <= last:
                events.append({"kind": "交易", "at": paid, "trade": trade, "amount": trade["total"],
                               "request": ""})
            for done in trade["refunds"].values():
                at = dt.datetime.strptime(done["gmt_refund_pay"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
                if first <= at.date() <= last:
                    events.append({"kind": "退款", "at": at, "trade": trade, "amount": done["refund_amount"],
                                   "request": done["out_request_no"]})
    return sorted(events, key=lambda event: event["at"])


def bill_files(em: Emulator, merchant, bill_type: str, first: dt.date, last: dt.date) -> bytes | None:
    events = bill_events(em, merchant.app_id, first, last)
    if not events:
        return None
    stamp = first.strftime("%Y%m%d") if first == last else first.strftime("%Y%m")
    end = last + dt.timedelta(days=1)
    period = f"#起始日期：[{first:%Y年%m月%d日} 00:00:00]   终止日期：[{end:%Y年%m月%d日} 00:00:00]"
    exported = f"#导出时间：[{now():%Y年%m月%d日 %H:%M:%S}]"
    payments = [e for e in events if e["kind"] == "交易"]
    refunds = [e for e in events if e["kind"] == "退款"]
    if bill_type == "trade":
        name, columns = "业务明细", TRADE_COLUMNS
        rows = []
        for event in events:
            trade, sign = event["trade"], -1 if event["kind"] == "退款" else 1
            amount = yuan(sign * event["amount"])
            service_fee = f"{fee_fen(sign * event['amount']) / 100:.2f}"
            rows.append(",".join([
                trade["trade_no"], trade["out_trade_no"], event["kind"], trade["subject"],
                alipay_time(parse_time(trade["create_time"])), alipay_time(event["at"]), "", "", "", "",
                trade["buyer_logon_id"] or "", amount, amount, "0.00", "0.00", "0.00", "0.00", "0.00", "",
                "0.00", "0.00", event["request"], service_fee, "0.00", ""]))
        footer = [f"#交易合计：{len(payments)}笔，退款合计：{len(refunds)}笔"]
    else:
        name, columns = "账务明细", ACCOUNT_COLUMNS
        rows, balance = [], 0
        for number, event in enumerate(events, 1):
            trade = event["trade"]
            income = event["amount"] if event["kind"] == "交易" else 0
            spent = event["amount"] if event["kind"] == "退款" else 0
            balance += income - spent
            rows.append(",".join([
                f"{event['at']:%Y%m%d}{number:012d}", trade["trade_no"], trade["out_trade_no"],
                trade["subject"], alipay_time(event["at"]), trade["buyer_logon_id"] or "", yuan(income),
                yuan(spent), yuan(balance), "支付宝", "在线支付" if income else "交易退款",
                event["request"]]))
        footer = [f"#收入合计：{len(payments)}笔，支出合计：{len(refunds)}笔"]
    detail = "\r\n".join([f"#支付宝{name}查询", f"#账号：[{merchant.seller_id}0156]", period,
                          f"#-----------------------------------------{name}列表----------------------------------------",
                          columns, *rows,
                          f"#-----------------------------------------{name}列表结束------------------------------------",
                          *footer, exported]) + "\r\n"
    net = yuan(sum(e["amount"] for e in payments) - sum(e["amount"] for e in refunds))
    summary = "\r\n".join([f"#支付宝{name}汇总查询", f"#账号：[{merchant.seller_id}0156]", period,
                           "#-----------------------------------------业务汇总列表----------------------------------------",
                           "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）",
                           f"合计,,{len(payments)},{len(refunds)},{net},{net}",
                           "#-----------------------------------------业务汇总列表结束------------------------------------",
                           exported]) + "\r\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        prefix = f"{merchant.seller_id}0156_{stamp}_{name}"
        archive.writestr(f"{prefix}.csv", detail.encode("gbk", errors="replace"))
        archive.writestr(f"{prefix}(汇总).csv", summary.encode("gbk", errors="replace"))
    return buffer.getvalue()


def bill_url(em: Emulator, merchant, biz: dict, params: dict) -> dict:
    bill_type = biz.get("bill_type")
    if bill_type not in ("trade", "signcustomer"):
        raise invalid("bill_type", "应为 trade 或 signcustomer", "must be trade or signcustomer")
    first, last = bill_period(str(biz.get("bill_date") or ""))
    if first > now().date():
        raise invalid("bill_date", "不能晚于今天", "is in the future")
    content = bill_files(em, merchant, bill_type, first, last)
    if content is None:
        raise BusinessError("isp.bill_not_exist", "账单不存在 · no bill: no trades in that period")
    stamp = first.strftime("%Y%m%d") if first == last else first.strftime("%Y%m")
    filename = f"{merchant.seller_id}0156_{stamp}.csv.zip"
    token = em.put_token("alipay-bill", {"body": content, "filename": filename}, BILL_TTL_S)
    return {"bill_download_url": f"{request.host_url.rstrip('/')}/alipay/bill/{token}/{filename}"}


@bp.get("/alipay/bill/<token>/<filename>")
def download_bill(token, filename):
    entry = current().get_token("alipay-bill", token)
    if entry is None or entry["filename"] != filename:
        return Response("账单下载地址已失效 · the bill's download URL expired (30 s) or is unknown\n", 404,
                        content_type="text/plain; charset=utf-8")
    return Response(entry["body"], 200, content_type="application/zip",
                    headers={"Content-Disposition": f"attachment; filename={filename}"})


SERVER_METHODS = {
    "alipay.trade.precreate": precreate,
    "alipay.trade.query": query,
    "alipay.trade.close": close,
    "alipay.trade.refund": refund,
    "alipay.trade.fastpay.refund.query": refund_query,
    "alipay.data.dataservice.bill.downloadurl.query": bill_url,
}
