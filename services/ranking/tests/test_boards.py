"""Recording, revoking, rebuilding and reconciling against a real Redis and SQLite."""
from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
import redis
from sqlalchemy import select, update

from diandian_common.contracts import InvalidMessage, UnsupportedMessage
from ranking import rebuild, reconcile, service, settings, store, synthetic, tasks
from ranking.domain.periods import Period, bucket_of
from ranking.domain.scores import score_of
from ranking.models import ContributionRow
from ranking.tests.helpers import board, dump, kg_on, minutes_before, order

pytestmark = pytest.mark.usefixtures("redis_client")

SCENE_BOARDS = ["all", "day", "week", "month"]


def ids_for(kind: str, scope: str, now: datetime) -> list[str]:
    ids = []
    for period in Period:
        bucket = bucket_of(period, now, settings.tz())
        ids.append(f"{kind}:{scope}:" + ("all" if period is Period.ALL else f"{period}:{bucket.label}"))
    return ids


def every_board(now, scene="forum-2025", kind="individual"):
    return ids_for(kind, "global", now) + ids_for(kind, f"scene:{scene}", now)


def test_record_counts_on_all_eight_boards_and_the_organisation_boards(redis_client, now):
    tasks.record.run(order("o-1", "p-1", 12.5, minutes_before(now, 5), organization="Tsinghua University"))
    for board_id in every_board(now):
        assert kg_on(redis_client, board_id) == {"p-1": 12.5}, board_id
        assert int(redis_client.get(f"rank:total:{board_id}")) == 12_500
    for board_id in every_board(now, kind="organization"):
        assert kg_on(redis_client, board_id) == {"tsinghua university": 12.5}, board_id
    assert redis_client.hget("rank:names:individual", "p-1") == "Name of p-1".encode()
    assert redis_client.hget("rank:names:organization", "tsinghua university") == b"Tsinghua University"


def test_the_same_order_twice_counts_once(redis_client, unit_of_work, now):
    payload = order("o-1", "p-1", 10, minutes_before(now, 5), organization="ACME")
    first = tasks.record.run(payload)
    before = dump(redis_client)
    second = tasks.record.run(payload)
    assert (first["stored"], first["boards"]) == (True, "applied")
    assert (second["stored"], second["boards"]) == (False, "already")
    assert dump(redis_client) == before
    with unit_of_work() as uow:
        assert uow.session.scalar(select(ContributionRow.quantity_g)) == 10_000


def test_a_crash_between_database_and_redis_is_retried_without_double_counting(redis_client, unit_of_work,
                                                                               now, monkeypatch):
    payload = order("o-1", "p-1", 7, minutes_before(now, 5))
    real_record = store.record
    monkeypatch.setattr(store, "record", lambda *a, **k: (_ for _ in ()).throw(redis.ConnectionError("down")))
    with pytest.raises(redis.ConnectionError):   # called directly, Task.retry re-raises
        tasks.record.run(payload)
    with unit_of_work() as uow:
        assert uow.session.scalar(select(ContributionRow.order_id)) == "o-1"   # the database has it
    assert board(redis_client, "individual:global:all") == []
    monkeypatch.setattr(store, "record", real_record)
    assert tasks.record.run(payload)["boards"] == "applied"
    assert tasks.record.run(payload)["boards"] == "already"
    assert kg_on(redis_client, "individual:global:all") == {"p-1": 7.0}


def test_totals_accumulate_and_equal_kilograms_go_to_whoever_got_there_first(redis_client, now):
    tasks.record.run(order("o-1", "late", 10, minutes_before(now, 10)))
    tasks.record.run(order("o-2", "early", 4, minutes_before(now, 60)))
    tasks.record.run(order("o-3", "early", 6, minutes_before(now, 50)))     # early reaches 10 kg at -50 min
    tasks.record.run(order("o-4", "big", 10.001, minutes_before(now, 1)))
    ranking = board(redis_client, "individual:scene:forum-2025:all")
    assert [m for m, _ in ranking] == ["big", "early", "late"]
    assert ranking[1][1] == score_of(10_000, minutes_before(now, 50))


