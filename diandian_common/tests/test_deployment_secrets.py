"""DIANDIAN_ENV=production: every process refuses to start with a public, missing or short
secret (diandian_common.deployment), and development keeps working with none set."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from diandian_common import auth, deployment

ROOT = Path(__file__).resolve().parents[2]

# Everything the check reads, cleared so the machine's environment cannot decide a test.
VARIABLES = ("DIANDIAN_ENV", "GATEWAY_SECRET_KEY", "INTERNAL_API_SECRET", "CERTIFICATE_SIGNING_KEYS",
             "METRICS_TOKEN", "REDIS_URL", "CELERY_BROKER_URL", "RANKING_REDIS_URL", "RATE_LIMIT_STORAGE_URL",
             "DATABASE_URL", "GATEWAY_DATABASE_URL", "CALCULATOR_DATABASE_URL", "ORDERS_DATABASE_URL",
             "CERTIFICATES_DATABASE_URL", "RANKING_DATABASE_URL", "PAYMENT_PROVIDER", "PAYMENT_PROVIDERS",
             "PAYMENT_WEBHOOK_SECRET_TESTPAY", "WORKER_METRICS_PORT", "WECHATPAY_PUBLIC_KEY_FILE",
             "WECHATPAY_PUBLIC_KEY_ID", *deployment.PROVIDER_SETTINGS["wechatpay"],
             *deployment.PROVIDER_SETTINGS["alipay"])
PROCESSES = ("gateway", "calculator", "orders", "certificates", "ranking", "calculator-worker",
             "orders-worker", "certificates-worker", "ranking-worker", "orders-beat", "certificates-beat",
             "ranking-beat")


def strong() -> str:
    return secrets.token_urlsafe(48)


def good_environment(tmp_path: Path) -> dict[str, str]:
    """A production environment every process accepts."""
    return {
        "DIANDIAN_ENV": "production",
        "GATEWAY_SECRET_KEY": strong(), "INTERNAL_API_SECRET": strong(), "METRICS_TOKEN": strong(),
        "CERTIFICATE_SIGNING_KEYS": f"{strong()},{strong()}",
        "REDIS_URL": f"redis://:{strong()}@redis:6379/0",
        "DATABASE_URL": f"postgresql://diandian:{strong()}@postgres:5432/diandian",
        "PAYMENT_PROVIDER": "testpay", "PAYMENT_WEBHOOK_SECRET_TESTPAY": strong(),
        "VAR_DIR": str(tmp_path / "var"),
    }


@pytest.fixture
def environment(monkeypatch, tmp_path):
    """Set ``environment(**values)`` as the process's whole configuration (None: unset)."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def apply(values: dict[str, str | None]) -> None:
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
    return apply


@pytest.fixture
def production(environment, tmp_path):
    """A complete production environment; tests spoil one value of it."""
    values = good_environment(tmp_path)
    environment(values)
    return values


def refusal(process: str) -> str:
    with pytest.raises(deployment.InsecureDeployment) as raised:
        deployment.check(process)
    return str(raised.value)


def test_development_is_the_default_and_needs_no_secret(environment):
    environment({})
    assert deployment.mode() == "development"
    for process in PROCESSES:
        deployment.check(process)


@pytest.mark.parametrize("value", ["prod", "staging", "Production!"])
def test_an_unknown_mode_is_refused_rather_than_taken_for_development(environment, value):
    environment({"DIANDIAN_ENV": value})
    with pytest.raises(deployment.InsecureDeployment, match="DIANDIAN_ENV"):
        deployment.check("gateway")


@pytest.mark.parametrize("process", PROCESSES)
def test_a_complete_production_environment_starts_every_process(production, process):
    deployment.check(process)
    assert deployment.problems(process) == []


# (variable, the processes that use it) — every other process starts without it.
SECRETS = {
    "GATEWAY_SECRET_KEY": {"gateway"},
    "INTERNAL_API_SECRET": {"gateway", "calculator", "orders", "certificates", "ranking"},
    "CERTIFICATE_SIGNING_KEYS": {"certificates", "certificates-worker"},
    "METRICS_TOKEN": {"gateway", "calculator", "orders", "certificates", "ranking"},
}
PUBLIC_VALUES = {
    "GATEWAY_SECRET_KEY": auth.DEVELOPMENT_GATEWAY_SECRET,
    "INTERNAL_API_SECRET": auth.DEVELOPMENT_INTERNAL_SECRET,
    "CERTIFICATE_SIGNING_KEYS": deployment.DEVELOPMENT_CERTIFICATE_SIGNING_KEY,
    "METRICS_TOKEN": "REPLACE-ME-metrics-token-from-the-kubernetes-template",
}


@pytest.mark.parametrize("variable", sorted(SECRETS))
@pytest.mark.parametrize("spoil, reason", [(None, "is not set"), ("", "is not set"),
                                           ("public", "is a public development value"),
                                           ("short", "is 31 characters long, fewer than 32")])
