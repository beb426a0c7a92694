"""Signatures of provider notifications: pure rules."""
import pytest

from orders.payments.domain import signatures


class TestWebhookSignatures:
    SECRET = "whsec_test"
    BODY = b'{"id":"evt_1","type":"payment.succeeded"}'

    def test_signature_is_hmac_sha256_of_timestamp_dot_body(self):
        import hashlib
        import hmac
        expected = hmac.new(b"whsec_test", b"1700000000." + self.BODY, hashlib.sha256).hexdigest()
        assert signatures.sign(self.SECRET, 1700000000, self.BODY) == expected
        assert signatures.header_value(self.SECRET, 1700000000, self.BODY) == f"t=1700000000,v1={expected}"

    def test_a_fresh_authentic_call_verifies(self):
        header = signatures.header_value(self.SECRET, 1000, self.BODY)
        assert signatures.verify(self.SECRET, header, self.BODY, now=1100, tolerance_s=300) == 1000

    def test_any_of_several_signatures_may_match(self):
        good = signatures.sign(self.SECRET, 1000, self.BODY)
        header = f"t=1000,v1={'0' * 64},v1={good}"
        assert signatures.verify(self.SECRET, header, self.BODY, now=1000, tolerance_s=300) == 1000

    @pytest.mark.parametrize("header", [None, "", "v1=abc", "t=1000", "t=soon,v1=abc", "garbage"])
    def test_a_missing_or_malformed_header_is_named(self, header):
        with pytest.raises(signatures.SignatureError) as raised:
            signatures.verify(self.SECRET, header, self.BODY, now=1000, tolerance_s=300)
        assert raised.value.code == "signature_missing"

    @pytest.mark.parametrize("secret, body, timestamp", [
        ("another secret", BODY, 1000),                    # signed with someone else's secret
        (SECRET, BODY + b" ", 1000),                         # body altered after signing
        (SECRET, BODY, 999),                                 # timestamp altered after signing
    ])
    def test_anything_altered_is_an_invalid_signature(self, secret, body, timestamp):
        header = signatures.header_value(secret, timestamp, body)
        header = header.replace(f"t={timestamp}", "t=1000")
        with pytest.raises(signatures.SignatureError) as raised:
            signatures.verify(self.SECRET, header, self.BODY, now=1000, tolerance_s=300)
        assert raised.value.code == "invalid_signature"

    @pytest.mark.parametrize("now", [1301, 699])
    def test_outside_the_tolerance_either_way_is_stale(self, now):
        header = signatures.header_value(self.SECRET, 1000, self.BODY)
        with pytest.raises(signatures.SignatureError) as raised:
            signatures.verify(self.SECRET, header, self.BODY, now=now, tolerance_s=300)
        assert raised.value.code == "stale_signature"

    def test_the_signature_is_checked_before_the_clock(self):
        header = signatures.header_value("wrong", 1, self.BODY)
        with pytest.raises(signatures.SignatureError) as raised:
            signatures.verify(self.SECRET, header, self.BODY, now=10_000, tolerance_s=300)
        assert raised.value.code == "invalid_signature"
