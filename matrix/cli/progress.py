"""Progress of long commands: one line per image and phase, with the elapsed time.

People at a terminal get a live view: one row per image with its current phase,
its latest message and how long it has been at it, kept up to date in place. CI
(CI=true, or output that is not a terminal) gets one plain line per step instead,
which logs read well. Either way the command ends with its totals, and a Markdown
summary goes to $GITHUB_STEP_SUMMARY when it is set.
"""

from __future__ import annotations

import os
import sys
import threading
import time

PHASE_STYLES = {"build": "yellow", "mirror": "cyan", "verify": "green", "promote": "magenta"}


class Reporter:
    """Use as a context manager: the live view stops (and leaves its last state on
    screen) however the command ends."""

    def __init__(self, *, console=None) -> None:
        from rich.console import Console

        ci = os.environ.get("CI") == "true"
        if console is None:
            plain = ci or not sys.stderr.isatty()
            # soft_wrap: a log line is never cut in two, whatever the width.
            console = Console(stderr=True, no_color=plain, highlight=False, soft_wrap=True)
        self.console = console
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._rows = threading.Lock()
        self._interactive = console.is_terminal and not ci
        # key -> (phase, message, when its phase began), of the view on screen
        self.rows: dict[str, tuple[str, str, float]] = {}
        self._live = None

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    def step(self, key: str, phase: str, message: str) -> None:
        now = time.monotonic()
        if not self._interactive:
            with self._lock:
                elapsed = now - self.started
                self.console.print(f"[{elapsed:7.1f}s] {phase:<8} {key}: {message}")
            return
        # Two locks: ``_rows`` guards the rows, which rendering (on rich's refresh
        # thread) reads; ``_lock`` guards the view's start and stop. Rendering takes
        # rich's lock then ``_rows``, so nothing here refreshes while holding ``_rows``.
        with self._lock:
            if self._live is None:  # a new view, e.g. for refresh's next release
                from rich.live import Live

                with self._rows:
                    self.rows = {}
                self._live = Live(self, console=self.console, refresh_per_second=8)
                self._live.start()
            with self._rows:
                earlier = self.rows.get(key)
                since = earlier[2] if earlier and earlier[0] == phase else now
                self.rows[key] = (phase, message, since)
            self._live.refresh()

    def __rich__(self):
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        table = Table.grid(padding=(0, 2))
        with self._rows:
            rows = list(self.rows.items())
        for key, (phase, message, since) in rows:
            table.add_row(
                Text(key, style="bold"),
                Text(phase, style=PHASE_STYLES.get(phase, "")),
                Text(f"{now - since:5.1f}s", style="dim"),
                Text(message, no_wrap=True, overflow="ellipsis"),
            )
        total = Text(f"{now - self.started:5.1f}s", style="dim")
        table.add_row(Text("elapsed", style="dim"), Text(""), total, Text(""))
        return table

    def pause(self) -> None:
        """Stop the live view, leaving its last state on screen, so a question can be
        asked below it; the next step starts a new one."""
        self._stop()

    def _stop(self) -> None:
        with self._lock:
            if self._live is not None:
                self._live.stop()
                self._live = None

    def finish(self, report) -> None:
        """Totals, and the Markdown summary for GitHub Actions."""
        self._stop()
        counts: dict[str, int] = {}
        for change in report.changes:
            counts[change.action.value] = counts.get(change.action.value, 0) + 1
        totals = ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
        verb = "would write" if report.dry_run else "wrote"
        requests = sum(report.requests.values())
        self.console.print(
            f"{report.version} on {report.registry}: {totals}; {verb} "
            f"{report.pending if report.dry_run else report.writes} "
            f"tags in {report.elapsed:.1f}s with {requests} registry requests"
            + _rate_limit_note(report.requests)
        )
        from matrix.cli.output import github_file

        with github_file("GITHUB_STEP_SUMMARY") as summary:
            if summary:
                summary.write(markdown(report))


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
            f"| `{change.target}` | {change.action.value} | {_whole(change.current)} | "
            f"{_whole(change.desired)} |"
        )
    return "\n".join(rows) + "\n\n"


def _whole(digest: str | None) -> str:
    """A digest as a reader copies it: never shortened."""
    return "" if digest is None else f"`{digest}`"
