"""deploy/docker-compose.yml and deploy/Dockerfile agree with the code.

The file is read the way Compose reads it (YAML anchors and merge keys resolved, then
``${VAR:-default}`` interpolated with the environment an operator gets from
``deploy/new-env.sh``: the required secrets, everything else at its default) and checked
against what the code expects: the services of ``diandian_common.config.SERVICES``, their
queues, entry points, databases (``diandian_common.migrate.DATABASES``: the services' and the
gateway's) and URLs; and that no secret has a value or default in the file, so that the
stack runs in production mode only with the operator's own secrets, which every process
accepts (``diandian_common.deployment``). The stack itself is built, started, scaled and
driven by ``make test-compose`` (tests/compose/).
"""
from __future__ import annotations

import importlib.util
import os
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from certificates.fonts import FONT_NEEDS
from diandian_common import config, deployment
from diandian_common.migrate import DATABASES
from tests.deploy_files import (
    GATEWAY_WECHAT_SETTINGS,
    IMAGE_UID,
    METRICS_DIR,
    PAYMENT_KEYS_MOUNT,
    PAYMENT_PROCESSES,
    PAYMENT_SETTINGS,
    SCRATCH,
    SECRET_NAME,
    WITHHELD,
    WORKER_METRICS_PORT,
    MissingVariable,
    celery_ping,
    interpolated,
    is_scheduler,
    is_worker,
    needs_var_dir,
    node_name,
    operator_environment,
    option,
    processes_of,
    runs_gunicorn,
)

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
POSTGRES_INIT = DEPLOY / "postgres-init"
APP_PORT = 8000          # every API and the gateway listen on it inside their container
GATEWAY = "gateway"
COMPLETED = "service_completed_successfully"
HEALTHY = "service_healthy"

# What compose refuses to start without (``${VAR:?…}``): every secret with a public default
# in development, and the provider of new orders (production has none).
REQUIRED = {"GATEWAY_SECRET_KEY", "INTERNAL_API_SECRET", "CERTIFICATE_SIGNING_KEYS", "METRICS_TOKEN",
            "REDIS_PASSWORD", "POSTGRES_PASSWORD", "PAYMENT_PROVIDERS"}
# Secrets that may be empty: no operator key means none is accepted; a provider's webhook
# secret is needed only while PAYMENT_PROVIDERS names it, which the orders API checks; a
# merchant's WeChat Pay secrets only once wechatpay is enabled.
OPTIONAL_SECRETS = {"OPERATOR_API_KEY", "PAYMENT_WEBHOOK_SECRET_TESTPAY", "FLOWER_BASIC_AUTH",
                    "WECHATPAY_APIV3_KEY", "WECHAT_APP_SECRET"}
_REFERENCE = re.compile(r"\$\{(\w+)(:?[-?])?([^}]*)\}")


@pytest.fixture(scope="module")
def raw_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(raw_compose) -> dict[str, dict]:
    return interpolated(raw_compose, operator_environment())["services"]


def argv(service: dict) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else list(command)


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def depends_on(service: dict) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: spec["condition"] for name, spec in deps.items()}


def celery_workers(services: dict) -> dict[str, list[str]]:
    return {name: args for name, svc in services.items()
            if (args := argv(svc))[:1] == ["celery"] and "worker" in args}


def api_command(service: str, threads: int) -> list[str]:
    """The gunicorn command line of Procfile for ``service`` (an API or the gateway)."""
    return ["gunicorn", "--bind", f"0.0.0.0:{APP_PORT}", "--workers", "2", "--worker-class", "gthread",
            "--threads", str(threads), "--timeout", "30", f"{service}.app:create_app()"]


def postgres_init_databases() -> set[str]:
    sql = "\n".join(path.read_text() for path in sorted(POSTGRES_INIT.glob("*.sql")))
    sql = re.sub(r"--[^\n]*", "", sql)
    return set(re.findall(r"CREATE\s+DATABASE\s+\"?(\w+)\"?", sql, flags=re.IGNORECASE))


def database_urls(services: dict) -> dict[str, set[str]]:
    """Every database URL the containers use, by the platform service it belongs to.

    ``{SERVICE}_DATABASE_URL`` names its service; a bare ``DATABASE_URL`` belongs to the
    service the container is named after (``orders``, ``orders-worker``, ``orders-beat``).
    """
    urls: dict[str, set[str]] = {}
    for name, svc in services.items():
        for key, value in environment(svc).items():
            if key == "DATABASE_URL":
                owner = name.split("-")[0]
            elif key.endswith("_DATABASE_URL"):
                owner = key.removesuffix("_DATABASE_URL").lower()
            else:
                continue
            urls.setdefault(owner, set()).add(value)
    return urls


# --- the services of the code are all there ------------------------------------------


