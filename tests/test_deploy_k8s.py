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
"""
from __future__ import annotations

import base64
import importlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from diandian_common import config
from diandian_common.migrate import DATABASES
from diandian_common.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATION = K8S / "kustomization.yaml"
COMPOSE_FILE = ROOT / "deploy" / "docker-compose.yml"
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

# Secrets compose hands to every container (one shared environment block) that the
# cluster gives only to the processes that use them.
WITHHELD = {
    # The services trust the gateway's signed operator assertion; only the job mirroring
    # the key into the gateway's store needs it in the clear.
    "OPERATOR_API_KEY": {"gateway-keys"},
    # Only the gateway signs operator assertions and only the APIs verify them.
    "INTERNAL_API_SECRET": {GATEWAY, *config.SERVICES},
}

# Tasks a worker's shutdown may cut off: long periodic repairs, acknowledged late, so the
# broker hands them out again after the visibility timeout (and the next period runs one).
INTERRUPTIBLE_TASKS = {"ranking.reconcile"}


# --- reading the manifests ----------------------------------------------------------------


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


# --- reading the compose file -------------------------------------------------------------

_VARIABLE = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?-)([^}]*))?\}|(\w+))")


def interpolated(node):
    """Compose's ``${VAR:-default}`` with nothing configured: the defaults an operator gets."""
    if isinstance(node, str):
        return _VARIABLE.sub(lambda m: "$" if m.group(1) else (m.group(4) or ""), node)
    if isinstance(node, dict):
        return {key: interpolated(value) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolated(item) for item in node]
    return node


@pytest.fixture(scope="module")
def compose() -> dict[str, dict]:
    """The compose services running the application image (not Redis, PostgreSQL, ...)."""
    services = interpolated(yaml.safe_load(COMPOSE_FILE.read_text()))["services"]
    image = app_image(services)
    return {name: svc for name, svc in services.items() if svc.get("image") == image}


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


# --- the manifests hold together --------------------------------------------------------------


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


# --- every service: API, worker, autoscaler ----------------------------------------------------


@pytest.mark.parametrize("service", config.SERVICES)
def test_every_service_has_an_api_deployment_and_service(objects, service):
    deployment = of_kind(objects, "Deployment").get(service)
    assert deployment, f"no Deployment runs the {service} API"
    container = main_container(deployment)
    assert argv(container)[-1] == f"{service}.app:create_app()"
    assert option(argv(container), "--bind") == f"0.0.0.0:{APP_PORT}"
    assert_service_routes_to(objects, service, deployment)


def assert_service_routes_to(objects: dict, name: str, deployment: dict) -> None:
    service = of_kind(objects, "Service").get(name)
    assert service, f"no Service in front of {name}"
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == APP_PORT, "the *_URL variables say :8000"
    assert container_port(main_container(deployment), port["targetPort"]) == APP_PORT


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


# --- probes ----------------------------------------------------------------------------------


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


def worker_probe(objects, service: str, probe: str) -> list[str]:
    return main_container(of_kind(objects, "Deployment")[f"{service}-worker"])[probe]["exec"]["command"]


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


# --- resources and security ------------------------------------------------------------------


def test_every_container_has_requests_and_limits(objects):
    for name, workload in workloads(objects).items():
        for container in containers(workload):
            resources = container.get("resources", {})
            requests_, limits = resources.get("requests", {}), resources.get("limits", {})
            assert {"cpu", "memory"} <= set(requests_) and {"cpu", "memory"} <= set(limits), name
            assert cpu(requests_["cpu"]) <= cpu(limits["cpu"]), name
            assert memory(requests_["memory"]) <= memory(limits["memory"]), name


def test_every_container_runs_unprivileged(objects):
    """The namespace enforces Pod Security "restricted"; every pod must meet it."""
    namespace = next(iter(of_kind(objects, "Namespace").values()))
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for name, workload in workloads(objects).items():
        pod = pod_spec(workload)
        pod_security = pod.get("securityContext", {})
        assert pod.get("automountServiceAccountToken") is False, name
        for container in containers(workload):
            security = {**pod_security, **container.get("securityContext", {})}
            assert security.get("runAsNonRoot") is True, name
            assert security.get("runAsUser", 0) != 0, name
            assert security.get("allowPrivilegeEscalation") is False, name
            assert security.get("capabilities", {}).get("drop") == ["ALL"], name
            assert security.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
            assert not security.get("privileged"), name


