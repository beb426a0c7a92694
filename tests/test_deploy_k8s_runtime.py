"""deploy/k8s/ at run time: resources, users, secrets, databases, metrics, exposure, Flower;
and the worker probe and Flower run for real. Shared parsing is in tests/deploy_files.py."""
from __future__ import annotations

import importlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from diandian_common import config
from diandian_common.migrate import DATABASES
from diandian_common.testing import free_port, stop_process

# The manifests' fixtures, parsed once per module.
from tests.deploy_files import (  # noqa: F401
    APP_PORT,
    CONFIG_MAP,
    FLOWER,
    FLOWER_PORT,
    GATEWAY,
    IMAGE_UID,
    INTERRUPTIBLE_TASKS,
    KUSTOMIZATION,
    METRICS_DIR,
    OPTIONAL_PAYMENT_SECRETS,
    PLACEHOLDER,
    ROOT,
    SCHEDULED,
    SCRATCH,
    SECRET,
    WITHHELD,
    WORKER_METRICS_PORT,
    argv,
    available_env,
    celery_ping,
    compose,
    compose_argv,
    compose_env,
    config_map,
    container_port,
    containers,
    cpu,
    documents,
    env_sources,
    http_status,
    interpolated,
    is_scheduler,
    is_worker,
    main_container,
    memory,
    multiproc_dir_is_private,
    needs_var_dir,
    node_name,
    objects,
    of_kind,
    option,
    owner,
    pod_spec,
    secret,
    secret_key,
    worker_probe,
    workloads,
)


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
    assert uid == IMAGE_UID
    for name, workload in workloads(objects).items():
        assert pod_spec(workload)["securityContext"]["runAsUser"] == uid, name


def mounts(workload: dict, container: dict) -> dict[str, dict]:
    """mountPath → the pod volume mounted there (with the mount's readOnly)."""
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    return {m["mountPath"]: {**volumes[m["name"]], "readOnly": m.get("readOnly", False)}
            for m in container.get("volumeMounts", [])}


def test_every_container_has_a_read_only_root_and_its_own_scratch(objects):
    for name, workload in workloads(objects).items():
        for container in containers(workload):
            assert container["securityContext"].get("readOnlyRootFilesystem") is True, name
            scratch = mounts(workload, container).get(SCRATCH)
            assert scratch and "emptyDir" in scratch and not scratch["readOnly"], f"{name}: no writable {SCRATCH}"


def test_writable_volumes_only_where_the_processes_write(objects, config_map):
    """Writable: /tmp, the metrics directory, and VAR_DIR exactly for the processes whose code
    writes there (an emptyDir, or the certificates' PDF claim). Everything else is mounted
    read-only (the merchant's keys) or not at all."""
    var_dir = config_map["VAR_DIR"]
    writers = set()
    for name, workload in workloads(objects).items():
        container = main_container(workload)
        writable = {path: volume for path, volume in mounts(workload, container).items()
                    if not volume["readOnly"]}
        metrics_dir = env_sources(container).get("PROMETHEUS_MULTIPROC_DIR", {}).get("value")
        assert metrics_dir in (None, METRICS_DIR), name
        assert set(writable) <= {SCRATCH, var_dir, metrics_dir} - {None}, f"{name}: {sorted(writable)}"
        assert (var_dir in writable) == needs_var_dir(argv(container)), f"{name}: VAR_DIR"
        if var_dir in writable:
            writers.add(name)
            assert "emptyDir" in writable[var_dir] or "persistentVolumeClaim" in writable[var_dir], name
    assert writers >= {"calculator", "orders", "certificates", GATEWAY, "certificates-worker"}
    assert not writers & {"ranking", "ranking-worker", FLOWER}


def test_the_same_writable_directories_as_compose(objects, compose, config_map):
    for name, workload in workloads(objects).items():
        container = main_container(workload)
        writable = {path for path, volume in mounts(workload, container).items() if not volume["readOnly"]}
        tmpfs = {entry.split(":")[0] for entry in compose[name].get("tmpfs") or []}
        volumes = {v.split(":")[1] for v in compose[name].get("volumes") or [] if not v.endswith(":ro")}
        assert compose[name]["read_only"] is True, name
        assert writable == tmpfs | volumes, name


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
                # Only a merchant's payment secrets may be absent (no WeChat Pay configured).
                assert not ref.get("optional") or ref["key"] in OPTIONAL_PAYMENT_SECRETS, name