def test_each_secret_missing_public_or_short_is_refused_by_its_users(production, environment, variable,
                                                                      spoil, reason):
    value = {"public": PUBLIC_VALUES[variable], "short": "x" * 31}.get(spoil, spoil)
    environment({variable: value})
    for process in PROCESSES:
        if process in SECRETS[variable]:
            message = refusal(process)
            assert f"{variable} {reason}" in message, message
            assert deployment.GENERATE in message
        else:
            deployment.check(process)


def test_a_worker_serving_metrics_needs_the_token_too(production, environment):
    environment({"METRICS_TOKEN": None, "WORKER_METRICS_PORT": "9100"})
    assert "METRICS_TOKEN is not set" in refusal("orders-worker")
    deployment.check("orders-beat")   # a scheduler serves no metrics


def test_every_certificate_signing_key_must_be_secret(production, environment):
    environment({"CERTIFICATE_SIGNING_KEYS": f"{strong()}, {deployment.DEVELOPMENT_CERTIFICATE_SIGNING_KEY}"})
    assert "CERTIFICATE_SIGNING_KEYS is a public development value" in refusal("certificates")


@pytest.mark.parametrize("url, reason", [
    ("redis://redis:6379/0", "is not set"),
    ("redis://:short@redis:6379/0", "is 5 characters long"),
    (None, "is not set"),                   # the local default, redis://127.0.0.1:…, has none
])
def test_redis_without_a_strong_password_is_refused_by_every_process(production, environment, url, reason):
    environment({"REDIS_URL": url})
    for process in PROCESSES:
        assert f"the password in REDIS_URL {reason}" in refusal(process)


@pytest.mark.parametrize("variable", ["CELERY_BROKER_URL", "RANKING_REDIS_URL", "RATE_LIMIT_STORAGE_URL"])
def test_other_redis_urls_need_a_password_too_when_set(production, environment, variable):
    environment({variable: "redis://redis:6379/1"})
    assert f"the password in {variable} is not set" in refusal("ranking")


@pytest.mark.parametrize("password, reason", [
    ("diandian", "is a public development value"), ("", "is not set"), ("pw", "is 2 characters long")])
def test_postgres_without_a_strong_password_is_refused(production, environment, password, reason):
    auth_part = f"diandian:{password}" if password else "diandian"
    environment({"ORDERS_DATABASE_URL": f"postgresql://{auth_part}@postgres:5432/orders"})
    assert f"the password in ORDERS_DATABASE_URL {reason}" in refusal("orders")
    assert f"the password in ORDERS_DATABASE_URL {reason}" in refusal("orders-worker")
    deployment.check("calculator")   # its own database is another one


def test_sqlite_needs_no_password(production, environment, tmp_path):
    environment({"DATABASE_URL": None})
    deployment.check("orders")


@pytest.mark.parametrize("provider, reason", [
    (None, "PAYMENT_PROVIDERS is not set"), ("sandbox", "sandbox payment provider"),
    ("SANDBOX", "sandbox payment provider")])
def test_orders_refuse_the_sandbox_and_no_provider(production, environment, provider, reason):
    environment({"PAYMENT_PROVIDER": provider})
    assert reason in refusal("orders")
    deployment.check("orders-worker")   # refunds go to each order's own provider


def merchant(tmp_path: Path) -> dict[str, str]:
    """A merchant's WeChat Pay and Alipay settings, their key files written under tmp_path."""
    keys = tmp_path / "payment-keys"
    keys.mkdir(exist_ok=True)
    for name in ("apiclient_key.pem", "pub_key.pem", "app_private_key.pem", "alipay_public_key.pem"):
        (keys / name).write_text("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n")
    return {"WECHATPAY_MCHID": "1900000109", "WECHATPAY_APPID": "wx1", "WECHATPAY_CERT_SERIAL_NO": "AB",
            "WECHATPAY_PRIVATE_KEY_FILE": str(keys / "apiclient_key.pem"), "WECHATPAY_APIV3_KEY": "k" * 32,
            "WECHATPAY_PUBLIC_KEY_FILE": str(keys / "pub_key.pem"), "WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_01",
            "ALIPAY_APP_ID": "2021", "ALIPAY_APP_PRIVATE_KEY_FILE": str(keys / "app_private_key.pem"),
            "ALIPAY_PUBLIC_KEY_FILE": str(keys / "alipay_public_key.pem"),
            "PAYMENT_PROVIDERS": "wechatpay,alipay"}


def test_enabled_real_providers_must_be_configured(production, environment, tmp_path):
    environment({"PAYMENT_PROVIDERS": "wechatpay,alipay,sandbox"})
    message = refusal("orders")
    assert "wechatpay is enabled but not configured: set WECHATPAY_MCHID" in message
    assert "alipay is enabled but not configured: set ALIPAY_APP_ID" in message
    assert "sandbox payment provider" in message
    environment(merchant(tmp_path))
    for process in deployment.PAYMENT_PROCESSES:
        deployment.check(process)


