"""Board maths: periods, keys, scores and ties, names, payload validation. No I/O."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

from ranking.domain.boards import Board, Kind, boards_at, current_board, is_slug
from diandian_common.contracts import RANKING_SLUG, InvalidMessage, load
from ranking.domain.boards import SLUG_PATTERN
from ranking.domain.contribution import (MAX_ORDER_GRAMS, Contribution, InvalidContribution, contribution_of,
                                         grams_to_kg, kg_to_grams)
from ranking.domain.names import mask_name, normalize_text, organization_key
from ranking.domain.periods import ALL_TIME, Period, bucket_of, live_buckets
from ranking.domain.scores import (MAX_TOTAL_GRAMS, TICK_SPAN, TIE_EPOCH, decode, earliness, encode,
                                   score_of)

UTC = timezone.utc
SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
GRACE = timedelta(days=7)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- periods ----------------------------------------------------------------------

def test_day_follows_the_local_calendar_not_utc():
    # 15:59 UTC is 23:59 in Shanghai; 16:00 UTC is already the next local day.
    before, after = utc(2025, 3, 13, 15, 59, 59), utc(2025, 3, 13, 16, 0, 0)
    assert bucket_of(Period.DAY, before, SHANGHAI).label == "2025-03-13"
    assert bucket_of(Period.DAY, after, SHANGHAI).label == "2025-03-14"
    day = bucket_of(Period.DAY, after, SHANGHAI)
    assert (day.start, day.end) == (utc(2025, 3, 13, 16), utc(2025, 3, 14, 16))
    assert bucket_of(Period.DAY, after, ZoneInfo("UTC")).label == "2025-03-13"


def test_week_is_the_iso_week_starting_monday():
    # Sunday 2025-03-16 23:30 local is still week 11; Monday 00:00 local starts week 12.
    sunday_night = datetime(2025, 3, 16, 23, 30, tzinfo=SHANGHAI)
    monday = datetime(2025, 3, 17, 0, 0, tzinfo=SHANGHAI)
    week = bucket_of(Period.WEEK, sunday_night, SHANGHAI)
    assert week.label == "2025-W11"
    assert week.start == datetime(2025, 3, 10, tzinfo=SHANGHAI)
    assert week.end == monday
    assert bucket_of(Period.WEEK, monday, SHANGHAI).label == "2025-W12"


def test_iso_week_year_differs_from_calendar_year_at_new_year():
    assert bucket_of(Period.WEEK, datetime(2024, 12, 30, 12, tzinfo=SHANGHAI), SHANGHAI).label == "2025-W01"
    assert bucket_of(Period.WEEK, datetime(2021, 1, 3, 12, tzinfo=SHANGHAI), SHANGHAI).label == "2020-W53"


def test_month_bounds_including_february_of_a_leap_year():
    feb = bucket_of(Period.MONTH, datetime(2024, 2, 29, 23, 59, tzinfo=SHANGHAI), SHANGHAI)
    assert feb.label == "2024-02"
    assert (feb.start, feb.end) == (datetime(2024, 2, 1, tzinfo=SHANGHAI), datetime(2024, 3, 1, tzinfo=SHANGHAI))
    dec = bucket_of(Period.MONTH, datetime(2024, 12, 31, 23, 0, tzinfo=SHANGHAI), SHANGHAI)
    assert (dec.label, dec.end) == ("2024-12", datetime(2025, 1, 1, tzinfo=SHANGHAI))


def test_days_around_a_dst_change_are_23_and_25_hours_long():
    spring = bucket_of(Period.DAY, datetime(2025, 3, 9, 12, tzinfo=NEW_YORK), NEW_YORK)
    autumn = bucket_of(Period.DAY, datetime(2025, 11, 2, 12, tzinfo=NEW_YORK), NEW_YORK)
    assert spring.end - spring.start == timedelta(hours=23)
    assert autumn.end - autumn.start == timedelta(hours=25)
    # 01:30 happens twice on the autumn day; both instants are that day.
    first, second = (datetime(2025, 11, 2, 1, 30, fold=f, tzinfo=NEW_YORK) for f in (0, 1))
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(hours=1)
    assert all(autumn.contains(t.astimezone(UTC)) for t in (first, second))


@hypothesis_settings(max_examples=300, deadline=None)
@given(instant=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                            timezones=st.just(UTC)),
       zone=st.sampled_from(["Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Lord_Howe",
                             "Pacific/Kiritimati", "America/Santiago", "UTC"]),
       period=st.sampled_from([Period.DAY, Period.WEEK, Period.MONTH]))
def test_every_instant_falls_in_exactly_its_bucket(instant, zone, period):
    tz = ZoneInfo(zone)
    bucket = bucket_of(period, instant, tz)
    assert bucket.start <= instant < bucket.end
    # the neighbouring buckets touch it without overlap
    assert bucket_of(period, bucket.start, tz) == bucket
    assert bucket_of(period, bucket.end, tz).start == bucket.end
    assert bucket_of(period, bucket.start - timedelta(microseconds=1), tz).end == bucket.start
    local = instant.astimezone(tz).date()
    if period is Period.DAY:
        assert bucket.label == local.isoformat()
    elif period is Period.MONTH:
        assert bucket.label == local.strftime("%Y-%m")


def test_all_time_never_expires():
    assert bucket_of(Period.ALL, utc(2025, 1, 1), SHANGHAI) is ALL_TIME
    assert ALL_TIME.expires_at(GRACE) is None and ALL_TIME.is_live(utc(2999, 1, 1), GRACE)
    assert ALL_TIME.contains(utc(1990, 1, 1))


def test_period_boards_expire_a_grace_time_after_the_period_ends():
    day = bucket_of(Period.DAY, datetime(2025, 3, 14, 10, tzinfo=SHANGHAI), SHANGHAI)
    expiry = datetime(2025, 3, 22, tzinfo=SHANGHAI)   # end of the 14th + 7 days
    assert day.expires_at(GRACE) == expiry
    assert day.is_live(expiry - timedelta(seconds=1), GRACE)
    assert not day.is_live(expiry, GRACE)
    assert bucket_of(Period.DAY, utc(2025, 3, 14), SHANGHAI).expires_at(timedelta(0)) == \
        datetime(2025, 3, 15, tzinfo=SHANGHAI)


def test_live_buckets_are_the_unexpired_ones_newest_first():
    now = datetime(2025, 3, 14, 10, tzinfo=SHANGHAI)
    days = live_buckets(Period.DAY, now, SHANGHAI, GRACE)
    # the 14th back to the 7th: the 6th expired at the end of the 13th (6th + 1 day + 7 days)
    assert [b.label for b in days] == [f"2025-03-{d:02d}" for d in range(14, 6, -1)]
    assert [b.label for b in live_buckets(Period.WEEK, now, SHANGHAI, GRACE)] == ["2025-W11", "2025-W10"]
    assert [b.label for b in live_buckets(Period.MONTH, now, SHANGHAI, GRACE)] == ["2025-03"]
    early_march = datetime(2025, 3, 3, tzinfo=SHANGHAI)
    assert [b.label for b in live_buckets(Period.MONTH, early_march, SHANGHAI, GRACE)] == ["2025-03", "2025-02"]
    assert [b.label for b in live_buckets(Period.DAY, now, SHANGHAI, timedelta(0))] == ["2025-03-14"]
    assert live_buckets(Period.ALL, now, SHANGHAI, GRACE) == [ALL_TIME]


# --- board keys -------------------------------------------------------------------

def test_board_keys():
    at = datetime(2025, 3, 14, 10, tzinfo=SHANGHAI)
    assert current_board(Kind.INDIVIDUAL, None, Period.ALL, at, SHANGHAI).key == "rank:board:individual:global:all"
    assert current_board(Kind.ORGANIZATION, "forum-2025", Period.WEEK, at, SHANGHAI).key == \
        "rank:board:organization:scene:forum-2025:week:2025-W11"
    day = current_board(Kind.INDIVIDUAL, "forum-2025", Period.DAY, at, SHANGHAI)
    assert (day.key, day.total_key) == ("rank:board:individual:scene:forum-2025:day:2025-03-14",
                                        "rank:total:individual:scene:forum-2025:day:2025-03-14")
    assert current_board(Kind.INDIVIDUAL, None, Period.MONTH, at, SHANGHAI).id == "individual:global:month:2025-03"


def test_board_keys_are_distinct_across_every_dimension():
    at = datetime(2025, 3, 14, 10, tzinfo=SHANGHAI)
    keys = {current_board(kind, scene, period, at, SHANGHAI).key
            for kind in Kind for scene in (None, "a", "b") for period in Period}
    assert len(keys) == len(Kind) * 3 * len(Period)


@pytest.mark.parametrize("slug,ok", [("forum-2025", True), ("a", True), ("west_lake", True),
                                     ("Forum", False), ("-a", False), ("a-", False), ("a:b", False),
                                     ("", False), ("a" * 64, True), ("a" * 65, False), ("场景", False)])
def test_scene_slugs(slug, ok):
    assert is_slug(slug) is ok
    if not ok:
        with pytest.raises(ValueError):
            Board(Kind.INDIVIDUAL, slug, ALL_TIME)


def test_an_order_counts_on_global_and_scene_boards_for_each_period():
    now = datetime(2025, 3, 14, 12, tzinfo=SHANGHAI)
    boards = boards_at(Kind.INDIVIDUAL, "forum", now - timedelta(hours=1), SHANGHAI, now, GRACE)
    assert sorted(b.id for b in boards) == sorted([
        "individual:global:all", "individual:global:day:2025-03-14", "individual:global:week:2025-W11",
        "individual:global:month:2025-03", "individual:scene:forum:all", "individual:scene:forum:day:2025-03-14",
        "individual:scene:forum:week:2025-W11", "individual:scene:forum:month:2025-03"])
    assert len(boards_at(Kind.INDIVIDUAL, None, now, SHANGHAI, now, GRACE)) == 4


def test_an_old_order_only_reaches_its_boards_that_are_still_live():
    now = datetime(2025, 3, 14, 12, tzinfo=SHANGHAI)
    old = datetime(2025, 2, 20, 12, tzinfo=SHANGHAI)  # its day and week expired; February lives until Mar 8
    assert [b.id for b in boards_at(Kind.INDIVIDUAL, None, old, SHANGHAI, now, GRACE)] == ["individual:global:all"]
    assert [b.id for b in boards_at(Kind.INDIVIDUAL, None, old, SHANGHAI, datetime(2025, 3, 5, tzinfo=SHANGHAI),
                                    GRACE)] == ["individual:global:all", "individual:global:month:2025-02"]


# --- scores and ties --------------------------------------------------------------

def test_equal_kilograms_rank_whoever_got_there_first_higher():
    first = score_of(5000, utc(2025, 3, 14, 10, 0, 0))
    second = score_of(5000, utc(2025, 3, 14, 10, 0, 1))
    assert first > second
    assert score_of(5001, utc(2030, 1, 1)) > first  # one more gram beats any time advantage


@pytest.mark.parametrize("grams", [1, 999, 1000, 123_456, 2 ** 21 - 1, 2 ** 21, 10 ** 9, 10 ** 12,
                                   MAX_ORDER_GRAMS, 2 ** 40 + 1, MAX_TOTAL_GRAMS])
def test_grams_are_exact_at_every_magnitude(grams):
    for reached in (TIE_EPOCH, utc(2025, 6, 1, 8, 30, 17), utc(2155, 12, 31)):
        assert decode(score_of(grams, reached))[0] == grams
    # three-decimal kilograms round-trip exactly through the score
    assert grams_to_kg(decode(score_of(grams, TIE_EPOCH))[0]) == round(grams / 1000, 3)


def test_tie_break_is_exact_to_the_second_below_two_tonnes_then_coarsens():
    t0 = utc(2025, 1, 1)
    one_second_later = t0 + timedelta(seconds=1)
    assert score_of(2 ** 21 - 1, t0) > score_of(2 ** 21 - 1, one_second_later)
    # with 22 significant bits (≥ 2,097.152 kg) the tie-break resolution is 2 s
    big = 2 ** 21
    assert decode(score_of(big, t0))[1] % 2 == 0
    # 1,000 t (30 bits): 2**9 = 512 s resolution; an hour apart still breaks the tie
    ton_1000 = 10 ** 9
    assert score_of(ton_1000, t0) > score_of(ton_1000, t0 + timedelta(hours=1))
    assert decode(score_of(ton_1000, t0))[1] % 512 == 0


def test_tie_break_clamps_outside_its_range():
    assert earliness(utc(2010, 1, 1)) == TICK_SPAN - 1 == earliness(TIE_EPOCH)
    assert earliness(utc(2300, 1, 1)) == 0
    assert earliness(TIE_EPOCH + timedelta(seconds=1, microseconds=999_999)) == TICK_SPAN - 2


def test_scores_outside_the_exact_range_are_refused():
    with pytest.raises(ValueError):
        encode(0, 0)
    with pytest.raises(ValueError):
        encode(MAX_TOTAL_GRAMS + 1, 0)
    with pytest.raises(ValueError):
        encode(1, TICK_SPAN)


def _incremental(parts: list[tuple[int, datetime]]) -> float:
    """Adding orders one by one to a stored score, as the record script does."""
    grams, first_time = parts[0]
    score = score_of(grams, first_time)
    for grams, reached in parts[1:]:
        old_grams, old_earliness = decode(score)
        score = encode(old_grams + grams, min(old_earliness, earliness(reached)))
    return score


@hypothesis_settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10 ** 13),
                          st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2160, 1, 1),
                                       timezones=st.just(UTC))), min_size=1, max_size=8))
def test_adding_orders_one_by_one_equals_the_score_from_scratch(parts):
    total = sum(g for g, _ in parts)
    latest = max(t for _, t in parts)
    assert _incremental(parts) == score_of(total, latest)
    assert _incremental(list(reversed(parts))) == score_of(total, latest)


@hypothesis_settings(max_examples=400, deadline=None)
@given(a=st.tuples(st.integers(1, 10 ** 12), st.integers(0, TICK_SPAN - 1)),
       b=st.tuples(st.integers(1, 10 ** 12), st.integers(0, TICK_SPAN - 1)))
def test_score_order_is_grams_first_then_earliness(a, b):
    sa, sb = encode(*a), encode(*b)
    if a[0] != b[0]:
        assert (sa > sb) == (a[0] > b[0])
    elif decode(sa)[1] != decode(sb)[1]:
        assert (sa > sb) == (a[1] > b[1])


# --- names ------------------------------------------------------------------------

@pytest.mark.parametrize("name,masked", [("张三", "张*"), ("李", "李*"), ("欧阳娜娜", "欧***"),
                                         ("Alice Wong", "A***"), ("Al", "A*"), ("  Bob  ", "B**"),
                                         ("José", "J***"), ("Émile", "É***"), ("E\u0301mile", "É***")])
def test_masking_keeps_the_first_character_and_hides_the_length(name, masked):
    assert mask_name(name) == masked


def test_masking_never_reveals_more_than_the_first_character():
    for name in ("Alexandria Ocasio", "Maximilian", "诸葛孔明先生"):
        masked = mask_name(name)
        assert masked[0] == name[0] and set(masked[1:]) == {"*"} and len(masked) <= 4


def test_names_are_normalised_and_organisations_compare_loosely():
    assert normalize_text("  Ｔｓｉｎｇｈｕａ \t University\n") == "Tsinghua University"
    assert organization_key("Tsinghua  University") == organization_key("TSINGHUA UNIVERSITY")
    assert organization_key("清华大学") == "清华大学"


# --- kilograms and the record payload ---------------------------------------------

@pytest.mark.parametrize("value,grams", [(12, 12000), (12.5, 12500), (0.001, 1), ("3.25", 3250),
                                         (1234.567, 1234567), (100_000_000, MAX_ORDER_GRAMS)])
def test_kilograms_become_exact_grams(value, grams):
    assert kg_to_grams(value) == grams


@pytest.mark.parametrize("value", [0, -1, 0.0001, 1.2345, float("nan"), float("inf"), True, None, "x",
                                   [1], 100_000_000.001, 0.1 + 0.2])
def test_bad_kilograms_are_refused(value):
    with pytest.raises(ValueError):
        kg_to_grams(value)


def test_grams_to_kg_has_at_most_three_decimals():
    assert grams_to_kg(1234567) == 1234.567
    assert grams_to_kg(1000) == 1.0
    for grams in random.Random(7).sample(range(1, 10 ** 12), 200):
        assert len(repr(grams_to_kg(grams)).split(".")[1]) <= 3


NOW = utc(2025, 3, 14, 4)
PAYLOAD = {"v": 1, "order_id": "o-1", "participant_id": "p-1", "display_name": "张三",
           "organization": "Tsinghua University", "scene": "forum-2025", "quantity_kg": 12.5,
           "occurred_at": "2025-03-14T03:00:00+00:00"}


def parse_record(payload: dict, now: datetime) -> Contribution:
    return contribution_of(load("ranking.record", payload), now)


def test_the_message_contract_takes_the_boards_scene_slugs():
    assert RANKING_SLUG == SLUG_PATTERN


def test_parse_record():
    c = parse_record(PAYLOAD, NOW)
    assert c == Contribution("o-1", "p-1", "张三", False, "Tsinghua University", "forum-2025", 12500,
                             utc(2025, 3, 14, 3))
    assert c.shown_name == "张三" and c.organization_key == "tsinghua university"
    assert parse_record({**PAYLOAD, "mask_name": True}, NOW).shown_name == "张*"
    assert parse_record({**PAYLOAD, "organization": "  ", "scene": None}, NOW).organization is None
    assert parse_record({**PAYLOAD, "occurred_at": "2025-03-14T11:00:00+08:00"}, NOW).occurred_at == utc(2025, 3, 14, 3)
    assert parse_record({**PAYLOAD, "occurred_at": "2025-03-14T03:00:00"}, NOW).occurred_at == utc(2025, 3, 14, 3)
    # from the future (clock skew): recorded as now, so no future board is ever created
    assert parse_record({**PAYLOAD, "occurred_at": "2030-01-01T00:00:00Z"}, NOW).occurred_at == NOW
    assert len(parse_record({**PAYLOAD, "display_name": "x" * 500}, NOW).display_name) == 100


@pytest.mark.parametrize("change,field", [({"order_id": ""}, "order_id"), ({"order_id": 5}, "order_id"),
                                          ({"participant_id": "p" * 129}, "participant_id"),
                                          ({"display_name": "   "}, "display_name"),
                                          ({"organization": 3}, "organization"),
                                          ({"scene": "Not A Slug"}, "scene"),
                                          ({"quantity_kg": -3}, "quantity_kg"),
                                          ({"occurred_at": "yesterday"}, "occurred_at"),
                                          ({"occurred_at": 1700000000}, "occurred_at"),
                                          ({"mask_name": "yes"}, "mask_name"),
                                          ({"display_name": "\x00\x07"}, "display_name"),
                                          ({"quantity_kg": 1.0005}, "quantity_kg")])
def test_invalid_record_payloads_name_the_field(change, field):
    with pytest.raises(InvalidMessage) as error:
        parse_record({**PAYLOAD, **change}, NOW)
    assert set(error.value.errors) == {field}


def test_a_record_beyond_the_boards_range_is_refused():
    with pytest.raises(InvalidContribution) as error:
        parse_record({**PAYLOAD, "quantity_kg": MAX_ORDER_GRAMS // 1000 + 1}, NOW)
    assert set(error.value.fields) == {"quantity_kg"}


def test_memberships_cover_individual_and_organisation_boards():
    c = parse_record(PAYLOAD, NOW)
    members = c.memberships(SHANGHAI, NOW, GRACE)
    assert len(members) == 16
    assert {m for b, m in members if b.kind is Kind.INDIVIDUAL} == {"p-1"}
    assert {m for b, m in members if b.kind is Kind.ORGANIZATION} == {"tsinghua university"}
    assert len(parse_record({**PAYLOAD, "organization": None}, NOW).memberships(SHANGHAI, NOW, GRACE)) == 8
