"""The Docker Compose stack, built and started by ``scripts/test-compose.sh`` (``make
test-compose``), driven through the gateway's published port like a guest and an operator
would (issue 10).

The script exports where the stack is: ``DIANDIAN_COMPOSE_URL`` (the gateway on a free port
of 127.0.0.1), ``DIANDIAN_COMPOSE`` (the compose command with its project name and files),
and the run's secrets (deploy/new-env.sh), of which the tests use ``OPERATOR_API_KEY`` and
``PAYMENT_WEBHOOK_SECRET_TESTPAY``. Every HTTP request goes to the gateway; the compose command
is used only for what an operator does to the stack (scale, kill, restart) and to count the
certificates rows in the certificates database, which no API lists per order.

The stack runs as deployed, with ``DIANDIAN_ENV=production``, where the sandbox provider is
refused: orders are paid through ``testpay``, the signed-webhook provider, whose webhook the
tests call through the gateway as a payment service would (:class:`TestPayDriver`).

The tests run in file order and share the stack: the guest flow, the scaled burst with a
killed worker, then the restart of the orders service and its database.
"""
from __future__ import annotations

import io
import itertools
import json
import os
import re
import shlex
import subprocess
import time
import uuid
from collections import Counter

import pypdfium2
import pytest
import requests
import zxingcpp
from PIL import Image

from diandian_common.testing import Driver
from orders.payments.domain import signatures
from tests.outcomes import RENDER_FINISHED, RENDER_RECEIVED, SCENE

pytestmark = pytest.mark.compose

BURST = 30
CERTIFICATE_WORKERS = 3
# Not performance figures: bounds after which "still waiting" means "broken".
HEALTHY_WITHIN_S = 600
PIPELINE_WITHIN_S = 300
# Orders already placed by earlier tests of this module (checked again after the restart).
PLACED: dict[str, dict] = {}


class TestPayDriver(Driver):
    """The platform's test client, paying each order the way testpay confirms a payment: a
    ``payment.succeeded`` notification for its amount, signed with the webhook secret, sent
    to ``POST /api/v1/payments/testpay/webhook`` through the gateway."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, *args, webhook_secret: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.webhook_secret = webhook_secret

    def pay(self, order_id: str) -> dict:
        order = self.order(order_id)
        raw = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "payment.succeeded", "data": {
            "order_id": order_id, "amount_fen": order["amount_fen"], "currency": order["currency"],
            "transaction_id": f"tp_{uuid.uuid4().hex[:16]}"}}).encode()
        signature = signatures.header_value(self.webhook_secret, int(time.time()), raw)
        paid = self.api("POST", "/api/v1/payments/testpay/webhook", data=raw,
                        headers={"Content-Type": "application/json", "Payment-Signature": signature})
        assert paid.status_code == 200 and paid.json()["action"] in ("paid", "already_paid"), paid.text
        return paid.json()


class ComposeStack:
    """What an operator does to the stack (scale, kill, restart; psql in the database
    container); every HTTP request goes through ``driver`` to the gateway."""

    def __init__(self) -> None:
        missing = [v for v in ("DIANDIAN_COMPOSE_URL", "DIANDIAN_COMPOSE", "OPERATOR_API_KEY",
                               "PAYMENT_WEBHOOK_SECRET_TESTPAY") if not os.environ.get(v)]
        if missing:
            pytest.skip(f"run by `make test-compose`, which starts the stack ({', '.join(missing)} unset)")
        self.command = shlex.split(os.environ["DIANDIAN_COMPOSE"])
        # Restarting containers drop connections: a wait goes on; when it gives up, the logs.
        self.driver = TestPayDriver(os.environ["DIANDIAN_COMPOSE_URL"], os.environ["OPERATOR_API_KEY"], timeout=30,
                                    interval=1.0, retry_on=(requests.RequestException,),
                                    on_timeout=lambda: self.compose("logs", "--tail", "30", timeout=60)[-8000:],
                                    webhook_secret=os.environ["PAYMENT_WEBHOOK_SECRET_TESTPAY"])

    def compose(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run([*self.command, *args], check=False, capture_output=True, text=True,
                                timeout=timeout)
        assert result.returncode == 0, f"{' '.join(args)}: {result.stderr[-3000:]}"
        return result.stdout

    def containers(self, service: str) -> list[str]:
        """Ids of the service's running containers."""
        return self.compose("ps", "-q", service).split()

    def psql(self, database: str, sql: str) -> list[list[str]]:
        out = self.compose("exec", "-T", "postgres", "sh", "-c",
                           f'psql -U "$POSTGRES_USER" -d {database} -At -F "|" -c "{sql}"')
        return [line.split("|") for line in out.splitlines() if line]

    def healthy(self) -> dict:
        def answer():
            response = self.driver.api("GET", "/healthz")
            return response.json() if response.status_code == 200 else None
        return self.driver.wait_for(answer, HEALTHY_WITHIN_S, what="the gateway's /healthz to answer 200")


