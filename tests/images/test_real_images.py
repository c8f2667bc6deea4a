"""Real images from the real templates: built with podman on the stand-in
python:3.11-slim through the base mirror, pushed to a test registry, and started as
`docker run` would start them. Their builds reach the package index (and Debian's
archive); matrix itself runs in a subprocess for the same reason."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tests.support.package_index import make_wheel, start_index
from tests.support.real_images import is_the_pushed_image, matrix
from tests.support.standin_base import run_as_docker_would


@pytest.mark.parametrize(
    ("version", "flavor", "pins"),
    [("2.11.5", "standard", "\ngriffe==0."), ("3.4.25", "kubernetes", "\nprefect==3.4.25 ")],
)
def test_a_release_image_starts_and_prints_its_version(real_images, version, flavor, pins):
    image = real_images.build(version, flavor=flavor)
    ran = run_as_docker_would(image, ["prefect", "version"])
    assert ran.returncode == 0, ran.stderr
    assert re.match(rf"Version: +{re.escape(version)}\n", ran.stdout), ran.stdout
    lock = run_as_docker_would(image, ["cat", "/opt/prefect/requirements.lock"])
    assert pins in lock.stdout
    assert "--hash=sha256:" in lock.stdout


def test_a_dev_build_from_a_dist_reports_its_local_version(real_images, registry, tmp_path):
    version = "3.4.25+12.gabc1234"
    dist = make_wheel(tmp_path / "dist", "prefect", version, console_script="prefect")
    # The dist's dependencies come from an index too: here a local one, with none.
    index = start_index()
    try:
        index.add(make_wheel(tmp_path / "wheels", "unused", "1.0"), datetime.now(UTC))
        # 3.4.25's images carry uv 0.6.17 (its line pins it): a stand-in wheel of it.
        uploaded = datetime(2025, 4, 25, tzinfo=UTC)
        index.add(make_wheel(tmp_path / "wheels", "uv", "0.6.17"), uploaded)
        done = matrix(
            "build", "--version", version, "--python", "3.11", "--flavor", "standard",
            "--image", "prefect", "--platform", "linux/amd64", "--engine", "podman",
            "--registry", registry.host, "--base-mirror", f"docker.io={registry.host}",
            "--push", "--keep-local", "--dist", str(dist), "--index-url", index.url,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-4000:]
    finally:
        index.stop()
    image = f"{registry.host}/prefecthq/prefect-dev:sha-abc1234-python3.11"
    assert is_the_pushed_image(image)
    ran = run_as_docker_would(image, ["prefect", "version"])
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == f"Version: {version}"
