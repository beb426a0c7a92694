"""Factor sets: from the versioned files in ``calculator/factors/`` into the database.

The files are the reviewed source; the database copy is what estimates reference. A set
is loaded on first use (or by ``flask load-factors`` / ``seed-demo``) and never changed
afterwards: new numbers are published as a new version, so every stored estimate can
still be explained with the exact factors it used.

A loader, not service functions: ``ensure_loaded``, ``load_all`` and ``stored_versions``
work in the caller's session; ``get_factor_set`` takes the unit-of-work factory, since
loading a set on first use takes transactions of its own.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from diandian_common import config
from diandian_common.uow import UnitOfWork

from .domain.factors import Factor, FactorSet, FactorSetError, parse_factor_file, version_key
from .models import FactorRecord, FactorSetRecord

log = logging.getLogger(__name__)

FACTORS_DIR = Path(__file__).parent / "factors"

# Loaded sets never change, so one copy per (database URL, version) serves the process.
_loaded: dict[tuple[str, str], FactorSet] = {}


@functools.cache
def available_versions() -> dict[str, Path]:
    """Factor files shipped with the calculator, by version."""
    return {path.stem: path for path in sorted(FACTORS_DIR.glob("*.json"))}


def default_version() -> str:
    """``CALCULATOR_FACTOR_SET`` when set, else the newest file."""
    pinned = config.env("CALCULATOR_FACTOR_SET")
    if pinned:
        if pinned not in available_versions():
            raise FactorSetError(f"CALCULATOR_FACTOR_SET={pinned} has no file in {FACTORS_DIR}")
        return pinned
    return max(available_versions(), key=version_key)


def read_factor_file(version: str) -> tuple[FactorSet, str]:
    """The parsed set and the sha256 of its file."""
    raw = available_versions()[version].read_bytes()
    factor_set = parse_factor_file(json.loads(raw, parse_float=Decimal))
    if factor_set.version != version:
        raise FactorSetError(f"{version}.json declares version {factor_set.version}")
    return factor_set, hashlib.sha256(raw).hexdigest()


def ensure_loaded(session: Session, version: str) -> FactorSetRecord:
    """Insert the set from its file unless the database already holds it."""
    record = session.get(FactorSetRecord, version)
    factor_set, checksum = read_factor_file(version)
    if record is not None:
        warn_if_changed(version, record.checksum)
        return record
    record = FactorSetRecord(version=version, title=factor_set.title,
                             description=factor_set.description, checksum=checksum)
    record.factors = [
        FactorRecord(key=f.key, value=str(f.value), unit=f.unit, publisher=f.publisher,
                     document=f.document, table_ref=f.table, citation=f.citation, year=f.year,
                     url=f.url, note=f.note, edition=f.edition)
        for f in factor_set
    ]
    session.add(record)
    session.flush()
    log.info("loaded factor set %s (%d factors)", version, len(record.factors))
    return record


def warn_if_changed(version: str, loaded_checksum: str) -> None:
    """Published sets are immutable: an edited file is reported, and the copy the stored
    estimates were computed with stays in use."""
    if version in available_versions() and read_factor_file(version)[1] != loaded_checksum:
        log.error("factor file %s.json differs from the copy loaded into the database; the "
                  "loaded copy stays in use (publish changed factors as a new version)", version)


def to_factor_set(record: FactorSetRecord) -> FactorSet:
    factors = {
        row.key: Factor(key=row.key, value=Decimal(row.value), unit=row.unit,
                        publisher=row.publisher, document=row.document, table=row.table_ref,
                        year=row.year, citation=row.citation, url=row.url, note=row.note,
                        edition=row.edition)
        for row in record.factors
    }
    return FactorSet(version=record.version, title=record.title,
                     description=record.description, factors=factors)


def load_all(session: Session) -> list[str]:
    """Every set shipped in ``factors/`` into the database (those not there yet)."""
    versions = sorted(available_versions(), key=version_key)
    for version in versions:
        ensure_loaded(session, version)
    return versions


def get_factor_set(unit_of_work: Callable[[], UnitOfWork], version: str | None = None) -> FactorSet | None:
    """A set as stored in the database (loading it from its file on first use), or None
    when no such version exists.

    Takes the unit-of-work factory (``wiring.unit_of_work``), not a unit of work, and is
    called outside one: the set is read in one transaction and, the first time, loaded from
    its file in another, whose IntegrityError (another process loaded it meanwhile) rolls
    back only that one, before it is read again. Then it is kept for the process."""
    version = version or default_version()
    reading = unit_of_work()
    cached = _loaded.get((reading.database.url, version))
    if cached is not None:
        return cached
    with reading as uow:
        record = uow.session.scalar(select(FactorSetRecord).where(FactorSetRecord.version == version)
                                    .options(selectinload(FactorSetRecord.factors)))
        if record is not None:
            found, checksum = to_factor_set(record), record.checksum
    if record is None:
        if version not in available_versions():
            return None
        try:
            with unit_of_work() as uow:
                ensure_loaded(uow.session, version)
        except IntegrityError:
            log.info("factor set %s was loaded concurrently by another process", version)
        return get_factor_set(unit_of_work, version)
    warn_if_changed(version, checksum)
    _loaded[(reading.database.url, version)] = found
    return found


def stored_versions(session: Session) -> list[str]:
    return sorted(session.scalars(select(FactorSetRecord.version)), key=version_key)