def test_the_pods_run_as_the_images_user(objects):
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    uid = int(re.search(r"useradd\b.*--uid (\d+)", dockerfile).group(1))
    for name, workload in workloads(objects).items():
        assert pod_spec(workload)["securityContext"]["runAsUser"] == uid, name


@pytest.mark.parametrize("service", config.SERVICES)
def test_worker_shutdown_outlasts_its_tasks(objects, config_map, service):
    """SIGTERM starts Celery's warm shutdown; the grace period must let a running task end."""
    app = importlib.import_module(f"{service}.tasks").celery
    default_limit = int(config_map["CELERY_TASK_TIME_LIMIT"])
    limits = {name: task.time_limit or default_limit for name, task in app.tasks.items()
              if name.startswith(f"{service}.")}
    assert limits, f"{service} has no tasks"
    grace = pod_spec(of_kind(objects, "Deployment")[f"{service}-worker"])["terminationGracePeriodSeconds"]
    for name, limit in limits.items():
        if name not in INTERRUPTIBLE_TASKS:
            assert grace > limit, f"{name} may run {limit} s; the pod gets {grace} s to stop"
        # Redis re-delivers an unacknowledged message after the visibility timeout: were it
        # shorter than a task, the task would run twice at once.
        assert int(config_map["CELERY_VISIBILITY_TIMEOUT"]) > limit, name


# --- configuration and secrets ---------------------------------------------------------------


def test_every_referenced_config_and_secret_key_exists(objects, config_map, secret):
    for name, workload in workloads(objects).items():
        for container in containers(workload):
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef")
                assert ref["name"] in (CONFIG_MAP, SECRET), name
                assert not ref.get("optional"), name
            for item in container.get("env", []):
                if "valueFrom" not in item:
                    continue
                ref = item["valueFrom"].get("configMapKeyRef") or item["valueFrom"].get("secretKeyRef")
                assert ref is not None, f"{name}: {item['name']} comes from an unknown source"
                keys = config_map if "configMapKeyRef" in item["valueFrom"] else secret
                expected = CONFIG_MAP if keys is config_map else SECRET
                assert ref["name"] == expected and ref["key"] in keys, f"{name}: {item['name']} → {ref}"
                assert not ref.get("optional"), name


def test_the_secret_in_the_repository_holds_placeholders_only(objects, secret):
    document = of_kind(objects, "Secret")[SECRET]
    assert "data" not in document, "base64 values could hide a real secret"
    for key, value in secret.items():
        assert PLACEHOLDER in value, f"{key} is not a placeholder"


def test_secret_values_are_not_in_the_config_map(config_map, secret):
    assert not set(config_map) & set(secret)


def owner(workload: dict) -> str:
    return workload["metadata"]["labels"]["diandian.io/service"]


def test_each_process_gets_its_own_database(objects):
    for name, workload in workloads(objects).items():
        for container in containers(workload):
            for variable in env_sources(container):
                if variable == "DATABASE_URL":
                    assert secret_key(container, variable) == f"{owner(workload).upper()}_DATABASE_URL", name
                elif variable.endswith("_DATABASE_URL"):
                    assert secret_key(container, variable) == variable, name


@pytest.mark.parametrize("database", DATABASES)
def test_every_database_has_a_migration_job(objects, database):
    job = of_kind(objects, "Job").get(f"{database}-migrate")
    assert job, f"no migration Job for {database}"
    container = main_container(job)
    assert argv(container) == ["python", "-m", "diandian_common.migrate", "upgrade", database]
    assert secret_key(container, "DATABASE_URL") == f"{database.upper()}_DATABASE_URL"
    assert pod_spec(job)["restartPolicy"] in ("Never", "OnFailure")
    # Retried until PostgreSQL answers: nothing orders Jobs before Deployments.
    assert job["spec"]["backoffLimit"] >= 3


