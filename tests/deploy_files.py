"""Reading deploy/k8s/ and deploy/docker-compose.yml for the deployment tests: the parsed
manifests, their workloads, containers, arguments and environment (fixtures in tests/conftest.py)."""
from __future__ import annotations

import base64
import importlib
import re
import shlex
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from diandian_common import config

ROOT = Path(__file__).resolve().parents[1]


K8S = ROOT / "deploy" / "k8s"


KUSTOMIZATION = K8S / "kustomization.yaml"


COMPOSE_FILE = ROOT / "deploy" / "docker-compose.yml"


# Writes an operator's deploy/.env: every secret the compose file requires, fresh.
NEW_ENV = ROOT / "deploy" / "new-env.sh"


APP_PORT = 8000


GATEWAY = "gateway"


CONFIG_MAP = "diandian-config"


SECRET = "diandian-secrets"


PLACEHOLDER = "REPLACE-ME"


# Celery's monitoring UI: a workload that is no service (no API, no queue), reached by
# operators with kubectl port-forward, never through the Ingress.
FLOWER = "flower"


FLOWER_PORT = 5555


WORKLOAD_KINDS = ("Deployment", "Job")


# The schedulers (tests/test_deploy_*.py check that these are the services with periodic tasks).
SCHEDULED = ("orders", "certificates", "ranking")
# The jobs that build an app (its factory checks that app's secrets in production, so
# they get the secrets of the API whose code they run).
APP_JOBS = ("gateway-keys", "seed")

# Secrets compose hands to every container (one shared environment block) that the
# cluster gives only to the processes that use them.
# The processes that call the payment providers (refunds and reconciliation included), and
# the seed job, which builds the orders app: each gets every payment setting and the
# merchant's key files, read-only.
PAYMENT_PROCESSES = ("orders", "orders-worker", "orders-beat", "seed")
# Every payment setting a merchant may configure, as the code reads it
# (services/orders/payments/, services/orders/settlement/; tests check the names).
PAYMENT_SETTINGS = (
    "PAYMENT_PROVIDERS",
    "WECHATPAY_MCHID", "WECHATPAY_APPID", "WECHATPAY_CERT_SERIAL_NO", "WECHATPAY_PRIVATE_KEY_FILE",
    "WECHATPAY_APIV3_KEY", "WECHATPAY_PUBLIC_KEY_FILE", "WECHATPAY_PUBLIC_KEY_ID",
    "WECHATPAY_PLATFORM_CERT_DIR", "WECHATPAY_API_BASE",
    "ALIPAY_APP_ID", "ALIPAY_APP_PRIVATE_KEY_FILE", "ALIPAY_PUBLIC_KEY_FILE", "ALIPAY_GATEWAY",
    "PAYMENT_FEE_BPS_WECHATPAY", "PAYMENT_FEE_BPS_ALIPAY",
    "PAYMENT_RECONCILE_SECONDS", "PAYMENT_QUERY_AFTER_SECONDS", "PAYMENT_CLOSE_GIVE_UP_SECONDS",
    "PAYMENT_RECONCILE_BATCH",
)
# The gateway's WeChat OAuth for JSAPI (gateway/pages_payment.py).
GATEWAY_WECHAT_SETTINGS = ("WECHATPAY_APPID", "WECHAT_APP_SECRET", "WECHAT_OAUTH_BASE", "WECHAT_API_BASE_FOR_OAUTH")
# Where the merchant's key files are mounted in every payment process.
PAYMENT_KEYS_MOUNT = "/run/secrets/payment"
# The merchant's WeChat Pay secrets: in the Secret, referenced optionally (absent while
# WeChat Pay is not configured). The key files are a Secret of their own, mounted.
OPTIONAL_PAYMENT_SECRETS = ("WECHATPAY_APIV3_KEY", "WECHAT_APP_SECRET")
PAYMENT_KEYS_SECRET = "diandian-payment-keys"

