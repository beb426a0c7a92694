"""Outbound webhook rules (domain/webhooks.py): payload, signature, retries, safe targets."""
from __future__ import annotations

import hashlib
import hmac
import json
import random

import pytest

from orders.payments.domain import signatures
from orders.webhooks.domain import rules


class TestPayloadAndSignature:
    def test_the_body_is_the_event_and_stable(self):
        raw = rules.body("evt_1", "order.paid", "2026-11-25T08:00:00+00:00", {"id": "ord_1", "holder": "王芳"})
        assert json.loads(raw) == {"id": "evt_1", "type": "order.paid", "created_at": "2026-11-25T08:00:00+00:00",
                                   "data": {"id": "ord_1", "holder": "王芳"}}
        assert "王芳".encode() in raw  # UTF-8, not \\u escapes
        assert raw == rules.body("evt_1", "order.paid", "2026-11-25T08:00:00+00:00", {"id": "ord_1", "holder": "王芳"})

    def test_the_signature_is_hmac_sha256_over_timestamp_dot_body(self):
        raw = b'{"id":"evt_1"}'
        header = rules.signature_header("whsec_test", 1764057600, raw)
        expected = hmac.new(b"whsec_test", b"1764057600." + raw, hashlib.sha256).hexdigest()
        assert header == f"t=1764057600,v1={expected}"

    def test_a_receiver_verifies_it_and_refuses_changes(self):
        raw = rules.body("evt_1", "order.paid", "2026-11-25T08:00:00+00:00", {"amount_fen": 78})
        header = rules.signature_header("whsec_test", 1764057600, raw)
        assert signatures.verify("whsec_test", header, raw, now=1764057610, tolerance_s=300) == 1764057600
        with pytest.raises(signatures.SignatureError) as wrong_body:
            signatures.verify("whsec_test", header, raw.replace(b"78", b"79"), now=1764057610, tolerance_s=300)
        assert wrong_body.value.code == "invalid_signature"
        with pytest.raises(signatures.SignatureError) as wrong_secret:
            signatures.verify("whsec_other", header, raw, now=1764057610, tolerance_s=300)
        assert wrong_secret.value.code == "invalid_signature"
        with pytest.raises(signatures.SignatureError) as replayed:
            signatures.verify("whsec_test", header, raw, now=1764057600 + 301, tolerance_s=300)
        assert replayed.value.code == "stale_signature"

    @pytest.mark.parametrize("events, scene, event_type, event_scene, heard", [
        (["order.paid"], None, "order.paid", "forum", True),
        (["order.paid"], None, "order.paid", None, True),
        (["order.paid"], "forum", "order.paid", "forum", True),
        (["order.paid"], "forum", "order.paid", "expo", False),
        (["order.paid"], "forum", "order.paid", None, False),
        (["order.completed"], None, "order.paid", None, False),
        (["project.low_inventory"], "forum", "project.low_inventory", None, False),
    ])
    def test_who_hears_what(self, events, scene, event_type, event_scene, heard):
        assert rules.subscribed(events, scene, event_type, event_scene) is heard


class TestRetries:
    def test_the_default_schedule(self):
        """The first three attempts within two minutes, the last about a day after the
        first, whatever the jitter draws."""
        schedule = rules.parse_schedule(None)
        assert schedule == rules.DEFAULT_RETRY_SCHEDULE
        for worst in (-rules.DEFAULT_JITTER, rules.DEFAULT_JITTER):
            delays = [d * (1 + worst) for d in schedule]
            assert sum(delays[:2]) < 120
            assert 20 * 3600 <= sum(delays) <= 30 * 3600
        assert rules.max_attempts(schedule) == 7
        ratios = {round(b / a) for a, b in zip(schedule, schedule[1:])}
        assert ratios == {6}  # exponential

    def test_delays_follow_the_schedule_with_jitter(self):
        rng = random.Random(7)
        draws = [rules.retry_delay(1, (10.0, 60.0), 0.1, rng) for _ in range(200)]
        assert all(9.0 <= d <= 11.0 for d in draws) and len(set(draws)) > 100
        assert 54.0 <= rules.retry_delay(2, (10.0, 60.0), 0.1, rng) <= 66.0
        assert rules.retry_delay(3, (10.0, 60.0), 0.1, rng) is None  # that was the last attempt
        assert rules.retry_delay(1, (10.0,), 0.0, rng) == 10.0

    @pytest.mark.parametrize("text, schedule", [("1,2,4", (1.0, 2.0, 4.0)), (" 0.5 , 30 ", (0.5, 30.0)),
                                                ("", rules.DEFAULT_RETRY_SCHEDULE)])
    def test_schedules_from_the_environment(self, text, schedule):
        assert rules.parse_schedule(text) == schedule

    @pytest.mark.parametrize("text", ["1,,2", "a", "0", "-5", "1,999999999"])
    def test_bad_schedules(self, text):
        with pytest.raises(ValueError):
            rules.parse_schedule(text)