def test_seed_and_operator_key_jobs(objects):
    jobs = of_kind(objects, "Job")
    seed = main_container(jobs["seed"])
    assert argv(seed)[:2] == ["sh", "-c"]
    assert [cmd.split() for cmd in argv(seed)[2].split("&&")] == [
        ["flask", "--app", "calculator.app", "seed-demo"], ["flask", "--app", "orders.app", "seed-demo"]]
    assert {secret_key(seed, v) for v in ("CALCULATOR_DATABASE_URL", "ORDERS_DATABASE_URL")} == {
        "CALCULATOR_DATABASE_URL", "ORDERS_DATABASE_URL"}
    keys = main_container(jobs["gateway-keys"])
    assert argv(keys) == ["flask", "--app", "gateway.app", "keys", "ensure-operator"]
    gateway = main_container(of_kind(objects, "Deployment")[GATEWAY])
    # The job writes the very store the gateway reads.
    assert secret_key(keys, "DATABASE_URL") == secret_key(gateway, "DATABASE_URL") == "GATEWAY_DATABASE_URL"


@pytest.mark.parametrize("variable", sorted(WITHHELD))
def test_sensitive_secrets_reach_only_their_users(objects, variable):
    holders = {name for name, workload in workloads(objects).items()
               if any(variable in env_sources(c) for c in containers(workload))}
    assert holders == WITHHELD[variable]


def test_the_apis_reach_each_other_by_service_name(objects, config_map):
    services = of_kind(objects, "Service")
    for service in config.SERVICES:
        url = config_map[f"{service.upper()}_URL"]
        assert url == f"http://{service}:{APP_PORT}"
        assert service in services


# --- metrics ---------------------------------------------------------------------------------


def multiproc_dir_is_private(workload: dict) -> bool:
    """PROMETHEUS_MULTIPROC_DIR on an emptyDir: every process of the pod, nobody else's."""
    container = main_container(workload)
    directory = env_sources(container)["PROMETHEUS_MULTIPROC_DIR"]["value"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
    (volume,) = [v for v in pod_spec(workload)["volumes"] if v["name"] == mount["name"]]
    return "emptyDir" in volume


def test_apis_expose_metrics_summed_over_their_processes(objects):
    deployments = of_kind(objects, "Deployment")
    for name in (*config.SERVICES, GATEWAY):
        assert multiproc_dir_is_private(deployments[name]), name
        annotations = deployments[name]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/path"] == "/metrics"
        assert int(annotations["prometheus.io/port"]) == APP_PORT
    assert "METRICS_TOKEN" in env_sources(main_container(deployments[GATEWAY])), "the gateway is public"


@pytest.mark.parametrize("service", config.SERVICES)
def test_workers_serve_metrics_on_their_declared_port(objects, service):
    worker = of_kind(objects, "Deployment")[f"{service}-worker"]
    container = main_container(worker)
    assert multiproc_dir_is_private(worker)
    port = int(env_sources(container)["WORKER_METRICS_PORT"]["value"])
    assert container_port(container, "metrics") == port
    assert int(worker["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"]) == port


# --- storage and exposure --------------------------------------------------------------------


def test_certificates_api_and_workers_share_the_pdf_claim(objects, config_map):
    claims = of_kind(objects, "PersistentVolumeClaim")
    mounted: dict[str, set[str]] = {}
    for name, workload in workloads(objects).items():
        volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
        for mount in main_container(workload).get("volumeMounts", []):
            claim = volumes[mount["name"]].get("persistentVolumeClaim", {}).get("claimName")
            if claim:
                assert claim in claims, f"{name} mounts a missing claim {claim}"
                assert mount["mountPath"] == config_map["VAR_DIR"], name
                mounted.setdefault(claim, set()).add(name)
    assert mounted == {"certificate-files": {"certificates", "certificates-worker"}}
    assert "ReadWriteMany" in claims["certificate-files"]["spec"]["accessModes"]


def test_only_the_gateway_is_exposed(objects):
    for name, service in of_kind(objects, "Service").items():
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", name
    (ingress,) = of_kind(objects, "Ingress").values()
    backends = [path["backend"]["service"]
                for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]]
    assert {backend["name"] for backend in backends} == {GATEWAY}
    port_names = {port["name"] for port in of_kind(objects, "Service")[GATEWAY]["spec"]["ports"]}
    assert all(backend["port"].get("name") in port_names or backend["port"].get("number") == APP_PORT
               for backend in backends)


