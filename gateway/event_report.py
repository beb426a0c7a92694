"""The event report for organisers: ``GET /api/v1/scenes/<slug>/report`` (operator key with the
``scenes`` scope, docs/contract.md §5), a bilingual PDF or a CSV.

The gateway composes it, as the operator dashboard does, from what the services publish: the
scene, its guests' footprint, the organiser's own inputs (venue electricity, catering, waste),
the current factor set, and every retired or completed order of the scene with its serials
and registry records. The orders are read with the requesting operator's signed assertion: an
operator who may manage the scene may see which credits were retired for it.

What the report adds up is exact: kilograms as Decimals, the credits retired the sum of the
orders' ``quantity_kg``. Coverage is stated as it is: a share below the footprint, "more than
the estimated footprint" above it; the claim (worded after ISO 14068-1) follows the coverage
and never says the event was certified or verified.
"""
from __future__ import annotations

import csv
import io
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import requests
from flask import Flask, Response, current_app, g, render_template, request
from weasyprint import CSS, HTML
from weasyprint.urls import URLFetcher

from diandian_common.auth import OPERATOR_ASSERTION_HEADER, Operator, sign_operator_assertion
from diandian_common.errors import ApiError
from diandian_common.web import REQUEST_ID_HEADER

from .keys import authorize_request

log = logging.getLogger(__name__)

ROUTE = "/api/v1/scenes/<slug>/report"
NEUTRALISED = ("retired", "completed")  # order states whose credits are retired
MEDIA_TYPES = {"pdf": "application/pdf", "csv": "text/csv"}
# Without ?format= and without an Accept naming one of the two (a browser's link, */*): the PDF.
DEFAULT_FORMAT = "pdf"
ORDER_PAGE = 200
MAX_ORDER_PAGES = 1000  # 200,000 orders: beyond that the report refuses rather than undercount
TEMPLATE = "report/event_report.html"
STYLESHEET = Path(__file__).resolve().parent / "templates" / "report" / "event_report.css"
GRAM = Decimal("0.001")
ZERO = Decimal("0.000")

GUEST_CATEGORIES = ("flights", "transport", "accommodation", "food", "home_energy")
ORGANISER_CATEGORIES = ("venue_energy", "catering", "waste")
CATEGORY_LABELS = {
    "flights": ("航班", "Flights"), "transport": ("地面交通", "Ground transport"),
    "accommodation": ("住宿", "Lodging"), "food": ("餐饮（嘉宾填报）", "Meals (guests)"),
    "home_energy": ("能源", "Energy"), "venue_energy": ("场馆用电", "Venue electricity"),
    "catering": ("会务餐饮", "Catering"), "waste": ("废弃物", "Waste"),
}
LINE_LABELS = {"electricity": ("场馆用电", "Venue electricity"), "meal": ("餐食", "Meals"),
               "waste": ("废弃物", "Waste")}
CSV_COLUMNS = ("section", "item", "quantity", "unit", "kg_co2e", "kg_co2e_without_rf", "project",
               "serial_range", "registry_records", "reference", "note")
# A cell a spreadsheet would run as a formula (OWASP "CSV injection") is written as text.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

_render_lock = threading.Lock()  # one WeasyPrint render at a time per process


# --- the report: pure composition ------------------------------------------------------------

