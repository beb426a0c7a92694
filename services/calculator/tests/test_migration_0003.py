"""Migration 0003's backfill of estimates stored before flights were recorded without
radiative forcing: one without flights has no RF in it (its total is its total without RF);
one with flights stays unknown, since set 2025.1 publishes no figure without RF."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from diandian_common.migrate import upgrade


def test_old_estimates_without_flights_get_their_total_and_those_with_flights_stay_unknown(tmp_path):
    url = f"sqlite:///{tmp_path / 'calculator.db'}"
    upgrade("calculator", url, "0002")
    engine = sa.create_engine(url)
    estimates = sa.table("estimates", sa.column("id"), sa.column("kind"), sa.column("factor_set_version"),
                         sa.column("total_g"), sa.column("categories_g", sa.JSON),
                         sa.column("activities", sa.JSON), sa.column("items", sa.JSON),
                         sa.column("created_at"))
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO factor_sets (version, title, description, checksum, "
                                   "loaded_at) VALUES ('2025.1', 't', '', 'x', :at)"),
                           {"at": datetime.now(timezone.utc)})
        for estimate_id, categories in (("bus", {"transport": 1039, "flights": 0}),
                                        ("flight", {"flights": 211346, "transport": 0})):
            connection.execute(estimates.insert().values(
                id=estimate_id, kind="trip", factor_set_version="2025.1",
                total_g=sum(categories.values()), categories_g=categories, activities=[], items=[],
                created_at=datetime.now(timezone.utc)))
    engine.dispose()

    upgrade("calculator", url, "0003")
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = {row.id: row for row in connection.execute(sa.text(
            "SELECT id, total_without_rf_g, categories_without_rf_g FROM estimates"))}
    engine.dispose()
    assert rows["bus"].total_without_rf_g == 1039
    assert '"transport": 1039' in rows["bus"].categories_without_rf_g
    assert rows["flight"].total_without_rf_g is None and rows["flight"].categories_without_rf_g is None
