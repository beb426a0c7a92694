"""The design's boundaries, checked on the source: services never import each other,
the plumbing package imports no service, and domain/ stays free of Flask and the DB."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("calculator", "orders", "certificates", "ranking")
PACKAGES = {**{s: ROOT / "services" / s for s in SERVICES}, "gateway": ROOT / "gateway",
            "diandian_common": ROOT / "diandian_common", "payment_emulator": ROOT / "payment_emulator"}
# Development tools: `make run` and the tests use them, the application image does not ship them.
TOOLS = {"payment_emulator"}
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


def test_the_running_code_imports_no_development_tool():
    """The payment emulator stands in for WeChat Pay and Alipay in `make run` and the tests;
    the image has no copy of it, and it imports no service (it speaks only the providers'
    protocols)."""
    offending = [f"{p.relative_to(ROOT)} imports {m}" for package, directory in PACKAGES.items()
                 for p, m in imported_modules(directory) if m in TOOLS - {package}
                 and "tests" not in p.parts and p.name not in ("testing.py", "conftest.py")]
    offending += [f"{p.relative_to(ROOT)} imports {m}" for tool in TOOLS
                  for p, m in imported_modules(PACKAGES[tool]) if m in set(PACKAGES) - {tool}]
    assert not offending, offending


def domain_dirs(package: Path) -> list[Path]:
    """``domain/`` of a flat service, or of each capability package (orders)."""
    return sorted(d for d in package.rglob("domain") if d.is_dir() and "migrations" not in d.parts)


@pytest.mark.parametrize("service", SERVICES)
def test_domain_is_pure(service):
    domains = domain_dirs(PACKAGES[service])
    assert domains, f"{service} has no domain/"
    offending = [f"{p.relative_to(ROOT)} imports {m}" for d in domains for p, m in imported_modules(d)
                 if m in INFRASTRUCTURE]
    # Relative imports stay inside domain packages (pure rules may use other pure rules).
    for domain in domains:
        for path in domain.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.level > 0:
                    target = path.parent
                    for _ in range(node.level - 1):
                        target = target.parent
                    target = target.joinpath(*(node.module or "").split("."))
                    if "domain" not in target.relative_to(PACKAGES[service]).parts:
                        offending.append(f"{path.relative_to(ROOT)} imports {target.relative_to(ROOT)}")
    assert not offending, offending


# Services large enough to be split into packages by capability, each with its service
# functions, routes, schemas, tasks and tests beside it (CONTRIBUTING.md).
CAPABILITIES = {"orders": ("catalogue", "ordering", "payments", "ledger", "settlement", "webhooks")}


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_same_shape(service):
    package = PACKAGES[service]
    for part in ("app.py", "models.py", "tasks.py", "migrations/env.py"):
        assert (package / part).exists(), f"{service} lacks {part}"
    if service in CAPABILITIES:
        assert (package / "wiring.py").exists(), f"{service} lacks wiring.py"
        for capability in CAPABILITIES[service]:
            for part in ("__init__.py", "service.py", "tests"):
                assert (package / capability / part).exists(), f"{service}/{capability} lacks {part}"
        assert not (package / "api.py").exists() and not (package / "domain").exists(), \
            f"{service} is split by capability: no flat api.py or domain/"
    else:
        for part in ("api.py", "schemas.py", "domain", "tests"):
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


# --- message contracts (docs/contract.md, "Messages") ------------------------------------

def service_tasks(service: str) -> tuple:
    """The Celery app of a service's worker and the tasks its code defines ({name: task}).

    Celery shares every task with every app of the process, so the tasks are told apart by
    the module that defines them."""
    import importlib

    celery = importlib.import_module(f"{service}.tasks").celery
    return celery, {name: task for name, task in celery.tasks.items()
                    if task.__module__.partition(".")[0] == service}


@pytest.mark.parametrize("service", SERVICES)
def test_every_task_a_worker_consumes_has_a_contract_and_every_contract_a_consumer(service):
    from diandian_common.contracts import CONTRACTS

    celery, tasks = service_tasks(service)
    consumed = set(tasks)
    scheduled = {entry["task"] for entry in (celery.conf.beat_schedule or {}).values()}
    assert {name.partition(".")[0] for name in consumed | scheduled} <= {service}
    assert not consumed - set(CONTRACTS), "tasks without a contract in diandian_common/contracts.py"
    assert not scheduled - set(CONTRACTS), "scheduled tasks without a contract"
    assert not scheduled - consumed, "scheduled tasks no worker registers"
    contracted = {name for name in CONTRACTS if name.partition(".")[0] == service}
    assert not contracted - consumed, "contracts whose task no worker consumes"


@pytest.mark.parametrize("service", SERVICES)
def test_a_broken_message_is_never_retried(service):
    """Retries are for a database or broker that is away; a message that breaks its contract
    (or has another version) fails the same way every time."""
    from diandian_common.contracts import InvalidMessage, UnsupportedMessage

    for name, task in service_tasks(service)[1].items():
        retried = tuple(getattr(task, "autoretry_for", ()) or ())
        for error in (InvalidMessage, UnsupportedMessage):
            assert not issubclass(error, retried), f"{name} retries {error.__name__}"


PLUMBING = {"diandian_common.celery_app": {"send": 1, "publish": 1},
            "diandian_common.outbox": {"enqueue": 2},
            "diandian_common.contracts": {"build": 0, "check": 0, "load": 0}}


def task_name_calls(path: Path):
    """(line, task-name argument) of every call of the plumbing's send/enqueue/build/load
    in one module, the argument resolved to a string where it is a literal or a constant
    of the module (None where it is neither)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    constants = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 for target in node.targets if isinstance(target, ast.Name)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}
    functions, modules = {}, {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in PLUMBING:
            for alias in node.names:
                if alias.name in PLUMBING[node.module]:
                    functions[alias.asname or alias.name] = PLUMBING[node.module][alias.name]
        elif isinstance(node, ast.ImportFrom) and node.module == "diandian_common":
            for alias in node.names:
                if f"diandian_common.{alias.name}" in PLUMBING:
                    modules[alias.asname or alias.name] = PLUMBING[f"diandian_common.{alias.name}"]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func, position = node.func, None
        if isinstance(func, ast.Name) and func.id in functions:
            position = functions[func.id]
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                and func.value.id in modules and func.attr in modules[func.value.id]:
            position = modules[func.value.id][func.attr]
        if position is None or len(node.args) <= position:
            continue
        argument = node.args[position]
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            yield node.lineno, argument.value
        elif isinstance(argument, ast.Name):
            yield node.lineno, constants.get(argument.id)
        else:
            yield node.lineno, None


def test_every_task_name_sent_built_or_loaded_in_the_code_has_a_contract():
    from diandian_common.contracts import CONTRACTS

    plumbing = {ROOT / "diandian_common" / f"{name}.py" for name in ("celery_app", "outbox", "contracts")}
    offending, seen = [], set()
    for package_dir in PACKAGES.values():
        for path in package_dir.rglob("*.py"):
            if "tests" in path.parts or path.name == "conftest.py" or path in plumbing:
                continue
            for line, name in task_name_calls(path):
                where = f"{path.relative_to(ROOT)}:{line}"
                if name is None:
                    offending.append(f"{where}: name the task with a literal or a module constant")
                elif name not in CONTRACTS:
                    offending.append(f"{where}: {name!r} has no contract")
                seen.add(name)
    assert not offending, offending
    assert {"orders.retire_credits", "certificates.render", "ranking.record"} <= seen  # the scan sees


def test_the_contract_document_is_up_to_date():
    """docs/contract.md's generated parts say what the contracts and the OpenAPI documents say."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("contract_doc", ROOT / "docs" / "contract_doc.py")
    contract_doc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(contract_doc)
    current = contract_doc.DOCUMENT.read_text(encoding="utf-8")
    assert contract_doc.render(current, contract_doc.generated_blocks()) == current, (
        "docs/contract.md is out of date: run .venv/bin/python docs/contract_doc.py")