@pytest.fixture(scope="module")
def compose() -> ComposeStack:
    running = ComposeStack()
    started = time.monotonic()
    health = running.healthy()
    print(f"\n[compose] /healthz ok after {time.monotonic() - started:.0f}s: {health}")
    return running


@pytest.fixture(scope="module")
def driver(compose) -> Driver:
    return compose.driver


def stage(name: str, started: float) -> None:
    print(f"[compose] {name}: {time.monotonic() - started:.1f}s")


# --- a guest's flow ---------------------------------------------------------------------

def placed(order: dict) -> dict:
    """Remember an order for the restart test."""
    PLACED[order["id"]] = order
    return order


def decoded_qr(image: Image.Image) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(image)]


def test_a_guest_scans_estimates_buys_and_gets_a_certificate_and_a_rank(driver):
    started = time.monotonic()
    assert set(driver.api("GET", "/healthz").json()["services"]) >= {
        "calculator", "orders", "certificates", "ranking", "redis"}

    # An operator opens a scene (the operator key reached the gateway's store through the
    # gateway-keys job); without the key the same request is refused.
    scene_body = {"slug": f"compose-{uuid.uuid4().hex[:8]}", "name": "容器测试会场 Compose Hall",
                  "type": "conference"}
    assert driver.api("POST", "/api/v1/scenes", json=scene_body).status_code == 401
    created = driver.api("POST", "/api/v1/scenes", operator=True, json=scene_body)
    assert created.status_code == 201, created.text
    scene = created.json()["slug"]

    # The scene's QR code leads to the scene's page on the public address.
    qr = driver.api("GET", f"/api/v1/scenes/{scene}/qr.png")
    assert qr.status_code == 200 and qr.headers["Content-Type"] == "image/png"
    assert decoded_qr(Image.open(io.BytesIO(qr.content))) == [f"{driver.url}/s/{scene}"]
    assert driver.api("GET", f"/s/{scene}").status_code == 200

    # The trip estimate, a cited factor behind every line.
    estimate = driver.api("POST", "/api/v1/estimates", json={"kind": "trip", "scene": scene, "activities": [
        {"type": "flight", "from": "CTU", "to": "PEK", "round_trip": True},
        {"type": "rail", "distance_km": 120}]})
    assert estimate.status_code == 201, estimate.text
    estimate = estimate.json()
    assert estimate["total_kg"] > 0 and all(item["factor"]["source"] for item in estimate["items"])

    # The order for that many kilograms, paid through testpay, then retired and certified.
    projects = driver.api("GET", "/api/v1/projects").json()["items"]
    project = projects[0]
    participant = {"id": f"compose-{uuid.uuid4().hex[:8]}", "display_name": "韩梅梅 Han Meimei"}
    order = placed(driver.place_and_pay_order(project["id"], int(estimate["total_kg"]) + 1, participant, scene=scene))
    assert order["status"] == "pending_payment"
    done = driver.wait_completed(order["id"], PIPELINE_WITHIN_S)
    retirement = done["retirement"]
    assert retirement["serial_last"] - retirement["serial_first"] + 1 == order["quantity_kg"]

    # The certificate PDF, rendered in a worker container with the image's fonts, carries a
    # QR code that decodes to its verify URL, and that URL verifies.
    certificate = done["certificate"]
    pdf = driver.api("GET", f"/api/v1/certificates/{certificate['id']}/pdf")
    assert pdf.status_code == 200 and pdf.headers["Content-Type"].startswith("application/pdf")
    page = pypdfium2.PdfDocument(pdf.content)[0]
    assert "Han Meimei" in page.get_textpage().get_text_range()
    assert decoded_qr(page.render(scale=3).to_pil()) == [certificate["verify_url"]]
    assert certificate["verify_url"].startswith(driver.url)
    code = certificate["verify_url"].rsplit("/", 1)[1]
    verified = driver.api("GET", f"/api/v1/certificates/verify/{code}")
    assert verified.status_code == 200 and verified.json()["valid"] is True

    # The participant's rank on the scene's board.
    rank = driver.wait_for(lambda: driver.standing(participant["id"], scene=scene), 60, what="the participant's rank")
    assert rank["kg"] == order["quantity_kg"] and rank["rank"] == 1   # the scene is new
    stage("guest flow", started)


# --- unprivileged, read-only, limited, healthy, metrics summed -----------------------------

APP_IMAGE = "diandian:latest"
IMAGE_USER = "10001:10001"
# Worker and beat healthchecks ping every 30 s after a 60 s start period (deploy/docker-compose.yml).
HEALTHY_CONTAINERS_WITHIN_S = 240


