"""Planner figures: cold start of `matrix plan` and planning a long release history.

Run: python bench/bench_plan.py
Targets: cold start at most 15x a bare `python -c pass` measured in the same run;
every release of a long releases file planned in one process in under 1 s.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from matrix.config import load_config
from matrix.plan import plan_release
from matrix.versions import parse_known_releases

RUNS = 15


def median_seconds(argv: list[str]) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def cold_start() -> None:
    bare = median_seconds([sys.executable, "-c", "pass"])
    plan = median_seconds(
        [sys.executable, "-m", "matrix", "plan", "--version", "2.11.5", "--format", "json"]
    )
    print(
        f"cold start: python -c pass {bare * 1000:.1f} ms, "
        f"matrix plan --format json {plan * 1000:.1f} ms, ratio {plan / bare:.1f}x "
        f"(target <= 15x; median of {RUNS})"
    )


def history() -> None:
    # Every patch 0-14 of every minor line versions.toml covers: 2.0-2.20, 3.0-3.8.
    lines = [f"2.{m}.{p}" for m in range(21) for p in range(15)]
    lines += [f"3.{m}.{p}" for m in range(9) for p in range(15)]
    with tempfile.TemporaryDirectory() as folder:
        releases = Path(folder) / "releases.txt"
        releases.write_text("\n".join(lines) + "\n")
        start = time.perf_counter()
        loaded = load_config()
        known = parse_known_releases(releases.read_text().splitlines(), str(releases))
        plans = [
            plan_release(loaded, str(version), commit="a597971f7156", known=known)
            for version in known
        ]
        elapsed = time.perf_counter() - start
    images = sum(len(plan.images) for plan in plans)
    tags = sum(len(plan.targets) for plan in plans)
    print(
        f"history: {len(plans)} releases, {images} images, {tags} tags planned in "
        f"{elapsed * 1000:.0f} ms, config load included (target < 1000 ms)"
    )


if __name__ == "__main__":
    cold_start()
    history()
