from decimal import Decimal

import pytest

from orders.domain import allocation, idempotency, ledger, pricing, states
from orders.domain.allocation import BlockCursor, SerialRange


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


class TestAllocation:
    def test_takes_the_lowest_serials_of_one_block(self):
        assert allocation.allocate([BlockCursor(1, 101, 200)], 10) == [SerialRange(1, 101, 110)]

    def test_exactly_the_rest_of_a_block(self):
        assert allocation.allocate([BlockCursor(1, 191, 200)], 10) == [SerialRange(1, 191, 200)]

    def test_spans_blocks_in_serial_order(self):
        blocks = [BlockCursor(2, 500, 599), BlockCursor(1, 95, 100)]
        assert allocation.allocate(blocks, 10) == [SerialRange(1, 95, 100), SerialRange(2, 500, 503)]

    def test_adjacent_blocks_give_one_contiguous_range(self):
        blocks = [BlockCursor(1, 95, 100), BlockCursor(2, 101, 200)]
        assert allocation.allocate(blocks, 10) == [SerialRange(1, 95, 104)]

    def test_skips_exhausted_blocks(self):
        blocks = [BlockCursor(1, 101, 100), BlockCursor(2, 300, 400)]
        assert allocation.allocate(blocks, 1) == [SerialRange(2, 300, 300)]

    def test_refuses_more_than_is_left(self):
        with pytest.raises(allocation.InsufficientSerials):
            allocation.allocate([BlockCursor(1, 1, 5), BlockCursor(2, 10, 12)], 9)

    @pytest.mark.parametrize("quantity", [0, -3])
    def test_quantity_must_be_positive(self, quantity):
        with pytest.raises(ValueError):
            allocation.allocate([BlockCursor(1, 1, 5)], quantity)

    def test_successive_allocations_never_overlap(self):
        cursor = BlockCursor(1, 1, 1000)
        taken = []
        for quantity in (3, 1, 250, 17, 729):
            (r,) = allocation.allocate([cursor], quantity)
            assert r.size == quantity
            taken.append(r)
            cursor = BlockCursor(1, r.last + 1, 1000)
        for a, b in zip(taken, taken[1:]):
            assert not allocation.ranges_overlap(a.first, a.last, b.first, b.last)
            assert a.last + 1 == b.first
        assert cursor.remaining == 0

    def test_range_format_matches_the_spec(self):
        assert allocation.format_range("CDCER-LQS-FOREST", 2022, 1, 13) == \
            "CDCER-LQS-FOREST-2022:000000001-000000013"


class TestLedger:
    def _chain(self, bodies):
        prev, entries = ledger.GENESIS_HASH, []
        for seq, body in enumerate(bodies, 1):
            h = ledger.entry_hash(prev, body)
            entries.append((seq, prev, h, body))
            prev = h
        return entries

    def test_hash_is_sha256_of_prev_hash_and_canonical_json(self):
        import hashlib
        body = {"b": 1, "a": "张"}
        expected = hashlib.sha256((ledger.GENESIS_HASH + '{"a":"张","b":1}').encode()).hexdigest()
        assert ledger.entry_hash(ledger.GENESIS_HASH, body) == expected

    def test_canonical_json_ignores_key_order(self):
        assert ledger.canonical_json({"x": 1, "y": [2, 3]}) == ledger.canonical_json({"y": [2, 3], "x": 1})

    def test_an_intact_chain_verifies(self):
        assert ledger.first_broken(self._chain([{"n": i} for i in range(5)])) is None

    def test_an_altered_body_is_named(self):
        entries = self._chain([{"n": i} for i in range(5)])
        seq, prev, h, _ = entries[2]
        entries[2] = (seq, prev, h, {"n": 999})
        assert ledger.first_broken(entries) == 3

    def test_a_removed_entry_is_named(self):
        entries = self._chain([{"n": i} for i in range(5)])
        del entries[1]
        assert ledger.first_broken(entries) == 3


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


def test_order_state_machine():
    assert states.can_move(states.PENDING_PAYMENT, states.PAID)
    assert states.can_move(states.PAID, states.RETIRED)
    assert states.can_move(states.RETIRED, states.COMPLETED)
    assert not states.can_move(states.COMPLETED, states.PAID)
    assert not states.can_move(states.CANCELLED, states.PAID)
    assert set(states.ALL) == {"pending_payment", "paid", "retired", "completed", "cancelled", "failed"}
