"""Certificate rendering: the service's warm renderer against plain WeasyPrint.

Measured in one process, in interleaved rounds so that a noisy moment on the machine does
not fall on one side only:

- the service: ``certificates.render.render_certificate`` (template, QR code, PDF) of a
  real bilingual certificate in a warm process, as a Celery worker child runs it: the
  font configuration and stylesheet built once, the CJK font's common subset cached;
- plain WeasyPrint: the same HTML and stylesheet to PDF with the full system CJK font and
  no reuse (a new ``FontConfiguration`` and a freshly parsed stylesheet every time);
- renders per second per process, the figure issue 8 multiplies by the number of worker
  processes for the render pipeline's ceiling (:func:`render_ceiling_per_second`);
- start-up: making the font subset without a cache (once per ``VAR_DIR``), and a worker
  child's preparation when the subset is cached.

The subset is cached under ``VAR_DIR/fonts`` as a worker's would be (``VAR_DIR`` defaults
to ``./var``).
"""
from __future__ import annotations

import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import path2url

from certificates import fonts, render

from .common import Ratio, Report, summary_ms

ROUNDS = 5
SERVICE_RENDERS_PER_ROUND = 10   # 50 warm renders in all
PLAIN_RENDERS_PER_ROUND = 2      # 10 in all: each takes most of a second
GOAL_P50_MS = 150.0
ZONE = ZoneInfo("Asia/Shanghai")

CERTIFICATE = render.CertificateContent(
    number="DD-20261125-7KQ3M9XA", holder="张三丰 Zhang Sanfeng", organization="成都绿色会展有限公司",
    quantity_kg=12_345,
    project={"id": "prj_longquan", "code": "CDCER-0042", "name": "成都龙泉山林业碳汇项目",
             "name_en": "Chengdu Longquan Mountain Forestry Carbon Sink", "registry": "CDCER",
             "vintage": 2023},
    serial_range="CDCER-0042-2023:000001001-000013345",
    scene={"slug": "green-expo-2026", "name": "2026 成都国际绿色博览会"},
    issued_at=datetime(2026, 11, 24, 18, 30, tzinfo=timezone.utc),
    verify_url="https://diandian.example/v/Qm9Z3kW_x-7a.k2VqXU0b7w1d-c9F", ledger_hash="9f2c" * 16,
)


def service_render() -> bytes:
    return render.render_certificate(CERTIFICATE, ZONE)


def plain_weasyprint_render(html: str) -> bytes:
    font_config = FontConfiguration()
    stylesheet = CSS(filename=render.STYLESHEET, font_config=font_config)
    return HTML(string=html, base_url=path2url(render.ASSETS_DIR) + "/").write_pdf(
        stylesheets=[stylesheet], font_config=font_config)


def _timed(action, times: int, cpu: list[float] | None = None) -> list[float]:
    """Wall-clock seconds of each call; its CPU seconds are appended to ``cpu`` if given
    (the CPU figure does not grow when other processes compete for the cores)."""
    samples = []
    for _ in range(times):
        started, started_cpu = time.perf_counter(), time.process_time()
        action()
        samples.append(time.perf_counter() - started)
        if cpu is not None:
            cpu.append(time.process_time() - started_cpu)
    return samples


def renders_per_second(renders: int = 30) -> float:
    """Warm certificate renders per second in this process (prepared first, one warm-up)."""
    render.prepare()
    service_render()
    return renders / sum(_timed(service_render, renders))


def render_ceiling_per_second(worker_processes: int, renders: int = 30) -> float:
    """The render pipeline's ceiling: one process's warm rate × worker processes (each on a
    core of its own; more processes than cores do not add to it)."""
    return renders_per_second(renders) * min(worker_processes, os.cpu_count() or 1)


def _cold_subset_seconds() -> float:
    source = fonts.source_font()
    if source is None:
        return float("nan")
    with tempfile.TemporaryDirectory(prefix="bench-fonts-") as cache:
        started = time.perf_counter()
        fonts.common_subset(source, Path(cache))
        return time.perf_counter() - started


def run() -> list[Report]:
    load_before = os.getloadavg()[0]
    cold_subset_s = _cold_subset_seconds()
    started = time.perf_counter()
    render.prepare()  # what a worker child does at start (the subset is cached by now)
    prepare_s = time.perf_counter() - started

    html = render.certificate_html(CERTIFICATE, ZONE)
    service_pdf = service_render()                       # warm-up of both sides
    plain_pdf = plain_weasyprint_render(html)
    service, plain, service_cpu, plain_cpu = [], [], [], []
    for _ in range(ROUNDS):
        service += _timed(service_render, SERVICE_RENDERS_PER_ROUND, service_cpu)
        plain += _timed(lambda: plain_weasyprint_render(html), PLAIN_RENDERS_PER_ROUND, plain_cpu)

    ours, theirs = summary_ms(service), summary_ms(plain)
    ours["cpu_p50_ms"] = summary_ms(service_cpu)["p50_ms"]
    theirs["cpu_p50_ms"] = summary_ms(plain_cpu)["p50_ms"]
    per_second = len(service) / sum(service)
    source = fonts.source_font()
    report = Report("certificates: warm render of the bilingual certificate", figures={
        **{f"service_{key}": value for key, value in ours.items()},
        **{f"plain_weasyprint_{key}": value for key, value in theirs.items()},
        "renders_per_second_per_process": round(per_second, 2),
        "ceiling_per_second_with_one_process_per_core": round(per_second * (os.cpu_count() or 1), 2),
        "cpus": os.cpu_count(),
        # Other processes on the machine stretch wall-clock times (not the CPU figures).
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "font_subset_cold_s": round(cold_subset_s, 2),
        "worker_prepare_s": round(prepare_s, 3),
        "cjk_font": (f"common subset of {source.family or source.path.name} ({source.path}#{source.index})"
                     if source else "system font (subset off)"),
        "pdf_kb": {"service": round(len(service_pdf) / 1024, 1), "plain": round(len(plain_pdf) / 1024, 1)},
    }, ratios=[
        Ratio("p50 ms, service / plain WeasyPrint", ours["p50_ms"], theirs["p50_ms"],
              higher_is_better=False),
        Ratio("p95 ms, service / plain WeasyPrint", ours["p95_ms"], theirs["p95_ms"],
              higher_is_better=False),
        Ratio(f"service p50 ms / the {GOAL_P50_MS:g} ms goal", ours["p50_ms"], GOAL_P50_MS,
              higher_is_better=False, goal=1.0),
        # What a render costs a worker that has a core to itself (rendering does no I/O).
        Ratio(f"service CPU p50 ms / the {GOAL_P50_MS:g} ms goal", ours["cpu_p50_ms"], GOAL_P50_MS,
              higher_is_better=False, goal=1.0),
    ])
    return [report]
