"""Pure logic: verification codes, formatting of quantities, dates, numbers and names."""
from __future__ import annotations

import re
import string
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certificates.domain.formatting import (
    NUMBER_ALPHABET,
    PRINTED_REGISTRY_RECORDS,
    RegistryLine,
    RegistryLines,
    certificate_number,
    format_date,
    format_quantity,
    local_date,
    mask_name,
    new_certificate_id,
    registry_lines,
)
from certificates.domain.verification import VerificationCodes, new_verify_token, parse_keys

URL_SAFE = set(string.ascii_letters + string.digits + "-_.")


def flip(text: str, index: int) -> str:
    """``text`` with the character at ``index`` replaced by another URL-safe one."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1:]


class TestVerificationCodes:
    codes = VerificationCodes(["current-key"])

    # Spellings itsdangerous's lenient base64 decoding accepted as the same signature.
    @pytest.mark.parametrize("alter", [
        lambda t, s: f"{t}.{s[:5]}!{s[5:]}", lambda t, s: f"{t}.{s[:5]}*{s[5:]}",
        lambda t, s: f"{t}.{s[:5]}~{s[5:]}", lambda t, s: f"{t}.{s[:5]}\x00{s[5:]}",
        lambda t, s: f"{t}.{s[:5]} {s[5:]}", lambda t, s: f"{t}.{s}=", lambda t, s: f"{t}.{s}==",
        lambda t, s: f"{t}.{s.replace('-', '+').replace('_', '/')}", lambda t, s: f"{t}.{s}\n",
        lambda t, s: f" {t}.{s}", lambda t, s: f"{t}..{s}",
    ])
    def test_only_the_canonical_spelling_verifies(self, alter):
        token = "tok-en_AAAAA"
        code = self.codes.code_for(token)
        while "-" not in code.split(".")[1] and "_" not in code.split(".")[1]:  # exercise the swap too
            token = new_verify_token()
            code = self.codes.code_for(token)
        altered = alter(*code.split("."))
        assert altered != code
        assert self.codes.token_of(altered) is None

    @given(st.data())
    def test_any_other_string_than_the_code_is_refused(self, data):
        token = data.draw(st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=12, max_size=12))
        code = self.codes.code_for(token)
        position = data.draw(st.integers(0, len(code)))
        inserted = data.draw(st.text(min_size=1, max_size=3))
        removed = data.draw(st.integers(0, 2))
        candidate = code[:position] + inserted + code[position + removed:]
        assert (self.codes.token_of(candidate) == token) == (candidate == code)

    def test_a_genuine_code_yields_its_token(self):
        token = new_verify_token()
        code = self.codes.code_for(token)
        assert self.codes.token_of(code) == token

    def test_codes_are_short_url_safe_and_deterministic(self):
        token = new_verify_token()
        code = self.codes.code_for(token)
        assert len(token) == 12 and "." not in token
        assert len(code) == 29 and set(code) <= URL_SAFE
        assert code.startswith(token + ".")
        assert self.codes.code_for(token) == code

    def test_tokens_are_random(self):
        assert len({new_verify_token() for _ in range(200)}) == 200

    @pytest.mark.parametrize("index", [0, 5, 11, 13, 20, 28])
    def test_any_altered_character_is_refused(self, index):
        code = self.codes.code_for(new_verify_token())
        assert index != 12  # the separator
        assert self.codes.token_of(flip(code, index)) is None

    def test_a_signature_moved_to_another_token_is_refused(self):
        signature = self.codes.code_for("tokenAAAAAAA").split(".")[1]
        assert self.codes.token_of(f"tokenBBBBBBB.{signature}") is None

    def test_a_code_signed_with_another_key_is_refused(self):
        forged = VerificationCodes(["attacker-key"]).code_for("tokenAAAAAAA")
        assert self.codes.token_of(forged) is None

    def test_key_rotation_signs_with_the_first_and_verifies_with_all(self):
        old = VerificationCodes(["old-key"])
        rotated = VerificationCodes(["new-key", "old-key"])
        old_code = old.code_for("tokenAAAAAAA")
        assert rotated.token_of(old_code) == "tokenAAAAAAA"
        new_code = rotated.code_for("tokenAAAAAAA")
        assert new_code == VerificationCodes(["new-key"]).code_for("tokenAAAAAAA")
        assert new_code != old_code
        assert old.token_of(new_code) is None
        # Once the old key is retired its codes stop verifying.
        assert VerificationCodes(["new-key"]).token_of(old_code) is None

    @pytest.mark.parametrize("garbage", ["", ".", "no-separator", "tokenAAAAAAA.", ".sig",
                                         "tokenAAAAAAA.!!!!", "証書.署名", "a" * 5000, None, 42])
    def test_malformed_codes_are_refused(self, garbage):
        assert self.codes.token_of(garbage) is None

    def test_signing_needs_a_key(self):
        with pytest.raises(ValueError):
            VerificationCodes([])

    def test_parse_keys(self):
        assert parse_keys(" new , old,, ") == ["new", "old"]
        assert parse_keys(None) == [] and parse_keys("") == []

    @given(st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=40))
    def test_every_token_round_trips(self, token):
        assert self.codes.token_of(self.codes.code_for(token)) == token


class TestQuantity:
    @pytest.mark.parametrize("kg, en, zh", [
        (0, "0 kg", "0 千克"),
        (1, "1 kg", "1 千克"),
        (850, "850 kg", "850 千克"),
        (1000, "1,000 kg", "1,000 千克"),
        (1001, "1.001 t", "1.001 吨"),
        (1500, "1.5 t", "1.5 吨"),
        (12_345, "12.345 t", "12.345 吨"),
        (2_000_000, "2,000 t", "2,000 吨"),
        (1_234_560, "1,234.56 t", "1,234.56 吨"),
    ])
    def test_kg_up_to_a_tonne_then_tonnes(self, kg, en, zh):
        assert format_quantity(kg) == en
        assert format_quantity(kg, "zh") == zh

    @pytest.mark.parametrize("bad", [-1, 1.5, True, "12"])
    def test_only_whole_non_negative_kilograms(self, bad):
        with pytest.raises(ValueError):
            format_quantity(bad)

    @given(st.integers(min_value=0, max_value=10**12))
    def test_the_printed_figure_is_exact(self, kg):
        figure, unit = format_quantity(kg).split(" ")
        value = float(figure.replace(",", ""))
        assert round(value * (1000 if unit == "t" else 1)) == kg
        assert unit == ("t" if kg > 1000 else "kg")


class TestDatesAndIdentifiers:
    def test_dates_in_both_languages(self):
        assert format_date(date(2026, 11, 5)) == "5 November 2026"
        assert format_date(date(2026, 11, 5), "zh") == "2026年11月5日"

    def test_the_local_date_is_where_the_certificate_is_read(self):
        evening_utc = datetime(2026, 11, 24, 18, 30, tzinfo=timezone.utc)
        assert local_date(evening_utc, ZoneInfo("Asia/Shanghai")) == date(2026, 11, 25)
        assert local_date(evening_utc, timezone.utc) == date(2026, 11, 24)
        assert local_date(datetime(2026, 11, 24, 18, 30), ZoneInfo("Asia/Shanghai")) == date(2026, 11, 25)

    def test_certificate_numbers(self):
        number = certificate_number(date(2026, 11, 25))
        assert re.fullmatch(r"DD-20261125-[%s]{8}" % NUMBER_ALPHABET, number)
        assert certificate_number(date(2026, 1, 2), "7KQ3M9XA") == "DD-20260102-7KQ3M9XA"
        assert not set("01IOL") & set(NUMBER_ALPHABET)
        assert len({certificate_number(date(2026, 11, 25)) for _ in range(500)}) == 500

    def test_certificate_ids(self):
        assert re.fullmatch(r"cert_[0-9a-f]{20}", new_certificate_id())

    @pytest.mark.parametrize("name, masked", [
        ("张三丰", "张**"),
        ("Jane Doe", "J*** D**"),
        ("李", "李"),
        ("  Ada   Lovelace ", "A** L*******"),
    ])
    def test_mask_name(self, name, masked):
        assert mask_name(name) == masked


def registry(anchored_kg: int, complete: bool, count: int = 1) -> dict:
    return {"anchored_kg": anchored_kg, "complete": complete, "records": [
        {"cancellation_id": f"CXL-{i}", "url": f"https://registry.example.cn/{i}", "retired_on": "2026-12-01",
         "anchored_kg": anchored_kg // count} for i in range(1, count + 1)]}


class TestRegistryLines:
    def test_none_awaits_everything(self):
        assert registry_lines(None, 850) == RegistryLines([], None, None)

    def test_a_complete_registry_awaits_nothing(self):
        line = RegistryLine("CXL-1", "https://registry.example.cn/1", "2026年12月1日", "1 December 2026")
        assert registry_lines(registry(850, True), 850) == RegistryLines([line], None, None)

    def test_the_rest_awaits_in_both_languages(self):
        lines = registry_lines(registry(1000, False), 12_345)
        assert (lines.awaiting_zh, lines.awaiting_en, lines.more) == ("11.345 吨", "11.345 t", 0)

    def test_many_records_print_the_first_and_count_the_rest(self):
        lines = registry_lines(registry(10_000, True, count=10), 10_000)
        assert [r.cancellation_id for r in lines.records] == [f"CXL-{i}"
                                                             for i in range(1, PRINTED_REGISTRY_RECORDS + 1)]
        assert lines.more == 10 - PRINTED_REGISTRY_RECORDS and lines.awaiting_zh is None