def test_invalid_payloads_fail_without_touching_anything(redis_client, unit_of_work, now):
    with pytest.raises(InvalidMessage):
        tasks.record.run(order("o-1", "p-1", -2, now))
    with pytest.raises(InvalidMessage):
        tasks.revoke.run({"v": 1, "order_id": "  "})
    with pytest.raises(UnsupportedMessage):
        tasks.record.run({"order_id": "o-1"})   # no "v": 1
    assert dump(redis_client) == {}
    with unit_of_work() as uow:
        assert uow.session.scalar(select(ContributionRow.id)) is None


def test_revoke_takes_the_order_off_every_board_once(redis_client, now):
    tasks.record.run(order("o-1", "p-1", 5, minutes_before(now, 30), organization="ACME"))
    tasks.record.run(order("o-2", "p-1", 3, minutes_before(now, 20), organization="ACME"))
    tasks.record.run(order("o-3", "p-2", 4, minutes_before(now, 10), organization="ACME"))
    tasks.record.run(order("o-4", "p-3", 9, minutes_before(now, 5), scene=None))
    assert tasks.revoke.run({"v": 1, "order_id": "o-2"}) == {"order_id": "o-2", "stored": True,
                                                              "boards": "applied"}
    for board_id in every_board(now):
        expected = {"p-1": 5.0, "p-2": 4.0}
        if board_id.startswith("individual:global"):
            expected["p-3"] = 9.0
        assert kg_on(redis_client, board_id) == expected, board_id
        # p-1's tie-break time is back to its remaining order's
        assert dict(board(redis_client, board_id))["p-1"] == score_of(5000, minutes_before(now, 30))
    for board_id in every_board(now, kind="organization"):
        assert kg_on(redis_client, board_id) == {"acme": 9.0}
    before = dump(redis_client)
    assert tasks.revoke.run({"v": 1, "order_id": "o-2"})["boards"] == "already"
    assert dump(redis_client) == before
    # revoking a member's last order removes the member (and empties boards go away)
    tasks.revoke.run({"v": 1, "order_id": "o-4"})
    assert "p-3" not in kg_on(redis_client, "individual:global:all")
    # a redelivered record of a revoked order stays revoked
    assert tasks.record.run(order("o-2", "p-1", 3, minutes_before(now, 20)))["boards"] == "skipped"
    assert kg_on(redis_client, "individual:global:all") == {"p-1": 5.0, "p-2": 4.0}


def test_revoking_an_order_whose_record_never_reached_redis(redis_client, unit_of_work, now, monkeypatch):
    payload = order("o-1", "p-1", 5, minutes_before(now, 5))
    real_record = store.record
    monkeypatch.setattr(store, "record", lambda *a, **k: (_ for _ in ()).throw(redis.TimeoutError()))
    with pytest.raises(redis.TimeoutError):
        tasks.record.run(payload)
    monkeypatch.setattr(store, "record", real_record)
    assert tasks.revoke.run({"v": 1, "order_id": "o-1"})["boards"] == "nothing"
    # the record's retry now finds it revoked, and even a stray script call is refused by the marker
    assert tasks.record.run(payload)["boards"] == "skipped"
    with unit_of_work() as uow:
        row = uow.session.scalars(select(ContributionRow)).one()
    assert service._apply_record(redis_client, row, now) == "already"
    assert board(redis_client, "individual:global:all") == []


def test_revoking_an_unknown_order_waits_for_its_record(redis_client):
    with pytest.raises(service.UnknownOrder):
        tasks.revoke.run({"v": 1, "order_id": "never-recorded"})


def test_writers_wait_while_a_rebuild_holds_the_lock(redis_client, now):
    with store.Lock(redis_client):
        with pytest.raises(service.RebuildInProgress):
            tasks.record.run(order("o-1", "p-1", 5, minutes_before(now, 5)))
        assert board(redis_client, "individual:global:all") == []
    assert tasks.record.run(order("o-1", "p-1", 5, minutes_before(now, 5)))["boards"] == "applied"


