"""Repositories of their own for the registry tests."""

from __future__ import annotations

import itertools

import pytest

from matrix.reference import ImageReference, parse_reference

_names = itertools.count()


@pytest.fixture
def repo(request):
    """``repo(host)``: a repository name no other test uses, as an ImageReference."""

    def make(host: str, tag: str = "1") -> ImageReference:
        name = request.node.name.lower().replace("[", "-").replace("]", "")
        name = "".join(c if c.isalnum() else "-" for c in name).strip("-")
        return parse_reference(f"{host}/test/{name}-{next(_names)}:{tag}")

    return make
