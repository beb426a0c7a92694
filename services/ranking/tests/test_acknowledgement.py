"""Ranking acknowledges every recorded contribution to orders (``orders.contribution_recorded``,
issue 20): orders sends ``ranking.record`` again until it hears that; and every revocation to
certificates (``certificates.revocation_recorded``), whose audit sends ``ranking.revoke`` again."""
from __future__ import annotations

import logging

import pytest
import redis
from kombu.exceptions import OperationalError as BrokerError

from diandian_common.celery_app import queue_for
from ranking import store, tasks
from ranking.tests.helpers import minutes_before, order

pytestmark = pytest.mark.usefixtures("redis_client")


@pytest.fixture
def sent(monkeypatch):
    """What the ranking worker publishes: (task name, payload, queue)."""
    published = []

    def send_task(name, args=None, queue=None, **_options):
        published.append((name, args[0], queue))

    monkeypatch.setattr(tasks.celery, "send_task", send_task)
    return published


def acknowledgement(order_id: str) -> tuple[str, dict, str]:
    return ("orders.contribution_recorded", {"v": 1, "order_id": order_id},
            queue_for("orders.contribution_recorded"))


def test_a_recorded_contribution_is_acknowledged_every_time_it_is_delivered(sent, now):
    payload = order("o-1", "p-1", 5, minutes_before(now, 5))
    assert tasks.record.run(payload)["boards"] == "applied"
    assert tasks.record.run(payload)["boards"] == "already"
    # The second is the pipeline audit asking again: its acknowledgement may be the one that arrives.
    assert sent == [acknowledgement("o-1")] * 2


def test_a_contribution_revoked_before_its_record_is_acknowledged_too(sent, now, monkeypatch):
    payload = order("o-1", "p-1", 5, minutes_before(now, 5))
    real_record = store.record
    monkeypatch.setattr(store, "record", lambda *a, **k: (_ for _ in ()).throw(redis.TimeoutError()))
    with pytest.raises(redis.TimeoutError):
        tasks.record.run(payload)
    assert sent == []   # not on the boards yet: the task retries, and only then says so
    monkeypatch.setattr(store, "record", real_record)
    tasks.revoke.run({"v": 1, "order_id": "o-1"})
    assert tasks.record.run(payload)["boards"] == "skipped"
    assert sent == [revocation_acknowledgement("o-1"), acknowledgement("o-1")]


def revocation_acknowledgement(order_id: str) -> tuple[str, dict, str]:
    return ("certificates.revocation_recorded", {"v": 1, "order_id": order_id, "recorded_by": "ranking"},
            queue_for("certificates.revocation_recorded"))


def test_a_revocation_is_acknowledged_to_certificates_every_time_it_is_delivered(sent, now):
    """Certificates' revocation audit sends ranking.revoke again until it hears this."""
    tasks.record.run(order("o-2", "p-1", 5, minutes_before(now, 5)))
    sent.clear()
    first = tasks.revoke.run({"v": 1, "order_id": "o-2"})
    again = tasks.revoke.run({"v": 1, "order_id": "o-2"})
    assert first["stored"] is True and again["stored"] is False
    assert sent == [revocation_acknowledgement("o-2")] * 2


def test_an_acknowledgement_the_broker_refuses_leaves_the_record_done(now, monkeypatch, caplog):
    def broker_away(*_args, **_kwargs):
        raise BrokerError("Error 111 connecting to localhost:6379. Connection refused.")

    monkeypatch.setattr(tasks.celery, "send_task", broker_away)
    with caplog.at_level(logging.WARNING, logger="ranking.tasks"):
        outcome = tasks.record.run(order("o-1", "p-1", 5, minutes_before(now, 5)))
    assert outcome["boards"] == "applied" and outcome["stored"] is True
    assert "could not acknowledge the contribution of order o-1" in caplog.text