def inspected(container: str) -> dict:
    out = subprocess.run(["docker", "inspect", container], check=True, capture_output=True, text=True,
                         timeout=60).stdout
    return json.loads(out)[0]


def service_of(info: dict) -> str:
    return info["Config"]["Labels"]["com.docker.compose.service"]


def in_container(container: str, script: str) -> subprocess.CompletedProcess:
    """``script`` run by sh inside ``container``, as its own user, with its environment."""
    return subprocess.run(["docker", "exec", container, "sh", "-c", script], check=False, capture_output=True,
                          text=True, timeout=60)


def scraped(container: str, port: int) -> dict[tuple[str, frozenset], float]:
    """The container's metrics, read from inside it with its own METRICS_TOKEN."""
    result = in_container(container, f'curl -fsS -H "Authorization: Bearer $METRICS_TOKEN" '
                                     f'http://127.0.0.1:{port}/metrics')
    assert result.returncode == 0, result.stderr
    samples = {}
    for line in result.stdout.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match and not line.startswith("#"):
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
            samples[(match.group(1), labels)] = float(match.group(3))
    return samples


def total(samples: dict, name: str, **labels: str) -> float:
    return sum(value for (sample, found), value in samples.items()
               if sample == name and set(labels.items()) <= found)


def test_every_container_runs_unprivileged_read_only_limited_and_healthy(compose, driver):
    """As the compose file says, for real: the image's user, a read-only root filesystem with
    writable /tmp, CPU and memory limits; every worker and scheduler turns healthy (its
    healthcheck pings its node over the broker)."""
    started = time.monotonic()
    infos = [inspected(c) for c in compose.compose("ps", "-q").split()]
    apps = [info for info in infos if info["Config"]["Image"] == APP_IMAGE]
    # (docker-compose 1.29 lists the finished jobs too, docker compose v2 only what runs.)
    assert {service_of(info) for info in apps} >= {"gateway", "orders", "orders-worker", "orders-beat", "flower"}
    for info in infos:
        assert info["HostConfig"]["Memory"] > 0 and info["HostConfig"]["NanoCpus"] > 0, service_of(info)
    for info in apps:
        name = service_of(info)
        assert info["Config"]["User"] == IMAGE_USER, name
        assert info["HostConfig"]["ReadonlyRootfs"] is True, name
        assert "/tmp" in info["HostConfig"]["Tmpfs"], name

    # Redis and PostgreSQL too: their images' entrypoints (deploy/offline's USER) drop root.
    for info in infos:
        if info["State"]["Running"]:
            top = subprocess.run(["docker", "top", info["Id"], "-eo", "pid,uid"], check=True, capture_output=True,
                                 text=True, timeout=60).stdout.split("\n")[1:]
            uids = {pid: uid for pid, uid in (line.split() for line in top if line.strip())}
            assert uids[str(info["State"]["Pid"])] != "0", f"{service_of(info)}'s process runs as root"

    gateway = compose.containers("gateway")[0]
    checked = in_container(gateway, "id -u; touch /app/probe 2>/dev/null && echo writable || echo read-only; "
                                    "touch /tmp/probe && echo scratch")
    assert checked.stdout.split() == ["10001", "read-only", "scratch"], checked

    def all_healthy():
        states = {}
        for info in (inspected(c) for c in compose.compose("ps", "-q").split()):
            if info["State"]["Running"] and "Health" in info["State"]:
                states[service_of(info)] = info["State"]["Health"]["Status"]
        return states if states and set(states.values()) == {"healthy"} else None
    states = driver.wait_for(all_healthy, HEALTHY_CONTAINERS_WITHIN_S, what="every container healthy", interval=5)
    assert set(states) >= {"calculator-worker", "orders-worker", "certificates-worker", "ranking-worker",
                           "orders-beat", "certificates-beat", "ranking-beat", "gateway", "redis", "postgres"}
    stage("unprivileged, read-only, limited, healthy", started)


def test_metrics_are_summed_over_every_process_of_a_container(compose, driver):
    """PROMETHEUS_MULTIPROC_DIR: the gateway's counters only grow from scrape to scrape, whichever
    gunicorn worker answers; the certificates worker's port counts the renders its prefork
    children ran (the guest flow's certificate), which its main process never runs itself."""
    gateway = compose.containers("gateway")[0]
    seen = []
    for _ in range(8):
        for _ in range(3):
            driver.api("GET", "/api/v1/projects")
        seen.append(total(scraped(gateway, 8000), "http_requests_total", service="gateway"))
    assert seen == sorted(seen) and seen[-1] > seen[0], f"the gateway's request count went {seen}"

    worker = compose.containers("certificates-worker")[0]
    samples = scraped(worker, 9100)
    assert total(samples, "celery_tasks_total", task="certificates.render", state="succeeded") >= 1, \
        sorted(name for name, _ in samples)


# --- scaled out, one worker killed --------------------------------------------------------

