"""The reconciliation's pure rules, and what the adapters make of the providers' answers."""
from datetime import UTC, datetime, timedelta

import pytest

from orders.payments import alipay, wechatpay
from orders.payments.domain import reconcile as rules
from orders.payments.domain.reconcile import Answer

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
TIMING = rules.Timing(query_after=timedelta(seconds=120), give_up_after=timedelta(hours=1))
EXPIRES = T0 + timedelta(minutes=30)


@pytest.mark.parametrize("now, step", [
    (T0, rules.WAIT),
    (T0 + timedelta(seconds=119), rules.WAIT),  # its notification may still be on the way
    (T0 + timedelta(seconds=120), rules.QUERY),
    (EXPIRES - timedelta(seconds=1), rules.QUERY),
    (EXPIRES, rules.CLOSE),  # the window passed: close the trades before cancelling
    (EXPIRES + timedelta(minutes=59), rules.CLOSE),
    (EXPIRES + timedelta(hours=1), rules.CANCEL),  # waited long enough for the provider
])
def test_what_is_due_for_an_unpaid_order_with_a_trade(now, step):
    assert rules.step(T0, EXPIRES, now, TIMING) == step


def test_the_expiry_sweep_cancels_orders_without_a_trade_at_once_and_others_after_the_give_up():
    assert not rules.expiry_cancels(False, EXPIRES, EXPIRES - timedelta(seconds=1), TIMING)
    assert rules.expiry_cancels(False, EXPIRES, EXPIRES, TIMING)  # the sandbox's, testpay's
    assert not rules.expiry_cancels(True, EXPIRES, EXPIRES, TIMING)  # closed first, by the reconciliation
    assert not rules.expiry_cancels(True, EXPIRES, EXPIRES + timedelta(minutes=59), TIMING)
    assert rules.expiry_cancels(True, EXPIRES, EXPIRES + timedelta(hours=1), TIMING)


@pytest.mark.parametrize("expired, kinds, decision", [
    (False, [rules.OPEN], (rules.LEAVE, None)),
    (False, [rules.OPEN, rules.PAID], (rules.CONFIRM, "b")),
    (True, [rules.CLOSED, rules.PAID], (rules.CONFIRM, "b")),  # paid right before the window closed
    (True, [rules.CLOSED, rules.CLOSED], (rules.CANCEL, None)),
    (True, [rules.CLOSED, rules.UNREACHABLE], (rules.LEAVE, None)),  # its trade might still be paid
    (True, [rules.UNREACHABLE, rules.PAID], (rules.CONFIRM, "b")),
    (False, [rules.CLOSED], (rules.LEAVE, None)),  # not expired: not cancelled
    (True, [], (rules.LEAVE, None)),
])
def test_what_the_answers_decide(expired, kinds, decision):
    answers = [Answer(name, kind) for name, kind in zip("ab", kinds, strict=False)]
    assert rules.outcome(expired, answers) == decision


def test_wechat_pays_trade_states():
    paid = wechatpay.trade_state({"trade_state": "SUCCESS", "transaction_id": "4200001",
                                  "amount": {"total": 1234, "currency": "CNY"}})
    assert (paid.paid, paid.open, paid.amount_fen, paid.currency, paid.reference) == (
        True, False, 1234, "CNY", "4200001")
    assert wechatpay.trade_state({"trade_state": "NOTPAY", "amount": {"total": 1}}).open
    closed = wechatpay.trade_state({"trade_state": "CLOSED", "amount": {"total": 1}})
    assert not closed.paid and not closed.open
    assert wechatpay.trade_state({"trade_state": "REFUND", "amount": {"total": 1}}).paid


def test_wechat_pays_refund_states():
    assert wechatpay.refund_succeeded("SUCCESS") is True
    assert wechatpay.refund_succeeded("PROCESSING") is None
    assert wechatpay.refund_succeeded("ABNORMAL") is False and wechatpay.refund_succeeded("CLOSED") is False


def test_alipays_trade_states():
    paid = alipay.trade_state({"trade_status": "TRADE_SUCCESS", "trade_no": "2026", "total_amount": "12.34"})
    assert (paid.paid, paid.open, paid.amount_fen, paid.reference) == (True, False, 1234, "2026")
    assert alipay.trade_state({"trade_status": "TRADE_FINISHED", "total_amount": "1.00"}).paid
    assert alipay.trade_state({"trade_status": "WAIT_BUYER_PAY", "total_amount": "1.00"}).open
    closed = alipay.trade_state({"trade_status": "TRADE_CLOSED", "total_amount": "1.00"})
    assert not closed.paid and not closed.open