@pytest.mark.parametrize("service", config.SERVICES)
def test_every_service_has_an_api_on_the_common_port(services, service):
    assert service in services, f"no compose service runs the {service} API"
    assert argv(services[service]) == api_command(service, threads=4)


@pytest.mark.parametrize("service", config.SERVICES)
def test_every_service_has_a_worker_consuming_exactly_its_own_queue(services, service):
    name = f"{service}-worker"
    assert name in services, f"no compose service runs the {service} worker"
    args = argv(services[name])
    assert args[:4] == ["celery", "-A", f"{service}.tasks", "worker"]
    assert option(args, "-Q", "--queues") == service
    # A unique node name per container, so scaled replicas don't collide.
    assert option(args, "-n", "--hostname") == f"{service}@%h"


def test_each_queue_has_exactly_one_worker_service(services):
    consumers: dict[str, list[str]] = {}
    for name, args in celery_workers(services).items():
        for queue in (option(args, "-Q", "--queues") or "").split(","):
            consumers.setdefault(queue, []).append(name)
    assert consumers == {service: [f"{service}-worker"] for service in config.SERVICES}


def services_with_periodic_tasks() -> list[str]:
    """The services whose Celery app has a beat schedule (read from the code)."""
    import importlib
    return [s for s in config.SERVICES if importlib.import_module(f"{s}.tasks").celery.conf.beat_schedule]


def test_each_service_with_periodic_tasks_has_exactly_one_scheduler(services):
    schedulers = {name: args for name, svc in services.items()
                  if (args := argv(svc))[:1] == ["celery"] and "beat" in args}
    expected = services_with_periodic_tasks()
    assert "orders" in expected
    assert sorted(schedulers) == sorted(f"{s}-beat" for s in expected)
    for service in expected:
        name = f"{service}-beat"
        assert schedulers[name][:4] == ["celery", "-A", f"{service}.tasks", "beat"]
        assert "container_name" not in services[name]
        assert "deploy" not in services[name], "a scheduler must not be replicated"
        assert depends_on(services[name]).get(f"{service}-migrate") == COMPLETED


def test_gateway_runs_on_the_common_port(services):
    assert argv(services[GATEWAY]) == api_command(GATEWAY, threads=8)


# --- where the entry points live -------------------------------------------------------


def entry_modules(services: dict) -> set[str]:
    """Every module a compose command loads: ``-A x``, ``--app x``, ``-m x``, ``x:factory()``."""
    modules = set()
    for svc in services.values():
        args = argv(svc)
        if args[:2] == ["sh", "-c"]:
            args = shlex.split(args[2].replace("&&", " "))
        for index, arg in enumerate(args[:-1]):
            if arg in ("-A", "--app", "-m"):
                modules.add(args[index + 1])
        modules.update(arg.split(":")[0] for arg in args if re.fullmatch(r"[\w.]+:\w+\(\)", arg))
    return modules


def test_compose_commands_load_every_entry_point(services):
    expected = {"diandian_common.migrate", "gateway.app"}
    expected |= {f"{service}.{module}" for service in config.SERVICES for module in ("app", "tasks")}
    assert entry_modules(services) >= expected


def test_entry_modules_exist_in_the_repository(services):
    """The modules compose starts exist here, where the image copies them from."""
    missing = {}
    for module in sorted(entry_modules(services)):
        try:
            spec = importlib.util.find_spec(module)
        except ModuleNotFoundError:  # its parent package does not exist
            spec = None
        if spec is None or spec.origin is None:
            missing[module] = "not found"
        elif not Path(spec.origin).resolve().is_relative_to(ROOT):
            missing[module] = f"found outside the repository: {spec.origin}"
    assert not missing, missing


def test_migrations_run_once_per_service_before_its_processes(services):
    for service in config.SERVICES:
        job = f"{service}-migrate"
        assert argv(services[job]) == ["python", "-m", "diandian_common.migrate", "upgrade", service]
        assert services[job]["restart"] == "no"
        assert depends_on(services[job]).get("postgres") == HEALTHY
        for process in (service, f"{service}-worker"):
            assert depends_on(services[process]).get(job) == COMPLETED, process


def test_gateway_database_is_migrated_and_the_operator_key_ensured_before_it_starts(services):
    migrate = services["gateway-migrate"]
    assert argv(migrate) == ["python", "-m", "diandian_common.migrate", "upgrade", "gateway"]
    assert migrate["restart"] == "no" and depends_on(migrate) == {"postgres": HEALTHY}
    keys = services["gateway-keys"]
    assert argv(keys) == ["flask", "--app", "gateway.app", "keys", "ensure-operator"]
    assert keys["restart"] == "no" and depends_on(keys) == {"gateway-migrate": COMPLETED}
    assert depends_on(services[GATEWAY]).get("gateway-keys") == COMPLETED
    # the job mirrors the very key and database the gateway uses
    for variable in ("OPERATOR_API_KEY", "DATABASE_URL"):
        assert environment(keys)[variable] == environment(services[GATEWAY])[variable], variable


