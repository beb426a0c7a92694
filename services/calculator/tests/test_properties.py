"""Property-based tests: no payload, however odd, makes the estimate endpoint fail, and every
well-formed one is accepted and adds up."""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from calculator.domain.calculator import ACTIVITY_TYPES, CABINS, DIETS, FUELS, PERIODS_PER_YEAR
from calculator.domain.provinces import PROVINCES
from calculator.schemas import ACTIVITY_FIELDS, COMMON_ACTIVITY_FIELDS

FIELD_NAMES = sorted({name for names in ACTIVITY_FIELDS.values() for name in names}
                     | COMMON_ACTIVITY_FIELDS - {"type"})
party_sizes = st.integers(1, 500)


def quick(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


scalars = (st.none() | st.booleans() | st.integers() | st.integers(-10**30, 10**30)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
           | st.sampled_from(["CTU", "PEK", "LHR", "xxx", "CN", "cn", "ZZ", "1e400", "NaN", "-0",
                              *ACTIVITY_TYPES, *CABINS, *FUELS, *DIETS, *PERIODS_PER_YEAR]))
json_values = st.recursive(scalars, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4),
                           max_leaves=12)

valid_activities = st.one_of(
    st.builds(lambda d, cabin, rt, p: {"type": "flight", "distance_km": d, "cabin": cabin,
                                       "round_trip": rt, "passengers": p},
              st.floats(0, 50_000), st.sampled_from(CABINS), st.booleans(), st.integers(1, 500)),
    st.builds(lambda a, b: {"type": "flight", "from": a, "to": b},
              st.sampled_from(["CTU", "TFU", "PEK", "PVG", "CAN", "LHR", "JFK", "SYD"]),
              st.sampled_from(["SIN", "NRT", "CDG", "LAX", "URC", "KMG"])),
    st.builds(lambda t, d, p: {"type": t, "distance_km": d, "party_size": p},
              st.sampled_from(["rail", "metro", "bus", "taxi"]), st.floats(0, 50_000), party_sizes),
    st.builds(lambda d, f, p: {"type": "car", "distance_km": d, "fuel": f, "passengers": p},
              st.floats(0, 50_000), st.sampled_from(FUELS), st.integers(1, 500)),
    st.builds(lambda d, p, where: {"type": "car", "distance_km": d, "fuel": "electric", "party_size": p,
                                   "province": where}, st.floats(0, 50_000), party_sizes,
              st.sampled_from(sorted(PROVINCES))),
    st.builds(lambda n, r, c, p: {"type": "hotel", "nights": n, "rooms": r, "country": c, "party_size": p},
              st.integers(1, 365), st.integers(1, 500), st.sampled_from(["CN", "gb", "AD", "MV"]),
              party_sizes),
    st.builds(lambda k, where: {"type": "electricity", "kwh": k, **({"province": where} if where else {})},
              st.floats(0, 10_000_000), st.none() | st.sampled_from(sorted(PROVINCES))),
    st.builds(lambda m: {"type": "natural_gas", "m3": m}, st.floats(0, 10_000_000)),
    st.builds(lambda c, d: {"type": "meal", "count": c, "diet": d}, st.integers(1, 100_000),
              st.sampled_from(DIETS)),
)
# Well-formed activities with one field replaced or added by anything at all, and shapeless
# ones: every layer of validation gets reached.
tampered_activities = st.builds(lambda a, name, value: {**a, name: value}, valid_activities,
                                st.sampled_from(["type", *FIELD_NAMES]), scalars | json_values)
arbitrary_activities = st.fixed_dictionaries(
    {"type": st.sampled_from(ACTIVITY_TYPES) | scalars},
    optional={name: scalars | json_values for name in FIELD_NAMES})
any_activity = valid_activities | tampered_activities | arbitrary_activities

payloads = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["trip", "life"]) | scalars,
         "activities": st.lists(any_activity, max_size=5) | json_values},
        optional={"scene": scalars, "participant_id": scalars, "extra": json_values}),
    st.fixed_dictionaries({"kind": st.sampled_from(["trip", "life"]),
                           "activities": st.lists(valid_activities | tampered_activities,
                                                  min_size=1, max_size=3)}),
)


@pytest.mark.parametrize("kind", ["trip", "life"])
@given(payload=payloads)
@quick(200)
def test_estimates_never_fail_on_any_input(client, kind, payload):
    if isinstance(payload, dict) and payload.get("kind") in ("trip", "life"):
        payload["kind"] = kind
    response = client.post("/api/v1/estimates", json=payload)
    event(f"status {response.status_code}")
    # 400 only from the JSON layer (Infinity and NaN are not JSON numbers), never a 500.
    assert response.status_code in (201, 400, 422), response.get_json()
    if response.status_code == 400:
        assert response.get_json()["error"]["code"] == "invalid_json"
    body = response.get_json()
    if response.status_code == 201:
        total = Decimal(str(body["total_kg"]))
        assert total >= 0 and total == total.quantize(Decimal("0.001"))
        assert total == sum((Decimal(str(item["kg"])) for item in body["items"]), Decimal(0))
    elif response.status_code == 422:
        assert body["error"]["code"] == "validation_error" and body["error"]["fields"]


@given(kind=st.sampled_from(["trip", "life"]),
       activities=st.lists(valid_activities, min_size=1, max_size=100))
@quick(60)
def test_every_valid_estimate_is_accepted_and_adds_up(client, kind, activities):
    response = client.post("/api/v1/estimates", json={"kind": kind, "activities": activities})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert len(body["items"]) == len(activities)
    total = Decimal(str(body["total_kg"]))
    assert total == sum((Decimal(str(kg)) for kg in body["categories"].values()), Decimal(0))
    assert (body["benchmark"] is not None) == (kind == "life")
    # Without radiative forcing only flights change, and never upwards.
    without = sum((Decimal(str(item.get("kg_without_rf", item["kg"]))) for item in body["items"]), Decimal(0))
    assert Decimal(str(body["total_kg_without_rf"])) == without <= total
    for item in body["items"]:
        share = Decimal(str(item["share"]))
        assert share == 1 or abs(share * item["party_size"] - 1) < Decimal("0.0005")
        if item["type"] == "flight":
            assert 0 <= item["kg_without_rf"] <= item["kg"] and item["factor"]["radiative_forcing"] is True
