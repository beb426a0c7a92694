"""Trades, refunds and notifications: in memory, and in ``state.json`` in the state directory
after every change, so a restarted emulator (a restarted ``make run``) still knows them.

Every record is a plain JSON-able dict. Keys are ``<provider>/<merchant>/<merchant's number>``:
WeChat Pay's out_trade_no and out_refund_no are unique per mchid, Alipay's out_trade_no per
app_id.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

from .keys import write_file

CHINA = ZoneInfo("Asia/Shanghai")
STATE_FILE = "state.json"


def now() -> dt.datetime:
    return dt.datetime.now(CHINA).replace(microsecond=0)


def rfc3339(moment: dt.datetime) -> str:
    """WeChat Pay's times: ``2024-05-20T13:29:35+08:00``."""
    return moment.astimezone(CHINA).isoformat(timespec="seconds")


def alipay_time(moment: dt.datetime) -> str:
    """Alipay's times: ``2024-05-20 13:29:35`` (Beijing time)."""
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


class NotPayable(Exception):
    """The trade is not waiting for a payment: paid, closed or expired (the state is the message)."""


def trade_key(provider: str, merchant: str, number: str) -> str:
    return f"{provider}/{merchant}/{number}"


class Store:
    def __init__(self, state_dir: Path | None):
        self.lock = threading.RLock()
        self.path = Path(state_dir) / STATE_FILE if state_dir else None
        self.trades: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}   # WeChat Pay's; Alipay's live in their trade
        if self.path and self.path.exists():
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.trades, self.refunds = data.get("trades", {}), data.get("refunds", {})

    def save(self) -> None:
        if self.path is None:
            return
        with self.lock:
            text = json.dumps({"trades": self.trades, "refunds": self.refunds}, ensure_ascii=False, indent=1)
            write_file(self.path, text, private=True)

    def reset(self) -> None:
        with self.lock:
            self.trades.clear()
            self.refunds.clear()
            self.save()

    def find_trade(self, provider: str, out_trade_no: str,
                   merchant: str | None = None) -> tuple[str, dict] | None:
        """A trade by the merchant's number (the merchant may be left out when only one has it)."""
        with self.lock:
            if merchant:
                key = trade_key(provider, merchant, out_trade_no)
                return (key, self.trades[key]) if key in self.trades else None
            for key, trade in self.trades.items():
                if trade["provider"] == provider and trade["out_trade_no"] == out_trade_no:
                    return key, trade
        return None

    def find_by(self, provider: str, field: str, value: str) -> tuple[str, dict] | None:
        with self.lock:
            for key, trade in self.trades.items():
                if trade["provider"] == provider and trade.get(field) == value:
                    return key, trade
        return None