def test_gateway_and_services_share_the_internal_secret(raw_compose):
    """The services accept the gateway's operator assertions only when both sides sign
    with the same INTERNAL_API_SECRET; the deployer's value reaches every one of them."""
    def declared(name: str) -> str | None:
        env = interpolated(raw_compose, {**operator_environment(), "INTERNAL_API_SECRET": "s3cret"})["services"][name]
        return environment(env).get("INTERNAL_API_SECRET")

    for name in (GATEWAY, *config.SERVICES):
        assert declared(name) == "s3cret", name


def test_demo_seed_runs_after_its_migrations_and_before_the_gateway(services):
    seed = services["seed"]
    assert seed["restart"] == "no"
    assert argv(seed)[:2] == ["sh", "-c"]
    assert [cmd.split() for cmd in argv(seed)[2].split("&&")] == [
        ["flask", "--app", "calculator.app", "seed-demo"],
        ["flask", "--app", "orders.app", "seed-demo"],
    ]
    assert depends_on(seed) == {"calculator-migrate": COMPLETED, "orders-migrate": COMPLETED}
    assert depends_on(services[GATEWAY]).get("seed") == COMPLETED


def test_dependencies_exist_and_their_conditions_can_be_met(services):
    for name, svc in services.items():
        for dep, condition in depends_on(svc).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if condition == HEALTHY:
                assert "healthcheck" in services[dep], f"{name} waits for {dep}, which has no healthcheck"
            elif condition == COMPLETED:
                assert services[dep].get("restart") == "no", f"{name} waits for {dep} to exit"
            else:
                assert condition == "service_started", f"{name}: unknown condition {condition}"


def test_gateway_waits_for_every_api_to_be_healthy(services):
    deps = depends_on(services[GATEWAY])
    waits = {service: deps.get(service) for service in config.SERVICES}
    assert waits == dict.fromkeys(config.SERVICES, HEALTHY)


def test_apis_and_gateway_are_health_checked_on_healthz(services):
    for name in (*config.SERVICES, GATEWAY):
        test = services[name]["healthcheck"]["test"]
        command = " ".join(test[1:]) if isinstance(test, list) else test
        assert f"127.0.0.1:{APP_PORT}/healthz" in command, name


# --- databases -------------------------------------------------------------------------


def test_every_service_has_its_own_postgres_database(services):
    urls = database_urls(services)
    assert set(urls) == set(DATABASES), "database URLs for services the code doesn't know"
    for service, found in urls.items():
        assert len(found) == 1, f"{service}'s containers disagree on its database: {found}"
    databases = {service: urlsplit(next(iter(found))) for service, found in urls.items()}
    names = [url.path.lstrip("/") for url in databases.values()]
    assert len(set(names)) == len(names), f"two services share a database: {names}"
    created = postgres_init_databases()
    for service, url in databases.items():
        assert url.scheme == "postgresql", service
        assert url.hostname in services and services[url.hostname]["image"].startswith("postgres:")
        assert url.port == 5432
        assert url.path.lstrip("/") in created, f"postgres-init/ does not create {url.path} ({service})"


def test_postgres_mounts_the_init_scripts(services):
    mounts = services["postgres"]["volumes"]
    assert "./postgres-init:/docker-entrypoint-initdb.d:ro" in mounts
    assert postgres_init_databases() >= set(DATABASES)


# --- how the containers reach each other ----------------------------------------------


def published_ports(service: dict) -> list[str]:
    return [str(port) for port in service.get("ports") or []]


@pytest.mark.parametrize("variable", ["REDIS_URL", "CELERY_BROKER_URL"])
def test_every_container_reaches_the_same_redis(services, variable):
    for name, svc in services.items():
        value = environment(svc).get(variable)
        if value:
            url = urlsplit(value)
            assert (url.scheme, url.hostname, url.port) == ("redis", "redis", 6379), name
            assert services["redis"]["image"].startswith("redis:")


def test_gateway_and_orders_reach_the_apis_by_service_name(services):
    service_urls = {f"{service.upper()}_URL": service for service in config.SERVICES}
    gateway_env = environment(services[GATEWAY])
    assert set(service_urls) <= set(gateway_env), "the gateway misses a service URL"
    assert "CALCULATOR_URL" in environment(services["orders"])
    assert "CALCULATOR_URL" in environment(services["orders-worker"])
    for name, svc in services.items():
        for variable, value in environment(svc).items():
            if variable in service_urls:
                url = urlsplit(value)
                assert url.hostname == service_urls[variable], f"{name}: {variable}={value}"
                assert url.port == APP_PORT
                assert f"--bind 0.0.0.0:{url.port}" in " ".join(argv(services[url.hostname]))


