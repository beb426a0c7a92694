"""``python -m bench [name ...]``: run the benchmarks (all by default) and write results.

Each ``bench/bench_<name>.py`` defines ``run() -> list[Report]``.
"""
from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

from .common import write_results


def available() -> list[str]:
    return sorted(p.stem[len("bench_"):] for p in Path(__file__).parent.glob("bench_*.py"))


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = set(names) - set(available())
    if unknown:
        print(f"unknown benchmarks {sorted(unknown)}; available: {available()}", file=sys.stderr)
        return 2
    reports = []
    for name in names:
        started = time.monotonic()
        module = importlib.import_module(f"bench.bench_{name}")
        for report in module.run():
            report.figures.setdefault("wall_s", round(time.monotonic() - started, 1))
            report.print()
            reports.append(report)
    path = write_results(reports)
    print(f"\nresults written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