def test_the_secret_in_the_repository_holds_placeholders_only(objects, secret):
    document = of_kind(objects, "Secret")[SECRET]
    assert "data" not in document, "base64 values could hide a real secret"
    for key, value in secret.items():
        assert PLACEHOLDER in value, f"{key} is not a placeholder"


def test_secret_values_are_not_in_the_config_map(config_map, secret):
    assert not set(config_map) & set(secret)


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


# The schedulers' Deployments (tests/test_deploy_k8s.py checks these are the services with periodic tasks).
SCHEDULERS = [f"{service}-beat" for service in SCHEDULED]


def test_the_same_limits_as_compose(objects, compose):
    """Compose limits each container as the cluster does (a process that needs more in one
    needs more in the other)."""
    for name, workload in workloads(objects).items():
        limits = main_container(workload)["resources"]["limits"]
        assert cpu(limits["cpu"]) == float(compose[name]["cpus"]), name
        assert memory(limits["memory"]) == memory(str(compose[name]["mem_limit"]).replace("m", "Mi")
                                                  .replace("g", "Gi")), name


def test_workers_and_schedulers_are_probed_as_compose_checks_them(objects, compose):
    """A worker's liveness probe and a scheduler's are the compose healthchecks: a ping to the
    process's own node name, which a scheduler answers only with remote control on."""
    probed = set()
    for name, workload in of_kind(objects, "Deployment").items():
        container = main_container(workload)
        args = argv(container)
        if not (is_worker(args) or is_scheduler(args)):
            continue
        probe = container["livenessProbe"]["exec"]["command"]
        assert probe[:2] == ["sh", "-c"], name
        assert celery_ping(probe[2])["destination"] == node_name(args), name
        assert probe[2] == compose[name]["healthcheck"]["test"][1], name
        assert container["livenessProbe"]["timeoutSeconds"] > float(celery_ping(probe[2])["timeout"]), name
        if is_scheduler(args):
            assert "--enable-remote-control" in args, name
            assert "readinessProbe" not in container, f"{name}: no Service routes to a scheduler"
        probed.add(name)
    assert len(probed) == len(config.SERVICES) + len(SCHEDULERS)


def test_every_api_gateway_and_worker_has_a_disruption_budget(objects):
    """A drain evicts one pod of each at a time, and never blocks: maxUnavailable, not a
    minAvailable that a one-pod worker could never satisfy."""
    budgets = of_kind(objects, "PodDisruptionBudget")
    deployments = of_kind(objects, "Deployment")
    covered: dict[str, list[str]] = {}
    for budget_name, budget in budgets.items():
        assert budget["apiVersion"] == "policy/v1", budget_name
        spec = budget["spec"]
        assert "minAvailable" not in spec and spec["maxUnavailable"] == 1, budget_name
        assert spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow", budget_name
        selector = spec["selector"]["matchLabels"]
        for name, deployment in deployments.items():
            if selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items():
                covered.setdefault(name, []).append(budget_name)
    needing = {name for name, d in deployments.items()
               if d["metadata"]["labels"]["app.kubernetes.io/component"] in ("api", "gateway", "worker")}
    assert needing == {GATEWAY, *config.SERVICES, *(f"{s}-worker" for s in config.SERVICES)}
    assert {name: len(found) for name, found in covered.items()} == dict.fromkeys(needing, 1)


# --- network policies: who may connect to whom --------------------------------------------

NAMESPACE_LABEL = "kubernetes.io/metadata.name"