def test_only_the_gateway_publishes_a_port_to_the_world(raw_compose, services):
    """Flower (Celery's monitoring UI) is published too, but on this host's loopback only
    unless an operator says otherwise; everything else is reached through the gateway."""
    publishing = {name for name, svc in services.items() if published_ports(svc)}
    assert publishing == {GATEWAY, "flower"}
    (flower_port,) = raw_compose["services"]["flower"]["ports"]
    assert flower_port.startswith("${FLOWER_BIND_ADDRESS:-127.0.0.1}:")
    assert published_ports(services["flower"])[0].startswith("127.0.0.1:")
    (port,) = raw_compose["services"][GATEWAY]["ports"]
    assert port.endswith("${GATEWAY_PORT:-8000}:8000")
    assert published_ports(services[GATEWAY])[0].rsplit(":", 2)[1:] == ["8000", str(APP_PORT)]


def test_no_container_has_a_fixed_name(services):
    """Workers scale (``--scale x-worker=N``) and two stacks can run side by side."""
    assert [name for name, svc in services.items() if "container_name" in svc] == []
    for name in celery_workers(services):
        assert not published_ports(services[name]), name


def test_certificates_api_and_workers_share_the_pdf_volume(raw_compose, services):
    def var_dir_volume(name: str) -> str:
        var_dir = environment(services[name])["VAR_DIR"]
        sources = [v.split(":")[0] for v in services[name]["volumes"] if v.split(":")[1] == var_dir]
        assert len(sources) == 1, f"{name} has no volume at VAR_DIR={var_dir}"
        return sources[0]

    volume = var_dir_volume("certificates")
    assert var_dir_volume("certificates-worker") == volume
    assert volume in raw_compose["volumes"], "the PDFs must live in a named volume"


def test_every_application_container_runs_the_one_image(raw_compose, services):
    apps = {name: svc for name, svc in services.items() if name not in ("redis", "postgres")}
    assert {svc["image"] for svc in apps.values()} == {"diandian:latest"}
    for name, svc in apps.items():
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile", name
        assert (COMPOSE_FILE.parent / svc["build"]["context"]).resolve() == ROOT, name


# --- the image -------------------------------------------------------------------------


def test_dockerfile_base_image_is_a_build_argument(services):
    dockerfile = DOCKERFILE.read_text()
    default = re.search(r"^ARG BASE_IMAGE=(\S+)$", dockerfile, flags=re.MULTILINE)
    assert default and default.group(1) == "python:3.11-slim"
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", dockerfile, flags=re.MULTILINE)
    assert dockerfile.index("ARG BASE_IMAGE") < dockerfile.index("FROM ")
    # compose passes the same default, so both ways of building give the same image
    assert services["calculator"]["build"]["args"]["BASE_IMAGE"] == default.group(1)


def apt_installed_packages(dockerfile: str) -> set[str]:
    """The packages every ``apt-get install`` of the Dockerfile's RUN instructions names."""
    instructions = re.sub(r"\\\n", " ", dockerfile).splitlines()
    packages = set()
    for line in instructions:
        if line.startswith("RUN "):
            for step in re.split(r"&&|;|\bthen\b", line):
                words = step.split()
                if words[:2] == ["apt-get", "install"]:
                    packages.update(word for word in words[2:] if not word.startswith("-"))
    return packages


def test_dockerfile_carries_what_the_processes_need():
    dockerfile = DOCKERFILE.read_text()
    # WeasyPrint's libraries, every font the certificate needs, curl for the healthchecks
    assert apt_installed_packages(dockerfile) >= {
        "libpango-1.0-0", "libpangoft2-1.0-0", "libharfbuzz-subset0", "fontconfig", "curl",
        *(need.debian_package for need in FONT_NEEDS)}
    assert re.search(r"^\s*PYTHONPATH=/app:/app/services\b", re.sub(r"\\\n", "\n", dockerfile),
                     flags=re.MULTILINE) or "ENV PYTHONPATH=/app:/app/services" in dockerfile
    assert re.search(r"^USER (?!root\b)\w+", dockerfile, flags=re.MULTILINE), "processes must not run as root"
    for source, target in re.findall(r"^COPY (\S+) (/app/\S+)$", dockerfile, flags=re.MULTILINE):
        assert (ROOT / source).is_dir(), f"COPY {source}: no such directory"
        assert target == f"/app/{source}"


# --- secrets: none in the file, all required, all accepted by the processes -----------------


def app_services(services: dict) -> dict[str, dict]:
    return {name: svc for name, svc in services.items() if name not in ("redis", "postgres")}


def test_every_application_container_runs_in_production_mode(services):
    for name, svc in app_services(services).items():
        assert environment(svc).get("DIANDIAN_ENV") == "production", name


