"""Alipay (RSA2) through its maintained SDK, ``python-alipay-sdk``.

The SDK signs our requests with the app's private key and verifies Alipay's answers and
notifications (RSA2 over the sorted form parameters) with Alipay's public key; this
adapter maps our orders onto it: ``out_trade_no`` is the order id, ``total_amount`` the
order's ``amount_fen`` written in yuan exactly (``1234`` fen → ``"12.34"``).

Checkout methods: ``qr`` (``alipay.trade.precreate``: a QR code for large screens) and
``wap`` (``alipay.trade.wap.pay``: a link for phone browsers). Configuration (README,
Configuration): ``ALIPAY_APP_ID``, ``ALIPAY_APP_PRIVATE_KEY_FILE``,
``ALIPAY_PUBLIC_KEY_FILE``; ``ALIPAY_GATEWAY`` points the same code at a test host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import parse_qsl
from urllib.request import urlopen
from zoneinfo import ZoneInfo

from alipay import AliPay
from alipay.exceptions import AliPayException, AliPayValidationError

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
)

NAME = "alipay"
PRODUCTION_GATEWAY = "https://openapi.alipay.com/gateway.do"
PAID_STATES = ("TRADE_SUCCESS", "TRADE_FINISHED")
SUCCESS_CODE = "10000"
OPEN_STATES = ("WAIT_BUYER_PAY",)
NO_TRADE = "ACQ.TRADE_NOT_EXIST"
BEIJING = ZoneInfo("Asia/Shanghai")  # Alipay reads times without a zone as Beijing time


def yuan(amount_fen: int) -> str:
    """``amount_fen`` as Alipay's amount string, exactly (no float on the way)."""
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def fen(amount_yuan: str) -> int:
    """An Alipay amount string in fen; ValueError unless it is a whole number of fen."""
    try:
        value = Decimal(amount_yuan) * 100
    except InvalidOperation:
        raise ValueError(f"not an amount: {amount_yuan!r}") from None
    if value != value.to_integral_value() or value < 0:
        raise ValueError(f"not a whole number of fen: {amount_yuan!r}")
    return int(value)


def trade_state(answer: dict) -> TradeState:
    """``alipay.trade.query``'s answer as the port's (``TRADE_CLOSED`` is unpaid, or paid
    and fully refunded: an order still waiting for payment was not refunded)."""
    state = str(answer.get("trade_status", ""))
    return TradeState(
        paid=state in PAID_STATES,
        open=state in OPEN_STATES,
        state=state,
        amount_fen=fen(str(answer.get("total_amount", "0"))),
        currency="CNY",
        reference=answer.get("trade_no"),
    )


@dataclass(frozen=True)
class Settings:
    app_id: str
    app_private_key: str
    alipay_public_key: str
    gateway: str

    @classmethod
    def from_env(cls) -> Settings | None:
        """The app's settings; None while any required one is unset (not configured)."""
        app_id, private_file, public_file = (
            config.env(name)
            for name in ("ALIPAY_APP_ID", "ALIPAY_APP_PRIVATE_KEY_FILE", "ALIPAY_PUBLIC_KEY_FILE")
        )
        if not (app_id and private_file and public_file):
            return None
        return cls(
            app_id=app_id,
            app_private_key=Path(private_file).read_text(),
            alipay_public_key=Path(public_file).read_text(),
            gateway=config.env("ALIPAY_GATEWAY", PRODUCTION_GATEWAY) or PRODUCTION_GATEWAY,
        )


def notify_url() -> str:
    return f"{config.public_base_url()}/api/v1/payments/{NAME}/webhook"


def build_client(settings: Settings) -> AliPay:
    client = AliPay(
        appid=settings.app_id,
        app_notify_url=notify_url(),
        app_private_key_string=settings.app_private_key,
        alipay_public_key_string=settings.alipay_public_key,
        sign_type="RSA2",
    )
    # The SDK has the production gateway built in; staging and tests set another.
    client._gateway = settings.gateway
    return client