def kg(value) -> Decimal:
    """A kg figure from JSON (float or int) as an exact Decimal of grams."""
    return Decimal(str(value)).quantize(GRAM, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class CategoryTotal:
    key: str
    kg: Decimal
    kg_without_rf: Decimal | None   # None: the footprint did not record it

    @property
    def label_zh(self) -> str:
        return CATEGORY_LABELS.get(self.key, (self.key, self.key))[0]

    @property
    def label_en(self) -> str:
        return CATEGORY_LABELS.get(self.key, (self.key, self.key))[1]


@dataclass(frozen=True)
class RetiredOrder:
    id: str
    quantity_kg: int
    project_code: str
    project_name: str
    project_name_en: str
    registry: str
    vintage: int | None
    serial_range: str
    retired_at: str
    registry_records: tuple[str, ...]   # cancellation ids at the registry
    anchored_kg: int


@dataclass(frozen=True)
class ProjectTotal:
    code: str
    name: str
    name_en: str
    registry: str
    vintage: int | None
    kg: int
    orders: int


@dataclass(frozen=True)
class EventReport:
    scene: dict
    generated_at: datetime
    attendees: int | None
    participants: int
    estimates: int
    guest_categories: tuple[CategoryTotal, ...]
    guests_kg: Decimal
    guests_kg_without_rf: Decimal | None
    organiser: dict
    organiser_categories: tuple[CategoryTotal, ...]
    organiser_kg: Decimal
    factor_set: dict
    orders: tuple[RetiredOrder, ...]
    projects: tuple[ProjectTotal, ...] = field(default=())
    # Estimates whose flights have no figure without radiative forcing (made with factor set 2025.1).
    without_rf_unknown: int = 0

    @property
    def footprint_kg(self) -> Decimal:
        return self.guests_kg + self.organiser_kg

    @property
    def footprint_kg_without_rf(self) -> Decimal | None:
        return None if self.guests_kg_without_rf is None else self.guests_kg_without_rf + self.organiser_kg

    @property
    def retired_kg(self) -> int:
        return sum(order.quantity_kg for order in self.orders)

    @property
    def anchored_kg(self) -> int:
        return sum(order.anchored_kg for order in self.orders)

    @property
    def awaiting_registry_kg(self) -> int:
        return self.retired_kg - self.anchored_kg

    @property
    def coverage(self) -> str:
        """``no_footprint``, ``none``, ``partial``, ``whole`` or ``more`` (than the footprint)."""
        if self.footprint_kg <= 0:
            return "no_footprint"
        if self.retired_kg == 0:
            return "none"
        if self.retired_kg < self.footprint_kg:
            return "partial"
        return "whole" if self.retired_kg == self.footprint_kg else "more"

    @property
    def coverage_percent(self) -> Decimal | None:
        """The share of the footprint offset, only where it is one (at most 100 %)."""
        if self.coverage not in ("none", "partial", "whole"):
            return None
        return (Decimal(self.retired_kg) * 100 / self.footprint_kg).quantize(Decimal("0.1"), ROUND_HALF_UP)

    @property
    def supports_neutrality(self) -> bool:
        return self.coverage in ("whole", "more")

    @property
    def boundary(self) -> dict[str, list[tuple[str, str]]]:
        """What the footprint includes and leaves out, (zh, en) each."""
        included = [("嘉宾往返交通（航班、铁路、公路、市内交通），按嘉宾填报",
                     "Guests' travel to and from the event (flights, rail, road, local transport), as "
                     "entered by the guests"),
                    ("嘉宾住宿与嘉宾填报的餐食", "Guests' lodging and the meals they entered")]
        excluded = []
        entered = {line["type"] for line in self.organiser.get("lines", [])}
        for kind, zh, en in (("electricity", "场馆用电", "Venue electricity"),
                             ("meal", "会务餐饮", "Catering served by the organiser"),
                             ("waste", "会议废弃物", "The event's waste")):
            target = included if kind in entered else excluded
            target.append((f"{zh}（主办方填报）" if kind in entered else f"{zh}（主办方未填报）",
                           f"{en} (entered by the organiser)" if kind in entered
                           else f"{en} (not entered by the organiser)"))
        for unpriced in self.organiser.get("unpriced", []):
            excluded.append((f"{unpriced.get('input')}：{unpriced.get('reason')}",
                             f"{unpriced.get('input')}: {unpriced.get('reason')}"))
        excluded += [("未填报估算的参会者的排放（不作外推）",
                      "Attendees who did not estimate their trip (not extrapolated)"),
                     ("场馆建设、物料、印刷品、工作人员差旅等其他排放",
                      "Everything else: venue construction, materials, print, staff travel")]
        return {"in": included, "out": excluded}


def _categories(values: dict, without_rf: dict | None, keys: tuple[str, ...]) -> tuple[CategoryTotal, ...]:
    return tuple(CategoryTotal(key, kg(values.get(key) or 0),
                               None if without_rf is None else kg(without_rf.get(key) or 0))
                 for key in keys if key in values or (without_rf and key in without_rf))


def retired_order(order: dict) -> RetiredOrder:
    project = order.get("project") or {}
    retirement = order.get("retirement") or {}
    registry = retirement.get("registry") or {}
    ranges = retirement.get("serial_ranges") or [r for r in [retirement.get("serial_range")] if r]
    return RetiredOrder(
        id=str(order.get("id", "")), quantity_kg=int(order.get("quantity_kg") or 0),
        project_code=str(project.get("code", "")), project_name=str(project.get("name", "")),
        project_name_en=str(project.get("name_en") or ""), registry=str(project.get("registry", "")),
        vintage=project.get("vintage"), serial_range="; ".join(ranges),
        retired_at=str(retirement.get("retired_at") or ""),
        registry_records=tuple(str(r.get("cancellation_id", "")) for r in registry.get("records") or []),
        anchored_kg=int(registry.get("anchored_kg") or 0))


def project_totals(orders: tuple[RetiredOrder, ...]) -> tuple[ProjectTotal, ...]:
    totals: dict[str, ProjectTotal] = {}
    for order in orders:
        known = totals.get(order.project_code)
        totals[order.project_code] = ProjectTotal(
            order.project_code, order.project_name, order.project_name_en, order.registry, order.vintage,
            (known.kg if known else 0) + order.quantity_kg, (known.orders if known else 0) + 1)
    return tuple(sorted(totals.values(), key=lambda p: p.code))


def compose(scene: dict, footprint: dict, organiser: dict, factor_set: dict, orders: list[dict],
            generated_at: datetime) -> EventReport:
    """The report from the services' answers (their JSON as published)."""
    without_rf = footprint.get("categories_without_rf")
    total_without_rf = footprint.get("total_kg_without_rf")
    retired = tuple(retired_order(order) for order in orders)
    return EventReport(
        scene=scene, generated_at=generated_at, attendees=organiser.get("attendees"),
        participants=int(footprint.get("participants") or 0), estimates=int(footprint.get("estimates") or 0),
        guest_categories=_categories(footprint.get("categories") or {}, without_rf, GUEST_CATEGORIES),
        guests_kg=kg(footprint.get("total_kg") or 0),
        guests_kg_without_rf=None if total_without_rf is None else kg(total_without_rf),
        organiser=organiser,
        organiser_categories=_categories(organiser.get("categories") or {}, organiser.get("categories") or {},
                                         ORGANISER_CATEGORIES),
        organiser_kg=kg(organiser.get("total_kg") or 0),
        factor_set=factor_set, orders=retired, projects=project_totals(retired),
        without_rf_unknown=int(footprint.get("estimates_without_rf_unknown") or 0))


def number(value: Decimal | int | None) -> str:
    """kg as written in the report and the CSV: grams for kg figures, whole numbers as they are."""
    if value is None:
        return ""
    return f"{value:.3f}" if isinstance(value, Decimal) else str(value)


def claim(report: EventReport) -> dict[str, str]:
    """The claim the report supports, in Chinese and English (after ISO 14068-1: footprint
    quantified, reductions, offsetting with retired credits, no double claims)."""
    name_zh = report.scene.get("name") or report.scene.get("slug", "")
    name_en = report.scene.get("name_en") or name_zh
    version = report.factor_set.get("version", "")
    footprint, retired = number(report.footprint_kg), report.retired_kg
    not_certified = {
        "zh": "本声明由主办方依据平台数据作出，不是认证，亦未经第三方核查。",
        "en": "This is the organiser's own statement from the platform's data; it is not a certification "
              "and has not been verified by a third party.",
    }
    if report.coverage == "no_footprint":
        return {"zh": f"「{name_zh}」尚无估算的碳足迹，本报告不支持碳中和声明。{not_certified['zh']}",
                "en": f"No footprint has been estimated for {name_en}; this report supports no "
                      f"carbon-neutrality claim. {not_certified['en']}"}
    if not report.supports_neutrality:
        return {"zh": f"本报告不支持碳中和声明：为「{name_zh}」注销的碳信用 {retired} kg CO2e，"
                      f"覆盖估算碳足迹 {footprint} kg CO2e 的 {report.coverage_percent}%。"
                      f"{not_certified['zh']}",
                "en": f"This report does not support a claim of carbon neutrality: the credits retired for "
                      f"{name_en} ({retired} kg CO2e) cover {report.coverage_percent}% of its estimated "
                      f"footprint ({footprint} kg CO2e). {not_certified['en']}"}
    more_zh = "，多于估算碳足迹" if report.coverage == "more" else ""
    more_en = ", more than the estimated footprint" if report.coverage == "more" else ""
    registry_zh = (f"其中 {report.anchored_kg} kg 已在登记簿确认注销，"
                   f"{report.awaiting_registry_kg} kg 等待登记簿注销。")
    registry_en = (f"Of these, {report.anchored_kg} kg are confirmed cancelled at the registry and "
                   f"{report.awaiting_registry_kg} kg await registry cancellation.")
    return {
        "zh": f"碳中和声明（参照 ISO 14068-1 的表述）：「{name_zh}」在上述边界内的碳足迹"
              f"已按排放因子集 {version} 量化为 {footprint} kg CO2e；本报告未记录减排措施；"
              f"剩余排放以为本活动注销的 {retired} kg CO2e 碳信用抵消{more_zh}"
              f"（{len(report.orders)} 笔订单）。每个信用序列号在点点台账中只注销一次，"
              f"不得再用于任何其他声明；参会者个人证书所对应的是同一批信用与同一部分排放，"
              f"与本声明是同一项声明，而非两项。{registry_zh}{not_certified['zh']}",
        "en": f"Carbon-neutrality claim (worded after ISO 14068-1): the footprint of {name_en} within the "
              f"boundary above was quantified at {footprint} kg CO2e with factor set {version}; this report "
              f"records no reductions; the remaining emissions were offset by {retired} kg CO2e of carbon "
              f"credits retired for this event{more_en} ({len(report.orders)} orders). Each credit serial is "
              f"retired once in the Diandian ledger and may not support any other claim; the participants' "
              f"own certificates concern the same credits and the same emissions, so they and this claim are "
              f"one claim, not two. {registry_en} {not_certified['en']}",
    }


def coverage_text(report: EventReport) -> dict[str, str]:
    if report.coverage == "no_footprint":
        return {"zh": "尚无估算的碳足迹。", "en": "No footprint has been estimated."}
    if report.coverage == "more":
        return {"zh": f"抵消量多于估算碳足迹：注销 {report.retired_kg} kg，"
                      f"估算 {number(report.footprint_kg)} kg。",
                "en": f"More than the estimated footprint was offset: {report.retired_kg} kg retired for "
                      f"{number(report.footprint_kg)} kg estimated."}
    return {"zh": f"已抵消估算碳足迹的 {report.coverage_percent}%。",
            "en": f"{report.coverage_percent}% of the estimated footprint is offset."}


def changelog_lines(factor_set: dict) -> list[str]:
    """The factor set's changelog, whatever its shape (text, a list of texts or of entries)."""
    changelog = factor_set.get("changelog")
    if not changelog:
        return []
    if isinstance(changelog, str):
        return [changelog]
    if isinstance(changelog, dict):
        changelog = [changelog]
    lines = []
    for entry in changelog if isinstance(changelog, list) else []:
        if isinstance(entry, dict):
            lines.append(" — ".join(str(v) for v in entry.values() if isinstance(v, (str, int, float))))
        else:
            lines.append(str(entry))
    return lines


METHOD = {
    "zh": "每位参会者以其最近一次行程估算计入；每一行为活动量 × 已公布的排放因子（来源见因子集），"
          "按克四舍五入后相加。航班计入辐射强迫（高空非二氧化碳增温效应），另列不含辐射强迫的数值（如有记录）。"
          "主办方填报的场馆用电、餐饮与废弃物以当前因子集计算。",
    "en": "Each participant counts with their latest trip estimate; each line is an activity × a "
          "published emission factor (sources in the factor set), rounded to grams and added up. Flights "
          "include radiative forcing (the extra warming of non-CO2 effects at altitude); the figures without "
          "it are shown where recorded. The organiser's venue electricity, catering and waste are priced "
          "with the current factor set.",
}


# --- CSV and PDF ---------------------------------------------------------------------------

def _cell(value) -> str:
    is_number = isinstance(value, (Decimal, int)) and not isinstance(value, bool)
    text = number(value) if is_number else str(value or "")
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def csv_rows(report: EventReport) -> list[dict]:
    scene, rows = report.scene, []

    def row(section: str, item: str, **values) -> None:
        rows.append({"section": section, "item": item, **values})

    for key in ("slug", "name", "name_en", "type", "location", "province", "starts_on", "ends_on"):
        row("scene", key, note=scene.get(key) or "")
    row("attendees", "registered", unit="people",
        quantity="not entered" if report.attendees is None else report.attendees)
    row("attendees", "estimated", quantity=report.participants, unit="people",
        note="participants who estimated their trip")
    row("attendees", "estimates", quantity=report.estimates, unit="estimates")
    for kind, (zh, en) in (("in", ("包含", "included")), ("out", ("不包含", "excluded"))):
        for item_zh, item_en in report.boundary[kind]:
            row("boundary", en, note=f"{item_en} / {item_zh}")
    for category in report.guest_categories:
        row("footprint_guests", category.key, kg_co2e=category.kg,
            kg_co2e_without_rf=_recorded(category.kg_without_rf))
    row("footprint_guests", "total", kg_co2e=report.guests_kg,
        kg_co2e_without_rf=_recorded(report.guests_kg_without_rf))
    if report.without_rf_unknown:
        row("footprint_guests", "estimates_without_rf_unknown", quantity=report.without_rf_unknown,
            unit="estimates", note="flights with no recorded figure without radiative forcing")
    for line in report.organiser.get("lines", []):
        quantity, unit = _line_quantity(line)
        factor = line.get("factor") or {}
        line_kg = kg(line.get("kg", 0))
        row("footprint_organiser", line.get("type", ""), quantity=quantity, unit=unit, kg_co2e=line_kg,
            kg_co2e_without_rf=line_kg, reference=f"{factor.get('key', '')}: {factor.get('source', '')}",
            note=line.get("calculation", ""))
    for unpriced in report.organiser.get("unpriced", []):
        row("footprint_organiser", f"unpriced {unpriced.get('input', '')}", note=unpriced.get("reason", ""))
    row("footprint_organiser", "total", kg_co2e=report.organiser_kg, kg_co2e_without_rf=report.organiser_kg)
    row("footprint", "total", kg_co2e=report.footprint_kg,
        kg_co2e_without_rf=_recorded(report.footprint_kg_without_rf))
    row("method", "factor_set", note=report.factor_set.get("version", ""),
        reference=report.factor_set.get("title", ""))
    row("method", "statement", note=METHOD["en"])
    for line in changelog_lines(report.factor_set):
        row("method", "changelog", note=line)
    for order in report.orders:
        row("credits", order.id, quantity=order.quantity_kg, unit="kg CO2e", project=order.project_code,
            serial_range=order.serial_range,
            registry_records=" ".join(order.registry_records) or "awaiting registry cancellation",
            reference=f"{order.registry} {order.vintage or ''}".strip(), note=order.retired_at)
    for project in report.projects:
        row("credits_by_project", project.code, quantity=project.kg, unit="kg CO2e", project=project.code,
            reference=f"{project.registry} {project.vintage or ''}".strip(),
            note=f"{project.orders} orders · {project.name_en or project.name}")
    row("credits_total", "retired_kg", quantity=report.retired_kg, unit="kg CO2e")
    row("credits_total", "orders", quantity=len(report.orders), unit="orders")
    row("credits_total", "registry_anchored_kg", quantity=report.anchored_kg, unit="kg CO2e")
    row("credits_total", "awaiting_registry_kg", quantity=report.awaiting_registry_kg, unit="kg CO2e")
    percent = report.coverage_percent
    row("coverage", report.coverage, quantity="" if percent is None else str(percent),
        unit="" if percent is None else "%", note=coverage_text(report)["en"])
    statement = claim(report)
    row("claim", "en", note=statement["en"])
    row("claim", "zh", note=statement["zh"])
    return rows


def _recorded(value: Decimal | None):
    return "not recorded" if value is None else value


def _line_quantity(line: dict) -> tuple[object, str]:
    if line.get("type") == "electricity":
        return kg(line.get("kwh", 0)), "kWh"
    if line.get("type") == "meal":
        return int(line.get("count") or 0), f"{line.get('diet', '')} meals"
    return kg(line.get("waste_kg", 0)), f"kg, {line.get('treatment', '')}"


def to_csv(report: EventReport) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in csv_rows(report):
        writer.writerow({column: _cell(row.get(column, "")) for column in CSV_COLUMNS})
    # With a byte-order mark, spreadsheet programs read the Chinese texts as UTF-8.
    return "\ufeff".encode() + buffer.getvalue().encode("utf-8")


class NothingFetcher(URLFetcher):
    """The report loads nothing: no network, no file, whatever the scene's texts contain."""

    def fetch(self, url, headers=None):
        raise ValueError(f"the event report loads no resources, not {url!r}")


def to_html(report: EventReport) -> str:
    return render_template(TEMPLATE, report=report, claim=claim(report), coverage=coverage_text(report),
                           method=METHOD, changelog=changelog_lines(report.factor_set), number=number,
                           line_quantity=_line_quantity, line_labels=LINE_LABELS, kg=kg)


def to_pdf(report: EventReport) -> bytes:
    html = to_html(report)
    with _render_lock:
        document = HTML(string=html, url_fetcher=NothingFetcher())
        return document.write_pdf(stylesheets=[CSS(filename=str(STYLESHEET))])


# --- reading the services -------------------------------------------------------------------

class Sources:
    """The services' answers the report needs, read as the requesting operator."""

    def __init__(self, operator: Operator):
        self.upstreams = current_app.extensions["upstreams"]
        self.operator = operator

    def get(self, service: str, path: str, params: dict | None = None, *, as_operator: bool = False,
            missing_ok: bool = False) -> dict | None:
        """The JSON body of a 200; None for a 404 when ``missing_ok``; else 503 naming the service."""
        headers = {REQUEST_ID_HEADER: g.get("request_id", "")}
        if as_operator:
            headers[OPERATOR_ASSERTION_HEADER] = sign_operator_assertion(self.operator, "GET", path)
        try:
            response = self.upstreams.session.get(
                self.upstreams.base_urls[service] + path, params=params, headers=headers,
                timeout=(self.upstreams.connect_timeout, self.upstreams.read_timeout))
            body = response.json() if response.status_code in (200, 404) else None
        except (requests.RequestException, ValueError) as exc:
            log.warning("%s unavailable for the event report (%s): %s", service, path, exc)
            raise unavailable(service) from exc
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code != 200 or not isinstance(body, dict):
            log.warning("%s answered %s for the event report (%s)", service, response.status_code, path)
            raise unavailable(service)
        return body

    def neutralised_orders(self, slug: str) -> list[dict]:
        """Every retired or completed order of the scene, all pages."""
        def read_page(params: dict) -> dict:
            return self.get("orders", "/api/v1/orders", params, as_operator=True)

        found, cut_short = neutralised_orders(read_page, slug, MAX_ORDER_PAGES)
        if cut_short:
            raise ApiError(503, "service_unavailable", f"the scene has more than "
                                                       f"{MAX_ORDER_PAGES * ORDER_PAGE} orders: too many "
                                                       "for one report")
        return found


def neutralised_orders(read_page: Callable[[dict], dict | None], slug: str,
                       max_pages: int) -> tuple[list[dict], bool]:
    """The scene's retired or completed orders over the pages of ``GET /api/v1/orders`` as
    ``read_page(params)`` answers them (None: no answer, stop there), and whether
    ``max_pages`` cut the list short. The report and the dashboard page through the same way."""
    found, after = [], None
    for _ in range(max_pages):
        body = read_page({"scene": slug, "limit": ORDER_PAGE, **({"after": after} if after else {})})
        if body is None:
            return found, False
        found += [o for o in body.get("items") or [] if o.get("status") in NEUTRALISED]
        after = body.get("next_after")
        if not after:
            return found, False
    return found, True


def unavailable(service: str) -> ApiError:
    return ApiError(503, "service_unavailable", f"the {service} service is unavailable: no report")


def gather(slug: str, operator: Operator) -> EventReport:
    sources, path = Sources(operator), f"/api/v1/scenes/{quote(slug, safe='')}"
    scene = sources.get("calculator", path, missing_ok=True)
    if scene is None:
        raise ApiError(404, "not_found", f"scene {slug!r} not found")
    return compose(scene, sources.get("calculator", f"{path}/footprint"),
                   sources.get("calculator", f"{path}/organiser-inputs"),
                   sources.get("calculator", "/api/v1/factors"), sources.neutralised_orders(slug),
                   datetime.now(UTC))


# --- the route ------------------------------------------------------------------------------

def requested_format() -> str:
    """``?format=`` if given (422 for another), else the best of ``Accept`` (406 for none)."""
    chosen = request.args.get("format")
    if chosen is not None:
        if chosen not in MEDIA_TYPES:
            raise ApiError(422, "validation_error", "some fields are invalid",
                           {"format": [f"one of {', '.join(MEDIA_TYPES)}"]})
        return chosen
    if not request.accept_mimetypes:
        return DEFAULT_FORMAT
    ordered = [MEDIA_TYPES[DEFAULT_FORMAT], *(t for f, t in MEDIA_TYPES.items() if f != DEFAULT_FORMAT)]
    best = request.accept_mimetypes.best_match(ordered)
    if best is None:
        raise ApiError(406, "not_acceptable",
                       f"the event report is {' or '.join(MEDIA_TYPES.values())}; Accept allows neither")
    return next(f for f, t in MEDIA_TYPES.items() if t == best)


def report_response(slug: str, operator: Operator, chosen: str) -> Response:
    report = gather(slug, operator)
    if chosen == "csv":
        content, mimetype = to_csv(report), "text/csv"  # Flask adds "; charset=utf-8"
    else:
        content, mimetype = to_pdf(report), "application/pdf"
    response = Response(content, mimetype=mimetype)
    response.headers["Content-Disposition"] = f"attachment; filename={report.scene['slug']}-report.{chosen}"
    response.headers["Cache-Control"] = "no-store"
    response.vary.add("Accept")
    return response


def register(app: Flask) -> None:
    @app.get(ROUTE)
    def event_report(slug):
        operator = authorize_request()  # 401 without a key, 403 without the scenes scope
        return report_response(slug, operator, requested_format())


# The route as the gateway's OpenAPI document describes it (gateway.openapi.merge adds it).
OPENAPI_PATH = "/api/v1/scenes/{slug}/report"
OPENAPI_OPERATION = {
    "tags": ["calculator"],
    "operationId": "get_event_report",
    "summary": "The event report for organisers (PDF or CSV)",
    "description": (
        "Composed by the gateway: the boundary (what the footprint includes and leaves out), attendees "
        "and how many estimated, the footprint by category with and without radiative forcing (\"not "
        "recorded\" where the footprint has no without-RF figure), the organiser's lines, the factor-set "
        "version and method statement, every credit retired for the event (orders, projects, serial "
        "ranges, registry records) with their total, the coverage of the footprint, and the claim it "
        "supports, worded after ISO 14068-1 and never a certification. The format is `?format=pdf|csv`, "
        "else the best of `Accept`; without either, the PDF (bilingual, Chinese and English). The CSV "
        "has one row per line with a `section` column; `credits_total` rows give the kilograms retired "
        "(the sum of the orders' `quantity_kg`) and the number of orders."),
    "parameters": [
        {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "format", "in": "query", "required": False,
         "description": "pdf or csv; overrides Accept",
         "schema": {"type": "string", "enum": list(MEDIA_TYPES)}}],
    "responses": {
        "200": {"description": "The report, as an attachment `<slug>-report.pdf` or `.csv`",
                "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}},
                            "text/csv": {"schema": {"type": "string"}}}},
        "404": {"description": "No such scene", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}},
        "406": {"description": "`not_acceptable`: Accept allows neither PDF nor CSV", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        "422": {"description": "`validation_error`: a format other than pdf or csv", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    },
}
