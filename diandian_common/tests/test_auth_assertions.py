"""The gateway's participant assertions: only the exact token it signed, for the route it was
signed for, names a guest."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from diandian_common.auth import Guest, read_participant_assertion, sign_participant_assertion

GUEST = Guest("p_alice", "203.0.113.7")
PATH = "/api/v1/orders"


def test_a_signed_assertion_names_its_guest_on_its_route_only():
    token = sign_participant_assertion(GUEST, "POST", PATH)
    assert read_participant_assertion(token, "post", PATH) == GUEST
    assert read_participant_assertion(token, "GET", PATH) is None
    assert read_participant_assertion(token, "POST", f"{PATH}/ord_1/payment") is None
    assert read_participant_assertion(token, "POST", PATH, max_age=-1) is None  # expired


def test_an_assertion_signed_with_another_secret_names_nobody(monkeypatch):
    monkeypatch.setenv("INTERNAL_API_SECRET", "s" * 48)
    token = sign_participant_assertion(GUEST, "POST", PATH)
    monkeypatch.setenv("INTERNAL_API_SECRET", "t" * 48)
    assert read_participant_assertion(token, "POST", PATH) is None


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_no_altered_assertion_names_another_guest(data):
    token = sign_participant_assertion(GUEST, "POST", PATH)
    position = data.draw(st.integers(0, len(token)))
    insert = data.draw(st.text(min_size=1, max_size=3))
    cut = data.draw(st.integers(0, 2))
    altered = token[:position] + insert + token[position + cut:]
    # itsdangerous decodes base64 leniently, so a few alterations still read as the same
    # token (harmless here: the assertion never leaves the platform); none names anyone else.
    assert read_participant_assertion(altered, "POST", PATH) in (None, GUEST)
