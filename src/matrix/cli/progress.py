"""Progress of long commands: one line per image and phase, with the elapsed time.

People at a terminal get rich's colours; CI (CI=true, or output that is not a
terminal) gets the same lines plain. A Markdown summary goes to
$GITHUB_STEP_SUMMARY when it is set.
"""

from __future__ import annotations

import os
import sys
import threading
import time


class Reporter:
    def __init__(self) -> None:
        from rich.console import Console

        plain = os.environ.get("CI") == "true" or not sys.stderr.isatty()
        # soft_wrap: a log line is never cut in two, whatever the width.
        self.console = Console(stderr=True, no_color=plain, highlight=False, soft_wrap=True)
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def step(self, key: str, phase: str, message: str) -> None:
        elapsed = time.monotonic() - self.started
        with self._lock:
            self.console.print(f"[{elapsed:7.1f}s] {phase:<8} {key}: {message}")

    def finish(self, report) -> None:
        """Totals, and the Markdown summary for GitHub Actions."""
        counts: dict[str, int] = {}
        for change in report.changes:
            counts[change.action.value] = counts.get(change.action.value, 0) + 1
        totals = ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
        verb = "would write" if report.dry_run else "wrote"
        requests = sum(report.requests.values())
        self.console.print(
            f"{report.version} on {report.registry}: {totals}; {verb} "
            f"{sum(c.writes for c in report.changes) if report.dry_run else report.writes} "
            f"tags in {report.elapsed:.1f}s with {requests} registry requests"
            + _rate_limit_note(report.requests)
        )
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as handle:
                handle.write(markdown(report))


def _rate_limit_note(requests) -> str:
    """What the rate budget cost (matrix.registry.ratelimit.RequestsSpent), if anything."""
    waited = getattr(requests, "waited", 0.0)
    throttled = getattr(requests, "throttled", 0)
    if waited < 0.05 and not throttled:
        return ""
    answers = f" ({throttled} answer{'' if throttled == 1 else 's'} 429)" if throttled else ""
    return f"; waited {waited:.1f}s for the rate limit{answers}"


def markdown(report) -> str:
    rows = [
        f"### matrix: Prefect {report.version} on {report.registry}"
        + (" (dry run)" if report.dry_run else ""),
        "",
        "| tag | action | from | to |",
        "| --- | --- | --- | --- |",
    ]
    for change in report.changes:
        rows.append(
            f"| `{change.target}` | {change.action.value} | {_short(change.current)} | "
            f"{_short(change.desired)} |"
        )
    return "\n".join(rows) + "\n\n"


def _short(digest: str | None) -> str:
    return "" if digest is None else digest.removeprefix("sha256:")[:12]
