"""Registry anchoring: which retired serials a record covers, and what covers a retirement."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orders.ledger.domain import anchoring
from orders.ledger.domain.anchoring import AnchoredRange, NotEnoughRetired


class TestNextRanges:
    def test_first_record_takes_the_lowest_retired_serials(self):
        assert anchoring.next_ranges([(1, 2500)], [], 2) == [(1, 2000)]

    def test_continues_after_what_is_anchored(self):
        taken = anchoring.next_ranges([(1, 2500), (5001, 6000)], [(1, 1000)], 2)
        assert taken == [(1001, 2500), (5001, 5500)]

    def test_skips_anchored_serials_in_the_middle(self):
        # A block issued later below the anchored serials: the record fills it first.
        assert anchoring.next_ranges([(1, 500), (1001, 3000)], [(1001, 2000)], 1) == [(1, 500), (2001, 2500)]

    def test_refuses_more_than_is_retired_and_unanchored(self):
        with pytest.raises(NotEnoughRetired) as raised:
            anchoring.next_ranges([(1, 2999)], [(1, 1000)], 2)
        assert (raised.value.requested_kg, raised.value.unanchored_kg) == (2000, 1999)

    def test_nothing_retired(self):
        with pytest.raises(NotEnoughRetired):
            anchoring.next_ranges([], [], 1)

    @pytest.mark.parametrize("tonnes", [0, -1])
    def test_tonnes_must_be_positive(self, tonnes):
        with pytest.raises(ValueError):
            anchoring.next_ranges([(1, 5000)], [], tonnes)

    def test_adjacent_retirements_merge(self):
        assert anchoring.next_ranges([(1, 400), (401, 1000)], [], 1) == [(1, 1000)]

    def test_unanchored_kg(self):
        assert anchoring.unanchored_kg([(1, 2500), (3001, 3100)], [(1, 1000), (1001, 2000)]) == 600
        assert anchoring.unanchored_kg([], []) == 0


class TestCoverage:
    records = [AnchoredRange("a", 1, 1000), AnchoredRange("b", 1001, 1500), AnchoredRange("b", 3001, 3500)]

    def test_a_retirement_inside_one_record(self):
        assert anchoring.coverage([(10, 19)], self.records) == {"a": 10}

    def test_a_retirement_across_records_and_ranges(self):
        assert anchoring.coverage([(991, 1010), (3491, 3600)], self.records) == {"a": 10, "b": 20}

    def test_an_unanchored_retirement(self):
        assert anchoring.coverage([(1501, 3000)], self.records) == {}


retired_sets = st.lists(st.tuples(st.integers(1, 20_000), st.integers(0, 3000)), max_size=8).map(
    lambda pairs: anchoring._normalised([(first, first + size) for first, size in pairs]))


def _serials(ranges):
    return {s for first, last in ranges for s in range(first, last + 1)}


class TestProperties:
    @settings(max_examples=150, deadline=None)
    @given(retired=retired_sets, requests=st.lists(st.integers(1, 4), max_size=6))
    def test_records_never_overlap_and_cover_only_retired_serials(self, retired, requests):
        records: list[AnchoredRange] = []
        retired_serials = _serials(retired)
        for number, tonnes in enumerate(requests):
            anchored = [(r.first, r.last) for r in records]
            before = anchoring.unanchored_kg(retired, anchored)
            try:
                taken = anchoring.next_ranges(retired, anchored, tonnes)
            except NotEnoughRetired as refused:
                assert before < tonnes * 1000 == refused.requested_kg
                assert refused.unanchored_kg == before
                continue
            new = _serials(taken)
            assert len(new) == tonnes * 1000 == sum(last - first + 1 for first, last in taken)
            assert new <= retired_serials
            assert not new & _serials(anchored)
            # In order: every unanchored retired serial below the highest taken one is taken.
            free = retired_serials - _serials(anchored)
            assert {s for s in free if s <= max(new)} == new
            records += [AnchoredRange(f"r{number}", first, last) for first, last in taken]
            after = anchoring.unanchored_kg(retired, [(r.first, r.last) for r in records])
            assert after == before - tonnes * 1000

    @settings(max_examples=150, deadline=None)
    @given(retired=retired_sets, tonnes=st.lists(st.integers(1, 3), max_size=5),
           pick=st.tuples(st.integers(1, 24_000), st.integers(0, 2000)))
    def test_coverage_is_the_sum_of_overlaps(self, retired, tonnes, pick):
        records: list[AnchoredRange] = []
        for number, t in enumerate(tonnes):
            try:
                taken = anchoring.next_ranges(retired, [(r.first, r.last) for r in records], t)
            except NotEnoughRetired:
                break
            records += [AnchoredRange(f"r{number}", first, last) for first, last in taken]
        ranges = [(pick[0], pick[0] + pick[1])]
        covered = anchoring.coverage(ranges, records)
        picked = _serials(ranges)
        for number in range(len(tonnes)):
            own = [(r.first, r.last) for r in records if r.record_id == f"r{number}"]
            expected = len(picked & _serials(own))
            assert covered.get(f"r{number}", 0) == expected
        assert sum(covered.values()) == len(picked & _serials([(r.first, r.last) for r in records]))
