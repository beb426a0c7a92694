"""Operators recording registry cancellations at once, on SQLite and (when reachable)
PostgreSQL: the project lock lets each kilogram be anchored once and each cancellation id
be recorded once."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from sqlalchemy import select

from diandian_common.errors import ApiError
from diandian_common.testing import (
    Driver,
)
from diandian_common.uow import UnitOfWork
from orders.app import create_app
from orders.catalogue import service as catalogue
from orders.ledger import registry
from orders.ledger import service as ledger_service
from orders.models import AnchoredRange, RegistryRetirement

RECORDERS = 8
RETIRED_T = 5


def test_concurrent_records_never_overlap(database_url):
    app = create_app(database_url=database_url)
    database = app.extensions["db"]
    with UnitOfWork(database) as uow:
        project = catalogue.add_project(uow, code="TEST-ANCHOR", name="锚定", name_en="Anchor",
                                        type="forestry_carbon_sink", location="Chengdu", registry="CDCER",
                                        vintage=2024, price_fen_per_tonne=5000)
        catalogue.issue_block(uow.session, project, 1, 3000)
        catalogue.issue_block(uow.session, project, 10_001, 12_000)
        project_id = project.id
    order = Driver(app.test_client()).place_and_pay_order(project_id, RETIRED_T * 1000,
                                                          {"id": "p-1", "display_name": "P"})
    with UnitOfWork(database) as uow:
        assert ledger_service.retire(uow, order["id"]) is True

    # Seven distinct cancellations for five retired tonnes, and one id sent twice.
    ids = [f"CXL-{i}" for i in range(RECORDERS - 1)] + ["CXL-0"]
    start = threading.Barrier(RECORDERS)

    def record(cancellation_id: str) -> str:
        start.wait()
        try:
            with UnitOfWork(database) as uow:
                registry.record(uow, project_id, quantity_t=1, registry_serial_first="A",
                                registry_serial_last="B",
                                cancellation_id=cancellation_id, url="https://registry.example.cn/c",
                                retired_on=date.today())
        except ApiError as refused:
            return refused.code
        return "recorded"

    with ThreadPoolExecutor(max_workers=RECORDERS) as pool:
        outcomes = list(pool.map(record, ids))
    assert outcomes.count("recorded") == RETIRED_T, outcomes
    assert set(outcomes) <= {"recorded", "not_enough_retired", "cancellation_recorded"}

    with UnitOfWork(database) as uow:
        session = uow.session
        recorded = [r.cancellation_id for r in session.scalars(select(RegistryRetirement))]
        assert len(recorded) == len(set(recorded)) == RETIRED_T
        ranges = sorted((r.serial_first, r.serial_last) for r in session.scalars(select(AnchoredRange)))
        assert sum(last - first + 1 for first, last in ranges) == RETIRED_T * 1000
        for (_, last), (first, _) in zip(ranges, ranges[1:]):
            assert last < first, ranges
        assert registry.project_records(session, project_id)["unanchored_kg"] == 0
    database.dispose()
