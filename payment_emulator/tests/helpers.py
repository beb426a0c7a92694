"""Helpers of the emulator's tests: a real emulator on a free port with a merchant key set
made by the keys helper, a merchant's notification receiver on another port, and the real
SDK clients configured as the orders service's adapters will be (the environment the helper
wrote, the base URL set after construction). Nothing here reaches the internet: every URL is
on 127.0.0.1, and the WeChat Pay clients' https traffic goes to a dead local proxy, so a
request to the SDK's hard-coded https://api.mch.weixin.qq.com fails instead of leaving the
machine."""
from __future__ import annotations

import html
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from alipay import AliPay
from flask import Flask, request
from wechatpayv3 import WeChatPay, WeChatPayType
from werkzeug.serving import make_server

from payment_emulator.app import create_app
from payment_emulator.keys import merchant_key_set

NO_INTERNET = {"https": "http://127.0.0.1:9"}
FAST_RETRIES = (0, 0.2, 0.4, 0.8)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A WSGI app on a real port, in a thread."""

    def __init__(self, app, port: int | None = None):
        self.port = port or free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Call:
    path: str
    headers: dict
    body: str
    form: dict


class Receiver:
    """The merchant's notify endpoints: every POST is recorded; ``answers[path]`` lists the
    (status, text) to answer in turn, the last one repeated (default 200 "success")."""

    def __init__(self):
        self.calls: list[Call] = []
        self.answers: dict[str, list] = {}
        self.lock = threading.Lock()
        app = Flask("receiver")

        @app.post("/<path:name>")
        def receive(name):
            with self.lock:
                self.calls.append(Call(name, dict(request.headers), request.get_data(as_text=True),
                                       request.form.to_dict()))
                queue = self.answers.get(name) or [(200, "success")]
                status, text = queue.pop(0) if len(queue) > 1 else queue[0]
            return text, status

        self.server = Server(app)

    def url(self, name: str) -> str:
        return f"{self.server.url}/{name}"

    def received(self, name: str) -> list[Call]:
        with self.lock:
            return [call for call in self.calls if call.path == name]

    def wait(self, name: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = self.received(name)
            if len(calls) >= count:
                return calls
            time.sleep(0.02)
        raise AssertionError(f"{name}: {len(self.received(name))} notifications, expected {count}")


@dataclass
class Emulator:
    root: Path
    env: dict
    server: Server
    receiver: Receiver
    app: object = None
    clients: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def control(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.url}/_emulator/{path}", timeout=10, **kwargs)


def start_emulator(root: Path, receiver: Receiver, port: int | None = None, **settings) -> Emulator:
    port = port or free_port()
    env = merchant_key_set(root / "merchant", root / "state", f"http://127.0.0.1:{port}")
    settings.setdefault("notify_schedule", FAST_RETRIES)
    settings.setdefault("refund_seconds", 0.3)
    app = create_app(root / "state", **settings)
    return Emulator(root=root, env=env, server=Server(app, port), receiver=receiver, app=app)


def read(path: str) -> str:
    return Path(path).read_text()


def wechat_client(env: dict, mode: str = "public_key", pay_type=WeChatPayType.NATIVE,
                  private_key: str | None = None,
                  platform_public_key: str | None = None, notify_url: str | None = None) -> WeChatPay:
    """A wechatpayv3 client as the orders adapter makes it: the environment's credentials, the
    platform's public key (mode ``public_key``) or certificates from a directory (mode
    ``certificate``: the SDK would otherwise fetch them from the real gateway while being
    constructed), and the emulator as its base URL."""
    options = dict(wechatpay_type=pay_type, mchid=env["WECHATPAY_MCHID"],
                   private_key=private_key or read(env["WECHATPAY_PRIVATE_KEY_FILE"]),
                   cert_serial_no=env["WECHATPAY_CERT_SERIAL_NO"], appid=env["WECHATPAY_APPID"],
                   apiv3_key=env["WECHATPAY_APIV3_KEY"], notify_url=notify_url, proxy=NO_INTERNET, timeout=(5,
                                                                                                            10))
    if mode == "public_key":
        options.update(public_key=platform_public_key or read(env["WECHATPAY_PUBLIC_KEY_FILE"]),
                       public_key_id=env["WECHATPAY_PUBLIC_KEY_ID"])
    else:
        options.update(cert_dir=env["WECHATPAY_PLATFORM_CERT_DIR"])
    client = WeChatPay(**options)
    client._core._gate_way = env["WECHATPAY_API_BASE"]
    return client


def alipay_client(env: dict, private_key: str | None = None, notify_url: str | None = None) -> AliPay:
    """A python-alipay-sdk client as the orders adapter makes it, its gateway the emulator's."""
    client = AliPay(appid=env["ALIPAY_APP_ID"], app_notify_url=notify_url,
                    app_private_key_string=private_key or read(env["ALIPAY_APP_PRIVATE_KEY_FILE"]),
                    alipay_public_key_string=read(env["ALIPAY_PUBLIC_KEY_FILE"]), sign_type="RSA2")
    client._gateway = env["ALIPAY_GATEWAY"]
    return client


FORM = re.compile(r'<form method="post" action="([^"]+)">(.*?)</form>', re.S)
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def press_pay(session: requests.Session, page: requests.Response, **kwargs) -> requests.Response:
    """Press the cashier page's "Pay" button: submit its form as a browser would."""
    match = FORM.search(page.text)
    assert match, f"no pay button on the page:\n{page.text}"
    action = requests.compat.urljoin(page.url, html.unescape(match.group(1)))
    fields = {name: html.unescape(value) for name, value in HIDDEN.findall(match.group(2))}
    return session.post(action, data=fields, timeout=10, **kwargs)
