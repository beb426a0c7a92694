"""Calculator worker: pre-renders scene QR codes and posters into the render cache.

    celery -A calculator.tasks worker -Q calculator

The Celery app is calculator/wiring.py's; it is importable from here for the worker.
"""
from __future__ import annotations

import logging

from diandian_common import config
from diandian_common.celery_app import send
from diandian_common.contracts import InvalidMessage, build, load
from diandian_common.errors import NotFound

from . import service
from .rendering import RenderCache
from .wiring import celery, unit_of_work, wiring

__all__ = ["celery", "prerender_scene", "request_prerender"]

log = logging.getLogger(__name__)

PRERENDER_SCENE = "calculator.prerender_scene"


@celery.task(name=PRERENDER_SCENE, bind=True)
def prerender_scene(self, payload: dict) -> None:
    """``calculator.prerender_scene`` (docs/contract.md) → the scene's QR PNG and poster
    PDF in the cache.

    Idempotent: a render already cached for the same content is not drawn again."""
    try:
        slug = load(PRERENDER_SCENE, payload).slug
    except InvalidMessage:
        # Best effort only: the API renders on demand what was not pre-rendered.
        log.warning("prerender_scene without a slug: %r", payload)
        return
    try:
        with unit_of_work() as uow:
            drawing = service.scene_drawing(uow, slug, config.public_base_url())
    except NotFound:
        log.warning("prerender_scene: no scene %r", slug)
        return
    cache = RenderCache.default()
    cache.qr(drawing)
    cache.poster(drawing)
    log.info("pre-rendered QR code and poster of scene %s", slug)


def request_prerender(slug: str) -> None:
    """Best effort: without a broker the API still renders on the first request."""
    try:
        send(wiring.celery, PRERENDER_SCENE, build(PRERENDER_SCENE, slug=slug))
    except Exception:
        log.warning("could not queue %s for scene %s; it will render on demand",
                    PRERENDER_SCENE, slug, exc_info=True)