def test_period_boards_expire_a_grace_time_after_their_period(redis_client, now):
    tasks.record.run(order("o-1", "p-1", 5, minutes_before(now, 5)))
    grace = timedelta(days=7)
    for period in (Period.DAY, Period.WEEK, Period.MONTH):
        bucket = bucket_of(period, now, settings.tz())
        key = f"rank:board:individual:global:{period}:{bucket.label}"
        assert redis_client.expiretime(key) == int((bucket.end + grace).timestamp())
        assert redis_client.expiretime(key.replace(":board:", ":total:")) == int((bucket.end + grace).timestamp())
    assert redis_client.expiretime("rank:board:individual:global:all") == -1


def test_an_order_from_an_expired_period_only_reaches_the_all_time_boards(redis_client, now):
    tasks.record.run(order("o-old", "p-1", 5, now - timedelta(days=60)))
    keys = {k.decode() for k in redis_client.scan_iter(match="rank:board:*")}
    assert keys == {"rank:board:individual:global:all", "rank:board:individual:scene:forum-2025:all"}


def test_the_latest_order_names_the_participant_and_masking_follows_the_choice(redis_client, now):
    tasks.record.run(order("o-1", "p-1", 5, minutes_before(now, 30), name="张三", mask=True))
    assert redis_client.hget("rank:names:individual", "p-1").decode() == "张*"
    tasks.record.run(order("o-2", "p-1", 5, minutes_before(now, 20), name="张三"))
    assert redis_client.hget("rank:names:individual", "p-1").decode() == "张三"


def random_history(now: datetime, rng: random.Random, orders: int = 150) -> tuple[list[dict], list[str]]:
    participants = [f"p-{i}" for i in range(25)]
    organizations = [None, "ACME", "Tsinghua University", "tsinghua  university", "西湖文旅"]
    payloads = []
    for i in range(orders):
        kg = rng.choice([1, 2, 5, 10, 10, 250.5, 0.001, 12345.678, 3_000_000])  # ties and big totals
        when = now - timedelta(seconds=rng.randrange(0, 45 * 86_400))
        payloads.append(order(f"o-{i}", rng.choice(participants), kg, when,
                              scene=rng.choice([None, "forum-2025", "west-lake"]),
                              organization=rng.choice(organizations), name=f"Name {i}",
                              mask=rng.random() < 0.3))
    revoked = [p["order_id"] for p in rng.sample(payloads, 30)]
    return payloads, revoked


def record_history(payloads, revoked, rng):
    for payload in payloads:
        tasks.record.run(payload)
        if rng.random() < 0.2:
            tasks.record.run(payload)   # redelivery
    for order_id in revoked:
        tasks.revoke.run({"v": 1, "order_id": order_id})


def test_rebuild_after_flushdb_restores_every_key_exactly(redis_client, unit_of_work, now):
    rng = random.Random(2025)
    payloads, revoked = random_history(now, rng)
    record_history(payloads, revoked, rng)
    before = dump(redis_client)
    assert len([k for k in before if k.startswith("rank:board:")]) > 20
    redis_client.flushdb()
    report = rebuild.rebuild(unit_of_work, redis_client, now)
    assert report.boards == len([k for k in before if k.startswith("rank:board:")])
    assert dump(redis_client) == before
    # and a rebuild over intact boards changes nothing
    rebuild.rebuild(unit_of_work, redis_client, now)
    assert dump(redis_client) == before


def test_rebuild_replaces_damaged_and_stray_keys(redis_client, unit_of_work, now):
    tasks.record.run(order("o-1", "p-1", 5, minutes_before(now, 5), organization="ACME"))
    before = dump(redis_client)
    redis_client.zadd("rank:board:individual:global:all", {"intruder": 1e6, "p-1": 1.0})
    redis_client.zadd("rank:board:individual:scene:gone:all", {"p-9": 1.0})
    redis_client.delete("rank:names:organization")
    redis_client.hdel("rank:orders", "o-1")
    rebuild.rebuild(unit_of_work, redis_client, now)
    assert dump(redis_client) == before
    assert tasks.record.run(order("o-1", "p-1", 5, minutes_before(now, 5)))["boards"] == "already"


def test_rebuild_refuses_to_run_twice_at_once(redis_client, unit_of_work, now):
    with store.Lock(redis_client):
        with pytest.raises(store.LockHeld):
            rebuild.rebuild(unit_of_work, redis_client, now)


