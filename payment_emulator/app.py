"""The emulator's Flask app: ``create_app()``.

Settings (arguments win over the environment):

| argument | environment | default |
|---|---|---|
| ``state_dir`` | ``PAYMENT_EMULATOR_STATE_DIR`` | ``./var/payment-emulator`` |
| ``merchants_file`` | ``PAYMENT_EMULATOR_MERCHANTS`` | ``<state_dir>/merchants.json`` |
| ``public_url`` | ``PAYMENT_EMULATOR_PUBLIC_URL`` | the address each request used |
| ``notify_schedule`` | ``PAYMENT_EMULATOR_NOTIFY_SCHEDULE`` | ``0,1,3,10,30`` (seconds before each attempt) |
| ``notify_allow`` | ``PAYMENT_EMULATOR_NOTIFY_ALLOW`` | ``localhost,127.0.0.0/8,::1/128`` |
| ``refund_seconds`` | ``PAYMENT_EMULATOR_REFUND_SECONDS`` | ``2`` (PROCESSING → SUCCESS) |
"""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, redirect

from . import alipay, cashier, controls, keys, wechat
from .context import Emulator
from .notify import DEFAULT_ALLOW, DEFAULT_SCHEDULE, Destinations, Dispatcher
from .store import Store


def setting(value, name: str, default):
    if value is not None:
        return value
    env = os.environ.get(name)
    return env if env not in (None, "") else default


def numbers(value) -> tuple[float, ...]:
    if isinstance(value, str):
        return tuple(float(part) for part in value.split(",") if part.strip())
    return tuple(float(part) for part in value)


def entries(value) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(value)


def create_app(state_dir: str | Path | None = None, *, merchants_file: str | Path | None = None,
               public_url: str | None = None, notify_schedule=None, notify_allow=None,
               refund_seconds: float | None = None) -> Flask:
    state = Path(setting(state_dir, "PAYMENT_EMULATOR_STATE_DIR", "var/payment-emulator")).resolve()
    platform = keys.platform_keys(state)
    store = Store(state)
    dispatcher = Dispatcher(store, numbers(setting(notify_schedule, "PAYMENT_EMULATOR_NOTIFY_SCHEDULE",
                                                   DEFAULT_SCHEDULE)),
                            Destinations(entries(setting(notify_allow, "PAYMENT_EMULATOR_NOTIFY_ALLOW",
                                                         DEFAULT_ALLOW))))
    emulator = Emulator(
        state_dir=state, keys=platform,
        merchants=keys.Merchants(Path(setting(merchants_file, "PAYMENT_EMULATOR_MERCHANTS",
                                              state / keys.MERCHANTS))),
        store=store, dispatcher=dispatcher,
        public_url=(setting(public_url, "PAYMENT_EMULATOR_PUBLIC_URL", "") or None),
        refund_seconds=float(setting(refund_seconds, "PAYMENT_EMULATOR_REFUND_SECONDS", 2.0)))
    dispatcher.register(wechat.PROVIDER, wechat.notification_request(emulator), wechat.accepted)
    dispatcher.register(alipay.PROVIDER, alipay.notification_request(emulator), alipay.accepted)

    app = Flask(__name__)
    app.json.ensure_ascii = False
    app.extensions["payment_emulator"] = emulator
    for blueprint in (wechat.bp, alipay.bp, cashier.bp, controls.bp):
        app.register_blueprint(blueprint)
    app.add_url_rule("/", "root", lambda: redirect("/_emulator/"))

    dispatcher.resume()
    wechat.resume_refunds(emulator)
    return app
