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


def pinned_distributions(requirements: Path) -> set[str]:
    names = set()
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(normalized(line.split("==", 1)[0].split("[", 1)[0]))
    return names


def normalized(distribution: str) -> str:
    return distribution.lower().replace("_", "-").replace(".", "-")


def test_what_the_running_code_imports_is_in_the_images_requirements():
    """The application image installs requirements.txt only (the test tools are in
    requirements-dev.txt): a module imported outside the tests must come from it, or the
    container fails on its first import."""
    import sys
    from importlib.metadata import packages_distributions

    providers = packages_distributions()
    local = set(PACKAGES)
    runtime = pinned_distributions(ROOT / "requirements.txt")
    missing = {}
    for package_dir in PACKAGES.values():
        for path, module in imported_modules(package_dir):
            if "tests" in path.parts or path.name in ("testing.py", "conftest.py"):
                continue
            if module in sys.stdlib_module_names or module in local or module == "__future__":
                continue
            distributions = {normalized(d) for d in providers.get(module, [])}
            if not distributions & runtime:
                missing.setdefault(module, []).append(str(path.relative_to(ROOT)))
    assert not missing, f"imported at run time but not in requirements.txt: {missing}"