def test_flower_is_internal_probed_and_scraped(objects, compose):
    deployment = of_kind(objects, "Deployment")[FLOWER]
    container = main_container(deployment)
    # `sh -c 'exec celery --broker "${CELERY_BROKER_URL:-$REDIS_URL}" flower ...'`: the
    # workers' broker, whatever config.yaml says it is.
    shell, flag, script = argv(container)
    assert (shell, flag) == ("sh", "-c")
    args = shlex.split(script)
    assert args[:2] == ["exec", "celery"] and "flower" in args
    assert option(args, "--broker") == "${CELERY_BROKER_URL:-$REDIS_URL}"
    assert int(option(args, "--port")) == FLOWER_PORT
    assert container_port(container, "http") == FLOWER_PORT
    # It keeps its view in memory: one instance, not autoscaled.
    assert deployment["spec"]["replicas"] == 1
    hpas = of_kind(objects, "HorizontalPodAutoscaler").values()
    targets = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in hpas}
    assert FLOWER not in targets
    # Internal: a ClusterIP Service that no Ingress routes to (operators port-forward to it).
    service = of_kind(objects, "Service")[FLOWER]
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == FLOWER_PORT and container_port(container, port["targetPort"]) == FLOWER_PORT
    for ingress in of_kind(objects, "Ingress").values():
        backends = {path["backend"]["service"]["name"]
                    for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]}
        assert FLOWER not in backends, f"{ingress['metadata']['name']} exposes Flower"
    # Both probes ask /healthcheck, which Flower answers without credentials (checked for
    # real below): a probe cannot carry the Secret, and must not hold credentials itself.
    for probe in ("readinessProbe", "livenessProbe"):
        check = container[probe]["httpGet"]
        assert check["path"] == "/healthcheck", probe
        assert container_port(container, check["port"]) == FLOWER_PORT, probe
        assert "httpHeaders" not in check, probe
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == FLOWER_PORT
    # The UI can shut workers down and send tasks: its password comes from the Secret, and
    # no other process receives it.
    assert secret_key(container, "FLOWER_BASIC_AUTH") == "FLOWER_BASIC_AUTH"
    holders = {name for name, workload in workloads(objects).items()
               if any("FLOWER_BASIC_AUTH" in env_sources(c) for c in containers(workload))}
    assert holders == {FLOWER}
    purge = env_sources(container)["FLOWER_PURGE_OFFLINE_WORKERS"]["value"]
    assert purge == str(compose[FLOWER]["environment"]["FLOWER_PURGE_OFFLINE_WORKERS"])


# --- the same deployment as docker-compose.yml -------------------------------------------------


def test_the_same_processes_as_compose(objects, compose):
    assert sorted(workloads(objects)) == sorted(compose)


def test_the_same_image_as_compose(objects, compose):
    (image,) = {svc["image"] for svc in compose.values()}
    for name, workload in workloads(objects).items():
        for container in containers(workload):
            assert container["image"] == image, name
    # kustomization.yaml's image override applies to exactly that image.
    (override,) = yaml.safe_load(KUSTOMIZATION.read_text())["images"]
    assert override["name"] == image.split(":")[0]


def test_the_same_commands_as_compose(objects, compose):
    for name, workload in workloads(objects).items():
        assert argv(main_container(workload)) == compose_argv(compose[name]), name


def test_the_same_environment_as_compose(objects, compose, config_map, secret):
    """Every variable compose sets for a process, the cluster sets for it too (except the
    secrets WITHHELD from processes that do not use them)."""
    for name, workload in workloads(objects).items():
        available = available_env(main_container(workload), config_map, secret)
        expected = {variable for variable in compose_env(compose[name])
                    if variable not in WITHHELD or name in WITHHELD[variable]}
        assert expected <= available, f"{name} lacks {sorted(expected - available)}"


