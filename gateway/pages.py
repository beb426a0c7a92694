"""Server-rendered pages (SPEC §5). Data comes from the services through the same
pooled client as the API, so a page never reads a database."""
from __future__ import annotations

import logging

import requests
from flask import Flask, abort, render_template

from .proxy import Upstreams

log = logging.getLogger(__name__)


def register(app: Flask, upstreams: Upstreams) -> None:
    def calculator_get(path: str):
        try:
            response = upstreams.session.get(upstreams.base_urls["calculator"] + path,
                                             timeout=(upstreams.connect_timeout, upstreams.read_timeout))
        except requests.RequestException:
            log.warning("calculator unavailable for a page")
            return None, 503
        return (response.json() if response.ok else None), response.status_code

    @app.get("/")
    def index():
        body, status = calculator_get("/api/v1/scenes")
        scenes = (body or {}).get("items", [])
        return render_template("index.html", scenes=scenes, unavailable=status != 200), \
            (200 if status == 200 else 503)

    @app.get("/s/<slug>")
    def scene(slug):
        body, status = calculator_get(f"/api/v1/scenes/{requests.utils.quote(slug, safe='')}")
        if status == 404:
            abort(404)
        if body is None:
            return render_template("index.html", scenes=[], unavailable=True), 503
        return render_template("scene.html", scene=body)