def test_no_secret_has_a_value_or_a_default_in_the_file():
    """A default written here is public; so is a value. Every secret comes from the
    operator's environment (deploy/.env), required where the stack cannot run without it."""
    text = COMPOSE_FILE.read_text()
    references = _REFERENCE.findall(text)
    secrets = {name for name, _operator, _rest in references if SECRET_NAME.search(name)}
    assert secrets >= REQUIRED - {"PAYMENT_PROVIDERS"}
    for name, operator, rest in references:
        if name in REQUIRED:
            assert operator == ":?", f"${{{name}{operator}{rest}}}: compose must refuse to start without it"
        elif SECRET_NAME.search(name):
            assert name in OPTIONAL_SECRETS and (operator, rest) in (("", ""), (":-", "")), \
                f"${{{name}{operator}{rest}}} gives a secret a default"
    # And no container sets a secret to a literal value.
    for name, svc in yaml.safe_load(text)["services"].items():
        env = svc.get("environment") or {}
        for variable, value in (env.items() if isinstance(env, dict) else []):
            if SECRET_NAME.search(variable) and value is not None:
                assert "${" in str(value), f"{name}: {variable} has a literal value"


@pytest.mark.parametrize("variable", sorted(REQUIRED))
def test_compose_refuses_to_start_without_each_required_variable(raw_compose, variable):
    environ = {k: v for k, v in operator_environment().items() if k != variable}
    with pytest.raises(MissingVariable, match=variable):
        interpolated(raw_compose, environ)
    with pytest.raises(MissingVariable, match=variable):
        interpolated(raw_compose, {**environ, variable: ""})


def test_redis_requires_the_password_every_client_gives(services):
    password = operator_environment()["REDIS_PASSWORD"]
    redis = services["redis"]
    assert option(argv(redis), "--requirepass") == password
    assert environment(redis)["REDISCLI_AUTH"] == password   # the healthcheck's redis-cli
    urls = {name: environment(svc)["REDIS_URL"] for name, svc in app_services(services).items()}
    assert {name: urlsplit(url).password for name, url in urls.items()} == dict.fromkeys(urls, password)


def test_postgres_requires_the_password_every_database_url_gives(services):
    password = operator_environment()["POSTGRES_PASSWORD"]
    assert environment(services["postgres"])["POSTGRES_PASSWORD"] == password
    for service, urls in database_urls(services).items():
        assert {urlsplit(url).password for url in urls} == {password}, service


def running_in(env: dict[str, str], monkeypatch) -> None:
    """This test process's environment is a container's (nothing else of the machine's)."""
    for variable in list(os.environ):
        if variable.endswith(("_URL", "_SECRET_KEY", "_SECRET", "_KEYS", "_TOKEN", "_PROVIDER")) \
                or variable.startswith(("DIANDIAN_", "PAYMENT_", "WORKER_METRICS")):
            monkeypatch.delenv(variable)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)


def test_every_process_accepts_the_operators_secrets(services, monkeypatch):
    """Each container's environment, with deploy/new-env.sh's secrets, passes its process's
    own production check: the stack starts (make test-compose starts it for real)."""
    checked = set()
    for name, svc in app_services(services).items():
        for process in processes_of(argv(svc)):
            with monkeypatch.context() as patch:
                running_in(environment(svc), patch)
                assert deployment.is_production(), name
                assert deployment.problems(process) == [], f"{name} ({process})"
            checked.add(process)
    assert checked >= {"gateway", *config.SERVICES, *(f"{s}-worker" for s in config.SERVICES)}


def test_without_the_operators_secrets_nothing_starts(services, monkeypatch):
    """With the development values instead (what the variables held before they were
    required), every process of the stack refuses, naming them."""
    public = {"GATEWAY_SECRET_KEY": "diandian-local-development-secret",
              "INTERNAL_API_SECRET": "diandian-local-development-internal-secret",
              "CERTIFICATE_SIGNING_KEYS": deployment.DEVELOPMENT_CERTIFICATE_SIGNING_KEY,
              "METRICS_TOKEN": "x", "REDIS_PASSWORD": "diandian", "POSTGRES_PASSWORD": "diandian",
              "PAYMENT_PROVIDERS": "sandbox"}
    weak = interpolated(yaml.safe_load(COMPOSE_FILE.read_text()), public)["services"]
    for svc in app_services(weak).values():
        for process in processes_of(argv(svc)):
            with monkeypatch.context() as patch:
                running_in(environment(svc), patch)
                with pytest.raises(deployment.InsecureDeployment, match=f"refusing to start {process}"):
                    deployment.check(process)


# --- payments: a merchant's configuration reaches every process that calls the providers ---


