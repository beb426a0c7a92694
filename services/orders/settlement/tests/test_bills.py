"""The providers' daily trade bills read (domain/bills.py) and compared with our records:
pure, on bill text laid out as WeChat Pay and Alipay (and the emulator) write it."""
from __future__ import annotations

import io
import zipfile

import pytest

from orders.settlement.domain import bills
from orders.settlement.domain.bills import PAYMENT, REFUND, BillError, BillRecord

WECHAT_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
    "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,"
    "商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
WECHAT_PAYMENT = (
    "`2026-12-05 09:12:01,`wx8888888888888888,`1900000109,`0,`,`4200001234202612050000000001,"
    "`ord_a1,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`SUCCESS,`OTHERS,`CNY,`60.00,`0.00,`0,`0,`0.00,"
    "`0.00,`,`,`点点碳中和 · 1000 kg,`,`0.36000,`0.60%,`60.00,`0.00,`")
WECHAT_SECOND = (
    "`2026-12-05 10:00:00,`wx8888888888888888,`1900000109,`0,`,`4200001234202612050000000002,"
    "`ord_b2,`,`NATIVE,`SUCCESS,`OTHERS,`CNY,`140.70,`0.00,`0,`0,`0.00,"
    "`0.00,`,`,`点点碳中和 · 2345 kg,`,`0.84000,`0.60%,`140.70,`0.00,`")
WECHAT_REFUND = (
    "`2026-12-05 11:30:00,`wx8888888888888888,"
    "`1900000109,`0,`,`4200001234202612050000000001,"
    "`ord_a1,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`REFUND,`OTHERS,`CNY,`0.00,`0.00,"
    "`50300000012026120500000001,`rf_17,`60.00,`0.00,`ORIGINAL,`SUCCESS,`点点碳中和 · 1000 kg,`,"
    "`-0.36000,`0.60%,`0.00,`60.00,`")
WECHAT_SUMMARY = ("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,"
                  "手续费总金额,订单总金额,申请退款总金额")


def wechat_bill(*rows, summary=None) -> str:
    if summary is None:
        fees = sum({WECHAT_PAYMENT: 36, WECHAT_SECOND: 84, WECHAT_REFUND: -36}[row] for row in rows)
        summary = f"`{len(rows)},`200.70,`60.00,`0.00,`{fees / 100:.5f},`200.70,`60.00"
    return "\r\n".join([WECHAT_HEADER, *rows, WECHAT_SUMMARY, summary]) + "\r\n"


def summary(count: int, fees: str) -> str:
    return f"`{count},`60.00,`0.00,`0.00,`{fees},`60.00,`0.00"


class TestWeChatBill:
    def test_payments_and_refunds_in_fen_signed_as_the_money_moves(self):
        records = bills.parse_wechat_trade_bill(wechat_bill(WECHAT_PAYMENT, WECHAT_SECOND, WECHAT_REFUND))
        assert records == [
            BillRecord(PAYMENT, "ord_a1", 6000, 36, "4200001234202612050000000001"),
            BillRecord(PAYMENT, "ord_b2", 14070, 84, "4200001234202612050000000002"),
            BillRecord(REFUND, "ord_a1", -6000, -36, "50300000012026120500000001"),
        ]

    def test_a_bill_cut_short_is_refused(self):
        text = "\r\n".join([WECHAT_HEADER, WECHAT_PAYMENT])
        with pytest.raises(BillError, match="no summary"):
            bills.parse_wechat_trade_bill(text)

    def test_a_summary_that_does_not_match_the_rows_is_refused(self):
        with pytest.raises(BillError, match="counts 3 trades"):
            bills.parse_wechat_trade_bill(wechat_bill(WECHAT_PAYMENT, summary=summary(3, "0.36000")))
        with pytest.raises(BillError, match="fees 37 fen"):
            bills.parse_wechat_trade_bill(wechat_bill(WECHAT_PAYMENT, summary=summary(1, "0.37000")))

    def test_a_fee_that_is_not_whole_fen_is_refused(self):
        row = WECHAT_PAYMENT.replace("`0.36000", "`0.36400")
        with pytest.raises(BillError, match="not a whole number of fen"):
            bills.parse_wechat_trade_bill(wechat_bill(row, summary=summary(1, "0.36400")))

    def test_a_file_that_is_not_a_trade_bill_is_refused(self):
        with pytest.raises(BillError, match="no column"):
            bills.parse_wechat_trade_bill("记账时间,微信支付业务单号\r\n`2026-12-05,`1\r\n")
        with pytest.raises(BillError, match="empty"):
            bills.parse_wechat_trade_bill("")


ALIPAY_COLUMNS = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,"
    "商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,"
    "商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")


