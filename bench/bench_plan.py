"""Planner figures: cold start of `matrix plan` and planning a long release history.

Run: python bench/bench_plan.py
Targets: cold start at most 15x a bare `python -c pass` measured in the same run;
every release of Prefect's history (tests/support/prefect_releases.py, 807 versions
in publish order) planned in one process in under 1 s, against the whole releases
file and replayed with only the releases published before each.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.prefect_releases import prefect_history

from matrix.config import load_config
from matrix.plan import plan_release
from matrix.versions import parse_known_releases

RUNS = 15
REPEATS = 5
COMMIT = "a597971f7156"


def median_seconds(argv: list[str]) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def best_of(work: Callable[[], list]) -> tuple[float, list]:
    """The fastest of REPEATS runs: what the code costs, less the load of the moment."""
    timings = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = work()
        timings.append(time.perf_counter() - start)
    return min(timings), result


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
    """Prefect's whole history through the planner, two ways, config load included."""
    versions = prefect_history()
    with tempfile.TemporaryDirectory() as folder:
        releases = Path(folder) / "releases.txt"
        releases.write_text("\n".join(versions) + "\n")

        def plan_history(replaying: bool) -> list:
            loaded = load_config()
            known = parse_known_releases(releases.read_text().splitlines(), str(releases))
            # Replaying, each release knows only those before it, as the workflow met them.
            return [
                plan_release(loaded, str(v), commit=COMMIT, known=known[:i] if replaying else known)
                for i, v in enumerate(known)
            ]

        every, plans = best_of(lambda: plan_history(replaying=False))
        replayed_seconds, replayed = best_of(lambda: plan_history(replaying=True))
        command = [sys.executable, "-m", "matrix", "plan", "--version", versions[-1]]
        command += ["--releases", str(releases), "--format", "json"]
        one = median_seconds(command)
    images = sum(len(plan.images) for plan in plans)
    tags = sum(len(plan.targets) for plan in plans)
    floating = sum(t.kind.floating for plan in replayed for t in plan.targets)
    print(
        f"history: {len(plans)} releases, {images} images, {tags} tags planned in "
        f"{every * 1000:.0f} ms against the whole file (target < 1000 ms; best of {REPEATS})"
    )
    print(
        f"replay: the same {len(replayed)} releases in publish order, each knowing only "
        f"the earlier ones, in {replayed_seconds * 1000:.0f} ms ({floating} floating tags)"
    )
    print(
        f"one command: matrix plan --version {versions[-1]} --releases <{len(versions)} "
        f"lines> --format json {one * 1000:.1f} ms (median of {RUNS})"
    )


if __name__ == "__main__":
    cold_start()
    history()