WITHHELD = {
    # The services trust the gateway's signed operator assertion; only the job mirroring
    # the key into the gateway's store needs it in the clear.
    "OPERATOR_API_KEY": {"gateway-keys"},
    # Only the gateway signs operator assertions and only the APIs verify them.
    "INTERNAL_API_SECRET": {GATEWAY, *config.SERVICES, *APP_JOBS},
    # Everything that serves metrics: the APIs, the gateway and the workers (port 9100).
    "METRICS_TOKEN": {GATEWAY, *config.SERVICES, *(f"{s}-worker" for s in config.SERVICES), *APP_JOBS},
    # It carries Redis's password: every process but the migrations, which use no Redis.
    "REDIS_URL": {GATEWAY, FLOWER, *config.SERVICES, *(f"{s}-worker" for s in config.SERVICES),
                  *(f"{s}-beat" for s in SCHEDULED), *APP_JOBS},
    # Only what takes new orders: the orders API (and the seed job, which builds its app).
    "PAYMENT_WEBHOOK_SECRET_TESTPAY": {"orders", "seed"},
    # WeChat Pay's APIv3 key decrypts its notifications and downloaded certificates: the
    # processes that call the providers (and the seed job, which builds the orders app).
    "WECHATPAY_APIV3_KEY": {*PAYMENT_PROCESSES},
    # The Official Account's AppSecret: only the gateway's pay page (WeChat OAuth for JSAPI).
    "WECHAT_APP_SECRET": {GATEWAY},
}

# Variables whose values are secrets, by their names.
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|_KEYS?$|BASIC_AUTH")


# Tasks a worker's shutdown may cut off: long periodic repairs, acknowledged late, so the
# broker hands them out again after the visibility timeout (and the next period runs one).
INTERRUPTIBLE_TASKS = {"ranking.reconcile"}


def manifest_files() -> list[Path]:
    return sorted(path for path in K8S.glob("*.yaml") if path != KUSTOMIZATION)


@pytest.fixture(scope="module")
def documents() -> list[dict]:
    docs = []
    for path in manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append({**doc, "_file": path.name})
    return docs


@pytest.fixture(scope="module")
def objects(documents) -> dict[tuple[str, str], dict]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in documents}


def of_kind(objects: dict, kind: str) -> dict[str, dict]:
    return {name: doc for (k, name), doc in objects.items() if k == kind}


def workloads(objects: dict) -> dict[str, dict]:
    """Every Deployment and Job, by name (the names are unique across both)."""
    found = {}
    for kind in WORKLOAD_KINDS:
        for name, doc in of_kind(objects, kind).items():
            assert name not in found, f"{name} is both a Deployment and a Job"
            found[name] = doc
    return found


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def containers(workload: dict) -> list[dict]:
    spec = pod_spec(workload)
    return spec["containers"] + spec.get("initContainers", [])


def main_container(workload: dict) -> dict:
    (container,) = pod_spec(workload)["containers"]
    return container


def argv(container: dict) -> list[str]:
    return [str(arg) for arg in (container.get("command") or []) + (container.get("args") or [])]


def option(args: list[str], *names: str) -> str | None:
    """Value of the first of ``names`` in ``args`` (``-Q x`` or ``--queues=x``)."""
    for index, arg in enumerate(args):
        for name in names:
            if arg == name and index + 1 < len(args):
                return args[index + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def container_port(container: dict, port) -> int:
    """A probe's or Service's port (a number or a port name) as a number."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    return number


def env_sources(container: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container.get("env", [])}


def secret_key(container: dict, name: str) -> str | None:
    source = env_sources(container).get(name, {}).get("valueFrom", {}).get("secretKeyRef")
    return source["key"] if source else None


@pytest.fixture(scope="module")
def config_map(objects) -> dict[str, str]:
    return of_kind(objects, "ConfigMap")[CONFIG_MAP]["data"]


@pytest.fixture(scope="module")
def secret(objects) -> dict[str, str]:
    return of_kind(objects, "Secret")[SECRET]["stringData"]


def available_env(container: dict, config_map: dict, secret: dict) -> set[str]:
    """Every variable the container's process sees (env plus envFrom)."""
    names = set(env_sources(container))
    for source in container.get("envFrom", []):
        if source.get("configMapRef", {}).get("name") == CONFIG_MAP:
            names |= set(config_map)
        if source.get("secretRef", {}).get("name") == SECRET:
            names |= set(secret)
    return names


def cpu(quantity) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}


