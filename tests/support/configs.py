"""The versions.toml of the small releases tests write next to them: the prefect image
under a repository of the test's own, in the flavors and Pythons a test needs; and
copies of the FROM-scratch fixture release under a repository of their own."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

# A release whose images are FROM scratch: podman builds both platforms in seconds.
SCRATCH = Path(__file__).parents[1] / "build" / "fixtures" / "scratch"

SUFFIXES = {"standard": "", "conda": "-conda"}


def release_config(
    repository: str,
    *,
    versions: str = ">=2.11.0, <2.12.0",
    flavors: Sequence[str] = ("standard",),
    pythons: Sequence[str] = ("3.10",),
) -> str:
    """One release line covering ``versions``: every flavor in every Python, from the
    standard template, latest on Python 3.10, for both platforms."""
    names = ", ".join(f'"{flavor}"' for flavor in flavors)
    listed = ", ".join(f'"{python}"' for python in pythons)
    sections = "".join(
        f'[flavors.{flavor}]\nsuffix = "{SUFFIXES[flavor]}"\n'
        'template = "standard.Dockerfile.j2"\n\n'
        for flavor in flavors
    )
    per_flavor = "".join(f"python.{flavor} = [{listed}]\n" for flavor in flavors)
    return f"""\
schema = 1
registry = "docker.io"
templates = "dockerfiles"

[defaults]
platforms = ["linux/amd64", "linux/arm64"]
release_sha_tags = true
sha_length = 7
prerelease_dev_tags = "none"
images = ["prefect"]

[images.prefect]
repository = "{repository}"
dev_repository = "{repository}-dev"
source = "https://github.com/PrefectHQ/prefect"
flavors = [{names}]

{sections}[[lines]]
versions = "{versions}"
latest_python = "3.10"
{per_flavor}"""


def scratch_release(folder: Path, name: str) -> tuple[Path, str]:
    """The FROM-scratch fixture copied to ``folder``, its image going to a repository of
    its own, ``<name>-<random>/scratch``: the copy's versions.toml and that repository."""
    shutil.copytree(SCRATCH, folder)
    repository = f"{name}-{uuid.uuid4().hex[:8]}/scratch"
    versions = folder / "versions.toml"
    versions.write_text(versions.read_text().replace("matrix-e2e/scratch", repository))
    return versions, repository
