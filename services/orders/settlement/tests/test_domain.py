"""The split, statements and reconciliation rules (domain/settlement.py): pure, no database."""
from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.settlement.domain import rules
from orders.settlement.domain.rules import (
    CAPTURE,
    REFUND,
    FeeRule,
    LedgerFacts,
    Line,
    LineSum,
    OrderFacts,
    Split,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


class TestSplit:
    @pytest.mark.parametrize("gross, bps, minimum, fee", [
        (10_000, 500, 0, 500),     # 5 % exactly
        (78, 500, 0, 4),           # 3.9 → 4
        (70, 500, 0, 4),           # 3.5 → 4: halves round up
        (69, 500, 0, 3),           # 3.45 → 3
        (10, 500, 0, 1),           # 0.5 → 1
        (9, 500, 0, 0),            # 0.45 → 0
        (1, 4999, 0, 0),           # 0.4999 → 0
        (1, 5000, 0, 1),           # 0.5 → 1
        (123_456_789, 333, 0, 4_111_111),  # 4111111.07… → 4111111, exact in integers
    ])
    def test_the_percentage_rounds_to_the_nearest_fen(self, gross, bps, minimum, fee):
        assert rules.split(gross, FeeRule(bps, minimum)) == Split(gross, fee, gross - fee)

    def test_the_minimum_fee_applies_below_it(self):
        assert rules.split(78, FeeRule(500, 10)) == Split(78, 10, 68)       # 4 < 10
        assert rules.split(10_000, FeeRule(500, 10)) == Split(10_000, 500, 9_500)  # 500 > 10

    def test_the_fee_is_never_more_than_the_payment(self):
        assert rules.split(6, FeeRule(500, 10)) == Split(6, 6, 0)
        assert rules.split(100, FeeRule(10_000, 0)) == Split(100, 100, 0)

    def test_no_fee(self):
        assert rules.split(78, FeeRule(0, 0)) == Split(78, 0, 78)
        assert rules.split(78, FeeRule()) == Split(78, 0, 78)

    def test_a_free_order_has_no_fee_even_with_a_minimum(self):
        assert rules.split(0, FeeRule(500, 10)) == Split(0, 0, 0)

    def test_a_refund_reverses_every_amount(self):
        assert rules.split(78, FeeRule(500, 10)).reversed() == Split(-78, -10, -68)

    @pytest.mark.parametrize("bps, minimum", [(-1, 0), (10_001, 0), (0, -1)])
    def test_rules_out_of_range_are_refused(self, bps, minimum):
        with pytest.raises(ValueError):
            FeeRule(bps, minimum)

    def test_a_negative_payment_is_refused(self):
        with pytest.raises(ValueError):
            rules.split(-1, FeeRule(500, 0))

    @given(gross=st.integers(0, 10**13), bps=st.integers(0, 10_000), minimum=st.integers(0, 10**8))
    def test_every_fen_goes_to_exactly_one_side(self, gross, bps, minimum):
        parts = rules.split(gross, FeeRule(bps, minimum))
        assert parts.fee_fen + parts.net_fen == gross
        assert 0 <= parts.fee_fen <= gross and parts.net_fen >= 0
        assert parts.fee_fen >= min(minimum, gross)
        if parts.fee_fen > minimum:  # the percentage decided: the exact fee rounded, halves up
            exact = Fraction(gross * bps, 10_000)
            assert exact - Fraction(1, 2) < parts.fee_fen <= exact + Fraction(1, 2)


class TestPeriods:
    def test_months_begin_at_midnight_in_shanghai(self):
        just_before = datetime(2026, 10, 31, 15, 59, 59, tzinfo=timezone.utc)  # 23:59:59 in Shanghai
        assert rules.period_of(just_before, SHANGHAI) == "2026-10"
        assert rules.period_of(datetime(2026, 10, 31, 16, 0, tzinfo=timezone.utc), SHANGHAI) == "2026-11"
        assert rules.period_of(datetime(2026, 10, 31, 16, 0, tzinfo=timezone.utc), ZoneInfo("UTC")) == "2026-10"

    def test_a_period_closes_when_the_next_month_begins(self):
        end = rules.period_end("2026-12", SHANGHAI)
        assert end == datetime(2027, 1, 1, tzinfo=SHANGHAI)
        assert not rules.period_closed("2026-12", datetime(2026, 12, 31, 15, 59, tzinfo=timezone.utc), SHANGHAI)
        assert rules.period_closed("2026-12", datetime(2026, 12, 31, 16, 0, tzinfo=timezone.utc), SHANGHAI)
        assert rules.last_day("2024-02", SHANGHAI).isoformat() == "2024-02-29"

    @pytest.mark.parametrize("text", ["2026-13", "2026-1", "26-01", "2026-00", "", "2026/01"])
    def test_bad_periods(self, text):
        with pytest.raises(ValueError):
            rules.parse_period(text)

    def test_naive_moments_are_refused(self):
        with pytest.raises(ValueError):
            rules.period_of(datetime(2026, 1, 1), SHANGHAI)


def capture_sum(owner, project, period, count, kg, gross, fee):
    return LineSum(owner, project, period, CAPTURE, count, kg, gross, fee, gross - fee)


def refund_sum(owner, project, period, count, kg, gross, fee):
    return LineSum(owner, project, period, REFUND, count, -kg, -gross, -fee, -(gross - fee))


class TestStatements:
    def test_captures_less_refunds_per_owner_project_and_month(self):
        found = rules.statements([
            capture_sum("own_a", "prj_1", "2026-10", 3, 30, 300, 15),
            refund_sum("own_a", "prj_1", "2026-10", 1, 10, 100, 5),
            capture_sum("own_a", "prj_1", "2026-11", 1, 7, 70, 4),
            capture_sum("own_b", "prj_2", "2026-10", 2, 20, 200, 0),
        ], paid={("own_a", "prj_1", "2026-10"): 150, ("own_x", "prj_9", "2026-10"): 5})
        assert [(s.owner_id, s.project_id, s.period) for s in found] == [
            ("own_a", "prj_1", "2026-10"), ("own_b", "prj_2", "2026-10"), ("own_a", "prj_1", "2026-11")]
        october = found[0]
        assert (october.orders, october.refunds, october.quantity_kg) == (2, 1, 20)
        assert (october.captured_fen, october.refunded_fen, october.gross_fen) == (300, 100, 200)
        assert (october.fee_fen, october.net_fen, october.paid_fen, october.due_fen) == (10, 190, 150, 40)
        for statement in found:
            assert statement.gross_fen == statement.fee_fen + statement.net_fen
            assert statement.gross_fen == statement.captured_fen - statement.refunded_fen

    def test_status(self):
        statement = rules.statements([capture_sum("own_a", "prj_1", "2026-10", 1, 10, 100, 5)])[0]
        during = datetime(2026, 10, 20, tzinfo=timezone.utc)
        after = datetime(2026, 11, 2, tzinfo=timezone.utc)
        assert statement.status(during, SHANGHAI) == "open"
        assert statement.status(after, SHANGHAI) == "due"
        statement.paid_fen = 95
        assert statement.status(after, SHANGHAI) == "settled"

    def test_payouts_only_for_a_closed_month_and_never_over_the_net(self):
        after = datetime(2026, 11, 2, tzinfo=timezone.utc)
        statement = rules.statements([capture_sum("own_a", "prj_1", "2026-10", 1, 10, 100, 5)])[0]
        assert rules.payout_refusal(statement, 95, after, SHANGHAI) is None
        assert rules.payout_refusal(statement, 40, after, SHANGHAI) is None
        assert rules.payout_refusal(statement, 96, after, SHANGHAI)[0] == "exceeds_net"
        assert rules.payout_refusal(statement, 95, datetime(2026, 10, 31, tzinfo=timezone.utc),
                                    SHANGHAI)[0] == "period_open"
        statement.paid_fen = 95
        assert rules.payout_refusal(statement, 1, after, SHANGHAI)[0] == "statement_paid"
        assert rules.payout_refusal(None, 1, after, SHANGHAI)[0] == "statement_not_found"
        orphan = rules.statements([capture_sum(None, "prj_1", "2026-10", 1, 10, 100, 5)])[0]
        assert rules.payout_refusal(orphan, 1, after, SHANGHAI)[0] == "owner_unknown"


class TestReconcile:
    """A small consistent world, then one thing wrong at a time."""

    def world(self):
        orders = {
            "ord_1": OrderFacts("prj_1", "completed", 100, 10, True, 10),
            "ord_2": OrderFacts("prj_1", "failed", 70, 7, True, 0),       # refunded
            "ord_3": OrderFacts("prj_2", "retired", 50, 5, True, 5),
            "ord_4": OrderFacts("prj_2", "cancelled", 30, 3, False, 0),   # never paid
        }
        lines = [
            Line("ord_1", "own_a", "prj_1", "2026-10", CAPTURE, 10, 100, 5, 95, FeeRule(500, 1)),
            Line("ord_2", "own_a", "prj_1", "2026-10", CAPTURE, 7, 70, 4, 66),
            Line("ord_2", "own_a", "prj_1", "2026-11", REFUND, -7, -70, -4, -66),
            Line("ord_3", None, "prj_2", "2026-11", CAPTURE, 5, 50, 0, 50),
        ]
        ledger = [LedgerFacts(1, "ord_1", "prj_1", 10), LedgerFacts(2, "ord_3", "prj_2", 5)]
        return dict(orders=orders, refunds={"ord_2": 70}, lines=lines, ledger=ledger,
                    project_retired_kg={"prj_1": 10, "prj_2": 5},
                    paid={("own_a", "prj_1", "2026-10"): 95}, settled={("own_a", "prj_1", "2026-10")})

    def test_a_consistent_world_reconciles(self):
        result = rules.reconcile(**self.world())
        assert result.ok, result.difference
        assert (result.captured_fen, result.refunded_fen, result.net_fen, result.fee_fen) == (220, 70, 145, 5)
        assert result.captured_fen - result.refunded_fen == result.net_fen + result.fee_fen
        assert (result.settled_kg, result.pending_kg, result.projects) == (10, 5, 2)

    def check(self, world, expected):
        result = rules.reconcile(**world)
        assert not result.ok
        assert expected in result.difference, result.difference

    def test_a_line_that_does_not_add_up(self):
        world = self.world()
        world["lines"][0] = Line("ord_1", "own_a", "prj_1", "2026-10", CAPTURE, 10, 100, 5, 94)
        self.check(world, "order ord_1: capture line gross 100 ≠ fee 5 + net 94")

    def test_a_fee_that_is_not_the_rule(self):
        world = self.world()
        world["lines"][0] = Line("ord_1", "own_a", "prj_1", "2026-10", CAPTURE, 10, 100, 6, 94, FeeRule(500, 1))
        self.check(world, "order ord_1: fee 6 fen, but 500 bps with a minimum of 1 fen on 100 fen is 5 fen")

    def test_a_fee_above_the_payment(self):
        world = self.world()
        world["lines"][0] = Line("ord_1", "own_a", "prj_1", "2026-10", CAPTURE, 10, 100, 101, -1)
        self.check(world, "order ord_1: capture line fee 101 outside 0..gross 100")

    def test_a_payment_never_split(self):
        world = self.world()
        del world["lines"][0]
        self.check(world, "order ord_1: paid 100 fen, but its payment was never split")

    def test_a_refund_never_reversed(self):
        world = self.world()
        del world["lines"][2]
        self.check(world, "order ord_2: refunded 70 fen, but its split was never reversed")

    def test_a_reversal_that_does_not_undo_the_capture(self):
        world = self.world()
        world["lines"][2] = Line("ord_2", "own_a", "prj_1", "2026-11", REFUND, -7, -70, -3, -67)
        self.check(world, "order ord_2: the refund line does not undo the capture line")

    def test_a_split_of_another_amount(self):
        world = self.world()
        world["orders"]["ord_1"] = OrderFacts("prj_1", "completed", 101, 10, True, 10)
        self.check(world, "order ord_1: paid 101 fen for 10 kg, split 100 fen for 10 kg")

    def test_lines_of_an_unpaid_order(self):
        world = self.world()
        world["lines"].append(Line("ord_4", None, "prj_2", "2026-11", CAPTURE, 3, 30, 0, 30))
        self.check(world, "order ord_4 was never paid")

    def test_two_captures(self):
        world = self.world()
        world["lines"].append(world["lines"][0])
        self.check(world, "order ord_1: two capture lines")

    def test_a_split_to_the_wrong_project(self):
        world = self.world()
        world["lines"][3] = Line("ord_3", None, "prj_1", "2026-11", CAPTURE, 5, 50, 0, 50)
        self.check(world, "order ord_3: of project prj_2, split to project prj_1")

    def test_kilograms_of_an_order_that_is_not_retired(self):
        world = self.world()
        world["ledger"].append(LedgerFacts(3, "ord_2", "prj_1", 7))
        self.check(world, "ledger entry 3: order ord_2 is failed")

    def test_kilograms_of_no_order(self):
        world = self.world()
        world["ledger"].append(LedgerFacts(3, "ord_x", "prj_1", 7))
        self.check(world, "ledger entry 3: no order ord_x")

    def test_kilograms_that_differ_from_the_order(self):
        world = self.world()
        world["ledger"][0] = LedgerFacts(1, "ord_1", "prj_1", 11)
        self.check(world, "ledger entry 1: 11 kg, order ord_1 10 kg, its serials 10 kg")

    def test_an_order_in_the_ledger_twice(self):
        world = self.world()
        world["ledger"].append(LedgerFacts(3, "ord_1", "prj_1", 10))
        self.check(world, "ledger entry 3: order ord_1 is in the ledger twice")

    def test_a_retired_order_missing_from_the_ledger(self):
        world = self.world()
        del world["ledger"][1]
        self.check(world, "order ord_3 is retired but not in the ledger")

    def test_retired_kilograms_that_differ_from_the_ledger(self):
        world = self.world()
        world["project_retired_kg"]["prj_2"] = 6
        self.check(world, "project prj_2: 6 kg retired, the ledger holds 5 kg")

    def test_a_statement_paid_over_its_net(self):
        world = self.world()
        world["paid"][("own_a", "prj_1", "2026-10")] = 162  # net 95 + 66 = 161
        self.check(world, "statement 2026-10 of project prj_1 (owner own_a): paid 162 fen, net 161 fen")
