"""Real images from the real templates: built with podman on the stand-in
python:3.11-slim through the base mirror, pushed to a test registry, and started as
`docker run` would start them. Their builds reach the package index (and Debian's
archive); matrix itself runs in a subprocess for the same reason."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from tests.support.package_index import make_wheel, start_index
from tests.support.standin_base import run_as_docker_would

pytestmark = [pytest.mark.realimage, pytest.mark.podman, pytest.mark.registry]


def matrix(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BUILDAH_ISOLATION": os.environ.get("BUILDAH_ISOLATION", "chroot")}
    return subprocess.run(
        [sys.executable, "-m", "matrix", *args], capture_output=True, text=True, env=env
    )


def build(registry: str, version: str, *extra: str) -> tuple[str, float]:
    started = time.monotonic()
    done = matrix(
        "build",
        "--version",
        version,
        "--python",
        "3.11",
        "--flavor",
        "standard",
        "--image",
        "prefect",
        "--platform",
        "linux/amd64",
        "--engine",
        "podman",
        "--registry",
        registry,
        "--base-mirror",
        f"docker.io={registry}",
        "--push",
        *extra,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stderr, time.monotonic() - started


@pytest.mark.parametrize(
    ("version", "pins"),
    [("2.11.5", "\ngriffe==0."), ("3.4.25", "\nprefect==3.4.25 ")],
)
def test_a_release_image_starts_and_prints_its_version(standin_python, registry, version, pins):
    build(registry.host, version, "--index-url", "https://pypi.org/simple")
    image = f"{registry.host}/prefecthq/prefect:{version}-python3.11"
    ran = run_as_docker_would(image, ["prefect", "version"])
    assert ran.returncode == 0, ran.stderr
    assert re.match(rf"Version: +{re.escape(version)}\n", ran.stdout), ran.stdout
    lock = run_as_docker_would(image, ["cat", "/opt/prefect/requirements.lock"])
    assert pins in lock.stdout
    assert "--hash=sha256:" in lock.stdout


def test_a_dev_build_from_a_dist_reports_its_local_version(standin_python, registry, tmp_path):
    version = "3.4.25+12.gabc1234"
    dist = make_wheel(tmp_path / "dist", "prefect", version, console_script="prefect")
    # The dist's dependencies come from an index too: here a local one, with none.
    index = start_index()
    try:
        index.add(make_wheel(tmp_path / "wheels", "unused", "1.0"), datetime.now(UTC))
        build(registry.host, version, "--dist", str(dist), "--index-url", index.url)
    finally:
        index.stop()
    image = f"{registry.host}/prefecthq/prefect-dev:sha-abc1234-python3.11"
    ran = run_as_docker_would(image, ["prefect", "version"])
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == f"Version: {version}"
