"""WeChat Pay (API v3) through its maintained SDK, ``wechatpayv3``.

The SDK signs our requests with the merchant key, verifies WeChat Pay's answers and
notifications (SHA256-RSA over ``timestamp\\nnonce\\nbody\\n`` with the platform public key
or platform certificate that ``Wechatpay-Serial`` names) and decrypts a notification's
``resource`` (AES-256-GCM with the APIv3 key); this adapter maps our orders onto it:
``out_trade_no`` is the order id, ``amount.total`` the order's ``amount_fen``.

Checkout methods: ``native`` (a ``code_url`` to show as a QR code: kiosks, posters,
desktops), ``h5`` (phone browsers outside WeChat) and ``jsapi`` (inside WeChat's browser,
for the guest's ``openid``). Configuration (README, Configuration): ``WECHATPAY_MCHID``,
``WECHATPAY_APPID``, ``WECHATPAY_CERT_SERIAL_NO``, ``WECHATPAY_PRIVATE_KEY_FILE``,
``WECHATPAY_APIV3_KEY``, and either ``WECHATPAY_PUBLIC_KEY_FILE`` with
``WECHATPAY_PUBLIC_KEY_ID`` (platform-public-key mode) or neither (platform-certificate
mode: the certificates in ``WECHATPAY_PLATFORM_CERT_DIR``, default
``VAR_DIR/wechatpay-certificates``, and those the SDK downloads there). ``WECHATPAY_API_BASE``
points the same code at a test host (the emulator); in certificate mode the SDK asks the
production host for certificates while it is built if that directory is empty, so a test
host needs its certificate there first (the emulator's ``keys`` command writes it).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from wechatpayv3 import WeChatPay, WeChatPayType

from diandian_common import config

from .port import (
    CheckoutFacts,
    InvalidNotification,
    NotificationRefused,
    PaymentNotification,
    ProviderError,
    RefundResult,
    Reply,
    SdkClients,
    TradeNotFound,
    TradeState,
    webhook_tolerance_s,
)

NAME = "wechatpay"
PRODUCTION_API_BASE = "https://api.mch.weixin.qq.com"
PAY_TYPES = {"native": WeChatPayType.NATIVE, "h5": WeChatPayType.H5, "jsapi": WeChatPayType.JSAPI}
PAID_STATES = ("SUCCESS", "REFUND")  # REFUND: paid, then (partly) refunded
OPEN_STATES = ("NOTPAY", "USERPAYING")
REFUND_FAILED = ("CLOSED", "ABNORMAL")


def trade_state(answer: dict) -> TradeState:
    """A query's answer (``GET /v3/pay/transactions/out-trade-no/{no}``) as the port's."""
    state = str(answer.get("trade_state", ""))
    amount = answer.get("amount") or {}
    return TradeState(
        paid=state in PAID_STATES,
        open=state in OPEN_STATES,
        state=state,
        amount_fen=int(amount.get("total", 0)),
        currency=str(amount.get("currency", "CNY")),
        reference=answer.get("transaction_id"),
    )


def refund_succeeded(status: str) -> bool | None:
    """A refund's ``status``: True once SUCCESS, False when it failed for good, else None."""
    if status == "SUCCESS":
        return True
    return False if status in REFUND_FAILED else None


@dataclass(frozen=True)
class Settings:
    mchid: str
    appid: str
    cert_serial_no: str
    private_key: str
    apiv3_key: str
    public_key: str | None
    public_key_id: str | None
    platform_cert_dir: str
    api_base: str

    @classmethod
    def from_env(cls) -> Settings | None:
        """The merchant's settings; None while any required one is unset (not configured)."""
        required = {
            name: config.env(f"WECHATPAY_{name}")
            for name in ("MCHID", "APPID", "CERT_SERIAL_NO", "PRIVATE_KEY_FILE", "APIV3_KEY")
        }
        if not all(required.values()):
            return None
        public_key_file = config.env("WECHATPAY_PUBLIC_KEY_FILE")
        return cls(
            mchid=required["MCHID"],
            appid=required["APPID"],
            cert_serial_no=required["CERT_SERIAL_NO"],
            private_key=Path(required["PRIVATE_KEY_FILE"]).read_text(),
            apiv3_key=required["APIV3_KEY"],
            public_key=Path(public_key_file).read_text() if public_key_file else None,
            public_key_id=config.env("WECHATPAY_PUBLIC_KEY_ID"),
            platform_cert_dir=config.env("WECHATPAY_PLATFORM_CERT_DIR")
            or str(config.var_dir() / "wechatpay-certificates"),
            api_base=(config.env("WECHATPAY_API_BASE", PRODUCTION_API_BASE) or "").rstrip("/"),
        )


