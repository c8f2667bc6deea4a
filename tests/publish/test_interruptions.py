"""A publish killed (SIGKILL) or hit by registry faults is repaired by running it again.

`matrix publish` runs as a real process against a real registry behind the fault
proxy. The proxy holds chosen writes back (503 until the process dies), so each
kill lands at a known point; after every kill no floating tag may name an
incomplete release, and after a rerun the registry must hold exactly what an
uninterrupted publish of the same release writes.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from matrix.cli import main
from matrix.config import load_config
from matrix.plan import TagKind, plan_release
from matrix.publish.digests import write_digest
from matrix.publish.run import verify_problems
from matrix.publish.state import read_state
from matrix.reference import ImageReference
from matrix.registry import RegistryClient
from tests.publish.test_publish_registry import CONFIG
from tests.support.images import push_platform_images

VERSION = "2.11.4"
COMMIT = "2222222bbbb"
_unique = itertools.count()

pytestmark = pytest.mark.registry


class Release:
    """2.11.4 (2 Pythons x 2 flavors x 2 platforms) with its platform images pushed by
    digest and the digest files written, as the build jobs leave it."""

    def __init__(self, tmp_path: Path, host: str, name: str) -> None:
        self.host = host
        self.repository = f"test/kill-{name}-{os.getpid()}-{next(_unique)}"
        self.config = tmp_path / f"{name}.toml"
        self.config.write_text(CONFIG.format(repository=self.repository))
        self.plan = plan_release(load_config(self.config), VERSION, commit=COMMIT, known=[])
        self.digests = tmp_path / f"{name}-digests"
        with RegistryClient() as client:
            for spec in self.plan.images:
                # The same salt in every repository: the same content, the same digests.
                children, _ = push_platform_images(
                    client, ImageReference(host, self.repository), spec.platforms, salt=spec.key
                )
                for platform, digest in children.items():
                    write_digest(self.digests, spec.key, platform, digest)

    def args(self, registry: str) -> list[str]:
        return [
            "publish",
            *("--version", VERSION, "--sha", COMMIT, "--config", str(self.config)),
            *("--registry", registry, "--digests", str(self.digests), "--yes"),
        ]

    def tags(self) -> dict[str, str]:
        """Every tag of the repository and the digest it names."""
        with RegistryClient() as client:
            repository = ImageReference(self.host, self.repository)
            return {
                tag: client.head_manifest(repository.with_tag(tag)).digest
                for tag in client.list_tags(repository)
            }

    def assert_no_floating_tag_names_an_incomplete_release(self) -> None:
        tags = self.tags()
        full = {spec.full_target.tag: spec for spec in self.plan.images}
        others = [tag for tag in tags if tag not in full]
        if not others:
            return
        with RegistryClient() as client:
            state = read_state(client, self.plan, self.host)
        assert verify_problems(self.plan, state) == [], f"{others} name an incomplete release"
        for spec in self.plan.images:
            for target in spec.targets:
                if target.tag in tags:
                    assert tags[target.tag] == tags[spec.full_target.tag], target.tag


def kill_when(args: list[str], seen_enough) -> list[str]:
    """Run `matrix ARGS`, SIGKILL it once ``seen_enough(lines so far)``; its stderr lines."""
    process = subprocess.Popen(
        [sys.executable, "-m", "matrix", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "CI": "true"},
    )
    lines: list[str] = []
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line.rstrip("\n"))
        if seen_enough(lines):
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "\n".join(lines)
    return lines


def _count(phase: str, lines: list[str], saying: str = "") -> int:
    return sum(f"] {phase} " in line and saying in line for line in lines)


# (held back: a regex of the PUT paths answered 503 until the kill; kill after these lines)
KILL_POINTS = {
    "after-some-builds": (
        r"/manifests/2\.11\.4-python3\.10-conda$",
        lambda lines: _count("build   ", lines, "pushed") >= 2,
    ),
    "between-verify-and-promote": (
        r"/manifests/(sha-|2\.11-|2-)",
        lambda lines: _count("verify  ", lines) >= 1,
    ),
    "in-the-middle-of-promote": (
        r"/manifests/2-",  # major and 2-latest tags; sha and minor tags go through
        lambda lines: _count("promote ", lines) >= 8,
    ),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_publish_never_exposes_a_partial_release_and_a_rerun_converges(
    point, tmp_path, registry, fault_proxy, capsys
):
    uninterrupted = Release(tmp_path, registry.host, "whole")
    assert main(uninterrupted.args(registry.host)) == 0, capsys.readouterr().err
    killed = Release(tmp_path, registry.host, "killed")
    held, seen_enough = KILL_POINTS[point]
    fault_proxy.fail(503, method="PUT", path=held, times=10_000)

    kill_when(killed.args(fault_proxy.host), seen_enough)

    written = killed.tags()
    full = {spec.full_target.tag for spec in killed.plan.images}
    floating = {t.tag for t in killed.plan.targets if t.kind is not TagKind.FULL}
    if point == "after-some-builds":
        assert set(written) == {"2.11.4-python3.10", "2.11.4-python3.11"}
    elif point == "between-verify-and-promote":
        assert set(written) == full
    else:
        assert full < set(written) < full | floating
        assert not any(tag.startswith("2-") for tag in written)
    killed.assert_no_floating_tag_names_an_incomplete_release()

    fault_proxy.clear()
    assert main(killed.args(fault_proxy.host)) == 0, capsys.readouterr().err
    assert killed.tags() == uninterrupted.tags()
    assert len(killed.tags()) == len(killed.plan.targets)


def test_killed_twice_then_rerun_converges(tmp_path, registry, fault_proxy, capsys):
    uninterrupted = Release(tmp_path, registry.host, "whole")
    assert main(uninterrupted.args(registry.host)) == 0, capsys.readouterr().err
    killed = Release(tmp_path, registry.host, "killed")
    for point in ("after-some-builds", "in-the-middle-of-promote"):
        held, seen_enough = KILL_POINTS[point]
        fault_proxy.clear()
        fault_proxy.fail(503, method="PUT", path=held, times=10_000)
        kill_when(killed.args(fault_proxy.host), seen_enough)
        killed.assert_no_floating_tag_names_an_incomplete_release()
    fault_proxy.clear()
    assert main(killed.args(fault_proxy.host)) == 0, capsys.readouterr().err
    assert killed.tags() == uninterrupted.tags()


def test_publish_rides_out_503s_and_429s(tmp_path, registry, fault_proxy, capsys):
    uninterrupted = Release(tmp_path, registry.host, "whole")
    assert main(uninterrupted.args(registry.host)) == 0, capsys.readouterr().err
    flaky = Release(tmp_path, registry.host, "flaky")
    fault_proxy.fail(503, method="GET", path="/manifests/", times=3)
    fault_proxy.fail(429, method="HEAD", retry_after="1", times=2)
    fault_proxy.fail(503, method="PUT", path="/manifests/2.11.4-", times=2)
    fault_proxy.fail(429, method="PUT", path="/manifests/2-latest", retry_after="1", times=1)

    assert main(flaky.args(fault_proxy.host)) == 0, capsys.readouterr().err

    injected = [seen for seen in fault_proxy.seen if "injected" in seen.outcome]
    assert len(injected) == 8  # every fault was met, and retried past
    assert flaky.tags() == uninterrupted.tags()
    assert "registry requests" in capsys.readouterr().err


def test_a_registry_that_keeps_failing_stops_publish_with_one_line_and_a_rerun_repairs(
    tmp_path, registry, fault_proxy, capsys
):
    uninterrupted = Release(tmp_path, registry.host, "whole")
    assert main(uninterrupted.args(registry.host)) == 0, capsys.readouterr().err
    broken = Release(tmp_path, registry.host, "broken")
    fault_proxy.fail(503, method="PUT", path=r"/manifests/2\.11-python3\.11$", times=10_000)

    assert main(broken.args(fault_proxy.host)) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("matrix: error:") and "2.11-python3.11" in error and "503" in error
    broken.assert_no_floating_tag_names_an_incomplete_release()

    fault_proxy.clear()
    assert main(broken.args(fault_proxy.host)) == 0, capsys.readouterr().err
    assert broken.tags() == uninterrupted.tags()
