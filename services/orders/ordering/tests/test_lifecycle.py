"""The order's lifecycle: every move, from every status, and what each announces."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.ordering.domain import lifecycle as lc

LEGAL = {
    ("pay", lc.PENDING_PAYMENT): lc.PAID,
    ("cancel", lc.PENDING_PAYMENT): lc.CANCELLED,
    ("retire", lc.PAID): lc.RETIRED,
    ("fail", lc.PAID): lc.FAILED,
    ("complete", lc.RETIRED): lc.COMPLETED,
    ("refund", lc.CANCELLED): lc.CANCELLED,
    ("refund", lc.RETIRED): lc.RETIRED,
    ("refund", lc.COMPLETED): lc.COMPLETED,
}


@pytest.mark.parametrize("move,status", list(itertools.product(lc.MOVES, lc.ALL)))
def test_every_move_from_every_status_is_legal_exactly_when_the_table_says(move, status):
    if (move, status) in LEGAL:
        transition = lc.transition(move, status)
        assert (transition.move, transition.before, transition.after) == (move, status, LEGAL[(move, status)])
        assert lc.can(move, status)
    else:
        assert not lc.can(move, status)
        with pytest.raises(lc.IllegalMove) as refused:
            lc.transition(move, status)
        assert (refused.value.move, refused.value.status) == (move, status)
        assert status in str(refused.value) and move in str(refused.value)


def test_what_each_move_announces():
    assert lc.pay(lc.PENDING_PAYMENT).events == (lc.RETIREMENT_REQUESTED, lc.ORDER_PAID)
    assert lc.retire(lc.PAID).events == (lc.CERTIFICATE_REQUESTED, lc.CONTRIBUTION_REQUESTED)
    assert lc.complete(lc.RETIRED).events == (lc.ORDER_COMPLETED, lc.CERTIFICATE_ISSUED)
    assert lc.cancel(lc.PENDING_PAYMENT).events == ()
    assert lc.fail(lc.PAID).events == (lc.REFUND_REQUESTED,)
    assert lc.refund(lc.COMPLETED).events == (lc.REFUND_REQUESTED,)


def test_final_statuses_have_no_way_out_but_a_refund():
    for status in lc.FINAL:
        assert lc.TRANSITIONS[status] == set()
        assert [m for m in lc.MOVES if lc.can(m, status)] in ([], ["refund"])


def test_the_status_graph():
    assert lc.TRANSITIONS == {
        lc.PENDING_PAYMENT: {lc.PAID, lc.CANCELLED}, lc.PAID: {lc.RETIRED, lc.FAILED},
        lc.RETIRED: {lc.COMPLETED}, lc.COMPLETED: set(), lc.CANCELLED: set(), lc.FAILED: set()}
    assert lc.can_move(lc.PENDING_PAYMENT, lc.PAID) and not lc.can_move(lc.COMPLETED, lc.PAID)
    assert set(lc.ALL) == {"pending_payment", "paid", "retired", "completed", "cancelled", "failed"}


@given(st.lists(st.sampled_from(sorted(lc.MOVES)), max_size=12))
def test_any_sequence_of_moves_only_reaches_reachable_statuses_and_pays_at_most_once(moves):
    status, paid, retired = lc.PENDING_PAYMENT, 0, 0
    for move in moves:
        if not lc.can(move, status):
            continue
        transition = lc.transition(move, status)
        paid += lc.RETIREMENT_REQUESTED in transition.events
        retired += lc.CERTIFICATE_REQUESTED in transition.events
        assert transition.after == status or transition.after in lc.TRANSITIONS[status]
        status = transition.after
    assert paid <= 1 and retired <= 1 and retired <= paid
