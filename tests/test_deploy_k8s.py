"""deploy/k8s/ is complete, consistent, and runs what deploy/docker-compose.yml runs.

Offline and structural (PyYAML): every manifest parses; every service of
``diandian_common.config.SERVICES`` has its API, worker and autoscaler; probes, resources,
security, secrets and config references hold together; and the image, the commands and
the environment are those of the compose file, parsed here too, so the two deployments
cannot drift apart. ``kubectl kustomize`` builds the kustomization when kubectl exists
(no cluster needed); kubeconform validates only with a local schema directory
(``KUBECONFORM_SCHEMA_LOCATION``), never downloading one. One integration test runs a
worker's liveness probe, exactly as written, against a real worker, and another runs
Flower's command with basic auth on to check that its probe and scrape paths need none.
The pods run in production mode with every secret from the Secret, whose template values
every process refuses, and which, filled in, every process accepts (diandian_common.deployment).
"""
from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from diandian_common import config
from diandian_common.deployment import is_production
from diandian_common.deployment import problems as production_problems
# The manifests' fixtures, parsed once per module.
from tests.deploy_files import compose, config_map, documents, objects, secret  # noqa: F401
from tests.deploy_files import (
    APP_PORT,
    GATEWAY,
    GATEWAY_WECHAT_SETTINGS,
    OPTIONAL_PAYMENT_SECRETS,
    PAYMENT_KEYS_MOUNT,
    PAYMENT_KEYS_SECRET,
    PAYMENT_PROCESSES,
    PAYMENT_SETTINGS,
    K8S,
    KUSTOMIZATION,
    PLACEHOLDER,
    SECRET_NAME,
    argv,
    assert_service_routes_to,
    available_env,
    container_port,
    main_container,
    manifest_files,
    of_kind,
    option,
    pod_spec,
    processes_of,
    services_with_periodic_tasks,
    worker_probe,
    workloads,
)


def test_every_document_parses_and_is_named(documents):
    assert documents, "no manifests in deploy/k8s"
    seen = set()
    for doc in documents:
        where = doc["_file"]
        assert doc.get("apiVersion") and doc.get("kind"), where
        name = doc.get("metadata", {}).get("name")
        assert name and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), f"{where}: bad name {name!r}"
        assert (doc["kind"], name) not in seen, f"{where}: a second {doc['kind']} {name}"
        seen.add((doc["kind"], name))
        # The namespace comes from kustomization.yaml, so one edit moves everything.
        assert "namespace" not in doc["metadata"], f"{where}: {name} sets its own namespace"


def test_the_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text())
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed)), "a file is listed twice"
    assert sorted(listed) == [path.name for path in manifest_files()]
    namespace = kustomization["namespace"]
    namespaces = [doc for path in manifest_files() for doc in yaml.safe_load_all(path.read_text())
                  if doc and doc["kind"] == "Namespace"]
    assert [doc["metadata"]["name"] for doc in namespaces] == [namespace]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_builds_the_kustomization(objects):
    built = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    docs = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    assert {(doc["kind"], doc["metadata"]["name"]) for doc in docs} == set(objects)
    namespace = yaml.safe_load(KUSTOMIZATION.read_text())["namespace"]
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, doc["metadata"]["name"]


@pytest.mark.skipif(shutil.which("kubeconform") is None or not os.environ.get("KUBECONFORM_SCHEMA_LOCATION"),
                    reason="no kubeconform with a local schema directory (KUBECONFORM_SCHEMA_LOCATION)")
def test_kubeconform_accepts_every_manifest():
    result = subprocess.run(["kubeconform", "-strict", "-summary", "-schema-location",
                             os.environ["KUBECONFORM_SCHEMA_LOCATION"], *map(str, manifest_files())],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_deployments_select_their_own_pods(objects):
    for name, deployment in of_kind(objects, "Deployment").items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), name
        assert selector == {"app.kubernetes.io/name": name}, f"{name} must not select another's pods"


@pytest.mark.parametrize("service", config.SERVICES)
def test_every_service_has_an_api_deployment_and_service(objects, service):
    deployment = of_kind(objects, "Deployment").get(service)
    assert deployment, f"no Deployment runs the {service} API"
    container = main_container(deployment)
    assert argv(container)[-1] == f"{service}.app:create_app()"
    assert option(argv(container), "--bind") == f"0.0.0.0:{APP_PORT}"
    assert_service_routes_to(objects, service, deployment)