def test_shared_settings_have_compose_values(compose, config_map):
    """Where both set a value that is not the operator's choice, it is the same one."""
    gateway_env = interpolated(compose[GATEWAY]["environment"])
    for variable in ("VAR_DIR", *(f"{s.upper()}_URL" for s in config.SERVICES)):
        assert config_map[variable] == gateway_env[variable], variable


# --- the worker probe, for real ----------------------------------------------------------------


# redis_url: the session's own redis-server, emptied for the test (diandian_common.testing).


@pytest.mark.integration
def test_the_worker_probe_answers_for_a_running_worker_and_only_for_it(objects, redis_url, tmp_path):
    """The manifest's worker command and liveness probe, run as the pod would run them."""
    service = "calculator"
    env = {key: value for key, value in os.environ.items() if key != "CELERY_BROKER_URL"}
    env.update(REDIS_URL=redis_url, VAR_DIR=str(tmp_path),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]))
    log = tmp_path / "worker.log"
    with log.open("wb") as sink:
        worker = subprocess.Popen(argv(main_container(of_kind(objects, "Deployment")[f"{service}-worker"])),
                                  env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    probe = worker_probe(objects, service, "livenessProbe")
    try:
        deadline = time.monotonic() + 60
        while f"{service}@" not in log.read_text() or " ready." not in log.read_text():
            assert worker.poll() is None, f"the worker exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "the worker never became ready"
            time.sleep(0.2)

        def run_probe(command: list[str], hostname: str) -> int:
            return subprocess.run(command, env={**env, "HOSTNAME": hostname}, capture_output=True,
                                  timeout=30).returncode

        pod = socket.gethostname()   # what %h and $HOSTNAME both are in a pod
        assert run_probe(probe, pod) == 0
        # Another node name gets no reply; waiting the probe's full 10 s adds nothing.
        impatient = [*probe[:2], probe[2].replace("--timeout 10", "--timeout 1")]
        assert impatient != probe
        assert run_probe(impatient, f"another-{pod}") != 0, "the probe must address this pod's worker only"
    finally:
        worker.send_signal(signal.SIGQUIT)   # cold shutdown: it has no task to finish
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


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


@pytest.mark.integration
def test_flower_probe_and_metrics_need_no_credentials(objects, redis_url, tmp_path):
    """The manifest's Flower command, basic auth on: the probes' /healthcheck and the scrape's
    /metrics answer without credentials (a Flower that protected them would fail its probes
    and be restarted forever), while the UI itself does not."""
    container = main_container(of_kind(objects, "Deployment")[FLOWER])
    port = free_port()
    shell, flag, script = argv(container)
    args = [shell, flag, script.replace(f"--port={FLOWER_PORT}", f"--port={port} --address=127.0.0.1")]
    credentials = ("operator", "not-the-placeholder")
    env = {key: value for key, value in os.environ.items() if key != "CELERY_BROKER_URL"}
    env.update(REDIS_URL=redis_url, FLOWER_BASIC_AUTH=":".join(credentials),
               FLOWER_PURGE_OFFLINE_WORKERS=env_sources(container)["FLOWER_PURGE_OFFLINE_WORKERS"]["value"],
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]))
    log = tmp_path / "flower.log"
    with log.open("wb") as sink:
        flower = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    probe_path = container["livenessProbe"]["httpGet"]["path"]
    try:
        deadline = time.monotonic() + 60
        while True:
            assert flower.poll() is None, f"Flower exited: {log.read_text()[-2000:]}"
            try:
                status = http_status(base + probe_path)
                break
            except OSError:
                assert time.monotonic() < deadline, "Flower never answered"
                time.sleep(0.2)
        assert status == 200
        assert container["readinessProbe"]["httpGet"]["path"] == probe_path
        annotations = of_kind(objects, "Deployment")[FLOWER]["spec"]["template"]["metadata"]["annotations"]
        assert http_status(base + annotations["prometheus.io/path"]) == 200
        # Basic auth is on: the UI refuses a visitor without the password.
        assert http_status(base + "/workers") == 401
        assert http_status(base + "/workers", credentials) == 200
    finally:
        flower.terminate()
        try:
            flower.wait(timeout=30)
        except subprocess.TimeoutExpired:
            flower.kill()
            flower.wait()
