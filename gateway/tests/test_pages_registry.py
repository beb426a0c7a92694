"""The registry cancellation on the certificate page (/c/{id}) and the verification page
(/v/{code}): a link to each record at the registry, or that it is awaited; zh and en."""
from __future__ import annotations

import pytest

from gateway.tests.pages_support import CERTIFICATE, Markup, page

RECORD = {"cancellation_id": "CCER-CXL-2026-0001", "url": "https://registry.example.cn/cancellations/0001",
          "retired_on": "2026-12-01", "anchored_kg": 500}
PARTIAL = {"anchored_kg": 500, "complete": False, "records": [RECORD]}


@pytest.fixture
def with_registry(services):
    """The stand-in certificates service answering with ``registry`` on both pages."""
    def answer(registry):
        cert = {**CERTIFICATE, "registry": registry}
        services["certificates"].on("GET", "/api/v1/certificates/cert_1", (200, cert))
        services["certificates"].on("GET", "/api/v1/certificates/verify/CODE.sig", (200, {
            "valid": True, "revoked": False, "certificate": cert}))
    return answer


@pytest.mark.parametrize("path", ["/c/cert_1", "/v/CODE.sig"])
def test_a_recorded_cancellation_links_to_the_registry(client, with_registry, path):
    with_registry(PARTIAL)
    en = page(client, path, lang="en")
    [link] = Markup(en).find("a", href=RECORD["url"])
    assert link["rel"] == "external noopener noreferrer"
    assert "Registry cancellation" in en and "CCER-CXL-2026-0001" in en
    assert "cancelled on Dec 1, 2026" in en and "500 kg covered" in en
    # 534 kg on the certificate, 500 anchored: the rest is awaited.
    assert "34 kg more awaiting registry cancellation" in en
    zh = page(client, path)
    assert "登记簿注销" in zh and "注销于" in zh and "其余 34" in zh and "等待登记簿注销" in zh


@pytest.mark.parametrize("path", ["/c/cert_1", "/v/CODE.sig"])
def test_a_wholly_anchored_certificate_awaits_nothing(client, with_registry, path):
    with_registry({"anchored_kg": 534, "complete": True, "records": [{**RECORD, "anchored_kg": 534}]})
    en = page(client, path, lang="en")
    assert "CCER-CXL-2026-0001" in en and "awaiting" not in en.lower()


@pytest.mark.parametrize("path", ["/c/cert_1", "/v/CODE.sig"])
@pytest.mark.parametrize("registry", [None, "absent"])
def test_without_a_record_the_page_says_it_is_awaited(client, with_registry, services, path, registry):
    if registry == "absent":  # a certificates service that does not send the field yet
        with_registry(None)
        cert = {k: v for k, v in CERTIFICATE.items() if k != "registry"}
        services["certificates"].on("GET", "/api/v1/certificates/cert_1", (200, cert))
        services["certificates"].on("GET", "/api/v1/certificates/verify/CODE.sig", (200, {
            "valid": True, "revoked": False, "certificate": cert}))
    else:
        with_registry(registry)
    assert "Awaiting registry cancellation" in page(client, path, lang="en")
    assert "等待登记簿注销" in page(client, path)


def test_a_record_url_that_is_not_http_is_not_a_link(client, with_registry):
    with_registry({**PARTIAL, "records": [{**RECORD, "url": "javascript:alert(1)",
                                           "cancellation_id": "<b>CXL</b>"}]})
    html = page(client, "/v/CODE.sig", lang="en")
    assert "javascript:" not in html and "&lt;b&gt;CXL&lt;/b&gt;" in html
