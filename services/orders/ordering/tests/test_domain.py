"""Pricing and idempotency: pure rules (the lifecycle is in test_lifecycle.py)."""
from decimal import Decimal

import pytest

from orders.ordering.domain import idempotency, pricing


class TestPricing:
    @pytest.mark.parametrize("asked, kg", [("1", 1), ("0.001", 1), ("12.001", 13), ("12.000", 12),
                                           (Decimal("999.999"), 1000), (7, 7)])
    def test_quantity_rounds_up_to_whole_kilograms(self, asked, kg):
        assert pricing.round_up_kg(asked) == kg

    @pytest.mark.parametrize("asked", ["0", "-1", "-0.001"])
    def test_quantity_must_be_positive(self, asked):
        with pytest.raises(ValueError):
            pricing.round_up_kg(asked)

    @pytest.mark.parametrize("kg, price, fen", [
        (1, 6000, 6),          # 6000 fen/t = 6 fen/kg exactly
        (13, 4500, 59),        # 58.5 → 59
        (1, 1, 1),             # any fraction of a fen is charged as one fen
        (1000, 4500, 4500),
        (0, 4500, 0),
        (123_456_789, 9999, 1_234_444_434),  # 1234444433.211 → …434, exact in integers
    ])
    def test_amount_is_the_ceiling_in_fen(self, kg, price, fen):
        assert pricing.amount_fen(kg, price) == fen


class TestIdempotency:
    def test_same_body_in_any_key_order_has_one_fingerprint(self):
        a = idempotency.request_fingerprint({"project_id": "p", "quantity_kg": Decimal("1.5")})
        b = idempotency.request_fingerprint({"quantity_kg": Decimal("1.5"), "project_id": "p"})
        assert a == b

    def test_decisions(self):
        fp = idempotency.request_fingerprint({"a": 1})
        assert idempotency.replay_decision(None, fp) == "new"
        assert idempotency.replay_decision(fp, fp) == "replay"
        assert idempotency.replay_decision(fp, idempotency.request_fingerprint({"a": 2})) == "conflict"


class TestSameEstimate:
    """A second order for the estimate of a pending one (back from the pay page, submit again)."""

    def test_a_payable_order_asking_the_same_is_reused(self):
        assert idempotency.same_estimate_decision("p1", 12, False, "p1", 12) == "reuse"

    @pytest.mark.parametrize("pending, asked", [
        (("p1", 12, False), ("p2", 12)),   # another project
        (("p1", 12, False), ("p1", 13)),   # another quantity
        (("p1", 12, True), ("p1", 12)),    # its payment window is over
    ])
    def test_anything_else_replaces_it(self, pending, asked):
        assert idempotency.same_estimate_decision(*pending, *asked) == "replace"