def memory(quantity) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]i?)?", str(quantity))
    assert match, f"unreadable memory quantity {quantity!r}"
    return float(match.group(1)) * MEMORY_UNITS.get(match.group(2) or "", 1)


# Compose interpolation: $$ (a literal $), ${VAR}, ${VAR:-default}, ${VAR-default},
# ${VAR:?error}, ${VAR?error} (required: compose refuses to start without it), $VAR.
_VARIABLE = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?[-?])([^}]*))?\}|(\w+))")


class MissingVariable(KeyError):
    """A ``${VAR:?…}`` with VAR unset: compose refuses to start."""


def interpolate(text: str, environ: dict[str, str]) -> str:
    """``text`` as compose interpolates it from ``environ``."""
    def replace(match: re.Match) -> str:
        dollar, name, operator, default, bare = match.groups()
        if dollar:
            return "$"
        value = environ.get(name or bare)
        if operator in (":?", "?") and (value is None or (operator == ":?" and not value)):
            raise MissingVariable(f"{name}: {default}")
        if operator == ":-" and not value:
            return default
        if operator == "-" and value is None:
            return default
        return value or ""

    return _VARIABLE.sub(replace, text)


def interpolated(node, environ: dict[str, str] | None = None):
    """The compose file's values from ``environ``: by default an operator's deploy/.env as
    deploy/new-env.sh writes it (the required secrets), everything else at its default."""
    environ = operator_environment() if environ is None else environ
    if isinstance(node, str):
        return interpolate(node, environ)
    if isinstance(node, dict):
        return {key: interpolated(value, environ) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolated(item, environ) for item in node]
    return node


_operator_environment: dict[str, str] = {}


def operator_environment() -> dict[str, str]:
    """The variables deploy/new-env.sh writes (made once per test session)."""
    if not _operator_environment:
        with tempfile.TemporaryDirectory() as directory:
            env_file = Path(directory) / "deploy.env"
            subprocess.run([str(NEW_ENV), str(env_file)], check=True, capture_output=True, timeout=60)
            written = env_file.read_text()
        for line in written.splitlines():
            if line and not line.startswith("#") and "=" in line:
                name, value = line.split("=", 1)
                _operator_environment[name] = value
    return dict(_operator_environment)


@pytest.fixture(scope="module")
def compose() -> dict[str, dict]:
    """The compose services running the application image (not Redis, PostgreSQL, ...)."""
    services = interpolated(yaml.safe_load(COMPOSE_FILE.read_text()))["services"]
    image = app_image(services)
    return {name: svc for name, svc in services.items() if svc.get("image") == image}


def processes_of(args: list[str]) -> list[str]:
    """The platform processes a command starts, named as diandian_common.deployment.check
    names them: ``gateway``, ``orders`` (an API), ``orders-worker``, ``orders-beat``; none
    for the migrations and Flower, which build no app."""
    if args[:2] == ["sh", "-c"]:
        return [p for command in args[2].split("&&") for p in processes_of(shlex.split(command))]
    apps = [arg.split(".")[0] for arg in args if re.fullmatch(r"\w+\.app(:create_app\(\))?", arg)]
    if args[:1] == ["celery"] and option(args, "-A", "--app"):
        role = "worker" if "worker" in args else "beat" if "beat" in args else None
        return [f"{option(args, '-A', '--app').split('.')[0]}-{role}"] if role else []
    return apps


def app_image(services: dict) -> str:
    """The image the compose file builds (deploy/Dockerfile)."""
    (image,) = {svc["image"] for svc in services.values() if "build" in svc}
    return image


