"""The running emulator: its keys, merchants, state and settings (one per app)."""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app, request

from .keys import Merchants, PlatformKeys
from .notify import Dispatcher
from .store import Store

USER_COOKIE = "payment_emulator_user"


@dataclass
class Emulator:
    state_dir: Path
    keys: PlatformKeys
    merchants: Merchants
    store: Store
    dispatcher: Dispatcher
    public_url: str | None = None
    refund_seconds: float = 2.0
    # Short-lived things that a restart may forget (as the providers' links expire anyway).
    tokens: dict = field(default_factory=dict)
    tokens_lock: threading.Lock = field(default_factory=threading.Lock)

    def base_url(self) -> str:
        """Where browsers reach the emulator: ``--public-url``, else the address the caller used."""
        return (self.public_url or request.host_url).rstrip("/")

    def put_token(self, kind: str, value: dict, ttl_s: float, length: int = 32) -> str:
        token = secrets.token_hex(length // 2)
        with self.tokens_lock:
            expired = [t for t, (_, _, until) in self.tokens.items() if until < time.time()]
            for stale in expired:
                del self.tokens[stale]
            self.tokens[token] = (kind, value, time.time() + ttl_s)
        return token

    def get_token(self, kind: str, token: str, consume: bool = False) -> dict | None:
        with self.tokens_lock:
            entry = self.tokens.get(token)
            if entry is None or entry[0] != kind or entry[2] < time.time():
                return None
            if consume:
                del self.tokens[token]
            return entry[1]


def current() -> Emulator:
    return current_app.extensions["payment_emulator"]


def browser_user() -> str:
    """The emulated buyer of this browser (a cookie): the same browser pays as the same WeChat
    user (openid) and Alipay buyer."""
    return request.cookies.get(USER_COOKIE) or ""


def new_browser_user() -> str:
    return secrets.token_hex(8)


def wechat_openid(appid: str, user: str) -> str:
    digest = hashlib.sha256(f"openid:{appid}:{user}".encode()).hexdigest()
    return "o" + digest[:27]


def alipay_buyer(user: str) -> tuple[str, str]:
    """(buyer_user_id, buyer_logon_id) of a browser's emulated Alipay buyer."""
    digest = int(hashlib.sha256(f"alipay:{user}".encode()).hexdigest(), 16)
    return "2088" + str(digest)[:12], f"138****{digest % 10000:04d}"