class AlipayProvider:
    name = NAME
    methods = frozenset({"qr", "wap"})

    def __init__(self):
        self._clients = SdkClients(NAME, "ALIPAY_*", Settings.from_env, build_client)

    def _client(self) -> tuple[AliPay, Settings]:
        return self._clients.get()

    def _call(self, what: str, function, **kwargs) -> dict:
        """A verified answer with code 10000; :class:`ProviderError` otherwise."""
        try:
            answer = function(**kwargs)
        except (AliPayException, AliPayValidationError, OSError, ValueError) as exc:
            raise ProviderError(f"{NAME} {what}: {exc}") from exc
        if str(answer.get("code")) != SUCCESS_CODE:
            error = TradeNotFound if answer.get("sub_code") == NO_TRADE else ProviderError
            raise error(
                f"{NAME} {what}: {answer.get('code')} {answer.get('sub_msg') or answer.get('msg')}"
            )
        return answer

    # --- the port ------------------------------------------------------------------------
    def takes_webhooks(self) -> bool:
        return Settings.from_env() is not None

    def checkout_url(self, order_id: str) -> str:
        return f"{config.public_base_url()}/pay/{order_id}"

    def checkout(self, facts: CheckoutFacts, method: str, openid: str | None) -> dict:
        client, settings = self._client()
        expires = facts.expires_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        subject = facts.description[:256]
        if method == "qr":
            answer = self._call(
                "checkout",
                client.api_alipay_trade_precreate,
                subject=subject,
                out_trade_no=facts.order_id,
                total_amount=yuan(facts.amount_fen),
                notify_url=notify_url(),
                time_expire=expires,
            )
            return {"qr_code": answer["qr_code"]}
        query = client.api_alipay_trade_wap_pay(
            subject=subject,
            out_trade_no=facts.order_id,
            total_amount=yuan(facts.amount_fen),
            notify_url=notify_url(),
            return_url=self.checkout_url(facts.order_id),
            time_expire=expires,
        )
        return {"pay_url": f"{settings.gateway}?{query}"}

    def query(self, order_id: str) -> dict:
        client, _ = self._client()
        return self._call("query", client.api_alipay_trade_query, out_trade_no=order_id)

    def trade(self, order_id: str) -> TradeState:
        try:
            return trade_state(self.query(order_id))
        except ValueError as exc:  # an amount that is not a whole number of fen
            raise ProviderError(f"{NAME} query: {exc}") from None

    def close(self, order_id: str) -> None:
        client, _ = self._client()
        self._call("close", client.api_alipay_trade_close, out_trade_no=order_id)

    def refund_state(self, order_id: str, refund_id: str) -> bool | None:
        client, _ = self._client()
        answer = self._call("refund query", client.api_alipay_trade_fastpay_refund_query,
                            out_request_no=refund_id, out_trade_no=order_id)
        return True if answer.get("refund_status") == "REFUND_SUCCESS" else None

    def refund(self, order_id: str, amount_fen: int, refund_id: str) -> RefundResult:
        client, _ = self._client()
        answer = self._call(
            "refund",
            client.api_alipay_trade_refund,
            refund_amount=yuan(amount_fen),
            out_trade_no=order_id,
            out_request_no=refund_id,
        )
        # Alipay refunds synchronously: fund_change Y (refunded now) or N (refunded already
        # by an earlier call with this out_request_no).
        return RefundResult(str(answer.get("trade_no") or refund_id), True)

    def verify(self, headers: Mapping[str, str], raw_body: bytes) -> PaymentNotification:
        client, settings = self._client()
        try:
            data = dict(parse_qsl(raw_body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            raise NotificationRefused(401, "signature_missing", "not a signed Alipay form") from None
        signature = data.pop("sign", None)
        if not signature:
            raise NotificationRefused(401, "signature_missing", "the notification carries no sign")
        try:
            authentic = client.verify(dict(data), signature)
        except (AliPayException, ValueError, TypeError):  # another sign_type, a sign that is not base64
            authentic = False
        if not authentic:
            raise NotificationRefused(403, "invalid_signature", "not signed with Alipay's key")
        if data.get("app_id") != settings.app_id:
            raise NotificationRefused(403, "wrong_merchant", "the notification is for another app")
        try:
            return PaymentNotification(
                event_id=data["notify_id"],
                event_type=data.get("notify_type", "trade_status_sync"),
                succeeded=data.get("trade_status") in PAID_STATES,
                order_id=data["out_trade_no"],
                amount_fen=fen(data["total_amount"]),
                currency="CNY",
                reference=data["trade_no"],
            )
        except (KeyError, ValueError):
            raise InvalidNotification(
                {"_body": ["lacks notify_id, out_trade_no, trade_no or total_amount"]}
            ) from None

    def acknowledge(self, answer: dict) -> Reply:
        return "success", 200, {"Content-Type": "text/plain; charset=utf-8"}

    def refuse(self, status: int, error: dict) -> Reply:
        # Anything but "success" makes Alipay send the notification again later.
        return "fail", status, {"Content-Type": "text/plain; charset=utf-8"}

    # --- the daily trade bill (settlement bill-check) ---------------------------------------
    def trade_bill(self, bill_date: date) -> bytes | None:
        """The day's ``trade`` bill: the zip Alipay's download URL serves (GBK CSV files), or
        None when Alipay has none (``isp.bill_not_exist``: no trades that day). The URL comes
        from ``alipay.data.dataservice.bill.downloadurl.query``, a signed call whose answer
        the SDK verifies; the URL is valid for a short while, so it is fetched at once."""
        client, _ = self._client()
        method = "alipay.data.dataservice.bill.downloadurl.query"
        try:
            data = client.build_body(method, {"bill_type": "trade", "bill_date": bill_date.isoformat()})
            answer = client.verified_sync_response(data, method.replace(".", "_") + "_response")
        except (AliPayException, AliPayValidationError, OSError, ValueError) as exc:
            raise ProviderError(f"{NAME} bill: {exc}") from exc
        if answer.get("sub_code") == "isp.bill_not_exist":
            return None
        if str(answer.get("code")) != SUCCESS_CODE or not answer.get("bill_download_url"):
            reason = answer.get("sub_msg") or answer.get("msg")
            raise ProviderError(f"{NAME} bill: {answer.get('code')} {reason}")
        try:
            with urlopen(answer["bill_download_url"], timeout=30) as response:
                return response.read()
        except OSError as exc:
            raise ProviderError(f"{NAME} bill download: {exc}") from exc