def test_the_gateway_has_a_deployment_and_a_service(objects):
    deployment = of_kind(objects, "Deployment")[GATEWAY]
    assert argv(main_container(deployment))[-1] == "gateway.app:create_app()"
    assert_service_routes_to(objects, GATEWAY, deployment)


@pytest.mark.parametrize("service", config.SERVICES)
def test_every_service_has_a_worker_consuming_exactly_its_own_queue(objects, service):
    name = f"{service}-worker"
    worker = of_kind(objects, "Deployment").get(name)
    assert worker, f"no Deployment runs the {service} worker"
    args = argv(main_container(worker))
    assert args[:4] == ["celery", "-A", f"{service}.tasks", "worker"]
    assert option(args, "-Q", "--queues") == service
    # A node name per pod (%h is the pod's host name), which the probes address.
    assert option(args, "-n", "--hostname") == f"{service}@%h"


@pytest.mark.parametrize("service", config.SERVICES)
def test_every_worker_is_autoscaled_on_cpu(objects, service):
    name = f"{service}-worker"
    hpa = of_kind(objects, "HorizontalPodAutoscaler").get(name)
    assert hpa, f"no HorizontalPodAutoscaler for {name}"
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100
    # Utilization is relative to the request: without one the HPA cannot compute it.
    assert "cpu" in main_container(of_kind(objects, "Deployment")[name])["resources"]["requests"]
    # The HPA owns the replica count; a fixed one would be reset at every apply.
    assert "replicas" not in of_kind(objects, "Deployment")[name]["spec"]


def test_each_queue_is_consumed_by_exactly_one_worker_deployment(objects):
    consumers: dict[str, list[str]] = {}
    for name, deployment in of_kind(objects, "Deployment").items():
        args = argv(main_container(deployment))
        if args[:1] == ["celery"] and "worker" in args:
            for queue in (option(args, "-Q", "--queues") or "").split(","):
                consumers.setdefault(queue, []).append(name)
    assert consumers == {service: [f"{service}-worker"] for service in config.SERVICES}


def test_every_autoscaler_targets_an_existing_deployment(objects):
    deployments = of_kind(objects, "Deployment")
    for name, hpa in of_kind(objects, "HorizontalPodAutoscaler").items():
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments, name


def test_schedulers_run_once_and_never_two_at_a_time(objects):
    deployments = of_kind(objects, "Deployment")
    schedulers = {name: d for name, d in deployments.items()
                  if (args := argv(main_container(d)))[:1] == ["celery"] and "beat" in args}
    expected = services_with_periodic_tasks()
    assert sorted(schedulers) == sorted(f"{service}-beat" for service in expected)
    for service in expected:
        name = f"{service}-beat"
        assert argv(main_container(schedulers[name]))[:4] == ["celery", "-A", f"{service}.tasks", "beat"]
        assert schedulers[name]["spec"]["replicas"] == 1, name
        # A rolling update would start the new scheduler before stopping the old one.
        assert schedulers[name]["spec"]["strategy"] == {"type": "Recreate"}, name
    hpas = of_kind(objects, "HorizontalPodAutoscaler").values()
    targets = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in hpas}
    assert not targets & set(schedulers), "a scheduler must not be autoscaled"


@pytest.mark.parametrize("service", config.SERVICES)
def test_api_readiness_is_healthz_and_liveness_the_process(objects, service):
    container = main_container(of_kind(objects, "Deployment")[service])
    readiness = container["readinessProbe"]["httpGet"]
    assert readiness["path"] == "/healthz"
    assert container_port(container, readiness["port"]) == APP_PORT
    # /healthz fails with the database or Redis; restarting the pods then repairs nothing.
    liveness = container["livenessProbe"]
    assert "tcpSocket" in liveness, "liveness must not depend on the database or Redis"
    assert container_port(container, liveness["tcpSocket"]["port"]) == APP_PORT


def test_gateway_probes_do_not_depend_on_the_services(objects):
    """The gateway's /healthz is 503 when any one service is down; as a probe it would take
    every route out with it, instead of answering 503 for that service's routes only."""
    container = main_container(of_kind(objects, "Deployment")[GATEWAY])
    for probe in ("readinessProbe", "livenessProbe"):
        assert "httpGet" not in container[probe], probe
        assert container_port(container, container[probe]["tcpSocket"]["port"]) == APP_PORT


