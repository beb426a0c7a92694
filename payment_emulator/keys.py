"""Keys: the emulator's own (the providers' "platform" keys), the merchants it knows, and a
merchant-side key set for demos and tests.

The emulator's keys live in its state directory and are made on first start:

- ``wechatpay_platform_private_key.pem`` (0600) and ``wechatpay_platform_public_key.pem``: the
  WeChat Pay platform key pair. It signs in both of WeChat Pay's modes: platform public key
  (``Wechatpay-Serial`` is the public key id in ``wechatpay_platform.json``, ``PUB_KEY_ID_…``)
  and platform certificate (``wechatpay_platform_cert.pem``, self-signed, served encrypted by
  ``GET /v3/certificates``; ``Wechatpay-Serial`` is its serial number in upper-case hex).
- ``alipay_private_key.pem`` (0600) and ``alipay_public_key.pem``: the Alipay key pair
  ("支付宝公钥" is the public part).

The merchants are the providers' customers: the emulator holds what WeChat Pay and Alipay
hold about them (public keys and certificate serials, the APIv3 key, app secrets), never
their private keys. They are read from a JSON file (``merchants.json`` in the state
directory unless ``--merchants``/``PAYMENT_EMULATOR_MERCHANTS`` names another), re-read when
it changes; ``python -m payment_emulator keys`` makes a merchant key set and registers it there.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from . import crypto

WECHAT_PRIVATE = "wechatpay_platform_private_key.pem"
WECHAT_PUBLIC = "wechatpay_platform_public_key.pem"
WECHAT_CERT = "wechatpay_platform_cert.pem"
WECHAT_META = "wechatpay_platform.json"
ALIPAY_PRIVATE = "alipay_private_key.pem"
ALIPAY_PUBLIC = "alipay_public_key.pem"
MERCHANTS = "merchants.json"
CERT_DAYS = 5 * 365
CERT_RENEW_DAYS = 30


def write_file(path: Path, text: str, private: bool = False) -> None:
    """Atomically, 0600 when ``private``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def self_signed_certificate(key, common_name: str, organization: str,
                            days: int = CERT_DAYS) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
            .sign(key, hashes.SHA256()))


def serial_hex(certificate: x509.Certificate) -> str:
    return format(certificate.serial_number, "X")


def cert_pem(certificate: x509.Certificate) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return certificate.public_bytes(Encoding.PEM).decode()


@dataclass
class PlatformKeys:
    wechat_private: object
    wechat_public_pem: str
    wechat_public_key_id: str
    wechat_cert: x509.Certificate
    wechat_cert_pem: str
    wechat_cert_serial: str
    alipay_private: object
    alipay_public_pem: str


