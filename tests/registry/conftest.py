"""Repositories and a one-image versions.toml for the registry tests."""

from __future__ import annotations

import itertools

import pytest

from matrix.reference import ImageReference, parse_reference

_names = itertools.count()

# versions.toml of a release line with one image, one flavor and one Python.
ONE_IMAGE_CONFIG = """\
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
flavors = ["standard"]

[flavors.standard]
suffix = ""
template = "standard.Dockerfile.j2"

[[lines]]
versions = ">=2.11.0, <2.12.0"
latest_python = "3.10"
python.standard = ["3.10"]
"""


@pytest.fixture
def repo(request):
    """``repo(host)``: a repository name no other test uses, as an ImageReference."""

    def make(host: str, tag: str = "1") -> ImageReference:
        name = request.node.name.lower().replace("[", "-").replace("]", "")
        name = "".join(c if c.isalnum() else "-" for c in name).strip("-")
        return parse_reference(f"{host}/test/{name}-{next(_names)}:{tag}")

    return make
