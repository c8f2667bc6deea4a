"""Building real images for tests, each once per session, and running matrix as a user does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from matrix.reference import parse_reference
from matrix.registry import RegistryClient
from matrix.registry.manifests import children, parse_manifest


class RealImages:
    """Real images from the real templates, built with podman on the stand-in base
    through the base mirror and pushed to the test registry, each once per session:
    several tests look at the same image. Each is kept in podman's storage too
    (--keep-local), so the tests run it without pulling back the layers it pushed;
    ``is_the_pushed_image`` checks that the kept image is the one the registry holds."""

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
                "--index-url", "https://pypi.org/simple", "--push", "--keep-local",
            )  # fmt: skip
            assert done.returncode == 0, done.stderr[-4000:]
            suffix = "" if flavor == "standard" else f"-{flavor}"
            reference = f"{self.registry}/prefecthq/{image}:{version}-python3.11{suffix}"
            assert is_the_pushed_image(reference)
            self.seconds[reference] = time.monotonic() - started
            self.built[key] = reference
        return self.built[key]


def matrix(*args: str) -> subprocess.CompletedProcess[str]:
    """matrix in a subprocess, as a user runs it; podman builds with chroot isolation."""
    env = {**os.environ, "BUILDAH_ISOLATION": os.environ.get("BUILDAH_ISOLATION", "chroot")}
    return subprocess.run(
        [sys.executable, "-m", "matrix", *args], capture_output=True, text=True, env=env
    )


def is_the_pushed_image(reference: str) -> bool:
    """Whether podman's local ``reference`` is the image the registry holds under that
    tag: its id is the config digest of the tag's one platform image, and the config
    names every layer by the digest of its content."""
    ref = parse_reference(reference)
    with RegistryClient() as client:
        (entry,) = children(parse_manifest(client.get_manifest(ref).content))
        image = client.get_manifest(
            parse_reference(f"{ref.registry}/{ref.repository}@{entry.digest}")
        )
    config_digest = parse_manifest(image.content)["config"]["digest"]
    inspected = subprocess.run(
        ["podman", "image", "inspect", reference], capture_output=True, text=True, check=True
    )
    return f"sha256:{json.loads(inspected.stdout)[0]['Id']}" == config_digest
