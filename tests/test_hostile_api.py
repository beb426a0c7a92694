"""Hostile input, generated from the published document, against a real stack (issue #17).

Schemathesis reads the gateway's merged /api/v1/openapi.json and sends every operation
requests made from its schemas — valid ones and ones that break them — first one operation
at a time, then as sequences that follow the document's OpenAPI links (an order placed,
then read and paid; a scene created, then changed and archived...). Every answer must be
no server error, a status the document lists for the operation, and a body its schema
describes. Zero failures: one is either a defect of the API or of its document.

Guest routes are called from one cookie-keeping session (the participant cookie the first
order or estimate sets), operator routes with the operator key. The operator's generated
writes (scenes, projects, prices, owners, webhooks) change the data, so the stack is this
module's own. Runs are bounded by example counts, never by time.
"""
from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests.outcomes import SCENE
from tests.stack import OPERATOR_KEY, UNLIMITED_RATES, Stack, require_redis_server

pytestmark = pytest.mark.integration

HOSTILE_ENV = {
    # Generated requests come in bursts from one address; the limiter's own tests are elsewhere.
    **UNLIMITED_RATES,
    # One generated guest places many orders, few of them paid: the unpaid caps would refuse
    # most of them, leaving the order routes' other answers unexercised.
    "ORDER_MAX_KG_GUEST": "100000000", "ORDER_MAX_UNPAID_KG_PER_PARTICIPANT": "1000000000000",
    "ORDER_MAX_UNPAID_KG_PER_ADDRESS": "1000000000000",
    # Webhook endpoints the operator's generated requests register must never be called:
    # https only, and no private or loopback network allowed (see safe_webhook_urls).
    "WEBHOOK_ALLOW_HTTP": "false", "WEBHOOK_ALLOWED_NETWORKS": "",
}

# Bounded by examples, not by time: per operation and generation mode, then scenarios of
# linked calls of at most STATEFUL_STEPS steps.
EXAMPLES_PER_OPERATION = 25
STATEFUL_SCENARIOS = 100
STATEFUL_STEPS = 10
STATEFUL_SUITES = 10
REQUEST_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A stack of this module's own (named so that the session's shared stack is not started)."""
    require_redis_server()
    stack = Stack(tmp_path_factory.mktemp("hostile"), HOSTILE_ENV)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def schema(hostile):
    import schemathesis

    document = hostile.driver.api("GET", "/api/v1/openapi.json").json()
    assert "x-unavailable-services" not in document
    return schemathesis.openapi.from_dict(document)


class Caller:
    """Sends a generated case as the platform's clients would: a guest's browser (one session:
    its cookie) on public routes, the operator's key on operator routes; records every failed
    check instead of raising, so one run reports every operation's failures and Hypothesis
    spends no requests shrinking."""

    def __init__(self, base_url: str, guest: requests.Session | None = None):
        from schemathesis.checks import not_a_server_error
        from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

        self.base_url = base_url
        self.guest = guest or requests.Session()
        self.operator = requests.Session()
        self.operator.headers["X-API-Key"] = OPERATOR_KEY
        self.checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
        self.failures: dict[tuple[str, str], str] = {}
        self.calls = 0
        self.statuses: dict[str, set[int]] = {}

    def session_for(self, case) -> requests.Session:
        return self.operator if case.operation.definition.raw.get("x-required-scope") else self.guest

    def __call__(self, case):
        from schemathesis.core.failures import Failure, FailureGroup

        safe_webhook_urls(case)
        self.calls += 1
        kwargs = {"base_url": self.base_url, "session": self.session_for(case), "timeout": REQUEST_TIMEOUT_S}
        response = case.call(**kwargs)
        label = case.operation.label
        self.statuses.setdefault(label, set()).add(response.status_code)
        try:
            case.validate_response(response, checks=self.checks, transport_kwargs=kwargs)
        except (Failure, FailureGroup) as raised:
            for failure in raised.exceptions if isinstance(raised, FailureGroup) else [raised]:
                key = (label, type(failure).__name__)
                self.failures.setdefault(key, (
                    f"{failure.title}: {' '.join(str(failure.message).split())[:400]}\n"
                    f"    {response.status_code} {response.text[:300]}\n"
                    f"    {case.as_curl_command(headers=dict(response.request.headers))[:1200]}"))
        except AssertionError as failure:  # a check that raised a plain assertion
            self.failures.setdefault((label, "AssertionError"), f"{failure}\n    {response.status_code}")
        return response

    def report(self) -> str:
        return "\n".join(f"{label} [{name}]: {detail}"
                         for (label, name), detail in sorted(self.failures.items()))


def safe_webhook_urls(case) -> None:
    """Keep the URL of a generated webhook endpoint on a host that never leaves the machine:
    the orders worker would otherwise POST events to whatever host the generator chose. With
    "localhost" (resolved from /etc/hosts) and no allowed loopback network, the worker refuses
    every delivery before connecting; everything else about the URL stays generated."""
    if not case.operation.path.startswith("/api/v1/webhooks") or not isinstance(case.body, dict):
        return
    url = case.body.get("url")
    if isinstance(url, str):
        try:
            parts = urlsplit(url)
        except ValueError:
            return
        if parts.netloc:
            case.body["url"] = urlunsplit(parts._replace(netloc="localhost"))


def test_generated_requests_get_documented_answers(hostile, schema):
    """Every operation, one request at a time: valid and invalid requests."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    caller = Caller(hostile.url)
    unusable: dict[str, str] = {}
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def exercise(case):
                caller(case)
            try:
                exercise()
            except Unsatisfiable:
                # nothing in the request can be made invalid (no parameters, no body)
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as exc:  # the document is wrong here: nothing could be generated
                unusable[f"{operation.label} ({mode.value})"] = " ".join(str(exc).split())[:300]
    print(f"\n[schemathesis] {caller.calls} requests over {len(operations)} operations in "
          f"{time.monotonic() - started:.0f}s; {len(caller.failures)} failures")
    assert not unusable, f"no requests could be generated from the document for: {unusable}"
    assert not caller.failures, caller.report()
    # every operation was reached at least once beyond the gateway's own refusals
    assert all(statuses - {400, 429} for statuses in caller.statuses.values()), caller.statuses