@pytest.mark.parametrize("service", config.SERVICES)
def test_worker_probes_ping_their_own_node(objects, service):
    for probe in ("readinessProbe", "livenessProbe"):
        command = worker_probe(objects, service, probe)
        assert command[:2] == ["sh", "-c"], "the shell expands $HOSTNAME (kubelet does not, in exec probes)"
        args = shlex.split(command[2])
        assert args[:4] == ["celery", "--broker", "${CELERY_BROKER_URL:-$REDIS_URL}", "inspect"]
        assert "ping" in args
        # %h in the worker's -n is the host name, which is $HOSTNAME in a pod.
        assert option(args, "--destination", "-d") == f"{service}@$HOSTNAME"
        timeout = float(option(args, "--timeout", "-t"))
        spec = main_container(of_kind(objects, "Deployment")[f"{service}-worker"])[probe]
        assert spec["timeoutSeconds"] > timeout, "kubelet must not cut the ping short"


# --- secrets: production mode, every secret from the Secret ------------------------------


def test_the_pods_run_in_production_mode(config_map):
    assert config_map["DIANDIAN_ENV"] == "production"
    assert config_map["PAYMENT_PROVIDERS"] not in ("", "sandbox"), "production refuses the sandbox"


def test_no_secret_is_in_the_config_map_or_written_into_a_manifest(objects, config_map):
    """Secrets (and the URLs that carry a password) reach a container only by secretKeyRef."""
    carries_secret = re.compile(f"{SECRET_NAME.pattern}|REDIS_URL$|DATABASE_URL$")
    assert not [key for key in config_map if carries_secret.search(key)]
    for name, workload in workloads(objects).items():
        for container in main_container(workload), *pod_spec_containers(workload):
            for item in container.get("env", []):
                if carries_secret.search(item["name"]):
                    assert "value" not in item and "secretKeyRef" in item.get("valueFrom", {}), \
                        f"{name}: {item['name']}"


def pod_spec_containers(workload: dict) -> list[dict]:
    return workload["spec"]["template"]["spec"].get("initContainers", [])


def filled_in(template: dict[str, str]) -> dict[str, str]:
    """The Secret as an operator fills it in: every REPLACE-ME a fresh random value (in URLs,
    the password)."""
    def fresh() -> str:
        return secrets.token_urlsafe(48)
    values = {}
    for key, value in template.items():
        parts = urlsplit(value)
        if parts.scheme and parts.hostname:
            netloc = f"{parts.username or ''}:{fresh()}@{parts.hostname}:{parts.port}"
            values[key] = urlunsplit(parts._replace(netloc=netloc))
        elif key == "FLOWER_BASIC_AUTH":
            values[key] = f"admin:{fresh()}"
        else:
            values[key] = fresh()
    return values


def environment_of(container: dict, settings: dict, secret_values: dict) -> dict[str, str]:
    env = dict(settings) if any(s.get("configMapRef") for s in container.get("envFrom", [])) else {}
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        env[item["name"]] = secret_values[ref["key"]] if ref else str(item.get("value", ""))
    return env


def check_every_process(manifests, settings, secret_values, monkeypatch) -> dict[str, list[str]]:
    """Each workload's process checked in the environment its pod gets: process → problems."""
    found = {}
    for workload in workloads(manifests).values():
        container = main_container(workload)
        for process in processes_of(argv(container)):
            with monkeypatch.context() as patch:
                for variable in list(os.environ):
                    if variable.endswith(("_URL", "_SECRET", "_SECRET_KEY", "_KEYS", "_TOKEN", "_PROVIDER")) \
                            or variable.startswith(("DIANDIAN_", "PAYMENT_", "WORKER_METRICS")):
                        patch.delenv(variable)
                for variable, value in environment_of(container, settings, secret_values).items():
                    patch.setenv(variable, value)
                assert is_production()
                found[process] = production_problems(process)
    return found


def test_every_process_starts_with_the_secret_filled_in(objects, config_map, secret, monkeypatch):
    """The manifests give each process every secret its production check asks for."""
    found = check_every_process(objects, config_map, filled_in(secret), monkeypatch)
    assert set(found) >= {"gateway", *config.SERVICES, *(f"{s}-worker" for s in config.SERVICES)}
    assert {process: problems for process, problems in found.items() if problems} == {}


def test_applied_as_it_is_the_template_starts_nothing(objects, config_map, secret, monkeypatch):
    found = check_every_process(objects, config_map, secret, monkeypatch)
    assert found and all(found.values()), [process for process, problems in found.items() if not problems]
    assert all(PLACEHOLDER in value for value in secret.values())


# --- payments: a merchant's configuration, the keys as files -------------------------------


