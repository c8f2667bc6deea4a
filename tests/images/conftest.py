"""Fixtures of the real-image tests: the stand-in base in a test registry, and the
images built on it.

A test that builds with ``real_images`` names its image by the parameters
``version``, ``image`` (default prefect) and ``flavor`` (default standard). Tests naming
the same image form one xdist group, so under ``--dist loadgroup`` one worker builds
each image once and the other workers build the others meanwhile.
"""

from __future__ import annotations

import fcntl
import os

import pytest

from tests.support import standin_base
from tests.support.real_images import RealImages

DEFAULTS = {"image": "prefect", "flavor": "standard"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    builders = [item for item in items if "real_images" in getattr(item, "fixturenames", ())]
    for item in builders:
        # A build and its push take minutes on a loaded machine, more
        # with another build beside them: the suite's 300 s is for what hangs.
        item.add_marker(pytest.mark.timeout(900))
        params = {**DEFAULTS, **getattr(getattr(item, "callspec", None), "params", {})}
        if "version" in params:
            name = f"real-image-{params['version']}-{params['image']}-{params['flavor']}"
            item.add_marker(pytest.mark.xdist_group(name))
    # The builds take longest: started first, the quick tests fill in around them.
    chosen = set(builders)
    items[:] = builders + [item for item in items if item not in chosen]


@pytest.fixture(scope="session")
def standin_python(registry, podman, tmp_path_factory) -> str:
    """``REGISTRY/library/python:3.11-slim``: the stand-in base, pushed once per session
    to the shared test registry (the rootfs itself is cached across runs)."""
    # xdist workers share the run's base folder: one of them makes the cached rootfs,
    # the others wait for it rather than run debootstrap too.
    run = tmp_path_factory.getbasetemp()
    lock = (run.parent if os.environ.get("PYTEST_XDIST_WORKER") else run) / "standin-base.lock"
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        return standin_base.import_and_push(registry.host)


@pytest.fixture(autouse=True)
def own_uv_cache(tmp_path, monkeypatch) -> None:
    """uv keeps what it read from an index by URL; the local indexes of two tests may
    get the same port, so each test resolves with a cache of its own."""
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))


@pytest.fixture(scope="session")
def real_images(standin_python, registry) -> RealImages:
    return RealImages(registry.host)
