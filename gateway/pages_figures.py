"""How the live dashboard and the organiser's projector screen word their figures: a quantity
in one unit (t or kg, chosen by magnitude), and the coverage of the estimated footprint, whose
bar never passes 100 % and whose sentence says what a figure over 100 % or a missing estimate
means. Pure functions of their inputs (and of the page's language)."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from .pages_render import number

KG_PER_TONNE = 1000
UNITS = ("kg", "t")
OVER_FIGURE = "> 100%"


def unit_for(*kgs: float | None) -> str:
    """``t`` when the largest quantity is a tonne or more, else ``kg``: figures shown side by
    side share one unit, so nobody compares 980 kg with 1.2 t."""
    largest = max((abs(float(kg or 0)) for kg in kgs), default=0.0)
    return "t" if largest >= KG_PER_TONNE else "kg"


def amount(kg: float | None, unit: str | None = None) -> str:
    """``kg`` as a number in ``unit`` (by default the one its magnitude chooses), short enough
    to read across a room: three significant digits below 100, whole numbers above."""
    unit = unit or unit_for(kg)
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, not {unit!r}")
    value = float(kg or 0) / (KG_PER_TONNE if unit == "t" else 1)
    size = abs(value)
    decimals = 0 if size >= 100 or (unit == "kg" and value == int(value)) else (1 if size >= 10 else 2)
    return number(value, decimals)


def percent_text(percent: int) -> str:
    return f"{number(percent, 0)}%"


@dataclass(frozen=True)
class Coverage:
    """The neutralised kilograms against the estimated footprint of the event's guests.

    ``state``: ``unavailable`` (the footprint could not be read), ``nothing`` (no estimate and
    nothing neutralised yet), ``no_estimate`` (neutralised, but no guest estimated a footprint
    for this scene: nothing to compare with), ``partial``, ``met`` or ``over``.
    ``percent``: neutralised ÷ estimated, rounded, not capped (None without an estimate).
    ``bar``: the bar's fill in percent, 0 to 100. ``figure``: what the big counter shows,
    never a bare figure over 100 %. ``sentence``: what the figure means."""

    state: str
    percent: int | None
    bar: int
    figure: str
    sentence: str


def coverage(neutralised_kg: float | None, estimated_kg: float | None) -> Coverage:
    neutralised = max(0.0, float(neutralised_kg or 0))
    if estimated_kg is None:
        return Coverage("unavailable", None, 0, "—",
                        str(_l("The estimated footprint cannot be read right now.")))
    estimated = max(0.0, float(estimated_kg))
    if estimated == 0:
        if neutralised == 0:
            return Coverage("nothing", None, 0, "—",
                            str(_l("No guest has estimated or neutralised a footprint here yet.")))
        # Orders may name a fixed quantity, or an estimate made for another scene or for a
        # guest's whole life: the scene's footprint counts only trip estimates made for it.
        return Coverage("no_estimate", None, 0, "—", str(_l(
            "Guests neutralised without estimating a footprint for this event (a fixed amount, or an "
            "estimate made elsewhere), so there is no estimate to compare with.")))
    ratio = neutralised / estimated
    if ratio < 1:
        # 99.6 % is not all of it: below the estimate the figure never reads 100 %.
        percent = min(99, int(ratio * 100 + 0.5))
        return Coverage("partial", percent, percent, percent_text(percent), str(_l(
            "%(share)s of the estimated footprint is neutralised.", share=percent_text(percent))))
    percent = int(ratio * 100 + 0.5)
    if percent <= 100:
        return Coverage("met", 100, 100, percent_text(100),
                        str(_l("The estimated footprint is fully neutralised.")))
    return Coverage("over", percent, 100, OVER_FIGURE, str(_l(
        "More than the estimated footprint was offset (%(share)s): orders are rounded up to whole "
        "kilograms, and some guests neutralise more than they estimated, or without an estimate.",
        share=percent_text(percent))))
