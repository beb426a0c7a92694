"""Scenes: the venues whose doors carry a QR code (docs/contract.md §5)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from diandian_common.errors import ApiError, NotFound

from .domain import scenes as rules
from .models import Scene, utcnow
from .rendering import SceneDrawing


def find(session: Session, slug: str) -> Scene | None:
    return session.scalar(select(Scene).where(Scene.slug == slug))


def get(session: Session, slug: str) -> Scene:
    scene = find(session, slug)
    if scene is None:
        raise NotFound("scene", slug)
    return scene


def listing(session: Session, scene_type: str | None, include_archived: bool) -> list[Scene]:
    query = select(Scene).order_by(Scene.starts_on.desc().nulls_last(), Scene.id)
    if scene_type:
        query = query.where(Scene.type == scene_type)
    if not include_archived:
        query = query.where(Scene.archived_at.is_(None))
    return list(session.scalars(query))


def create(session: Session, data: dict) -> Scene:
    if find(session, data["slug"]) is not None:
        raise _slug_taken(data["slug"])
    scene = Scene(**data)
    session.add(scene)
    try:
        session.flush()
    except IntegrityError:
        # Another request took the slug between the check and the insert.
        raise _slug_taken(data["slug"]) from None
    return scene


def update(session: Session, slug: str, changes: dict) -> Scene:
    scene = get(session, slug)
    archived = changes.pop("archived", None)
    starts_on = changes.get("starts_on", scene.starts_on)
    ends_on = changes.get("ends_on", scene.ends_on)
    if starts_on and ends_on and ends_on < starts_on:
        raise ApiError(422, "validation_error", "some fields are invalid",
                       {"ends_on": ["must not be before starts_on"]})
    for name, value in changes.items():
        setattr(scene, name, value)
    if archived is not None:
        set_archived(scene, archived)
    session.flush()
    return scene


def set_archived(scene: Scene, archived: bool) -> None:
    """Archived scenes leave the listing but stay readable (their posters may still hang)."""
    if archived and scene.archived_at is None:
        scene.archived_at = utcnow()
    elif not archived:
        scene.archived_at = None


def to_json(scene: Scene, public_base_url: str) -> dict:
    return {
        "id": scene.id, "slug": scene.slug, "name": scene.name, "name_en": scene.name_en,
        "type": scene.type, "location": scene.location, "starts_on": scene.starts_on,
        "ends_on": scene.ends_on,
        "page_url": rules.page_url(public_base_url, scene.slug),
        "qr_png_url": rules.qr_png_url(public_base_url, scene.slug),
        "poster_pdf_url": rules.poster_pdf_url(public_base_url, scene.slug),
        "form": rules.form_for(scene.type),
        "archived": scene.archived_at is not None,
    }


def drawing(scene: Scene, public_base_url: str) -> SceneDrawing:
    """What the scene's QR code and poster show."""
    return SceneDrawing(slug=scene.slug, name=scene.name, name_en=scene.name_en, type=scene.type,
                        location=scene.location, starts_on=scene.starts_on,
                        ends_on=scene.ends_on, page_url=rules.page_url(public_base_url, scene.slug))


def _slug_taken(slug: str) -> ApiError:
    return ApiError(409, "slug_taken", f"the slug {slug!r} is already used by another scene",
                    {"slug": ["already taken"]})
