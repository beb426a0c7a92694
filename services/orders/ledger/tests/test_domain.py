"""Serial allocation and the hash chain: pure rules."""

import pytest

from orders.ledger.domain import allocation
from orders.ledger.domain import chain as ledger
from orders.ledger.domain.allocation import BlockCursor, SerialRange


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


class TestLedgerPublication:
    BODY = {"order_id": "ord_1", "project_id": "prj_1", "project_code": "CDCER-X", "registry": "CDCER",
            "vintage": 2023, "quantity_kg": 13,
            "serial_ranges": ["CDCER-X-2023:000000001-000000010", "CDCER-X-2023:000000101-000000103"],
            "retired_at": "2026-01-01T00:00:00+00:00"}

    def test_the_body_is_the_published_entry_without_the_chain_fields(self):
        published = {"seq": 4, **self.BODY, "prev_hash": "a" * 64, "hash": "b" * 64}
        assert ledger.body_of(published) == self.BODY

    def test_a_csv_row_carries_the_exact_hashed_text(self):
        import hashlib
        prev = "c" * 64
        stored = ledger.entry_hash(prev, self.BODY)
        row = dict(zip(ledger.CSV_COLUMNS, ledger.csv_row(7, prev, stored, self.BODY)))
        assert row["seq"] == 7 and row["quantity_kg"] == 13 and row["vintage"] == 2023
        assert row["serial_ranges"] == "CDCER-X-2023:000000001-000000010 CDCER-X-2023:000000101-000000103"
        assert hashlib.sha256((row["prev_hash"] + row["canonical_body"]).encode()).hexdigest() == row["hash"]

    def test_the_published_recipe_names_the_genesis_hash(self):
        assert ledger.VERIFICATION["genesis_prev_hash"] == ledger.GENESIS_HASH == "0" * 64
