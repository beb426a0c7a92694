"""The design's boundaries, checked on the source: services never import each other,
the plumbing package imports no service, and domain/ stays free of Flask and the DB."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("calculator", "orders", "certificates", "ranking")
PACKAGES = {**{s: ROOT / "services" / s for s in SERVICES}, "gateway": ROOT / "gateway",
            "diandian_common": ROOT / "diandian_common"}
INFRASTRUCTURE = {"flask", "flask_smorest", "sqlalchemy", "alembic", "celery", "redis", "requests"}


def imported_modules(package_dir: Path):
    for path in package_dir.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield path, node.module.split(".")[0]


@pytest.mark.parametrize("package", list(PACKAGES))
def test_no_package_imports_another_service(package):
    others = (set(SERVICES) | {"gateway"}) - {package}
    offending = [f"{p.relative_to(ROOT)} imports {m}" for p, m in imported_modules(PACKAGES[package])
                 if m in others and "tests" not in p.parts]
    assert not offending, offending


@pytest.mark.parametrize("service", SERVICES)
def test_domain_is_pure(service):
    domain = PACKAGES[service] / "domain"
    offending = [f"{p.relative_to(ROOT)} imports {m}" for p, m in imported_modules(domain)
                 if m in INFRASTRUCTURE]
    assert not offending, offending


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_same_shape(service):
    package = PACKAGES[service]
    for part in ("app.py", "api.py", "schemas.py", "models.py", "tasks.py", "domain",
                 "migrations/env.py", "tests"):
        assert (package / part).exists(), f"{service} lacks {part}"
    assert list((package / "migrations" / "versions").glob("*.py")), f"{service} has no migration"