class TestTargets:
    def test_https_is_parsed(self):
        target = rules.parse_target("https://hooks.example.com/diandian?x=1", allow_http=False)
        assert target == rules.Target("https", "hooks.example.com", 443, "/diandian?x=1", "hooks.example.com")
        on_port = rules.parse_target("https://hooks.example.com:8443", allow_http=False)
        assert (on_port.port, on_port.path, on_port.host_header) == (8443, "/", "hooks.example.com:8443")
        v6 = rules.parse_target("http://[2001:4860::1]:8080/h", allow_http=True)
        assert (v6.host, v6.host_header) == ("2001:4860::1", "[2001:4860::1]:8080")

    @pytest.mark.parametrize("url, allow_http, problem", [
        ("http://hooks.example.com/", False, "https"),
        ("ftp://hooks.example.com/", True, "https"),
        ("https://user:pw@hooks.example.com/", False, "credentials"),
        ("https://hooks.example.com/#frag", False, "fragment"),
        ("https:///path", False, "no host"),
        ("https://hooks.example.com:99999/", False, "not a valid URL"),
        ("https://hooks.example.com/a b", False, "white space"),
        ("https://" + "a" * 500 + ".com/", False, "1 to 500"),
    ])
    def test_unusable_urls(self, url, allow_http, problem):
        with pytest.raises(rules.UnsafeTarget) as refused:
            rules.parse_target(url, allow_http)
        assert problem in str(refused.value)

    @pytest.mark.parametrize("ip, reason", [
        ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"), ("192.168.1.1", "private"),
        ("172.16.0.1", "private"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
        ("224.0.1.1", "multicast"), ("ff02::1", "multicast"), ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "not a public address"), ("::ffff:127.0.0.1", "loopback"),
        ("2002:7f00:1::", "loopback (as 127.0.0.1)"), ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private"),
        ("fc00::1", "private"), ("fe80::1%eth0", "link-local"),
    ])
    def test_addresses_that_are_refused(self, ip, reason):
        assert rules.refusal(ip) == reason

    @pytest.mark.parametrize("ip", ["64:ff9b::a00:1", "64:ff9b::7f00:1"])
    def test_nat64_addresses_of_private_ones_are_refused(self, ip):
        assert rules.refusal(ip) is not None

    @pytest.mark.parametrize("ip", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "8.8.8.8"])
    def test_public_addresses_pass(self, ip):
        assert rules.refusal(ip) is None

    def test_allowed_networks_open_exactly_what_they_list(self):
        allowed = rules.parse_networks("127.0.0.0/8, 10.1.0.0/16")
        assert rules.refusal("127.0.0.1", allowed) is None
        assert rules.refusal("::ffff:127.0.0.1", allowed) is None
        assert rules.refusal("10.1.200.3", allowed) is None
        assert rules.refusal("10.2.0.1", allowed) == "private"
        assert rules.refusal("::1", allowed) == "loopback"
        assert rules.parse_networks("") == () and rules.parse_networks(None) == ()

    def test_a_bad_network_is_a_configuration_error(self):
        with pytest.raises(ValueError, match="WEBHOOK_ALLOWED_NETWORKS"):
            rules.parse_networks("127.0.0.0/8,localhost")
