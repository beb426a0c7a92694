"""The payment providers' daily trade bills, read and compared with our own records.

Pure: text in, records out. Amounts and fees are integer fen, signed as the money moves
for the merchant: a payment is positive, a refund negative, and so is the fee the
provider keeps on a payment and gives back on a refund.

- **WeChat Pay** (``GET /v3/bill/tradebill``, ``bill_type=ALL``): a header line, one line
  per payment (``交易状态`` ``SUCCESS``) or refund (``REFUND``) with every field after a
  backtick, then the summary header (``总交易单数,…``) and its line. The fee (``手续费``)
  is in yuan with five decimals, the amounts in yuan with two.
- **Alipay** (``alipay.data.dataservice.bill.downloadurl.query``, ``bill_type=trade``): a
  zip of GBK CSV files; the detail file (not ``(汇总)``) has ``#`` comment lines around a
  header and one row per ``交易`` (payment) or ``退款`` (refund); ``服务费（元）`` is the fee.
"""
from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Iterable

PAYMENT = "payment"
REFUND = "refund"


class BillError(ValueError):
    """The bill does not read as the provider's format, or does not add up."""


@dataclass(frozen=True)
class BillRecord:
    """One payment or refund as a bill (or our journal) has it."""

    kind: str            # PAYMENT or REFUND
    order_id: str        # the merchant's order number (out_trade_no): our order id
    amount_fen: int      # signed: refunds negative
    fee_fen: int         # the provider's fee, signed like the amount
    reference: str = ""  # the provider's transaction or refund number


def fen(text: str, what: str) -> int:
    """A yuan amount (``"12.34"``, ``"-0.07000"``) in fen; BillError unless whole fen."""
    try:
        value = Decimal(text.strip().replace(",", "")) * 100
    except InvalidOperation:
        raise BillError(f"{what}: not an amount: {text!r}") from None
    if value != value.to_integral_value():
        raise BillError(f"{what}: not a whole number of fen: {text!r}")
    return int(value)


def _signed(kind: str, value: int) -> int:
    return -abs(value) if kind == REFUND else abs(value)


# --- WeChat Pay ----------------------------------------------------------------------------

WECHAT_SUMMARY_HEADER = "总交易单数"


def parse_wechat_trade_bill(text: str) -> list[BillRecord]:
    """WeChat Pay's trade bill (``bill_type=ALL``) → its payments and refunds. The summary
    line's count and fee total are checked against the rows."""
    lines = [line for line in text.lstrip("\ufeff").splitlines() if line.strip()]
    if not lines:
        raise BillError("wechatpay bill: empty")
    header = [name.strip() for name in lines[0].split(",")]
    for needed in ("交易状态", "商户订单号", "微信订单号", "手续费", "订单金额", "退款金额"):
        if needed not in header:
            raise BillError(f"wechatpay bill: no column {needed}")
    records: list[BillRecord] = []
    summary: list[str] | None = None
    summary_names: list[str] = []
    for number, line in enumerate(lines[1:], 2):
        if line.startswith(WECHAT_SUMMARY_HEADER):
            if number >= len(lines):
                raise BillError("wechatpay bill: a summary header without its line")
            summary_names = [name.strip() for name in line.split(",")]
            summary = _wechat_fields(lines[number])
            break
        fields = _wechat_fields(line)
        if len(fields) != len(header):
            raise BillError(f"wechatpay bill line {number}: {len(fields)} fields, "
                            f"the header has {len(header)}")
        row = dict(zip(header, fields))
        state = row["交易状态"]
        if state == "SUCCESS":
            kind, amount = PAYMENT, fen(row["订单金额"], f"line {number} 订单金额")
            reference = row["微信订单号"]
        elif state == "REFUND":
            kind, amount = REFUND, fen(row["退款金额"], f"line {number} 退款金额")
            reference = row.get("微信退款单号") or row["微信订单号"]
        else:
            continue  # other states (REVOKED, …) move no money
        records.append(BillRecord(kind, row["商户订单号"], _signed(kind, amount),
                                  _signed(kind, fen(row["手续费"], f"line {number} 手续费")), reference))
    if summary is None:
        raise BillError("wechatpay bill: no summary (总交易单数…): the download is cut short")
    try:
        count = int(summary[0])
    except (IndexError, ValueError):
        raise BillError(f"wechatpay bill: unreadable summary {summary!r}") from None
    if count != len(records):
        raise BillError(f"wechatpay bill: the summary counts {count} trades, the bill lists {len(records)}")
    totals = dict(zip(summary_names, summary))
    if "手续费总金额" in totals:
        fees = fen(totals["手续费总金额"], "summary 手续费总金额")
        if fees != sum(r.fee_fen for r in records):
            raise BillError(f"wechatpay bill: the summary's fees {fees} fen ≠ the rows' "
                            f"{sum(r.fee_fen for r in records)} fen")
    return records


def _wechat_fields(line: str) -> list[str]:
    """Every field of a WeChat bill line is written after a backtick (so spreadsheets keep
    numbers as text); commas inside fields do not occur in the columns we read."""
    return [field[1:] if field.startswith("`") else field for field in line.split(",")]


# --- Alipay --------------------------------------------------------------------------------

ALIPAY_KINDS = {"交易": PAYMENT, "退款": REFUND}