def compose_argv(service: dict) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def compose_env(service: dict) -> set[str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return {item.split("=", 1)[0] for item in env}
    return set(env)


def services_with_periodic_tasks() -> list[str]:
    return [s for s in config.SERVICES if importlib.import_module(f"{s}.tasks").celery.conf.beat_schedule]


def assert_service_routes_to(objects: dict, name: str, deployment: dict) -> None:
    service = of_kind(objects, "Service").get(name)
    assert service, f"no Service in front of {name}"
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == APP_PORT, "the *_URL variables say :8000"
    assert container_port(main_container(deployment), port["targetPort"]) == APP_PORT


def worker_probe(objects, service: str, probe: str) -> list[str]:
    return main_container(of_kind(objects, "Deployment")[f"{service}-worker"])[probe]["exec"]["command"]


def owner(workload: dict) -> str:
    return workload["metadata"]["labels"]["diandian.io/service"]


def multiproc_dir_is_private(workload: dict) -> bool:
    """PROMETHEUS_MULTIPROC_DIR on an emptyDir: every process of the pod, nobody else's."""
    container = main_container(workload)
    directory = env_sources(container)["PROMETHEUS_MULTIPROC_DIR"]["value"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
    (volume,) = [v for v in pod_spec(workload)["volumes"] if v["name"] == mount["name"]]
    return "emptyDir" in volume


def http_status(url: str, auth: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(":".join(auth).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# --- what the processes write: a read-only root filesystem with writable mounts only there ---

# Every container's scratch (Python's tempfile, gunicorn's heartbeat files and control socket,
# Celery beat's schedule, fontconfig's cache: deploy/Dockerfile points XDG_* there).
SCRATCH = "/tmp"
# PROMETHEUS_MULTIPROC_DIR, the same in both deployments.
METRICS_DIR = "/run/prometheus"
# Where the worker serves its metrics, in both deployments.
WORKER_METRICS_PORT = 9100
# The user the Dockerfile creates and every process runs as.
IMAGE_UID = 10001


def writes_var_dir(app: str) -> bool:
    """Whether ``app``'s own code (gateway, or a service) writes under VAR_DIR (config.var_dir()):
    the calculator's render cache, the certificate PDFs and font subsets, WeChat Pay's
    platform certificates, the gateway's compiled translations."""
    package = ROOT / "gateway" if app == GATEWAY else ROOT / "services" / app
    return any("var_dir()" in path.read_text() for path in package.rglob("*.py") if "tests" not in path.parts)


def needs_var_dir(args: list[str]) -> bool:
    """Whether a command's processes write VAR_DIR: an API, a worker or a job building the app
    of a service that writes there. A scheduler only sends tasks, it runs none."""
    return any(writes_var_dir(process.removesuffix("-worker")) for process in processes_of(args)
               if not process.endswith("-beat"))


def node_name(args: list[str]) -> str | None:
    """The Celery node name a worker or scheduler answers pings on, with %h as the shell's
    $HOSTNAME (which it is in a container and a pod); None for other commands."""
    name = option(args, "-n", "--hostname")
    return name.replace("%h", "$HOSTNAME") if name else None


def celery_ping(command: str) -> dict[str, str | None]:
    """What a healthcheck's or probe's shell command pings: broker and destination."""
    args = shlex.split(command)
    assert args[:1] == ["celery"] and args[3:5] == ["inspect", "ping"], command
    return {"broker": option(args, "--broker", "-b"), "destination": option(args, "--destination", "-d"),
            "timeout": option(args, "--timeout", "-t")}


def is_scheduler(args: list[str]) -> bool:
    return args[:1] == ["celery"] and "beat" in args


def is_worker(args: list[str]) -> bool:
    return args[:1] == ["celery"] and "worker" in args


def runs_gunicorn(args: list[str]) -> bool:
    return args[:1] == ["gunicorn"]