def selects(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels is evaluated here: {selector}"
    return selector.get("matchLabels", {}).items() <= labels.items()


def admitted(objects: dict, target: str, port: int, *, namespace: str | None = None,
             source: str | None = None) -> bool:
    """Whether the policies let a connection to ``port`` of workload ``target``'s pods in:
    from a pod of workload ``source`` of this namespace, or from any pod of ``namespace``."""
    pods = {name: w["spec"]["template"]["metadata"]["labels"] for name, w in workloads(objects).items()}
    policies = [p["spec"] for p in of_kind(objects, "NetworkPolicy").values()
                if "Ingress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], pods[target])]
    assert policies, f"no policy isolates {target}"
    for policy in policies:
        for rule in policy.get("ingress", []):
            if rule.get("ports") and port not in {p["port"] for p in rule["ports"]}:
                continue
            for peer in rule.get("from", []):
                assert "ipBlock" not in peer, "addresses outside the cluster are no peer here"
                if "namespaceSelector" in peer:
                    if namespace and selects(peer["namespaceSelector"], {NAMESPACE_LABEL: namespace}) \
                            and selects(peer.get("podSelector", {}), {}):
                        return True
                elif source and selects(peer["podSelector"], pods[source]):
                    return True
    return False


def scrape_port(workload: dict) -> int | None:
    annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
    return int(annotations["prometheus.io/port"]) if annotations.get("prometheus.io/scrape") == "true" else None


def test_the_namespace_denies_every_connection_no_policy_allows(objects):
    (deny,) = [p for p in of_kind(objects, "NetworkPolicy").values() if p["spec"]["podSelector"] == {}
               and "ingress" not in p["spec"]]
    assert deny["spec"]["policyTypes"] == ["Ingress"]


def test_from_outside_only_the_gateway_is_reached(objects):
    ingress_class = next(iter(of_kind(objects, "Ingress").values()))["spec"]["ingressClassName"]
    controller = "ingress-nginx"
    assert ingress_class == "nginx"
    for name in of_kind(objects, "Deployment"):
        for port in {APP_PORT, FLOWER_PORT, WORKER_METRICS_PORT}:
            assert admitted(objects, name, port, namespace=controller) == (name == GATEWAY and port == APP_PORT), \
                f"the ingress controller → {name}:{port}"
            assert not admitted(objects, name, port, namespace="some-tenant"), f"another namespace → {name}:{port}"


def test_inside_each_api_is_reached_by_its_callers_only(objects):
    """The gateway proxies to every API; orders prices an order with the calculator
    (services/orders/ordering/calculator_client.py); nothing else calls an API."""
    callers = {service: {GATEWAY} for service in config.SERVICES}
    callers["calculator"] |= {"orders", "orders-worker"}
    for target, allowed in callers.items():
        for source in workloads(objects):
            assert admitted(objects, target, APP_PORT, source=source) == (source in allowed), f"{source} → {target}"
    for worker in (*(f"{s}-worker" for s in config.SERVICES), *SCHEDULERS, FLOWER):
        for source in workloads(objects):
            assert not admitted(objects, worker, APP_PORT, source=source), f"{source} → {worker}"


def test_prometheus_scrapes_every_annotated_port_from_the_monitoring_namespace(objects):
    scraped = 0
    for name, workload in of_kind(objects, "Deployment").items():
        port = scrape_port(workload)
        if port is not None:
            assert admitted(objects, name, port, namespace="monitoring"), name
            scraped += 1
        assert not admitted(objects, name, 22, namespace="monitoring"), name
    assert scraped == len(config.SERVICES) * 2 + 2   # APIs, workers, the gateway, Flower


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


@pytest.mark.integration
def test_the_scheduler_probe_answers_while_it_ticks_and_not_once_it_froze(objects, redis_url, tmp_path):
    """The manifest's scheduler command and liveness probe (the compose healthcheck too):
    beat answers the ping on its node name; frozen (SIGSTOP, as the chaos round froze it), it
    does not, so Kubernetes restarts it and Compose reports it unhealthy."""
    name = "ranking-beat"
    container = main_container(of_kind(objects, "Deployment")[name])
    args = argv(container)
    schedule = option(args, "--schedule", "-s")
    # The pod's scratch is its own; this machine's /tmp is shared.
    args = [str(tmp_path / "celerybeat-schedule") if arg == schedule else arg for arg in args]
    env = {key: value for key, value in os.environ.items() if key != "CELERY_BROKER_URL"}
    env.update(REDIS_URL=redis_url, VAR_DIR=str(tmp_path),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]))
    log = tmp_path / "beat.log"
    with log.open("wb") as sink:
        beat = subprocess.Popen(args, env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    probe = container["livenessProbe"]["exec"]["command"]
    impatient = [*probe[:2], probe[2].replace("--timeout 10", "--timeout 2")]
    assert impatient != probe
    pod = socket.gethostname()

    def run_probe(command: list[str]) -> int:
        return subprocess.run(command, check=False, env={**env, "HOSTNAME": pod}, capture_output=True,
                              timeout=30).returncode

    try:
        deadline = time.monotonic() + 60
        while "beat pidbox: Connected" not in log.read_text():
            assert beat.poll() is None, f"beat exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"beat never listened: {log.read_text()[-2000:]}"
            time.sleep(0.2)
        assert run_probe(probe) == 0, log.read_text()[-2000:]
        beat.send_signal(signal.SIGSTOP)
        assert run_probe(impatient) != 0, "a frozen scheduler must fail its probe"
        beat.send_signal(signal.SIGCONT)
        assert run_probe(probe) == 0, "the scheduler answers again once it runs"
    finally:
        beat.send_signal(signal.SIGCONT)
        stop_process(beat, timeout=30)


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
        stop_process(flower, timeout=30)
