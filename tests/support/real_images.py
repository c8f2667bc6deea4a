"""Building real images for tests, each once per session, and running matrix as a user does."""

from __future__ import annotations

import os
import subprocess
import sys
import time


class RealImages:
    """Real images from the real templates, built with podman on the stand-in base
    through the base mirror and pushed to the test registry, each once per session:
    several tests look at the same image."""

    def __init__(self, registry: str) -> None:
        self.registry = registry
        self.built: dict[tuple[str, str, str], str] = {}
        self.seconds: dict[str, float] = {}

    def build(self, version: str, image: str = "prefect", flavor: str = "standard") -> str:
        """The reference of ``image`` ``version`` (Python 3.11, linux/amd64, ``flavor``)."""
        key = (version, image, flavor)
        if key not in self.built:
            started = time.monotonic()
            done = matrix(
                "build", "--version", version, "--python", "3.11", "--flavor", flavor,
                "--image", image, "--platform", "linux/amd64", "--engine", "podman",
                "--registry", self.registry, "--base-mirror", f"docker.io={self.registry}",
                "--index-url", "https://pypi.org/simple", "--push",
            )  # fmt: skip
            assert done.returncode == 0, done.stderr[-4000:]
            suffix = "" if flavor == "standard" else f"-{flavor}"
            reference = f"{self.registry}/prefecthq/{image}:{version}-python3.11{suffix}"
            self.seconds[reference] = time.monotonic() - started
            self.built[key] = reference
        return self.built[key]


def matrix(*args: str) -> subprocess.CompletedProcess[str]:
    """matrix in a subprocess, as a user runs it; podman builds with chroot isolation."""
    env = {**os.environ, "BUILDAH_ISOLATION": os.environ.get("BUILDAH_ISOLATION", "chroot")}
    return subprocess.run(
        [sys.executable, "-m", "matrix", *args], capture_output=True, text=True, env=env
    )
