"""``flask seed-demo`` / ``load-factors`` and how factor sets reach the database."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select, update

from calculator import factor_sets
from calculator.domain.factors import FactorSetError
from calculator.models import FactorRecord, FactorSetRecord, Scene
from calculator.wiring import unit_of_work


def test_seed_demo_is_idempotent(app, client):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert first.output.count(": created") == 5
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0 and second.output.count(": exists") == 5

    with unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Scene)) == 5
        # every published set: 2025.1 (old estimates) and the current 2025.2
        assert uow.session.scalar(select(func.count()).select_from(FactorSetRecord)) == 2
    scenes = client.get("/api/v1/scenes").get_json()["items"]
    assert sorted(s["type"] for s in scenes) == sorted(
        ["conference", "scenic_spot", "supermarket", "restaurant", "hotel"])
    forum = client.get("/api/v1/scenes/cdcn-forum-2021").get_json()
    assert (forum["name"], forum["name_en"], forum["type"], forum["starts_on"]) == (
        "首届中国数字碳中和高峰论坛", "First China Digital Carbon Neutrality Forum", "conference",
        "2021-09-07")
    assert "Chengdu" in forum["location"]
    assert client.get("/api/v1/scenes/dujiangyan").get_json()["type"] == "scenic_spot"


def test_load_factors(app):
    result = app.test_cli_runner().invoke(args=["load-factors"])
    assert result.exit_code == 0 and "factor set 2025.1: loaded" in result.output
    with unit_of_work() as uow:
        keys = set(uow.session.scalars(select(FactorRecord.key)))
    assert {"flight.long_haul.first", "hotel.CN", "benchmark.per_capita"} <= keys


def stored_versions() -> list[str]:
    with unit_of_work() as uow:
        return factor_sets.stored_versions(uow.session)


def test_factor_set_is_loaded_on_first_use_and_then_read_from_the_database(app):
    assert stored_versions() == []
    first = factor_sets.get_factor_set(unit_of_work)
    assert stored_versions() == ["2025.2"]
    assert first["taxi"].value == factor_sets.read_factor_file("2025.2")[0]["taxi"].value
    assert first["taxi"].edition == "2025 (full set, version 1)"  # kept in the database too
    assert factor_sets.get_factor_set(unit_of_work, "1999.1") is None


def test_an_edited_factor_file_is_reported_and_the_loaded_copy_kept(app, caplog):
    with unit_of_work() as uow:
        factor_sets.ensure_loaded(uow.session, "2025.1")
        uow.session.execute(update(FactorSetRecord).values(checksum="0" * 64))
    with caplog.at_level(logging.ERROR, logger="calculator.factor_sets"):
        factor_sets.get_factor_set(unit_of_work, "2025.1")
    assert "differs from the copy loaded" in caplog.text


def test_the_published_set_2025_1_is_unchanged_byte_for_byte():
    """Old estimates reproduce only if the set they name is the one they were computed with:
    2025.1 is published, so its file is never edited (changes go into a new version)."""
    assert factor_sets.read_factor_file("2025.1")[1] == (
        "3da92a007847184f2200504f00486cb6f8213da869a20abc37bf31b4d42c5bc3")


def test_the_newest_set_is_the_default():
    assert factor_sets.default_version() == "2025.2"


def test_the_factor_set_can_be_pinned(monkeypatch):
    monkeypatch.setenv("CALCULATOR_FACTOR_SET", "2025.1")
    assert factor_sets.default_version() == "2025.1"
    monkeypatch.setenv("CALCULATOR_FACTOR_SET", "1999.1")
    with pytest.raises(FactorSetError, match="1999.1"):
        factor_sets.default_version()
