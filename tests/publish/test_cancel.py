"""Cancel and interrupt: SIGINT and SIGTERM stop a publish at a safe point, with its
--report and one line, exit 130 or 143; a rerun completes the release.

`matrix publish` runs as a real process against the real registry behind the fault
proxy, whose slow answers let each signal land while the run is writing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from matrix.cli import main
from matrix.plan import TagKind
from tests.support.publishing import Release, count_lines, signal_when

CASES = {
    # (signal, the writes held back a little, stop once these lines are seen)
    "sigint-in-the-middle-of-promote": (
        signal.SIGINT,
        r"/manifests/(2\.11-|2-)",
        lambda lines: count_lines("promote ", lines) >= 6,
    ),
    "sigterm-after-some-builds": (
        signal.SIGTERM,
        r"/manifests/2\.11\.4-",
        lambda lines: count_lines("build   ", lines, "pushed") >= 1,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_signal_stops_at_a_safe_point_with_a_report_and_a_rerun_completes(
    case, tmp_path, registry, fault_proxy, capsys
):
    uninterrupted = Release(tmp_path, registry.host, "whole")
    assert main(uninterrupted.args(registry.host)) == 0, capsys.readouterr().err
    stopped = Release(tmp_path, registry.host, "stopped")
    signum, slow, seen_enough = CASES[case]
    fault_proxy.delay(0.4, method="PUT", path=slow, times=10_000)
    report = tmp_path / "report.json"

    code, lines = signal_when(
        [*stopped.args(fault_proxy.host), "--report", str(report)], seen_enough, signum
    )

    name = signal.Signals(signum).name
    assert code == 128 + signum, "\n".join(lines)
    assert lines[-1] == (
        f"matrix: stopped by {name} at a safe point; a rerun completes what it left"
    ), "\n".join(lines)
    written = json.loads(report.read_text())
    assert name in written["error"]
    tags = stopped.tags()
    done = {c["tag"] for c in written["changes"] if c["done"]}
    assert done and done <= set(tags) and len(tags) < len(stopped.plan.targets)
    stopped.assert_no_floating_tag_names_an_incomplete_release()
    if signum == signal.SIGTERM:
        assert not any(t.kind is not TagKind.FULL and t.tag in tags for t in stopped.plan.targets)

    fault_proxy.clear()
    assert main(stopped.args(fault_proxy.host)) == 0, capsys.readouterr().err
    assert stopped.tags() == uninterrupted.tags()


def test_a_second_signal_does_not_wait_for_a_write_that_hangs(
    tmp_path, registry, fault_proxy, capsys
):
    """GitHub's cancel: SIGINT, then SIGTERM. The answer to a write hangs; the second
    signal stops the run where it is, still with its report and its line."""
    stuck = Release(tmp_path, registry.host, "stuck")
    fault_proxy.delay(8.0, method="PUT", path=r"/manifests/2-latest$", times=1)
    (hang,) = fault_proxy.rules
    report = tmp_path / "report.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "matrix", *stuck.args(fault_proxy.host), "--report", str(report)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "CI": "true"},
    )
    while hang.times and process.poll() is None:
        time.sleep(0.05)  # until the write that hangs is under way
    for signum in (signal.SIGINT, signal.SIGTERM):
        process.send_signal(signum)
        time.sleep(0.2)
    _, err = process.communicate(timeout=60)

    assert process.returncode == 128 + signal.SIGTERM, err
    last = err.strip().splitlines()[-1]
    assert last == (
        "matrix: stopped by SIGTERM before its next step; a rerun completes what it left"
    )
    written = json.loads(report.read_text())
    assert "SIGTERM" in written["error"] and written["writes"] > 0
    stuck.assert_no_floating_tag_names_an_incomplete_release()
    fault_proxy.clear()
    assert main(stuck.args(fault_proxy.host)) == 0, capsys.readouterr().err
    assert len(stuck.tags()) == len(stuck.plan.targets)