def alipay_zip(rows, footer="#交易合计：2笔，退款合计：1笔") -> bytes:
    detail = "\r\n".join([
        "#支付宝业务明细查询", "#账号：[20880000000000000156]",
        "#起始日期：[2026年12月05日 00:00:00]   终止日期：[2026年12月06日 00:00:00]",
        "#-----------------------------------------业务明细列表----------------------------------------",
        ALIPAY_COLUMNS, *rows,
        "#-----------------------------------------业务明细列表结束------------------------------------",
        footer, "#导出时间：[2026年12月06日 09:00:00]"]) + "\r\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("20880000000000000156_20261205_业务明细.csv", detail.encode("gbk"))
        archive.writestr("20880000000000000156_20261205_业务明细(汇总).csv", "#汇总\r\n".encode("gbk"))
    return buffer.getvalue()


ALIPAY_ROWS = [
    "2026120522001400000000000001,ord_a1,交易,点点碳中和 · 1000 kg,2026-12-05 09:11:00,"
    "2026-12-05 09:12:01,,,,,"
    "buy***@example.com,60.00,60.00,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,0.36,0.00,",
    "2026120522001400000000000002,ord_b2,交易,点点碳中和 · 2345 kg,2026-12-05 10:00:00,"
    "2026-12-05 10:00:10,,,,,"
    "buy***@example.com,140.70,140.70,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,0.84,0.00,",
    "2026120522001400000000000001,ord_a1,退款,点点碳中和 · 1000 kg,2026-12-05 09:11:00,"
    "2026-12-05 11:30:00,,,,,"
    "buy***@example.com,-60.00,-60.00,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,rf_17,-0.36,0.00,",
]


class TestAlipayBill:
    def test_the_gbk_detail_file_of_the_zip_in_fen_signed_as_the_money_moves(self):
        assert bills.parse_alipay_bill(alipay_zip(ALIPAY_ROWS)) == [
            BillRecord(PAYMENT, "ord_a1", 6000, 36, "2026120522001400000000000001"),
            BillRecord(PAYMENT, "ord_b2", 14070, 84, "2026120522001400000000000002"),
            BillRecord(REFUND, "ord_a1", -6000, -36, "2026120522001400000000000001"),
        ]

    def test_a_refund_written_with_positive_amounts_is_still_a_refund(self):
        row = ALIPAY_ROWS[2].replace("-60.00", "60.00").replace("-0.36", "0.36")
        [record] = bills.parse_alipay_bill(alipay_zip([row], "#交易合计：0笔，退款合计：1笔"))
        assert (record.amount_fen, record.fee_fen) == (-6000, -36)

    def test_footer_counts_that_do_not_match_the_rows_are_refused(self):
        with pytest.raises(BillError, match="footer"):
            bills.parse_alipay_bill(alipay_zip(ALIPAY_ROWS[:1]))

    def test_what_is_not_alipays_zip_is_refused(self):
        with pytest.raises(BillError, match="not a zip"):
            bills.parse_alipay_bill(b"<html>error</html>")


class TestCompare:
    bill = [BillRecord(PAYMENT, "ord_a", 6000, 36), BillRecord(PAYMENT, "ord_b", 14070, 84),
            BillRecord(REFUND, "ord_a", -6000, -36)]

    def test_the_same_payments_and_refunds_match(self):
        result = bills.compare(self.bill, list(reversed(self.bill)))
        assert result.ok and result.matched == 3
        assert (result.bill_amount_fen, result.bill_fee_fen) == (14070, 84)
        assert (result.our_amount_fen, result.our_fee_fen) == (14070, 84)

    def test_every_difference_is_named(self):
        ours = [BillRecord(PAYMENT, "ord_a", 6000, 60),      # our fee differs
                BillRecord(REFUND, "ord_a", -5000, -36),     # the amount differs
                BillRecord(PAYMENT, "ord_c", 100, 1)]        # not in the bill; ord_b is not here
        result = bills.compare(self.bill, ours)
        assert not result.ok and result.matched == 0
        assert [(d.order_id, d.kind, d.problem) for d in result.differences] == [
            ("ord_a", PAYMENT, "fee"), ("ord_a", REFUND, "amount"),
            ("ord_b", PAYMENT, "missing_here"), ("ord_c", PAYMENT, "missing_in_bill")]
        described = [d.describe() for d in result.differences]
        assert described[0] == "payment of order ord_a: provider fee 60 fen here, 36 fen in the bill"
        assert described[2].startswith("payment of order ord_b: 14070 fen in the provider's bill")

    def test_an_order_listed_twice_is_a_difference(self):
        result = bills.compare(self.bill + self.bill[:1], self.bill)
        assert [d.problem for d in result.differences] == ["duplicate"]

    def test_an_empty_day_matches_an_empty_bill(self):
        assert bills.compare([], []).ok