def container_log(container: str) -> str:
    logs = subprocess.run(["docker", "logs", container], check=False, capture_output=True, text=True, timeout=60)
    return logs.stdout + logs.stderr


def worker_ready(container: str) -> bool:
    return " ready." in container_log(container)


def renders_in_flight(container: str) -> set[str]:
    log = container_log(container)
    return set(RENDER_RECEIVED.findall(log)) - set(RENDER_FINISHED.findall(log))


def test_three_certificate_workers_one_killed_mid_burst_lose_and_duplicate_nothing(compose, driver):
    started = time.monotonic()
    compose.compose("up", "-d", "--no-deps", "--scale", f"certificates-worker={CERTIFICATE_WORKERS}",
                  "certificates-worker")
    def all_ready():
        ids = compose.containers("certificates-worker")
        return ids if len(ids) == CERTIFICATE_WORKERS and all(worker_ready(c) for c in ids) else None
    workers = driver.wait_for(all_ready, 180, what=f"{CERTIFICATE_WORKERS} certificate workers ready")
    stage(f"scaled to {CERTIFICATE_WORKERS} certificate workers", started)

    project = driver.api("GET", "/api/v1/projects").json()["items"][1]
    participant = f"compose-burst-{uuid.uuid4().hex[:6]}"
    orders = driver.place_orders(project["id"], BURST, lambda i: {"id": participant, "display_name": f"Burst {i}"},
                                 scene=SCENE)
    PLACED.update(orders)
    placed = {o: order["quantity_kg"] for o, order in orders.items()}
    driver.pay_all(placed)

    # Kill a worker container in the middle of a render: one whose log shows a render
    # received and not yet finished.
    def busy_worker():
        for container in workers:
            running = renders_in_flight(container)
            if running:
                return container, running
        return None
    victim, interrupted = driver.wait_for(busy_worker, PIPELINE_WITHIN_S, what="a worker mid-render", interval=0.1)
    subprocess.run(["docker", "kill", victim], check=True, capture_output=True, timeout=60)
    print(f"[compose] killed certificates-worker container {victim[:12]} "
          f"with {len(interrupted)} render(s) under way")

    done = {o: driver.wait_completed(o, PIPELINE_WITHIN_S) for o in placed}
    certificates = Counter(order_id for order_id, _ in compose.psql(
        "certificates", "SELECT order_id, id FROM certificates") if order_id in placed)
    ledger = Counter(e["order_id"] for e in driver.ledger_entries(project["id"]) if e["order_id"] in placed)
    duplicated = [o for o in placed if certificates[o] > 1 or ledger[o] > 1]
    lost = [o for o in placed if certificates[o] == 0 or o not in done]
    print(f"[compose burst] placed={len(placed)} completed={len(done)} "
          f"duplicated={len(duplicated)} lost={len(lost)}")
    assert not duplicated and not lost
    assert len({d["certificate"]["id"] for d in done.values()}) == BURST
    ranges = sorted((d["retirement"]["serial_first"], d["retirement"]["serial_last"]) for d in done.values())
    for (_, last), (first, _) in itertools.pairwise(ranges):
        assert last < first, f"overlapping serial ranges {ranges}"
    assert all(d["retirement"]["serial_last"] - d["retirement"]["serial_first"] + 1 == placed[o]
               for o, d in done.items())
    stage(f"burst of {BURST} with a worker killed", started)


# --- restarts keep the data ------------------------------------------------------------------

def test_restarting_the_orders_service_and_its_database_keeps_every_order(compose, driver):
    started = time.monotonic()
    assert PLACED, "the earlier tests placed no orders"
    before = {o: driver.api("GET", f"/api/v1/orders/{o}").json() for o in PLACED}
    compose.compose("restart", "orders", "postgres", timeout=300)
    compose.healthy()

    def after_restart():
        answers = {o: driver.api("GET", f"/api/v1/orders/{o}") for o in PLACED}
        return answers if all(r.status_code == 200 for r in answers.values()) else None
    after = {o: r.json() for o, r in driver.wait_for(after_restart, 120, what="every order to answer").items()}
    assert {o: (a["status"], a.get("retirement")) for o, a in after.items()} == {
        o: (b["status"], b.get("retirement")) for o, b in before.items()}
    assert "completed" in {a["status"] for a in after.values()}
    # And the restarted service keeps working: one more order goes all the way.
    project = driver.api("GET", "/api/v1/projects").json()["items"][0]
    order = placed(driver.place_and_pay_order(project["id"], 3, {"id": f"compose-after-{uuid.uuid4().hex[:6]}",
                                                                  "display_name": "After Restart"}, scene=SCENE))
    driver.wait_completed(order["id"], PIPELINE_WITHIN_S)
    stage(f"restart of orders + postgres, {len(PLACED)} orders kept", started)
