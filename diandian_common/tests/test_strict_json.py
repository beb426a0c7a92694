"""The JSON layer: numbers bounded, NaN refused, invalid Unicode refused; everything else as json."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diandian_common import strict_json
from diandian_common.strict_json import MAX_NUMBER_CHARS, UnsafeJson

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",))),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8), children, max_size=4),
    max_leaves=20)


@given(JSON_VALUES)
def test_ordinary_json_parses_as_json_does(value):
    text = json.dumps(value)
    assert strict_json.loads(text) == json.loads(text)
    assert strict_json.loads(text.encode()) == json.loads(text)


@pytest.mark.parametrize("body, reason", [
    ('{"quantity_kg": %s}' % ("1" * 5000), "a number longer than"),
    ('{"quantity_kg": %s}' % ("1" * (MAX_NUMBER_CHARS + 1)), "a number longer than"),
    ('{"quantity_kg": 1.%s}' % ("0" * 5000), "a number longer than"),
    ('{"quantity_kg": NaN}', "NaN is not a number"),
    ('[Infinity]', "Infinity is not a number"),
    ('{"name": "\\ud800"}', "lone surrogate"),
    ('{"\\udfff": 1}', "lone surrogate"),
    ('[[["\\ud83d"]]]', "lone surrogate"),
])
def test_hostile_bodies_are_refused_with_a_reason(body, reason):
    with pytest.raises(UnsafeJson) as refused:
        strict_json.loads(body)
    assert reason in refused.value.reason
    assert isinstance(refused.value, json.JSONDecodeError) and refused.value.doc  # webargs: not "no body"


def test_a_surrogate_pair_is_one_valid_character():
    assert strict_json.loads('"\\ud83d\\ude00"') == "😀"


def test_bytes_that_are_not_utf8_are_refused():
    with pytest.raises(UnsafeJson, match="not UTF-8"):
        strict_json.loads(b'{"name": "\xff"}')


def test_numbers_at_the_limit_parse():
    assert strict_json.loads("9" * MAX_NUMBER_CHARS) == int("9" * MAX_NUMBER_CHARS)