def alipay_detail_text(archive: bytes) -> str:
    """The trade-detail CSV of Alipay's bill zip, decoded from GBK."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
            names = [n for n in zipped.namelist() if n.endswith(".csv") and "汇总" not in n]
            if len(names) != 1:
                raise BillError(f"alipay bill: expected one detail file, found {names}")
            return zipped.read(names[0]).decode("gbk")
    except zipfile.BadZipFile:
        raise BillError("alipay bill: not a zip archive") from None
    except UnicodeDecodeError:
        raise BillError("alipay bill: the detail file is not GBK text") from None


def parse_alipay_trade_bill(text: str) -> list[BillRecord]:
    """The detail file of Alipay's ``trade`` bill → its payments and refunds; the footer's
    counts (``#交易合计：N笔，退款合计：M笔``) are checked against the rows."""
    rows = [line for line in text.lstrip("\ufeff").splitlines() if line.strip() and not line.startswith("#")]
    if not rows:
        raise BillError("alipay bill: no header")
    reader = csv.reader(rows)
    header = [name.strip() for name in next(reader)]
    for needed in ("支付宝交易号", "商户订单号", "业务类型", "订单金额（元）", "服务费（元）"):
        if needed not in header:
            raise BillError(f"alipay bill: no column {needed}")
    records = []
    for number, fields in enumerate(reader, 2):
        row = dict(zip(header, (field.strip() for field in fields)))
        kind = ALIPAY_KINDS.get(row.get("业务类型", ""))
        if kind is None:
            continue
        records.append(BillRecord(kind, row["商户订单号"],
                                  _signed(kind, fen(row["订单金额（元）"], f"row {number} 订单金额")),
                                  _signed(kind, fen(row["服务费（元）"], f"row {number} 服务费")),
                                  row["支付宝交易号"]))
    for line in text.splitlines():
        if line.startswith("#交易合计"):
            counts = [int("".join(ch for ch in part if ch.isdigit()) or 0) for part in line.split("，")]
            expected = (sum(r.kind == PAYMENT for r in records), sum(r.kind == REFUND for r in records))
            if tuple(counts[:2]) != expected:
                raise BillError(f"alipay bill: the footer counts {counts[:2]}, the rows {list(expected)}")
    return records


def parse_alipay_bill(archive: bytes) -> list[BillRecord]:
    return parse_alipay_trade_bill(alipay_detail_text(archive))


# --- the comparison ------------------------------------------------------------------------

@dataclass(frozen=True)
class Difference:
    kind: str       # PAYMENT or REFUND
    order_id: str
    problem: str    # missing_in_bill, missing_here, amount, fee, duplicate
    ours: BillRecord | None
    theirs: BillRecord | None

    def describe(self) -> str:
        what = f"{self.kind} of order {self.order_id}"
        if self.problem == "missing_in_bill":
            return f"{what}: {self.ours.amount_fen} fen recorded here, not in the provider's bill"
        if self.problem == "missing_here":
            return (f"{what}: {self.theirs.amount_fen} fen in the provider's bill "
                    f"({self.theirs.reference}), not recorded here")
        if self.problem == "amount":
            return f"{what}: {self.ours.amount_fen} fen here, {self.theirs.amount_fen} fen in the bill"
        if self.problem == "fee":
            return f"{what}: provider fee {self.ours.fee_fen} fen here, {self.theirs.fee_fen} fen in the bill"
        return f"{what}: listed more than once"


@dataclass
class BillCheck:
    matched: int
    differences: list[Difference]
    bill_amount_fen: int
    bill_fee_fen: int
    our_amount_fen: int
    our_fee_fen: int

    @property
    def ok(self) -> bool:
        return not self.differences


def _index(records: Iterable[BillRecord], side: str, differences: list[Difference]) -> dict:
    found: dict[tuple[str, str], BillRecord] = {}
    for record in records:
        key = (record.kind, record.order_id)
        if key in found:
            differences.append(Difference(record.kind, record.order_id, "duplicate",
                                          record if side == "ours" else None,
                                          record if side == "theirs" else None))
            continue
        found[key] = record
    return found


def compare(bill: Iterable[BillRecord], ours: Iterable[BillRecord]) -> BillCheck:
    """Each payment and refund of the day, matched by order and kind (an order is paid
    once and refunded once, in full): missing on either side, amounts and fees that
    differ. Differences are ordered by order id and kind."""
    bill, ours = list(bill), list(ours)
    differences: list[Difference] = []
    theirs_by_key = _index(bill, "theirs", differences)
    ours_by_key = _index(ours, "ours", differences)
    matched = 0
    for key in sorted(set(theirs_by_key) | set(ours_by_key), key=lambda k: (k[1], k[0])):
        theirs, mine = theirs_by_key.get(key), ours_by_key.get(key)
        if theirs is None:
            differences.append(Difference(*key, "missing_in_bill", mine, None))
        elif mine is None:
            differences.append(Difference(*key, "missing_here", None, theirs))
        elif mine.amount_fen != theirs.amount_fen:
            differences.append(Difference(*key, "amount", mine, theirs))
        elif mine.fee_fen != theirs.fee_fen:
            differences.append(Difference(*key, "fee", mine, theirs))
        else:
            matched += 1
    differences.sort(key=lambda d: (d.order_id, d.kind, d.problem))
    return BillCheck(matched, differences, sum(r.amount_fen for r in bill), sum(r.fee_fen for r in bill),
                     sum(r.amount_fen for r in ours), sum(r.fee_fen for r in ours))
