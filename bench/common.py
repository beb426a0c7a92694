"""What every benchmark shares: percentiles, the report format, result files."""
from __future__ import annotations

import json
import platform
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import quantiles

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def percentile(samples: list[float], p: float) -> float:
    """The p-th percentile (0 < p < 100) of ``samples`` (inclusive method)."""
    if not samples:
        raise ValueError("no samples")
    if len(samples) == 1:
        return samples[0]
    return quantiles(samples, n=100, method="inclusive")[round(p) - 1]


def summary_ms(samples_s: list[float]) -> dict:
    ms = [s * 1000 for s in samples_s]
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 3), "p95_ms": round(percentile(ms, 95), 3),
            "p99_ms": round(percentile(ms, 99), 3)}


@dataclass
class Ratio:
    """``value`` of the system against ``baseline`` measured in the same run."""

    label: str
    value: float
    baseline: float
    higher_is_better: bool
    goal: float | None = None

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")

    @property
    def meets_goal(self) -> bool | None:
        if self.goal is None:
            return None
        return self.ratio >= self.goal if self.higher_is_better else self.ratio <= self.goal


@dataclass
class Report:
    name: str
    figures: dict = field(default_factory=dict)
    ratios: list[Ratio] = field(default_factory=list)

    def print(self) -> None:
        print(f"\n== {self.name} ==")
        for key, value in self.figures.items():
            print(f"  {key}: {value}")
        for r in self.ratios:
            goal = ""
            if r.goal is not None:
                cmp = "≥" if r.higher_is_better else "≤"
                goal = f"  (goal {cmp} {r.goal}: {'met' if r.meets_goal else 'NOT met'})"
            print(f"  ratio {r.label}: {r.value:.4g} / {r.baseline:.4g} = {r.ratio:.3f}{goal}")

    def to_dict(self) -> dict:
        return {"name": self.name, "figures": self.figures,
                "ratios": [{**asdict(r), "ratio": r.ratio, "meets_goal": r.meets_goal} for r in self.ratios]}


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine()}


def write_results(reports: list[Report]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    body = {"when": stamp, "machine": machine(), "reports": [r.to_dict() for r in reports]}
    path = RESULTS_DIR / f"bench-{stamp}.json"
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False))
    (RESULTS_DIR / "latest.json").write_text(json.dumps(body, indent=2, ensure_ascii=False))
    return path
