"""The certificates service's refusals in the language the client asks for
(diandian_common.i18n): Chinese for ``Accept-Language: zh-CN`` (every message of
``error.fields`` too), English for ``en``. A new refusal of a new route belongs in the battery."""
from __future__ import annotations

import pytest

from certificates.app import create_app
from diandian_common.testing import assert_errors_in_language

from .conftest import OPERATOR_KEY

KEY = {"X-API-Key": OPERATOR_KEY}


@pytest.fixture
def client(env):
    app = create_app(database_url=env)
    yield app.test_client()
    app.extensions["db"].dispose()


def refused(cert_id: str) -> list[tuple]:
    return [
        *[("GET", f"/api/v1/certificates/{path}", {}) for path in [
            "cert_missing", "cert_missing/pdf", "cert_missing/preview.png", "x" * 300, "%00", "é"]],
        ("GET", "/api/v1/certificates/verify/not-a-code", {}),
        ("GET", "/api/v1/certificates/verify/not-a-code?mask_holder=perhaps", {}),
        ("POST", f"/api/v1/certificates/{cert_id}/revoke", {"json": {"reason": "refunded"}}),
        ("POST", f"/api/v1/certificates/{cert_id}/revoke", {"json": {"reason": "refunded"},
                                                            "headers": {"X-API-Key": "wrong"}}),
        ("POST", f"/api/v1/certificates/{cert_id}/revoke", {"json": {"reason": " "}, "headers": KEY}),
        ("POST", f"/api/v1/certificates/{cert_id}/revoke", {"json": {"reason": "x" * 501, "refund": "y"},
                                                            "headers": KEY}),
        ("POST", "/api/v1/certificates/cert_missing/revoke", {"json": {"reason": "refunded"},
                                                              "headers": KEY}),
        ("DELETE", f"/api/v1/certificates/{cert_id}", {}),
    ]


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_refusal_speaks_the_asked_language(client, add_certificate, language):
    cert = add_certificate()
    assert_errors_in_language(client, refused(cert.id), language)