def platform_keys(state_dir: Path) -> PlatformKeys:
    """The emulator's keys from ``state_dir``, made (and written) the first time."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)

    private_path = state_dir / WECHAT_PRIVATE
    if private_path.exists():
        wechat_private = crypto.load_private(private_path.read_text())
    else:
        wechat_private = crypto.new_rsa_key()
        write_file(private_path, crypto.private_pem(wechat_private), private=True)
    wechat_public = crypto.public_pem(wechat_private.public_key())
    if not (state_dir / WECHAT_PUBLIC).exists() or (state_dir / WECHAT_PUBLIC).read_text() != wechat_public:
        write_file(state_dir / WECHAT_PUBLIC, wechat_public)

    meta_path = state_dir / WECHAT_META
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if not meta.get("public_key_id"):
        meta["public_key_id"] = "PUB_KEY_ID_0000" + crypto.random_digits(24)
        write_file(meta_path, json.dumps(meta, indent=2) + "\n")

    cert_path = state_dir / WECHAT_CERT
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes()) if cert_path.exists() else None
    renew_after = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=CERT_RENEW_DAYS)
    if (certificate is None or certificate.not_valid_after_utc < renew_after
            or crypto.public_pem(certificate.public_key()) != wechat_public):
        certificate = self_signed_certificate(wechat_private, "Tenpay.com Root CA (payment emulator)",
                                              "Payment emulator - WeChat Pay platform")
        write_file(cert_path, cert_pem(certificate))

    alipay_path = state_dir / ALIPAY_PRIVATE
    if alipay_path.exists():
        alipay_private = crypto.load_private(alipay_path.read_text())
    else:
        alipay_private = crypto.new_rsa_key()
        write_file(alipay_path, crypto.private_pem(alipay_private), private=True)
    alipay_public = crypto.public_pem(alipay_private.public_key())
    if not (state_dir / ALIPAY_PUBLIC).exists() or (state_dir / ALIPAY_PUBLIC).read_text() != alipay_public:
        write_file(state_dir / ALIPAY_PUBLIC, alipay_public)

    return PlatformKeys(wechat_private=wechat_private, wechat_public_pem=wechat_public,
                        wechat_public_key_id=meta["public_key_id"], wechat_cert=certificate,
                        wechat_cert_pem=cert_pem(certificate), wechat_cert_serial=serial_hex(certificate),
                        alipay_private=alipay_private, alipay_public_pem=alipay_public)


# --- the merchants the emulator knows -----------------------------------------------------

@dataclass(frozen=True)
class WeChatMerchant:
    mchid: str
    apiv3_key: str
    cert_serial_no: str
    public_key: object          # of the merchant's API certificate (apiclient_cert.pem)
    apps: dict                  # appid -> app secret (the official account's, for OAuth)
    name: str


@dataclass(frozen=True)
class AlipayMerchant:
    app_id: str
    public_key: object          # the application's public key ("应用公钥")
    seller_id: str              # the merchant's Alipay account id (PID, 2088…)
    name: str


class Merchants:
    """The merchants file, re-read whenever it changes (``keys`` may register a merchant while
    the emulator runs)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp = None
        self.wechat: dict[str, WeChatMerchant] = {}
        self.alipay: dict[str, AlipayMerchant] = {}

    def refresh(self) -> None:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp == self._stamp:
                return
            data = json.loads(self.path.read_text()) if stamp else {}
            self.wechat = {mchid: WeChatMerchant(
                mchid=mchid, apiv3_key=m["apiv3_key"], cert_serial_no=m["cert_serial_no"].upper(),
                public_key=public_key_of(m), apps=dict(m.get("apps", {})), name=m.get("name", mchid))
                for mchid, m in data.get("wechatpay", {}).items()}
            self.alipay = {app_id: AlipayMerchant(
                app_id=app_id, public_key=crypto.load_public(m["app_public_key"]), seller_id=m["seller_id"],
                name=m.get("name", app_id))
                for app_id, m in data.get("alipay", {}).items()}
            self._stamp = stamp

    def wechat_merchant(self, mchid: str) -> WeChatMerchant | None:
        self.refresh()
        return self.wechat.get(mchid)

    def wechat_app(self, appid: str) -> tuple[WeChatMerchant, str] | None:
        """The merchant an appid is bound to, and the app's secret."""
        self.refresh()
        for merchant in self.wechat.values():
            if appid in merchant.apps:
                return merchant, merchant.apps[appid]
        return None

    def alipay_merchant(self, app_id: str) -> AlipayMerchant | None:
        self.refresh()
        return self.alipay.get(app_id)


def public_key_of(entry: dict):
    if entry.get("merchant_cert"):
        return x509.load_pem_x509_certificate(entry["merchant_cert"].encode()).public_key()
    return crypto.load_public(entry["merchant_public_key"])


def register(merchants_file: Path, wechat: dict | None = None, alipay: dict | None = None) -> None:
    """Add (or replace) merchants in the merchants file: ``wechat`` ``{mchid: {...}}``, ``alipay``
    ``{app_id: {...}}`` as :class:`Merchants` reads them."""
    merchants_file = Path(merchants_file)
    data = json.loads(merchants_file.read_text()) if merchants_file.exists() else {}
    data.setdefault("wechatpay", {}).update(wechat or {})
    data.setdefault("alipay", {}).update(alipay or {})
    write_file(merchants_file, json.dumps(data, indent=2, ensure_ascii=False) + "\n", private=True)


# --- a merchant-side key set ------------------------------------------------------------------

MERCHANT_META = "merchant.json"
ENV_FILE = "payment.env"