def code_reads(variable: str) -> bool:
    sources = [*(ROOT / "services" / "orders").rglob("*.py"), *(ROOT / "gateway").glob("*.py")]
    # WeChat Pay's required settings are read as f"WECHATPAY_{name}" and fees as
    # f"PAYMENT_FEE_BPS_{name.upper()}": the suffix is enough there.
    needles = {f'"{variable}"', f'"{variable.removeprefix("WECHATPAY_")}"'} \
        if variable.startswith("WECHATPAY_") else {f'"{variable}"'}
    if variable.startswith("PAYMENT_FEE_BPS_"):
        needles = {"PAYMENT_FEE_BPS_{"}
    return any(needle in path.read_text() for path in sources if "tests" not in path.parts
               for needle in needles)


@pytest.mark.parametrize("variable", sorted(set(PAYMENT_SETTINGS + GATEWAY_WECHAT_SETTINGS)))
def test_the_payment_settings_passed_are_those_the_code_reads(variable):
    assert code_reads(variable), f"nothing in services/orders or gateway reads {variable}"


@pytest.mark.parametrize("name", PAYMENT_PROCESSES)
def test_every_process_calling_the_providers_gets_every_payment_setting(services, name):
    env = environment(services[name])
    assert set(PAYMENT_SETTINGS) <= set(env), f"{name} lacks {sorted(set(PAYMENT_SETTINGS) - set(env))}"
    assert env["PAYMENT_PROVIDERS"] == operator_environment()["PAYMENT_PROVIDERS"]


def test_a_merchants_settings_reach_the_containers_unchanged(raw_compose):
    merchant = {variable: f"merchant-{variable.lower()}" for variable in PAYMENT_SETTINGS}
    merchant |= {variable: f"merchant-{variable.lower()}" for variable in GATEWAY_WECHAT_SETTINGS}
    services = interpolated(raw_compose, {**operator_environment(), **merchant})["services"]
    for name in PAYMENT_PROCESSES:
        env = environment(services[name])
        assert {v: env[v] for v in PAYMENT_SETTINGS} == {v: merchant[v] for v in PAYMENT_SETTINGS}, name
    gateway = environment(services["gateway"])
    assert {v: gateway[v] for v in GATEWAY_WECHAT_SETTINGS} == {v: merchant[v] for v in GATEWAY_WECHAT_SETTINGS}


def test_no_payment_setting_has_a_default(raw_compose):
    """Unset, each is empty (the code's default, or the provider not configured): no
    merchant's values, no public key, no sandbox."""
    environ = {k: v for k, v in operator_environment().items() if k in REQUIRED}
    services = interpolated(raw_compose, environ)["services"]
    for name in PAYMENT_PROCESSES:
        env = environment(services[name])
        assert {v: env[v] for v in PAYMENT_SETTINGS if v != "PAYMENT_PROVIDERS"} == \
            dict.fromkeys(set(PAYMENT_SETTINGS) - {"PAYMENT_PROVIDERS"}, ""), name
    assert {v: environment(services["gateway"])[v] for v in GATEWAY_WECHAT_SETTINGS} == \
        dict.fromkeys(GATEWAY_WECHAT_SETTINGS, "")


@pytest.mark.parametrize("variable", sorted(v for v in WITHHELD if v.startswith(("WECHAT", "PAYMENT_"))))
def test_payment_secrets_reach_only_their_users(services, variable):
    holders = {name for name, svc in app_services(services).items() if variable in environment(svc)}
    assert holders == WITHHELD[variable]


def key_mounts(service: dict) -> list[str]:
    return [volume for volume in service.get("volumes") or []
            if isinstance(volume, str) and volume.split(":")[1] == PAYMENT_KEYS_MOUNT]


def test_the_key_files_are_mounted_read_only_from_the_operators_directory(raw_compose, services, tmp_path):
    for name, svc in app_services(services).items():
        mounts = key_mounts(svc)
        if name not in PAYMENT_PROCESSES:
            assert not mounts, f"{name} needs no payment keys"
            continue
        (mount,) = mounts
        assert mount.split(":")[2] == "ro", f"{name} must not be able to write the merchant's keys"
    # The operator's directory when PAYMENT_KEYS_DIR is set; deploy/payment-keys (ignored by
    # git, outside the image's build context) otherwise.
    chosen = interpolated(raw_compose, {**operator_environment(), "PAYMENT_KEYS_DIR": str(tmp_path)})["services"]
    assert {key_mounts(chosen[name])[0].split(":")[0] for name in PAYMENT_PROCESSES} == {str(tmp_path)}
    assert {key_mounts(services[name])[0].split(":")[0] for name in PAYMENT_PROCESSES} == {"./payment-keys"}
    assert "payment-keys/" in (DEPLOY / ".gitignore").read_text().splitlines()
    # .dockerignore lets only the code into the build context, never the keys.
    assert not any("payment" in line for line in (ROOT / ".dockerignore").read_text().splitlines())