def test_linked_sequences_get_documented_answers(hostile, schema):
    """Sequences that follow the document's links: what one answer gives, the next request uses."""
    import hypothesis
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.errors import Flaky
    from schemathesis.generation.stateful import run_state_machine_as_test
    from schemathesis.generation.stateful.state_machine import StepOutput

    caller = Caller(hostile.url)
    transitions = schema.statistic.transitions.total
    assert transitions >= 20, "the document's links are what the sequences follow"

    scenarios = 0

    class Sequences(schema.as_state_machine()):
        def step(self, input):
            # Called and checked by the Caller (which records failures instead of raising).
            return StepOutput(caller(input.case), input.case)

        def teardown(self):
            nonlocal scenarios
            scenarios += 1
            super().teardown()

    started = time.monotonic()
    for seed in range(STATEFUL_SUITES):
        # A scenario's next rule depends on what the server answered before, so Hypothesis may
        # find it cannot replay a run the same way and stop it as "flaky" (as Schemathesis's
        # own runner does, a new run with another seed goes on) until enough have run.
        try:
            run_state_machine_as_test(hypothesis.seed(seed)(Sequences), settings=settings(
                max_examples=STATEFUL_SCENARIOS - scenarios, stateful_step_count=STATEFUL_STEPS,
                deadline=None, database=None, phases=[Phase.generate],
                suppress_health_check=list(HealthCheck)))
        except Flaky:
            pass
        if scenarios >= STATEFUL_SCENARIOS:
            break
    print(f"\n[schemathesis stateful] {scenarios} scenarios, {caller.calls} requests in "
          f"{time.monotonic() - started:.0f}s over {len(caller.statuses)} operations ({transitions} links); "
          f"{len(caller.failures)} failures")
    assert not caller.failures, caller.report()
    assert scenarios >= STATEFUL_SCENARIOS // 2 and caller.calls > scenarios


def test_answers_about_real_orders_match_the_document(hostile, schema):
    """Generated ids rarely name anything; these are the answers about a real order, its
    estimate, certificate, scene and rank, to its guest and to a stranger, each checked as
    the generated ones are."""
    driver = hostile.driver
    guest = "hostile-guest"
    estimate = driver.api("POST", "/api/v1/estimates", guest=guest, json={
        "kind": "trip", "scene": SCENE, "activities": [{"type": "rail", "distance_km": 300}]})
    assert estimate.status_code == 201, estimate.text
    # The generated operator requests made projects of their own, most with nothing to sell.
    project = max(driver.projects(), key=lambda p: p["available_kg"])
    placed = driver.place_order(project["id"], participant={"id": guest, "display_name": "对抗 Hostile"},
                                scene=SCENE, estimate_id=estimate.json()["id"])
    driver.pay(placed["id"])
    order = driver.wait_completed(placed["id"])
    certificate = driver.api("GET", f"/api/v1/certificates/{order['certificate']['id']}").json()
    code = urlsplit(certificate["verify_url"]).path.rsplit("/", 1)[1]
    participant_id = order["participant"]["id"]
    driver.wait_for(lambda: driver.standing(participant_id, scene=SCENE), 60, what="the guest ranked")

    reads = {
        "/api/v1/orders/{order_id}": {"order_id": order["id"]},
        "/api/v1/estimates/{estimate_id}": {"estimate_id": estimate.json()["id"]},
        "/api/v1/projects/{project_id}": {"project_id": order["project"]["id"]},
        "/api/v1/certificates/{certificate_id}": {"certificate_id": certificate["id"]},
        "/api/v1/certificates/{certificate_id}/pdf": {"certificate_id": certificate["id"]},
        "/api/v1/certificates/{certificate_id}/preview.png": {"certificate_id": certificate["id"]},
        "/api/v1/certificates/{certificate_id}/card.png": {"certificate_id": certificate["id"]},
        "/api/v1/certificates/verify/{code}": {"code": code},
        "/api/v1/scenes/{slug}": {"slug": SCENE},
        "/api/v1/scenes/{slug}/footprint": {"slug": SCENE},
        "/api/v1/scenes/{slug}/qr.png": {"slug": SCENE},
        "/api/v1/scenes/{slug}/poster.pdf": {"slug": SCENE},
        "/api/v1/rankings/participants/{participant_id}": {"participant_id": participant_id},
        "/api/v1/rankings/participants/{participant_id}/card.svg": {"participant_id": participant_id},
    }
    scene_query = {"/api/v1/rankings/participants/{participant_id}": {"scene": SCENE}}
    theirs, strangers = Caller(hostile.url, guest=driver.browser(guest)), Caller(hostile.url)
    for caller in (theirs, strangers):
        for path, parameters in reads.items():
            operation = schema[path]["GET"]
            response = caller(operation.Case(path_parameters=parameters, query=scene_query.get(path)))
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
        order_id = order["id"]
        paid_again = caller(schema["/api/v1/orders/{order_id}/payment"]["POST"].Case(
            path_parameters={"order_id": order_id}, body={}, media_type="application/json"))
        assert paid_again.status_code == (202 if caller is theirs else 403), paid_again.text
        assert not caller.failures, caller.report()