def merchant_key_set(out_dir: Path, state_dir: Path, base_url: str, merchants_file: Path | None = None,
                     env_file: Path | None = None) -> dict:
    """Make (once: an existing set in ``out_dir`` is kept) a merchant's WeChat Pay and Alipay
    credentials, register their public parts with the emulator whose state is in
    ``state_dir``, and write the merchant side's environment (``payment.env``).

    Returns the environment: the variables the orders service reads."""
    out_dir, state_dir = Path(out_dir).resolve(), Path(state_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(out_dir, 0o700)
    platform = platform_keys(state_dir)
    meta_path = out_dir / MERCHANT_META
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
    else:
        wechat_key, alipay_key = crypto.new_rsa_key(), crypto.new_rsa_key()
        meta = {"wechatpay": {"mchid": "19" + crypto.random_digits(8),
                              "appid": "wx" + crypto.random_string(16, "0123456789abcdef"),
                              "app_secret": crypto.random_string(32, "0123456789abcdef"),
                              "apiv3_key": crypto.random_string(32)},
                "alipay": {"app_id": "2021" + crypto.random_digits(12),
                           "seller_id": "2088" + crypto.random_digits(12)}}
        certificate = self_signed_certificate(wechat_key, meta["wechatpay"]["mchid"],
                                              "Payment emulator demo merchant")
        meta["wechatpay"]["cert_serial_no"] = serial_hex(certificate)
        write_file(out_dir / "wechatpay_apiclient_key.pem", crypto.private_pem(wechat_key), private=True)
        write_file(out_dir / "wechatpay_apiclient_cert.pem", cert_pem(certificate))
        write_file(out_dir / "alipay_app_private_key.pem", crypto.private_pem(alipay_key), private=True)
        write_file(out_dir / "alipay_app_public_key.pem", crypto.public_pem(alipay_key.public_key()))
        write_file(meta_path, json.dumps(meta, indent=2) + "\n", private=True)
    wechat, alipay = meta["wechatpay"], meta["alipay"]
    register(merchants_file or state_dir / MERCHANTS,
             wechat={wechat["mchid"]: {
                 "name": "点点碳中和 · Diandian (demo merchant)", "apiv3_key": wechat["apiv3_key"],
                 "cert_serial_no": wechat["cert_serial_no"],
                 "merchant_cert": (out_dir / "wechatpay_apiclient_cert.pem").read_text(),
                 "apps": {wechat["appid"]: wechat["app_secret"]}}},
             alipay={alipay["app_id"]: {
                 "name": "点点碳中和 · Diandian (demo merchant)", "seller_id": alipay["seller_id"],
                 "app_public_key": (out_dir / "alipay_app_public_key.pem").read_text()}})
    # The SDK's certificate mode reads platform certificates from a directory of <serial>.pem.
    cert_dir = out_dir / "wechatpay_platform_certs"
    cert_dir.mkdir(exist_ok=True)
    for stale in cert_dir.glob("*.pem"):
        if stale.stem != platform.wechat_cert_serial:
            stale.unlink()
    write_file(cert_dir / f"{platform.wechat_cert_serial}.pem", platform.wechat_cert_pem)

    base = base_url.rstrip("/")
    env = {
        "WECHATPAY_MCHID": wechat["mchid"],
        "WECHATPAY_APPID": wechat["appid"],
        "WECHATPAY_CERT_SERIAL_NO": wechat["cert_serial_no"],
        "WECHATPAY_PRIVATE_KEY_FILE": str(out_dir / "wechatpay_apiclient_key.pem"),
        "WECHATPAY_APIV3_KEY": wechat["apiv3_key"],
        "WECHATPAY_PUBLIC_KEY_FILE": str(state_dir / WECHAT_PUBLIC),
        "WECHATPAY_PUBLIC_KEY_ID": platform.wechat_public_key_id,
        "WECHATPAY_PLATFORM_CERT_DIR": str(cert_dir),
        "WECHATPAY_API_BASE": base,
        "WECHAT_OAUTH_BASE": base,
        "WECHAT_APP_SECRET": wechat["app_secret"],
        "ALIPAY_APP_ID": alipay["app_id"],
        "ALIPAY_APP_PRIVATE_KEY_FILE": str(out_dir / "alipay_app_private_key.pem"),
        "ALIPAY_PUBLIC_KEY_FILE": str(state_dir / ALIPAY_PUBLIC),
        "ALIPAY_GATEWAY": f"{base}/gateway.do",
    }
    lines = ["# Merchant-side configuration for the payment emulator (python -m payment_emulator keys).",
             "# Demo credentials only: the emulator made them, no provider knows them."]
    lines += [f"{name}={shlex.quote(value)}" for name, value in env.items()]
    write_file(Path(env_file) if env_file else out_dir / ENV_FILE, "\n".join(lines) + "\n", private=True)
    return env