def test_a_live_merchant_configuration_passes_every_orders_process(raw_compose, monkeypatch, tmp_path):
    """What deploy/README.md tells a merchant to set, with the key files in PAYMENT_KEYS_DIR,
    is what the orders API, worker and scheduler accept; a key file left out is refused."""
    keys = {"WECHATPAY_PRIVATE_KEY_FILE": "apiclient_key.pem", "WECHATPAY_PUBLIC_KEY_FILE": "pub_key.pem",
            "ALIPAY_APP_PRIVATE_KEY_FILE": "alipay_app_private_key.pem",
            "ALIPAY_PUBLIC_KEY_FILE": "alipay_public_key.pem"}
    for file in keys.values():
        (tmp_path / file).write_text("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n")
    merchant = {"PAYMENT_PROVIDERS": "wechatpay,alipay", "WECHATPAY_MCHID": "1900000109",
                "WECHATPAY_APPID": "wx8888888888888888", "WECHATPAY_CERT_SERIAL_NO": "5157F09EFDC096DE15EBE81A47057A72",
                "WECHATPAY_APIV3_KEY": "a" * 32, "WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_0114232134912410000",
                "ALIPAY_APP_ID": "2021000000000000",
                # The container's paths, which the mount maps to PAYMENT_KEYS_DIR (here tmp_path).
                **{variable: str(tmp_path / file) for variable, file in keys.items()}}
    services = interpolated(raw_compose, {**operator_environment(), **merchant})["services"]
    for name in ("orders", "orders-worker", "orders-beat"):
        for process in processes_of(argv(services[name])):
            with monkeypatch.context() as patch:
                running_in(environment(services[name]), patch)
                assert deployment.problems(process) == [], name
    (tmp_path / "pub_key.pem").unlink()
    for name in ("orders", "orders-worker", "orders-beat"):
        for process in processes_of(argv(services[name])):
            with monkeypatch.context() as patch:
                running_in(environment(services[name]), patch)
                assert any("WECHATPAY_PUBLIC_KEY_FILE" in p and "does not exist" in p
                           for p in deployment.problems(process)), name


# --- unprivileged, read-only, limited, health-checked, metrics summed ---------------------


def tmpfs_mounts(service: dict) -> dict[str, dict[str, str]]:
    """The service's tmpfs mounts: target → options (``uid=10001,mode=0700`` → a dict)."""
    entries = service.get("tmpfs") or []
    mounts = {}
    for entry in [entries] if isinstance(entries, str) else entries:
        target, _, options = entry.partition(":")
        mounts[target] = dict(item.partition("=")[::2] for item in options.split(",") if item)
    return mounts


def volume_targets(service: dict) -> dict[str, str]:
    """Target → mode (``rw``/``ro``) of the service's volumes and bind mounts."""
    targets = {}
    for volume in service.get("volumes") or []:
        parts = volume.split(":")
        targets[parts[1]] = parts[2] if len(parts) > 2 else "rw"
    return targets


def image_user() -> tuple[int, int]:
    dockerfile = DOCKERFILE.read_text()
    uid = int(re.search(r"useradd\b.*--uid (\d+)", dockerfile).group(1))
    gid = int(re.search(r"groupadd\b.*--gid (\d+)", dockerfile).group(1))
    return uid, gid