def notify_url() -> str:
    return f"{config.public_base_url()}/api/v1/payments/{NAME}/webhook"


def build_client(settings: Settings) -> WeChatPay:
    client = WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=settings.mchid,
        private_key=settings.private_key,
        cert_serial_no=settings.cert_serial_no,
        appid=settings.appid,
        apiv3_key=settings.apiv3_key,
        notify_url=notify_url(),
        cert_dir=None if settings.public_key else settings.platform_cert_dir,
        timeout=(5, 15),
        public_key=settings.public_key,
        public_key_id=settings.public_key_id,
    )
    # The SDK has the production host built in; staging and tests set another.
    client._core._gate_way = settings.api_base
    return client


class WeChatPayProvider:
    name = NAME
    methods = frozenset(PAY_TYPES)

    def __init__(self):
        self._clients = SdkClients(NAME, "WECHATPAY_*", Settings.from_env, build_client)

    # --- the SDK -------------------------------------------------------------------------
    def _client(self) -> tuple[WeChatPay, Settings]:
        return self._clients.get()

    @staticmethod
    def _answer(code: int, message: str, what: str) -> dict:
        """The JSON of a 2xx answer; :class:`ProviderError` otherwise."""
        if code == 404 and "ORDER_NOT_EXIST" in message:
            raise TradeNotFound(f"{NAME} {what}: {code} {message[:300]}")
        if not 200 <= code < 300:
            raise ProviderError(f"{NAME} {what}: {code} {message[:300]}")
        return json.loads(message) if message else {}

    def _call(self, what: str, function, *args, **kwargs) -> dict:
        try:
            code, message = function(*args, **kwargs)
        except ProviderError:
            raise
        except Exception as exc:  # the SDK raises bare Exceptions (network, bad answers)
            raise ProviderError(f"{NAME} {what}: {exc}") from exc
        return self._answer(code, message, what)

    # --- the port ------------------------------------------------------------------------
    def takes_webhooks(self) -> bool:
        return Settings.from_env() is not None

    def checkout_url(self, order_id: str) -> str:
        return f"{config.public_base_url()}/pay/{order_id}"

    def checkout(self, facts: CheckoutFacts, method: str, openid: str | None) -> dict:
        """Open (or reopen: same ``out_trade_no``) the trade and say how to pay it."""
        client, settings = self._client()
        kwargs = {}
        if method == "jsapi":
            if not openid:
                raise ProviderError("jsapi needs the guest's openid")
            kwargs["payer"] = {"openid": openid}
        if method == "h5":
            kwargs["scene_info"] = {
                "payer_client_ip": facts.client_ip or "127.0.0.1",
                "h5_info": {"type": "Wap"},
            }
        answer = self._call(
            "checkout",
            client.pay,
            description=facts.description[:127],
            out_trade_no=facts.order_id,
            amount={"total": facts.amount_fen, "currency": facts.currency},
            time_expire=facts.expires_at.isoformat(timespec="seconds"),
            notify_url=notify_url(),
            pay_type=PAY_TYPES[method],
            **kwargs,
        )
        if method == "native":
            return {"code_url": answer["code_url"]}
        if method == "h5":
            return {"h5_url": answer["h5_url"]}
        # What WeixinJSBridge's getBrandWCPayRequest takes, signed with the merchant key.
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        package = f"prepay_id={answer['prepay_id']}"
        return {
            "jsapi": {
                "appId": settings.appid,
                "timeStamp": timestamp,
                "nonceStr": nonce,
                "package": package,
                "signType": "RSA",
                "paySign": client.sign([settings.appid, timestamp, nonce, package]),
            }
        }

    def query(self, order_id: str) -> dict:
        """The trade as WeChat Pay has it (``trade_state`` SUCCESS, NOTPAY, CLOSED, …)."""
        client, _ = self._client()
        return self._call("query", client.query, out_trade_no=order_id)

    def trade(self, order_id: str) -> TradeState:
        return trade_state(self.query(order_id))

    def close(self, order_id: str) -> None:
        client, _ = self._client()
        self._call("close", client.close, out_trade_no=order_id)

    def refund_state(self, order_id: str, refund_id: str) -> bool | None:
        client, _ = self._client()
        answer = self._call("refund query", client.query_refund, out_refund_no=refund_id)
        return refund_succeeded(str(answer.get("status", "")))

    def refund(self, order_id: str, amount_fen: int, refund_id: str) -> RefundResult:
        client, _ = self._client()
        answer = self._call(
            "refund",
            client.refund,
            out_refund_no=refund_id,
            amount={"refund": amount_fen, "total": amount_fen, "currency": "CNY"},
            out_trade_no=order_id,
            notify_url=notify_url(),
        )
        return RefundResult(str(answer.get("refund_id") or refund_id),
                            refund_succeeded(str(answer.get("status", ""))) is True)

    def verify(self, headers: Mapping[str, str], raw_body: bytes) -> PaymentNotification:
        client, settings = self._client()
        try:
            timestamp = int(headers.get("Wechatpay-Timestamp", ""))
        except ValueError:
            raise NotificationRefused(401, "signature_missing", "no Wechatpay-Timestamp") from None
        if abs(time.time() - timestamp) > webhook_tolerance_s():
            raise NotificationRefused(403, "stale_signature", "the notification's timestamp is too old")
        try:
            # The SDK reads the four Wechatpay-* headers by their exact names.
            event = client.callback(dict(headers.items()), raw_body)
        except Exception:  # an unknown signature type, a ciphertext the APIv3 key does not open
            event = None
        if not event:
            raise NotificationRefused(
                403,
                "invalid_signature",
                "not signed by WeChat Pay's platform key, or not for this merchant's key",
            )
        resource = event.get("resource") or {}
        if resource.get("mchid") != settings.mchid or resource.get("appid", settings.appid) != settings.appid:
            raise NotificationRefused(403, "wrong_merchant", "the notification is for another merchant")
        event_type = str(event.get("event_type", ""))
        if not event_type.startswith("TRANSACTION."):
            # A refund's notification (REFUND.SUCCESS, …): it confirms our refund.
            return PaymentNotification(
                event_id=str(event.get("id")),
                event_type=event_type,
                succeeded=False,
                order_id=str(resource.get("out_trade_no", "")),
                amount_fen=0,
                currency="CNY",
                reference=str(resource.get("refund_id", "")),
                refund_id=str(resource.get("out_refund_no", "")),
                refund_succeeded=refund_succeeded(str(resource.get("refund_status", ""))),
            )
        try:
            amount = resource["amount"]
            return PaymentNotification(
                event_id=str(event["id"]),
                event_type=event_type,
                succeeded=event_type == "TRANSACTION.SUCCESS" and resource.get("trade_state") == "SUCCESS",
                order_id=str(resource["out_trade_no"]),
                amount_fen=int(amount["total"]),
                currency=str(amount.get("currency", "CNY")),
                reference=str(resource["transaction_id"]),
            )
        except (KeyError, TypeError, ValueError):
            raise InvalidNotification(
                {"resource": ["lacks out_trade_no, transaction_id or amount"]}
            ) from None

    def acknowledge(self, answer: dict) -> Reply:
        return "", 204, {}  # WeChat Pay: 200 or 204 with no body is success

    def refuse(self, status: int, error: dict) -> Reply:
        # WeChat Pay retries on 4XX/5XX and reads {"code": "FAIL", "message": …}; our code
        # leads the message, for whoever reads the provider's delivery log.
        reason = error["error"]
        return {"code": "FAIL", "message": f"{reason['code']}: {reason['message']}"}, status, {}

    # --- the daily trade bill (settlement bill-check) ---------------------------------------
    def trade_bill(self, bill_date: date) -> str | None:
        """The day's trade bill (``bill_type=ALL``, gzip) as text, or None when WeChat Pay has
        none (``NO_STATEMENT_EXIST``: no trades that day). The download is checked against
        the SHA1 that the signed bill request's answer gives (the file itself is unsigned)."""
        client, _ = self._client()
        try:
            code, message = client.trade_bill(bill_date=bill_date.isoformat(), bill_type="ALL",
                                              tar_type="GZIP")
        except Exception as exc:  # the SDK raises bare Exceptions (network, bad answers)
            raise ProviderError(f"{NAME} trade bill: {exc}") from exc
        if code == 400 and "NO_STATEMENT_EXIST" in str(message):
            return None
        answer = self._answer(code, message, "trade bill")
        try:
            code, content = client.download_bill(answer["download_url"])
        except Exception as exc:
            raise ProviderError(f"{NAME} bill download: {exc}") from exc
        if not 200 <= code < 300:
            raise ProviderError(f"{NAME} bill download: {code} {str(content)[:300]}")
        raw = content if isinstance(content, bytes) else content.encode("utf-8")
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        if str(answer.get("hash_type", "SHA1")).upper() == "SHA1" and answer.get("hash_value") \
                and hashlib.sha1(raw).hexdigest() != str(answer["hash_value"]).lower():
            raise ProviderError(f"{NAME} bill download: the file does not match the bill's SHA1")
        return raw.decode("utf-8-sig")
