"""A client generated from the published document completes a guest's journey (issue #17).

openapi-python-client generates a Python client from the live gateway's /api/v1/openapi.json
(as a subprocess, into the test's directory), and the test imports it and, with no request
written by hand, does what a guest's app would: list the projects, estimate a trip, order
the estimate (with the Idempotency-Key the document requires), pay it in the sandbox, wait
for the order to be completed, read its certificate and verify it by the code of its
verification URL, and read the guest's rank. Whatever the document leaves out or gets wrong
(a header, a nullable object's type, a status) fails here, as it would for anyone generating
a client. The guest is the cookie the platform gives: the client keeps cookies.
"""
from __future__ import annotations

import importlib
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.outcomes import SCENE

pytestmark = pytest.mark.integration

PACKAGE = "diandian_generated_client"
# Binary answers (PDF, PNG, SVG, CSV) as bytes: the generator handles those only as
# application/octet-stream; no hooks, so no formatter needs to be installed.
GENERATOR_CONFIG = """\
post_hooks: []
content_type_overrides:
  application/pdf: application/octet-stream
  image/png: application/octet-stream
  image/svg+xml: application/octet-stream
  text/csv: application/octet-stream
"""


@pytest.fixture(scope="module")
def generated(driver, tmp_path_factory):
    """The client package generated from the live document, imported."""
    directory = tmp_path_factory.mktemp("generated-client")
    document = driver.api("GET", "/api/v1/openapi.json")
    assert document.status_code == 200, document.text
    (directory / "openapi.json").write_bytes(document.content)
    (directory / "config.yaml").write_text(GENERATOR_CONFIG)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "openapi-python-client"), "generate", "--path", "openapi.json",
         "--output-path", PACKAGE, "--meta", "none", "--config", "config.yaml"],
        cwd=directory, capture_output=True, text=True, timeout=300)
    # A part of the document the generator could not read is left out of the client with a
    # warning: that is a defect of the document, not of the client.
    assert done.returncode == 0 and "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(directory))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(directory))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def module(generated, name: str):
    return importlib.import_module(f"{generated.__name__}.{name}")


def test_a_generated_client_completes_a_guests_journey(generated, driver):
    def api(name: str):
        return module(generated, f"api.{name}")

    models = module(generated, "models")
    # One browser: httpx keeps the participant cookie the first order or estimate sets.
    client = generated.Client(base_url=driver.url, raise_on_unexpected_status=True, timeout=30.0)

    projects = api("orders.get_projects").sync(client=client)
    assert isinstance(projects, models.ProjectList) and projects.items
    project = projects.items[0]

    estimate = api("calculator.create_estimate").sync(client=client, body=models.EstimateRequest(
        kind=models.EstimateRequestKind.TRIP, scene=SCENE, activities=[
            models.RailActivity(type_=models.RailActivityType.RAIL, distance_km=600.0),
            models.FlightRouteActivity(type_=models.FlightRouteActivityType.FLIGHT, from_="PEK", to="CTU"),
            models.HotelActivity(type_=models.HotelActivityType.HOTEL, nights=2)]))
    assert isinstance(estimate, models.Estimate), estimate
    assert estimate.total_kg > 1
    assert {item.type_.value for item in estimate.items} == {"rail", "flight", "hotel"}
    again = api("calculator.get_estimate").sync(client=client, estimate_id=estimate.id)
    assert isinstance(again, models.Estimate) and again.total_kg == estimate.total_kg

    placed = api("orders.post_orders").sync(
        client=client, idempotency_key=str(uuid.uuid4()), body=models.OrderCreate(
            project_id=project.id, estimate_id=estimate.id, scene=SCENE,
            participant=models.Participant(display_name="生成 Generated Client")))
    assert isinstance(placed, models.OrderCreated), placed
    assert placed.status == "pending_payment" and placed.participant.id

    paid = api("orders.post_order_payment").sync(client=client, order_id=placed.id)
    assert isinstance(paid, models.PaymentAccepted) and paid.status == "paid", paid

    def completed():
        order = api("orders.get_order_resource").sync(client=client, order_id=placed.id)
        assert isinstance(order, models.Order), order
        return order if order.status == "completed" else None

    order = driver.wait_for(completed, 90, what=f"order {placed.id} completed")
    # The nullable objects came through as their models, not as free-form dictionaries.
    assert isinstance(order.retirement, models.Retirement) and order.retirement.serial_range
    assert isinstance(order.certificate, models.CertificateRef) and order.certificate.id
    assert isinstance(order.scene, models.SceneRef) and order.scene.slug == SCENE
    assert order.participant.id == placed.participant.id  # the cookie's guest sees it all

    certificate = api("certificates.get_certificate").sync(client=client, certificate_id=order.certificate.id)
    assert isinstance(certificate, models.Certificate), certificate
    assert certificate.order_id == order.id and certificate.quantity_kg == order.quantity_kg
    code = urlsplit(certificate.verify_url).path.rsplit("/", 1)[1]
    verified = api("certificates.verify_certificate").sync(client=client, code=code)
    assert isinstance(verified, models.Verification) and verified.valid is True, verified
    assert verified.certificate.serial_range == certificate.serial_range
    unknown = api("certificates.verify_certificate").sync(client=client, code="not-a-code")
    assert isinstance(unknown, models.VerificationNotFound) and unknown.valid is False

    def ranked():
        standing = api("ranking.participant_standing").sync(
            client=client, participant_id=order.participant.id, scene=SCENE)
        return standing if isinstance(standing, models.ParticipantStanding) else None

    standing = driver.wait_for(ranked, 60, what="the guest's rank on the scene's board")
    assert standing.rank >= 1 and standing.kg >= order.quantity_kg
