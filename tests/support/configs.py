"""The versions.toml of the small releases tests write next to them: the prefect image
under a repository of the test's own, in the flavors and Pythons a test needs."""

from __future__ import annotations

from collections.abc import Sequence

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
