"""The emulator itself: its test controls, its state across restarts, the keys helper, the
command line, and that notifications never leave the machine."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from payment_emulator.keys import merchant_key_set
from payment_emulator.money import fee_fen
from payment_emulator.notify import DEFAULT_ALLOW, Destinations
from payment_emulator.tests.helpers import Receiver, alipay_client, free_port, start_emulator, wechat_client

ROOT = Path(__file__).resolve().parents[2]


def env_file(path: Path) -> dict:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def order_no() -> str:
    return f"ord_{secrets.token_hex(8)}"


def test_a_lost_notification_is_sent_by_the_control_and_resent_as_a_duplicate(emulator):
    client = wechat_client(emulator.env)
    number = order_no()
    client.pay(description="lost", out_trade_no=number, amount={"total": 10},
               notify_url=emulator.receiver.url("ctl-lost"))
    paid = emulator.control("POST", f"trades/wechatpay/{number}/pay", json={"notify": False})
    assert paid.status_code == 200 and paid.json()["state"] == "SUCCESS"
    time.sleep(0.5)
    assert emulator.receiver.received("ctl-lost") == []   # lost: the merchant must query
    assert json.loads(client.query(out_trade_no=number)[1])["trade_state"] == "SUCCESS"
    assert emulator.control("POST", f"trades/wechatpay/{number}/pay").status_code == 409

    sent = emulator.control("POST", f"trades/wechatpay/{number}/notify")
    assert sent.status_code == 200 and sent.json()["attempt"]["accepted"] is True
    resent = emulator.control("POST", f"trades/wechatpay/{number}/notify",
                              json={"id": sent.json()["notification_id"]})
    assert resent.json()["attempt"]["status"] == 200
    calls = emulator.receiver.received("ctl-lost")
    events = [client.callback(call.headers, call.body) for call in calls]
    assert len(events) == 2 and events[0]["id"] == events[1]["id"]
    assert events[0]["resource"]["out_trade_no"] == number

    unpaid = order_no()
    client.pay(description="unpaid", out_trade_no=unpaid, amount={"total": 10},
               notify_url=emulator.receiver.url("ctl-lost"))
    assert emulator.control("POST", f"trades/wechatpay/{unpaid}/notify").status_code == 409
    assert emulator.control("POST", f"trades/alipay/{unpaid}/notify").status_code == 404


def test_the_alipay_controls(emulator):
    client = alipay_client(emulator.env)
    number = order_no()
    client.api_alipay_trade_precreate(subject="lost", out_trade_no=number, total_amount="1.00",
                                      notify_url=emulator.receiver.url("ctl-ali"))
    emulator.control("POST", f"trades/alipay/{number}/pay", json={"notify": False}).raise_for_status()
    assert client.api_alipay_trade_query(out_trade_no=number)["trade_status"] == "TRADE_SUCCESS"
    time.sleep(0.3)
    assert emulator.receiver.received("ctl-ali") == []
    assert emulator.control("POST", f"trades/alipay/{number}/notify").json()["attempt"]["accepted"] is True
    form = dict(emulator.receiver.received("ctl-ali")[0].form)
    assert client.verify({k: v for k, v in form.items() if k != "sign"}, form["sign"])


def test_trades_are_listed_with_their_notifications(emulator):
    client = wechat_client(emulator.env)
    number = order_no()
    client.pay(description="listed", out_trade_no=number, amount={"total": 10},
               notify_url=emulator.receiver.url("ctl-list"))
    emulator.control("POST", f"trades/wechat/{number}/pay").raise_for_status()
    emulator.receiver.wait("ctl-list")
    listed = emulator.control("GET", "trades", params={"provider": "wechatpay"}).json()["trades"]
    mine = next(trade for trade in listed if trade["out_trade_no"] == number)
    assert mine["state"] == "SUCCESS" and mine["notifications"][0]["event_type"] == "TRANSACTION.SUCCESS"
    assert mine["notifications"][0]["resource"]["trade_state"] == "SUCCESS"
    assert all(trade["provider"] == "wechatpay" for trade in listed)
    index = emulator.control("GET", "").json()
    assert index["keys"]["wechatpay"]["public_key_id"] == emulator.env["WECHATPAY_PUBLIC_KEY_ID"]
    assert any("/_emulator/reset" in line for line in index["controls"])
    assert requests.get(f"{emulator.url}/healthz", timeout=10).json() == {"status": "ok"}
    assert emulator.control("GET", f"trades/wechatpay/{order_no()}").status_code == 404


@pytest.fixture
def own_receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.stop()


def test_a_restarted_emulator_keeps_its_keys_and_trades_and_reset_forgets_the_trades(tmp_path, own_receiver):
    first = start_emulator(tmp_path, own_receiver)
    client = wechat_client(first.env)
    number = order_no()
    client.pay(description="kept", out_trade_no=number, amount={"total": 10},
               notify_url=own_receiver.url("kept"))
    ali = alipay_client(first.env)
    ali.api_alipay_trade_precreate(subject="kept", out_trade_no=number, total_amount="1.00")
    keys_before = first.control("GET", "keys").json()
    first.server.stop()

    second = start_emulator(tmp_path, own_receiver, port=first.server.port)
    try:
        assert second.env == first.env   # the keys helper keeps an existing key set
        assert second.control("GET", "keys").json() == keys_before
        assert json.loads(client.query(out_trade_no=number)[1])["trade_state"] == "NOTPAY"
        second.control("POST", f"trades/wechatpay/{number}/pay").raise_for_status()
        assert client.callback(own_receiver.wait("kept")[0].headers, own_receiver.wait("kept")[0].body)
        assert second.control("GET", f"trades/alipay/{number}").json()["state"] == "WAIT_BUYER_PAY"

        assert second.control("POST", "reset").json() == {"status": "reset"}
        assert client.query(out_trade_no=number)[0] == 404
        assert second.control("GET", "trades").json() == {"trades": []}
    finally:
        second.server.stop()


def test_notifications_go_only_to_local_destinations(emulator):
    client = wechat_client(emulator.env)
    number = order_no()
    code, _ = client.pay(description="far away", out_trade_no=number, amount={"total": 10},
                         notify_url="https://merchant.example.com/wechatpay/notify")
    assert code == 200   # an https notify_url is valid, as at WeChat Pay
    emulator.control("POST", f"trades/wechatpay/{number}/pay").raise_for_status()
    time.sleep(0.3)
    attempts = emulator.control("GET", f"trades/wechatpay/{number}").json()["notifications"][0]["attempts"]
    assert len(attempts) == 1 and attempts[0]["refused"] is True
    assert "never reaches the internet" in attempts[0]["error"]

    local = Destinations(DEFAULT_ALLOW)
    assert local.allowed("http://127.0.0.1:8002/api/v1/payments/wechatpay/webhook")
    assert local.allowed("http://localhost/notify") and local.allowed("http://[::1]:80/n")
    for far in ("https://api.mch.weixin.qq.com/", "http://10.0.0.1/", "http://192.168.1.2/",
                "http://8.8.8.8/",
                "http://localhost.example.com/", "not a url"):
        assert not local.allowed(far), far
    compose = Destinations(["orders", "172.16.0.0/12"])
    assert compose.allowed("http://orders:8000/n") and compose.allowed("http://172.18.0.5/n")


def test_the_keys_helper_writes_the_merchant_environment(tmp_path):
    env = merchant_key_set(tmp_path / "merchant", tmp_path / "state", "http://127.0.0.1:8008/")
    assert set(env) >= {"WECHATPAY_MCHID", "WECHATPAY_APPID", "WECHATPAY_CERT_SERIAL_NO",
                        "WECHATPAY_PRIVATE_KEY_FILE",
                        "WECHATPAY_APIV3_KEY", "WECHATPAY_PUBLIC_KEY_FILE", "WECHATPAY_PUBLIC_KEY_ID",
                        "WECHATPAY_API_BASE", "WECHAT_OAUTH_BASE", "ALIPAY_APP_ID",
                        "ALIPAY_APP_PRIVATE_KEY_FILE",
                        "ALIPAY_PUBLIC_KEY_FILE", "ALIPAY_GATEWAY"}
    assert env["WECHATPAY_API_BASE"] == env["WECHAT_OAUTH_BASE"] == "http://127.0.0.1:8008"
    assert env["ALIPAY_GATEWAY"] == "http://127.0.0.1:8008/gateway.do"
    assert env["WECHATPAY_PUBLIC_KEY_ID"].startswith("PUB_KEY_ID_0000")
    assert len(env["WECHATPAY_APIV3_KEY"]) == 32
    written = env_file(tmp_path / "merchant" / "payment.env")
    assert written == env
    for name in ("WECHATPAY_PRIVATE_KEY_FILE", "ALIPAY_APP_PRIVATE_KEY_FILE"):
        assert os.stat(env[name]).st_mode & 0o077 == 0
    for name in ("WECHATPAY_PUBLIC_KEY_FILE", "ALIPAY_PUBLIC_KEY_FILE"):
        assert Path(env[name]).read_text().startswith("-----BEGIN PUBLIC KEY-----")
    certificate = (tmp_path / "state" / "wechatpay_platform_cert.pem").read_text()
    assert certificate.startswith("-----BEGIN CERTIFICATE-----")
    registered = json.loads((tmp_path / "state" / "merchants.json").read_text())
    assert "PRIVATE" not in json.dumps(registered)   # the emulator holds only the merchant's public parts
    assert env["WECHATPAY_MCHID"] in registered["wechatpay"] and env["ALIPAY_APP_ID"] in registered["alipay"]


def test_the_command_line_runs_the_emulator(tmp_path, own_receiver):
    port = free_port()
    python = [sys.executable, "-m", "payment_emulator"]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    made = subprocess.run([*python, "keys", "--out", str(tmp_path / "merchant"), "--state-dir",
                           str(tmp_path / "state"),
                           "--port", str(port)], cwd=tmp_path, env=environment, capture_output=True,
                           text=True,
                          timeout=60)
    assert made.returncode == 0, made.stderr
    env = env_file(tmp_path / "merchant" / "payment.env")
    server = subprocess.Popen([*python, "--port", str(port), "--state-dir", str(tmp_path / "state")],
                              cwd=tmp_path,
                              env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "the emulator did not start"
            time.sleep(0.1)
        client = wechat_client(env)
        code, body = client.pay(description="cli", out_trade_no=order_no(), amount={"total": 1},
                                notify_url=own_receiver.url("cli"))
        assert code == 200 and json.loads(body)["code_url"].startswith(f"http://127.0.0.1:{port}/cashier/wechat/")
        assert alipay_client(env).api_alipay_trade_precreate(subject="cli", out_trade_no=order_no(),
                                                             total_amount="1.00")["code"] == "10000"
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert f"http://127.0.0.1:{port}/" in output


@pytest.mark.parametrize("amount, fee", [(750, 5), (250, 2), (249, 1), (83, 0), (84, 1), (-750, -5), (0, 0)])
def test_fees_are_rounded_half_up_to_the_fen_as_the_providers_bill_them(amount, fee):
    assert fee_fen(amount) == fee  # 750 × 0.6 % = 4.5 fen: 5, never round-half-even's 4
