"""A fixture release as the build jobs leave it, and a publish process to kill."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

from matrix.config import load_config
from matrix.plan import plan_release
from matrix.publish.digests import write_digest
from matrix.publish.run import verify_problems
from matrix.publish.state import read_state
from matrix.reference import ImageReference
from matrix.registry import RegistryClient
from tests.support.configs import release_config
from tests.support.images import push_platform_images

# Two Pythons x two flavors x two platforms.
RELEASE = {
    "versions": ">=2.10.0, <2.13.0",
    "flavors": ("standard", "conda"),
    "pythons": ("3.10", "3.11"),
}

VERSION = "2.11.4"
COMMIT = "2222222bbbb"
_unique = itertools.count()


class Release:
    """2.11.4 (2 Pythons x 2 flavors x 2 platforms) with its platform images pushed by
    digest and the digest files written, as the build jobs leave it."""

    def __init__(self, tmp_path: Path, host: str, name: str) -> None:
        self.host = host
        self.repository = f"test/kill-{name}-{os.getpid()}-{next(_unique)}"
        self.config = tmp_path / f"{name}.toml"
        self.config.write_text(release_config(self.repository, **RELEASE))
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

    def tags(self, host: str | None = None) -> dict[str, str]:
        """Every tag of the repository (in ``host``, default the primary) and its digest."""
        return tags_of(ImageReference(host or self.host, self.repository))

    def assert_no_floating_tag_names_an_incomplete_release(self, host: str | None = None) -> None:
        host = host or self.host
        tags = self.tags(host)
        full = {spec.full_target.tag: spec for spec in self.plan.images}
        others = [tag for tag in tags if tag not in full]
        if not others:
            return
        with RegistryClient() as client:
            state = read_state(client, self.plan, host)
        assert verify_problems(self.plan, state) == [], f"{others} name an incomplete release"
        for spec in self.plan.images:
            for target in spec.targets:
                if target.tag in tags:
                    assert tags[target.tag] == tags[spec.full_target.tag], target.tag


def tags_of(repository: ImageReference) -> dict[str, str]:
    """Every tag of a repository and the digest it names."""
    with RegistryClient() as client:
        return {
            tag: client.head_manifest(repository.with_tag(tag)).digest
            for tag in client.list_tags(repository)
        }


def signal_when(args: list[str], seen_enough, *signums: int) -> tuple[int, list[str]]:
    """Run `matrix ARGS`; once ``seen_enough(lines so far)``, send it ``signums`` one
    after another: its exit code and stderr lines."""
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
            for signum in signums:
                process.send_signal(signum)
            break
    lines += [line.rstrip("\n") for line in process.stderr]
    process.wait(timeout=120)
    return process.returncode, lines


def kill_when(args: list[str], seen_enough) -> list[str]:
    """Run `matrix ARGS`, SIGKILL it once ``seen_enough(lines so far)``; its stderr lines."""
    code, lines = signal_when(args, seen_enough, signal.SIGKILL)
    assert code == -signal.SIGKILL, "\n".join(lines)
    return lines


def count_lines(phase: str, lines: list[str], saying: str = "") -> int:
    return sum(f"] {phase} " in line and saying in line for line in lines)
