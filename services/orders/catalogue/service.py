"""Projects and their issuances: creating and changing projects, recording the serial blocks
a registry issued, and the public views of both."""
from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, object_session, selectinload

from diandian_common import config
from diandian_common.errors import ApiError, NotFound
from diandian_common.timestamps import as_utc
from diandian_common.uow import UnitOfWork

from ..models import Project, SerialBlock
from ..records import lock_project, new_id
from ..settlement import service as settlement
from ..webhooks import service as webhooks
from ..webhooks.domain import rules as webhook_rules

DEFAULT_LOW_INVENTORY_KG = 10_000  # 10 t


def low_inventory_threshold(project: Project) -> int:
    if project.low_inventory_threshold_kg is not None:
        return project.low_inventory_threshold_kg
    return config.env_int("LOW_INVENTORY_THRESHOLD_KG", DEFAULT_LOW_INVENTORY_KG)


def announce_low_inventory(session: Session, project: Project, available_before: int) -> None:
    """``project.low_inventory`` each time an order takes the available kilograms below
    the threshold (they come back above it by issuances and released reservations)."""
    threshold = low_inventory_threshold(project)
    if project.available_kg < threshold <= available_before:
        webhooks.emit(session, webhook_rules.PROJECT_LOW_INVENTORY, {
            "project": {"id": project.id, "code": project.code, "name": project.name, "name_en": project.name_en},
            "available_kg": project.available_kg, "threshold_kg": threshold, "issued_kg": project.issued_kg,
        })


def find_project(session: Session, ref: str) -> Project | None:
    """A project by id or by code."""
    return session.scalars(select(Project).where(or_(Project.id == ref, Project.code == ref))).first()


def all_projects(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).options(selectinload(Project.owner)).order_by(Project.code)))


def get_project(uow: UnitOfWork, project_id: str) -> Project:
    project = uow.session.get(Project, project_id)
    if project is None:
        raise NotFound("project", project_id)
    return project


def add_project(uow: UnitOfWork, *, code: str, name: str, name_en: str, type: str, location: str,
                registry: str, vintage: int, price_fen_per_tonne: int, owner_id: str | None = None,
                location_zh: str | None = None,
                fee_bps: int = 0, fee_min_fen: int = 0, low_inventory_threshold_kg: int | None = None) -> Project:
    session = uow.session
    if session.scalars(select(Project).where(Project.code == code)).first():
        raise ApiError(409, "project_code_taken", f"a project with code {code} exists")
    project = Project(id=new_id("prj"), code=code, name=name, name_en=name_en, type=type,
                      location=location, location_zh=location_zh, registry_name=registry, vintage=vintage,
                      price_fen_per_tonne=price_fen_per_tonne, issued_kg=0, reserved_kg=0, retired_kg=0,
                      fee_bps=fee_bps, fee_min_fen=fee_min_fen, low_inventory_threshold_kg=low_inventory_threshold_kg)
    session.add(project)
    settlement.attach_owner(session, project, owner_id)
    session.flush()
    return project


def update_project(uow: UnitOfWork, project_id: str, changes: dict) -> Project:
    """Change the price, the owner, the fee rule, the low-inventory threshold or the
    descriptive fields. Orders keep the amount they were created with and payments the
    split they were booked with, so a new price or fee applies to what comes next."""
    session = uow.session
    project = lock_project(session, project_id)
    if project is None:
        raise NotFound("project", project_id)
    for field in ("name", "name_en", "type", "location", "location_zh", "price_fen_per_tonne", "fee_bps",
                  "fee_min_fen", "low_inventory_threshold_kg"):
        if field in changes:
            setattr(project, field, changes[field])
    if "owner_id" in changes:
        settlement.attach_owner(session, project, changes["owner_id"])
    session.flush()
    return project


def record_issuance(uow: UnitOfWork, project_id: str, first: int, last: int) -> SerialBlock:
    """An operator records serials the registry issued; the project lock keeps two
    overlapping issuances from both passing the overlap check."""
    project = lock_project(uow.session, project_id)
    if project is None:
        raise NotFound("project", project_id)
    return issue_block(uow.session, project, first, last)


def issue_block(session: Session, project: Project, first: int, last: int) -> SerialBlock:
    """Record an issuance (serials first..last); blocks of a project never overlap."""
    if first < 1 or last < first:
        raise ApiError(422, "validation_error", "some fields are invalid",
                       {"last": ["must be ≥ first, and first ≥ 1"]})
    overlapping = session.scalars(select(func.count()).select_from(SerialBlock).where(
        SerialBlock.project_id == project.id, SerialBlock.first <= last, SerialBlock.last >= first)).one()
    if overlapping:
        raise ApiError(409, "serials_overlap", f"serials {first}-{last} overlap an issued block")
    block = SerialBlock(project_id=project.id, first=first, last=last, next_serial=first)
    session.add(block)
    project.issued_kg += last - first + 1
    session.flush()
    return block


# --- views ----------------------------------------------------------------------------

def project_view(project: Project, money: settlement.ProjectMoney | None = None) -> dict:
    """The public project with its ledger summary: kilograms retired, the owners' share
    of what buyers paid and what has been transferred to them. ``money`` saves a query
    per project in lists."""
    if money is None:
        money = settlement.project_money(object_session(project), [project.id]).get(project.id)
    money = money or settlement.ProjectMoney()
    return {
        "id": project.id, "code": project.code, "name": project.name, "name_en": project.name_en,
        "type": project.type, "location": project.location, "location_zh": project.location_zh,
        "registry": project.registry_name,
        "vintage": project.vintage, "price_fen_per_tonne": project.price_fen_per_tonne,
        "issued_kg": project.issued_kg, "reserved_kg": project.reserved_kg,
        "retired_kg": project.retired_kg, "available_kg": project.available_kg,
        "owner": {"id": project.owner.id, "name": project.owner.name} if project.owner else None,
        "fee_bps": project.fee_bps, "fee_min_fen": project.fee_min_fen,
        "low_inventory_threshold_kg": low_inventory_threshold(project),
        "owner_net_fen": money.owner_net_fen, "paid_to_owner_fen": money.paid_to_owner_fen,
    }


def project_views(session: Session, projects: list[Project]) -> list[dict]:
    money = settlement.project_money(session, [p.id for p in projects])
    return [project_view(p, money.get(p.id, settlement.ProjectMoney())) for p in projects]


def issuance_view(block: SerialBlock) -> dict:
    return {"id": block.id, "project_id": block.project_id, "first": block.first, "last": block.last,
            "quantity_kg": block.last - block.first + 1, "issued_at": as_utc(block.issued_at).isoformat(),
            "project": project_view(block.project)}
