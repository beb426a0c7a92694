"""The calculator's wiring: its Celery app, and how routes, tasks and CLI commands reach
its database and broker (``wiring.unit_of_work()``). ``create_app`` binds the database URL
it was given; a worker uses ``CALCULATOR_DATABASE_URL``/``DATABASE_URL``.

The calculator has no outbox (its one message, ``calculator.prerender_scene``, is a best
effort hint sent after the commit, see ``tasks.request_prerender``) and no beat schedule."""
from __future__ import annotations

from diandian_common.celery_app import make_celery
from diandian_common.uow import ServiceWiring, UnitOfWork

celery = make_celery("calculator")

wiring = ServiceWiring("calculator", outbox_model=None, celery=celery)


def unit_of_work() -> UnitOfWork:
    return wiring.unit_of_work()