def test_every_payment_setting_is_in_the_config_map_or_the_secret(config_map, secret):
    for variable in (*PAYMENT_SETTINGS, *GATEWAY_WECHAT_SETTINGS):
        if variable in OPTIONAL_PAYMENT_SECRETS:
            assert variable in secret and variable not in config_map, variable
        else:
            assert variable in config_map, variable
    # No merchant's values in the repository: each unset (the code's default) until set.
    assert {v: config_map[v] for v in PAYMENT_SETTINGS if v in config_map and v != "PAYMENT_PROVIDERS"} == \
        {v: "" for v in PAYMENT_SETTINGS if v in config_map and v != "PAYMENT_PROVIDERS"}


@pytest.mark.parametrize("name", PAYMENT_PROCESSES)
def test_every_process_calling_the_providers_gets_every_payment_setting(objects, config_map, secret, name):
    container = main_container(workloads(objects)[name])
    missing = set(PAYMENT_SETTINGS) - available_env(container, config_map, secret)
    assert not missing, f"{name} lacks {sorted(missing)}"
    # The APIv3 key from the Secret, by reference only.
    ref = {item["name"]: item for item in container["env"]}["WECHATPAY_APIV3_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref["key"] == "WECHATPAY_APIV3_KEY" and ref.get("optional") is True


def test_the_gateway_gets_the_wechat_oauth_settings(objects, config_map, secret):
    container = main_container(workloads(objects)[GATEWAY])
    assert set(GATEWAY_WECHAT_SETTINGS) <= available_env(container, config_map, secret)
    ref = {item["name"]: item for item in container["env"]}["WECHAT_APP_SECRET"]["valueFrom"]["secretKeyRef"]
    assert ref["key"] == "WECHAT_APP_SECRET"


def test_the_key_files_are_a_secret_mounted_read_only_where_they_are_used(objects):
    for name, workload in workloads(objects).items():
        volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
        from_keys = [v for v, spec in volumes.items()
                     if spec.get("secret", {}).get("secretName") == PAYMENT_KEYS_SECRET]
        mounts = [m for m in main_container(workload).get("volumeMounts", []) if m["name"] in from_keys]
        if name not in PAYMENT_PROCESSES:
            assert not from_keys, f"{name} needs no payment keys"
            continue
        (mount,) = mounts
        assert mount["mountPath"] == PAYMENT_KEYS_MOUNT and mount["readOnly"] is True, name
        spec = volumes[mount["name"]]["secret"]
        # Readable by the pod's group (fsGroup) only; absent while no provider needs files.
        assert spec["defaultMode"] == 0o440 and spec["optional"] is True, name
        assert pod_spec(workload)["securityContext"]["fsGroup"] == pod_spec(workload)["securityContext"]["runAsUser"]


def test_a_live_merchant_configuration_starts_every_orders_process(objects, config_map, secret, monkeypatch,
                                                                     tmp_path):
    """The ConfigMap filled in as deploy/k8s/README.md says, the key files where the Secret
    mounts them (here tmp_path), the Secret filled in: the orders processes start; with a
    placeholder APIv3 key they do not."""
    for file in ("apiclient_key.pem", "pub_key.pem", "alipay_app_private_key.pem", "alipay_public_key.pem"):
        (tmp_path / file).write_text("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n")
    live = {**config_map, "PAYMENT_PROVIDERS": "wechatpay,alipay", "WECHATPAY_MCHID": "1900000109",
            "WECHATPAY_APPID": "wx8888888888888888", "WECHATPAY_CERT_SERIAL_NO": "5157F09EFDC096DE",
            "WECHATPAY_PRIVATE_KEY_FILE": str(tmp_path / "apiclient_key.pem"),
            "WECHATPAY_PUBLIC_KEY_FILE": str(tmp_path / "pub_key.pem"),
            "WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_0114232134912410000", "ALIPAY_APP_ID": "2021000000000000",
            "ALIPAY_APP_PRIVATE_KEY_FILE": str(tmp_path / "alipay_app_private_key.pem"),
            "ALIPAY_PUBLIC_KEY_FILE": str(tmp_path / "alipay_public_key.pem")}
    filled = {**filled_in(secret), "WECHATPAY_APIV3_KEY": "a" * 32}
    payment_processes = {"orders", "orders-worker", "orders-beat"}
    found = check_every_process(objects, live, filled, monkeypatch)
    assert {p: problems for p, problems in found.items() if p in payment_processes and problems} == {}
    found = check_every_process(objects, live, {**filled, "WECHATPAY_APIV3_KEY": secret["WECHATPAY_APIV3_KEY"]},
                                monkeypatch)
    assert all(any("WECHATPAY_APIV3_KEY" in problem for problem in found[p]) for p in payment_processes)