def test_reconcile_leaves_consistent_boards_alone(redis_client, unit_of_work, now):
    rng = random.Random(7)
    payloads, revoked = random_history(now, rng, orders=60)
    record_history(payloads, revoked, rng)
    before = dump(redis_client)
    report = reconcile.reconcile(unit_of_work, redis_client, now)
    assert report.checked > 0 and report.differing == [] and report.rebuilt is None and report.repaired == 0
    assert dump(redis_client) == before


def backdate(unit_of_work, age: timedelta, now: datetime) -> None:
    """Pretend every row was recorded (and revoked) ``age`` ago."""
    with unit_of_work() as uow:
        uow.session.execute(update(ContributionRow).values(recorded_at=now - age))
        uow.session.execute(update(ContributionRow).where(ContributionRow.revoked_at.is_not(None))
                        .values(revoked_at=now - age))


def test_reconcile_rebuilds_boards_after_redis_lost_its_data(redis_client, unit_of_work, now):
    rng = random.Random(8)
    payloads, revoked = random_history(now, rng, orders=60)
    record_history(payloads, revoked, rng)
    backdate(unit_of_work, timedelta(days=3), now)   # older than the sweep looks back
    before = dump(redis_client)
    redis_client.flushdb()
    report = reconcile.reconcile(unit_of_work, redis_client, now)
    assert report.repaired == 0 and report.differing and report.rebuilt is not None
    assert dump(redis_client) == before


def test_reconcile_reapplies_recent_orders_after_redis_lost_its_data(redis_client, unit_of_work, now):
    rng = random.Random(9)
    payloads, revoked = random_history(now, rng, orders=60)
    record_history(payloads, revoked, rng)
    backdate(unit_of_work, timedelta(hours=1), now)
    before = dump(redis_client)
    redis_client.flushdb()
    report = reconcile.reconcile(unit_of_work, redis_client, now)
    # every order is re-applied by its own script, which lands on exactly the same boards
    assert report.repaired == 60 and report.differing == [] and report.rebuilt is None
    assert dump(redis_client) == before


def test_reconcile_waits_for_orders_still_in_flight(redis_client, unit_of_work, now):
    tasks.record.run(order("o-1", "p-1", 5, minutes_before(now, 30)))
    backdate(unit_of_work, timedelta(hours=2), now)
    redis_client.hdel("rank:orders", "o-1")   # as if o-1's script were still to run
    redis_client.delete(*redis_client.keys("rank:board:*"), *redis_client.keys("rank:total:*"))
    with unit_of_work() as uow:
        uow.session.execute(update(ContributionRow).values(recorded_at=now - timedelta(seconds=10)))
    report = reconcile.reconcile(unit_of_work, redis_client, now)
    assert report.differing == [] and report.rebuilt is None
    assert tasks.record.run(order("o-1", "p-1", 5, minutes_before(now, 30)))["boards"] == "applied"
    assert kg_on(redis_client, "individual:global:all") == {"p-1": 5.0}


def test_reconcile_reapplies_an_order_redis_missed(redis_client, unit_of_work, now, monkeypatch):
    tasks.record.run(order("o-1", "p-1", 5, minutes_before(now, 30)))
    real_record = store.record
    monkeypatch.setattr(store, "record", lambda *a, **k: (_ for _ in ()).throw(redis.ConnectionError()))
    with pytest.raises(redis.ConnectionError):
        tasks.record.run(order("o-2", "p-2", 6, minutes_before(now, 20)))
    monkeypatch.setattr(store, "record", real_record)
    # recorded five minutes ago (past the settle time): the sweep applies it like its task would
    with unit_of_work() as uow:
        uow.session.execute(update(ContributionRow).where(ContributionRow.order_id == "o-2")
                        .values(recorded_at=now - timedelta(minutes=5)))
    report = reconcile.reconcile(unit_of_work, redis_client, now)
    assert report.repaired == 1 and report.differing == [] and report.rebuilt is None
    assert kg_on(redis_client, "individual:global:all") == {"p-2": 6.0, "p-1": 5.0}
    assert tasks.record.run(order("o-2", "p-2", 6, minutes_before(now, 20)))["boards"] == "already"


