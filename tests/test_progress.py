"""What a person at a terminal sees of a long command, and what CI logs get."""

from __future__ import annotations

import io

from rich.console import Console

from matrix.cli.progress import Reporter


def test_a_terminal_gets_one_live_row_per_image_with_its_phase(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120, color_system=None)
    with Reporter(console=console) as reporter:
        reporter.step("prefect-python3.10", "build", "building linux/amd64, linux/arm64")
        reporter.step("prefect-python3.11", "build", "building linux/amd64, linux/arm64")
        reporter.step("prefect-python3.10", "promote", "create 2-latest")
        rows = dict(reporter.rows)
    assert {key: phase for key, (phase, _, _) in rows.items()} == {
        "prefect-python3.10": "promote",
        "prefect-python3.11": "build",
    }
    final = screen.getvalue()
    assert "prefect-python3.10" in final and "promote" in final and "create 2-latest" in final
    assert "elapsed" in final
    # One row per image, redrawn in place: no log line per step.
    assert "] build    prefect-python3.10" not in final


def test_ci_gets_one_whole_plain_line_per_step(monkeypatch):
    monkeypatch.setenv("CI", "true")
    screen = io.StringIO()
    console = Console(file=screen, width=40, soft_wrap=True, color_system=None)
    with Reporter(console=console) as reporter:
        reporter.step("prefect-python3.10", "build", "pushed 127.0.0.1:5000/a/very/long/name")
        reporter.step("prefect-python3.10", "promote", "create 2-latest")
    lines = screen.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("build    prefect-python3.10: pushed 127.0.0.1:5000/a/very/long/name")
    assert "promote  prefect-python3.10: create 2-latest" in lines[1]