def test_every_application_container_runs_as_the_images_unprivileged_user(services):
    """Said in the compose file too, so an image built otherwise cannot bring root back."""
    uid, gid = image_user()
    assert uid == IMAGE_UID != 0 and gid != 0
    users = re.findall(r"^USER (\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert users and users[-1] != "root", "the image's last USER is the one processes run as"
    for name, svc in app_services(services).items():
        assert svc.get("user") == f"{uid}:{gid}", name
        assert not svc.get("privileged") and not svc.get("cap_add"), name


def test_every_application_container_has_a_read_only_root_and_its_own_scratch(services):
    for name, svc in app_services(services).items():
        assert svc.get("read_only") is True, name
        assert SCRATCH in tmpfs_mounts(svc), f"{name} has no writable {SCRATCH}"


def test_var_dir_is_writable_exactly_where_the_code_writes_it(services):
    """VAR_DIR is a private tmpfs (or the certificates' PDF volume) for the processes whose
    code writes there, and stays read-only for the others (ranking, the schedulers, the
    migrations, Flower)."""
    writers = set()
    for name, svc in app_services(services).items():
        var_dir = environment(svc)["VAR_DIR"]
        writable = var_dir in tmpfs_mounts(svc) or volume_targets(svc).get(var_dir) == "rw"
        assert writable == needs_var_dir(argv(svc)), f"{name}: VAR_DIR writable={writable}"
        if writable:
            writers.add(name)
    assert writers >= {"calculator", "orders", "certificates", "gateway", "certificates-worker", "seed",
                       "gateway-keys"}
    assert not writers & {"ranking", "ranking-worker", "flower", *(f"{s}-beat" for s in config.SERVICES)}


def test_writable_mounts_are_private_to_the_images_user(services):
    """Every tmpfs but /tmp is the image user's alone (0700), as VAR_DIR would be on disk;
    the merchant's keys are mounted read-only, the PDFs' volume is the only shared one."""
    uid, gid = image_user()
    for name, svc in app_services(services).items():
        for target, options in tmpfs_mounts(svc).items():
            if target != SCRATCH:
                assert options == {"uid": str(uid), "gid": str(gid), "mode": "0700"}, f"{name}: {target}"
        for target, mode in volume_targets(svc).items():
            assert mode == "ro" or target == environment(svc)["VAR_DIR"], f"{name}: {target} is writable"


def test_gunicorn_and_celery_workers_sum_their_metrics_over_their_processes(services):
    """PROMETHEUS_MULTIPROC_DIR on a private tmpfs for every process that forks (gunicorn's
    workers, Celery's prefork children): otherwise each scrape answers from one process and
    Prometheus sees the counters jump. Workers serve them on their port, unpublished."""
    forking = {name for name, svc in app_services(services).items()
               if runs_gunicorn(argv(svc)) or is_worker(argv(svc))}
    assert forking == {GATEWAY, *config.SERVICES, *(f"{s}-worker" for s in config.SERVICES)}
    for name in forking:
        svc = services[name]
        directory = environment(svc).get("PROMETHEUS_MULTIPROC_DIR")
        assert directory == METRICS_DIR, name
        assert directory in tmpfs_mounts(svc), f"{name}: the metrics directory must be the container's own"
    for name, svc in app_services(services).items():
        if is_worker(argv(svc)):
            assert environment(svc)["WORKER_METRICS_PORT"] == str(WORKER_METRICS_PORT), name
            assert not published_ports(svc), name
        else:
            assert "WORKER_METRICS_PORT" not in environment(svc), name


def test_every_service_has_cpu_and_memory_limits(services):
    """Service-level cpus and mem_limit, which docker-compose 1.29 and docker compose v2 both
    apply (1.29 ignores `deploy` without --compatibility)."""
    for name, svc in services.items():
        assert float(svc["cpus"]) > 0, name
        assert re.fullmatch(r"\d+[mg]", str(svc["mem_limit"])), name
        assert "deploy" not in svc, f"{name}: docker-compose 1.29 ignores deploy.resources"


@pytest.mark.parametrize("kind", ["worker", "beat"])
def test_workers_and_schedulers_are_health_checked_by_pinging_their_own_node(services, kind):
    """Each worker and scheduler answers `celery inspect ping` addressed to its own node name
    (%h is the container's host name, $HOSTNAME in the healthcheck's shell); a scheduler
    answers only with remote control on, and only while its loop ticks."""
    found = {}
    for name, svc in app_services(services).items():
        args = argv(svc)
        if not (is_worker(args) if kind == "worker" else is_scheduler(args)):
            continue
        test = svc["healthcheck"]["test"]
        assert test[0] == "CMD-SHELL" and len(test) == 2, name
        ping = celery_ping(test[1])
        assert ping["broker"] == "${CELERY_BROKER_URL:-$REDIS_URL}", name
        service = option(args, "-A", "--app").split(".")[0]
        expected = f"{service}@%h" if kind == "worker" else f"{service}-beat@%h"
        assert option(args, "-n", "--hostname") == expected, name
        assert ping["destination"] == node_name(args) == expected.replace("%h", "$HOSTNAME"), name
        if kind == "beat":
            assert "--enable-remote-control" in args, f"{name} would never answer the ping"
            # The schedule is written on the scratch tmpfs.
            assert option(args, "--schedule", "-s").startswith(SCRATCH + "/"), name
        check = svc["healthcheck"]
        assert float(ping["timeout"]) < int(check["timeout"].rstrip("s")), "the ping must end before Docker cuts it"
        found[name] = ping["destination"]
    expected = [f"{s}-{kind}" for s in (config.SERVICES if kind == "worker" else services_with_periodic_tasks())]
    assert sorted(found) == sorted(expected)
    assert len(set(found.values())) == len(found), "two services answer to the same node name"


def test_every_long_running_process_is_health_checked(services):
    """Jobs exit; everything else says whether it works (`docker compose ps`, depends_on)."""
    for name, svc in services.items():
        if svc.get("restart") != "no":
            assert "healthcheck" in svc, name


def test_the_offline_redis_and_postgres_images_run_unprivileged():
    """The official images' entrypoints drop root to their own users; the offline ones
    (compose.offline.yml) run as theirs from the start."""
    for dockerfile in sorted((DEPLOY / "offline").glob("*.Dockerfile")):
        users = re.findall(r"^USER (\S+)", dockerfile.read_text(), flags=re.MULTILINE)
        assert users and users[-1] not in ("root", "0"), dockerfile.name