def test_reconcile_does_not_mistake_an_order_in_flight_for_damage(redis_client, unit_of_work, now,
                                                                  monkeypatch):
    tasks.record.run(order("o-1", "p-1", 5, minutes_before(now, 30)))
    real_record = store.record
    monkeypatch.setattr(store, "record", lambda *a, **k: (_ for _ in ()).throw(redis.ConnectionError()))
    with pytest.raises(redis.ConnectionError):
        tasks.record.run(order("o-2", "p-2", 6, minutes_before(now, 1)))  # committed just now, not applied
    monkeypatch.setattr(store, "record", real_record)
    report = reconcile.reconcile(unit_of_work, redis_client, now)
    assert report.repaired == 0 and report.differing == [] and report.rebuilt is None
    assert tasks.record.run(order("o-2", "p-2", 6, minutes_before(now, 1)))["boards"] == "applied"
    assert kg_on(redis_client, "individual:global:all") == {"p-2": 6.0, "p-1": 5.0}


def test_reconcile_task_runs_and_reports(redis_client, now):
    tasks.record.run(order("o-1", "p-1", 5, minutes_before(now, 30)))
    result = tasks.reconcile.run({"v": 1})
    assert result["differing"] == [] and result["checked"] == 8 and result["skipped"] is None


def test_seeded_boards_equal_what_a_rebuild_computes(redis_client, unit_of_work, now):
    tasks.record.run(order("o-real", "someone", 50, minutes_before(now, 30), organization="ACME"))
    report = synthetic.seed_synthetic(unit_of_work, redis_client, participants=2_500, scene="bench",
                                        organizations=5, days=40, now=now)
    assert report.participants == 2_500
    assert redis_client.zcard("rank:board:individual:scene:bench:all") == 2_500
    assert redis_client.zcard("rank:board:individual:global:all") == 2_501
    assert redis_client.zcard("rank:board:organization:global:all") == 6
    seeded = dump(redis_client)
    redis_client.flushdb()
    rebuild.rebuild(unit_of_work, redis_client, now)
    assert dump(redis_client) == seeded
    with pytest.raises(ValueError):
        synthetic.seed_synthetic(unit_of_work, redis_client, participants=10, scene="bench", now=now)


def test_cli_rebuild_and_seed(redis_client, env, now):
    from ranking.app import create_app
    runner = create_app(database_url=env).test_cli_runner()
    result = runner.invoke(args=["ranking", "seed-synthetic", "--participants", "300", "--scene", "demo"])
    assert result.exit_code == 0, result.output
    assert "seeded 300 participants" in result.output
    before = dump(redis_client)
    redis_client.flushdb()
    result = runner.invoke(args=["ranking", "rebuild"])
    assert result.exit_code == 0, result.output
    assert dump(redis_client) == before
    result = runner.invoke(args=["ranking", "seed-synthetic", "--participants", "3", "--scene", "Bad Slug"])
    assert result.exit_code != 0 and "slug" in result.output


def test_an_order_caught_between_database_and_redis_by_a_rebuild_counts_once(redis_client, unit_of_work, now,
                                                                             monkeypatch):
    payload = order("o-1", "p-1", 5, minutes_before(now, 5), organization="ACME")
    real_record = store.record
    monkeypatch.setattr(store, "record", lambda *a, **k: (_ for _ in ()).throw(redis.ConnectionError()))
    with pytest.raises(redis.ConnectionError):
        tasks.record.run(payload)              # committed; its script has not run
    monkeypatch.setattr(store, "record", real_record)
    rebuild.rebuild(unit_of_work, redis_client, now)   # the rebuild counts it from the database
    rebuilt = dump(redis_client)
    assert tasks.record.run(payload)["boards"] == "already"   # the retry finds it claimed
    assert dump(redis_client) == rebuilt
    assert kg_on(redis_client, "individual:global:all") == {"p-1": 5.0}
    assert kg_on(redis_client, "organization:scene:forum-2025:all") == {"acme": 5.0}


def test_reconcile_steps_aside_while_a_rebuild_runs(redis_client, unit_of_work, now):
    tasks.record.run(order("o-1", "p-1", 5, minutes_before(now, 5)))
    redis_client.flushdb()
    with store.Lock(redis_client):
        report = reconcile.reconcile(unit_of_work, redis_client, now)
    assert report.skipped and report.rebuilt is None
