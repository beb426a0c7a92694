"""The ranking service's wiring: its Celery app and beat schedule, and how tasks and CLI
commands reach its database (``wiring.unit_of_work()``). ``create_app`` binds the database
URL it was given; a worker uses ``RANKING_DATABASE_URL``/``DATABASE_URL``.

The ranking service has no outbox: its units of work only commit. The one message it sends,
the acknowledgement of a recorded contribution (``orders.contribution_recorded``), goes
straight to the broker after the record: orders asks again for any that is lost (its
pipeline audit), so it needs no transaction. Its other store, the Redis boards, is reached
through :mod:`ranking.store`.
"""
from __future__ import annotations

from diandian_common.celery_app import make_celery
from diandian_common.uow import ServiceWiring, UnitOfWork

from . import settings

celery = make_celery("ranking")
celery.conf.beat_schedule = {
    "ranking-reconcile": {
        "task": "ranking.reconcile",
        "schedule": settings.reconcile_seconds(),
        "args": [{"v": 1}],
        # A reconciliation that waited longer than one period is superseded by the next.
        "options": {"queue": "ranking", "expires": settings.reconcile_seconds()},
    },
}

wiring = ServiceWiring("ranking", outbox_model=None, celery=celery)


def unit_of_work() -> UnitOfWork:
    return wiring.unit_of_work()
