"""The payment provider's fee in the split (domain/rules.py) and its configured rate: pure
fen arithmetic, every fen accounted for."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.settlement import service
from orders.settlement.domain import rules
from orders.settlement.domain.rules import CAPTURE, REFUND, FeeRule, Line, OrderFacts, Split

amounts = st.integers(min_value=0, max_value=10**12)
rates = st.integers(min_value=0, max_value=rules.BASIS_POINTS)
minimums = st.integers(min_value=0, max_value=10**7)


def half_up(gross: int, bps: int) -> int:
    """The reference: decimal arithmetic, rounded as the providers round (四舍五入)."""
    return int((Decimal(gross) * bps / rules.BASIS_POINTS).quantize(Decimal(1), rounding=ROUND_HALF_UP))


class TestProviderFee:
    @pytest.mark.parametrize("gross, bps, fee", [
        (1, 60, 0),            # 0.006 fen → 0: a one-fen payment costs nothing
        (83, 60, 0),           # 0.498 → 0
        (84, 60, 1),           # 0.504 → 1
        (250, 60, 2),          # 1.5 → 2: halves round up
        (6000, 60, 36),        # 60 yuan at 0.6 % = 0.36 yuan
        (14070, 60, 84),       # 84.42 → 84
        (10_000, 38, 38),      # a negotiated 0.38 %
        (10_000, 0, 0),
        (999_999_999_999, 10_000, 999_999_999_999),
    ])
    def test_the_fee_rounds_to_the_fen_halves_up_per_transaction(self, gross, bps, fee):
        assert rules.provider_fee(gross, bps) == fee == half_up(gross, bps)

    @given(amounts, rates)
    def test_the_fee_is_the_exact_rate_rounded_half_up(self, gross, bps):
        assert rules.provider_fee(gross, bps) == half_up(gross, bps)

    @pytest.mark.parametrize("gross, bps", [(100, -1), (100, 10_001), (-1, 60)])
    def test_a_rate_outside_0_to_100_percent_or_a_negative_payment_is_refused(self, gross, bps):
        with pytest.raises(ValueError):
            rules.provider_fee(gross, bps)


class TestSplitWithTheProviderFee:
    @given(amounts, rates, minimums, rates)
    def test_every_fen_is_accounted_for(self, gross, bps, minimum, provider_bps):
        parts = rules.split(gross, FeeRule(bps, minimum), provider_bps)
        assert parts.provider_fee_fen + parts.fee_fen + parts.net_fen == parts.gross_fen == gross
        assert parts.provider_fee_fen == half_up(gross, provider_bps)
        assert parts.fee_fen >= 0 and parts.net_fen >= 0 and parts.provider_fee_fen >= 0
        # The platform's fee is its rule's, only ever lowered so that the owner's share is not negative.
        wanted = max(half_up(gross, bps), minimum)
        assert parts.fee_fen == min(wanted, gross - parts.provider_fee_fen)

    @given(amounts, rates, minimums, rates)
    def test_a_refund_undoes_the_capture_to_the_fen(self, gross, bps, minimum, provider_bps):
        parts = rules.split(gross, FeeRule(bps, minimum), provider_bps)
        undone = parts.reversed()
        assert (parts.gross_fen + undone.gross_fen, parts.fee_fen + undone.fee_fen,
                parts.net_fen + undone.net_fen, parts.provider_fee_fen + undone.provider_fee_fen) \
            == (0, 0, 0, 0)

    @pytest.mark.parametrize("gross, bps, minimum, provider_bps, expected", [
        (6000, 500, 0, 60, Split(6000, 300, 5664, 36)),   # 60 yuan, 5 % platform, 0.6 % WeChat Pay
        (14070, 300, 2, 60, Split(14070, 422, 13564, 84)),
        (100, 500, 50, 60, Split(100, 50, 49, 1)),         # the minimum fee applies
        (3, 0, 3, 5000, Split(3, 1, 0, 2)),                 # the provider leaves 1 fen: the platform takes it
        (6000, 500, 0, 0, Split(6000, 300, 5700, 0)),       # sandbox, testpay: no provider fee
    ])
    def test_examples(self, gross, bps, minimum, provider_bps, expected):
        assert rules.split(gross, FeeRule(bps, minimum), provider_bps) == expected

    def test_without_a_provider_rate_the_split_is_as_before(self):
        assert rules.split(78, FeeRule(500, 0)) == Split(78, 4, 74) == Split(78, 4, 74, 0)


class TestReconciliationWithProviderFees:
    def world(self, provider_fee=1, provider_bps=60):
        orders = {"ord_1": OrderFacts("prj_1", "paid", 100, 10, captured=True, serial_kg=0)}
        capture = Line("ord_1", "own_a", "prj_1", "2026-12", CAPTURE, 10, 100, 5, 95 - provider_fee,
                       FeeRule(500, 0), provider_fee, provider_bps)
        return dict(orders=orders, refunds={}, lines=[capture], ledger=[], project_retired_kg={},
                    paid={}, settled=set())

    def test_captured_equals_net_plus_platform_fees_plus_provider_fees(self):
        result = rules.reconcile(**self.world())
        assert result.ok, result.difference
        totals = (result.captured_fen, result.net_fen, result.fee_fen, result.provider_fee_fen)
        assert totals == (100, 94, 5, 1)

    def test_a_provider_fee_other_than_its_rate_gives_is_named(self):
        result = rules.reconcile(**self.world(provider_fee=2))
        assert "provider fee 2 fen, but 60 bps on 100 fen is 1 fen" in result.difference

    def test_a_line_whose_parts_do_not_add_up_is_named(self):
        world = self.world()
        world["lines"][0] = Line("ord_1", "own_a", "prj_1", "2026-12", CAPTURE, 10, 100, 5, 95,
                                 FeeRule(500, 0), 1, 60)
        assert "gross 100 ≠ fee 5 + net 95 + provider fee 1" in rules.reconcile(**world).difference

    def test_a_refund_gives_the_provider_fee_back(self):
        world = self.world()
        world["refunds"] = {"ord_1": 100}
        world["lines"].append(Line("ord_1", "own_a", "prj_1", "2026-12", REFUND, -10, -100, -5, -94,
                                   FeeRule(500, 0), -1, 60))
        assert rules.reconcile(**world).ok
        world["lines"][1] = Line("ord_1", "own_a", "prj_1", "2026-12", REFUND, -10, -100, -5, -95,
                                 FeeRule(500, 0), 0, 60)  # the provider's fee kept
        assert "the refund line does not undo the capture line" in rules.reconcile(**world).difference


class TestConfiguredRate:
    def test_wechat_pay_and_alipay_charge_their_standard_rate_unless_set(self, monkeypatch):
        for name in ("WECHATPAY", "ALIPAY", "SANDBOX", "TESTPAY"):
            monkeypatch.delenv(f"PAYMENT_FEE_BPS_{name}", raising=False)
        assert [service.provider_fee_bps(p) for p in ("wechatpay", "alipay", "sandbox", "testpay", None)] == \
            [60, 60, 0, 0, 0]
        monkeypatch.setenv("PAYMENT_FEE_BPS_WECHATPAY", "38")
        monkeypatch.setenv("PAYMENT_FEE_BPS_ALIPAY", "0")
        assert (service.provider_fee_bps("wechatpay"), service.provider_fee_bps("alipay")) == (38, 0)

    @pytest.mark.parametrize("value", ["0.6", "-1", "10001", "sixty"])
    def test_a_rate_that_is_not_whole_basis_points_from_0_to_10000_is_refused(self, monkeypatch, value):
        monkeypatch.setenv("PAYMENT_FEE_BPS_ALIPAY", value)
        with pytest.raises(ValueError, match="PAYMENT_FEE_BPS_ALIPAY"):
            service.provider_fee_bps("alipay")