@pytest.mark.parametrize("process", ["orders-worker", "orders-beat"])
def test_the_orders_worker_and_scheduler_need_the_providers_configured_too(production, environment,
                                                                           tmp_path, process):
    """They refund and reconcile through the providers: a provider enabled but unconfigured
    would fail there, order after order, instead of at start."""
    environment({**merchant(tmp_path), "ALIPAY_APP_ID": None, "WECHATPAY_APIV3_KEY": "short"})
    message = refusal(process)
    assert "alipay is enabled but not configured: set ALIPAY_APP_ID" in message
    assert "WECHATPAY_APIV3_KEY must be the 32 characters" in message
    # The provider of new orders is the API's concern alone (refunds go to each order's own).
    environment({**merchant(tmp_path), "PAYMENT_PROVIDERS": "testpay", "PAYMENT_WEBHOOK_SECRET_TESTPAY": None})
    deployment.check(process)


@pytest.mark.parametrize("variable", sorted(deployment.PROVIDER_KEY_FILES["wechatpay"]
                                            + deployment.PROVIDER_KEY_FILES["alipay"]))
def test_a_key_file_that_does_not_exist_is_refused_at_start(production, environment, tmp_path, variable):
    environment({**merchant(tmp_path), variable: str(tmp_path / "not-mounted" / "key.pem")})
    for process in deployment.PAYMENT_PROCESSES:
        message = refusal(process)
        assert f"{variable}={tmp_path / 'not-mounted' / 'key.pem'} does not exist in this container" in message
    # A process that calls no provider does not care.
    deployment.check("calculator")


def test_a_key_file_of_a_provider_not_enabled_is_not_looked_for(production, environment, tmp_path):
    environment({**merchant(tmp_path), "PAYMENT_PROVIDERS": "alipay",
                 "WECHATPAY_PRIVATE_KEY_FILE": str(tmp_path / "absent.pem")})
    deployment.check("orders")


def test_the_wechatpay_public_key_needs_its_id(production, environment, tmp_path):
    environment({**merchant(tmp_path), "WECHATPAY_PUBLIC_KEY_ID": None})
    assert "WECHATPAY_PUBLIC_KEY_FILE is set without WECHATPAY_PUBLIC_KEY_ID" in refusal("orders-worker")
    # Certificate mode: no public key file, so no id either.
    environment({"WECHATPAY_PUBLIC_KEY_FILE": None})
    deployment.check("orders-worker")


def test_a_webhook_provider_needs_its_secret(production, environment):
    environment({"PAYMENT_WEBHOOK_SECRET_TESTPAY": "REPLACE-ME"})
    assert "PAYMENT_WEBHOOK_SECRET_TESTPAY is a public development value" in refusal("orders")


def test_every_problem_is_named_at_once(environment):
    environment({"DIANDIAN_ENV": "production"})
    message = refusal("gateway")
    for variable in ("GATEWAY_SECRET_KEY", "INTERNAL_API_SECRET", "METRICS_TOKEN", "REDIS_URL"):
        assert variable in message


# --- the processes themselves -----------------------------------------------------------


def test_a_service_app_refuses_to_be_built(production, environment, tmp_path):
    from orders.app import create_app
    environment({"INTERNAL_API_SECRET": auth.DEVELOPMENT_INTERNAL_SECRET})
    with pytest.raises(deployment.InsecureDeployment, match="INTERNAL_API_SECRET is a public development value"):
        create_app(f"sqlite:///{tmp_path / 'orders.db'}")
    environment({"INTERNAL_API_SECRET": strong()})
    assert create_app(f"sqlite:///{tmp_path / 'orders.db'}").name == "orders"


def test_the_gateway_refuses_to_be_built(production, environment, tmp_path):
    from gateway.app import create_app
    environment({"GATEWAY_SECRET_KEY": None})
    with pytest.raises(deployment.InsecureDeployment, match="GATEWAY_SECRET_KEY is not set"):
        create_app(f"sqlite:///{tmp_path / 'gateway.db'}")
    environment({"GATEWAY_SECRET_KEY": strong()})
    assert create_app(f"sqlite:///{tmp_path / 'gateway.db'}").name == "gateway"


@pytest.mark.integration
@pytest.mark.parametrize("command", [("worker", "--pool", "solo", "-Q", "calculator"), ("beat",)])
def test_a_celery_worker_and_scheduler_refuse_to_start(tmp_path, command):
    """``celery -A calculator.tasks worker|beat`` as compose runs them, with Redis's password
    missing: the process exits at once, naming the variable, before it takes any message."""
    env = {key: value for key, value in os.environ.items() if key not in VARIABLES}
    env.update(good_environment(tmp_path), REDIS_URL="redis://127.0.0.1:9/0", DATABASE_URL="",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "services")]))
    if command == ("beat",):
        command += ("--schedule", str(tmp_path / "schedule"))
    started = subprocess.run([sys.executable, "-m", "celery", "-A", "calculator.tasks", *command],
                             check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    output = started.stdout + started.stderr
    assert started.returncode != 0, output
    assert "refusing to start calculator-" in output and "the password in REDIS_URL is not set" in output
    assert deployment.GENERATE in output
