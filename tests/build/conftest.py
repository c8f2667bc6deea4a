"""Fixtures of the build tests: a recording stand-in for docker, a local package index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.package_index import PackageIndex, make_wheel, start_index

FIXTURES = Path(__file__).with_name("fixtures")
FAKE_DOCKER = FIXTURES / "fake_docker.py"


class Recorder:
    """The argv lines fake_docker.py recorded, without the program name."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def calls(self) -> list[list[str]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines()]


@pytest.fixture
def recorder(tmp_path, monkeypatch) -> Recorder:
    record = tmp_path / "docker-calls.jsonl"
    monkeypatch.setenv("FAKE_DOCKER_RECORD", str(record))
    return Recorder(record)


# Releases the build tests plan, as a local index serves them: tiny wheels with the
# real upload times, so locking works offline and cuts off at the real dates.
RELEASES = (
    ("prefect", "2.11.5", datetime(2023, 8, 24, 20, 2, 8, tzinfo=UTC)),
    ("prefect", "3.4.25", datetime(2025, 10, 23, 20, 47, tzinfo=UTC)),
    ("prefect-client", "3.4.25", datetime(2025, 10, 23, 20, 47, tzinfo=UTC)),
    ("prefect-kubernetes", "0.2.11", datetime(2023, 7, 20, tzinfo=UTC)),
    # The images of lines from 3.1.6 on carry uv, locked with the rest: 3.4.25's line
    # pins Prefect's uv, 0.6.17.
    ("uv", "0.6.17", datetime(2025, 4, 25, tzinfo=UTC)),
)


@pytest.fixture(scope="session")
def release_index(tmp_path_factory) -> Iterator[PackageIndex]:
    """A PEP 691 index on 127.0.0.1 holding small wheels of RELEASES."""
    folder = tmp_path_factory.mktemp("release-index")
    index = start_index()
    for name, version, uploaded in RELEASES:
        index.add(make_wheel(folder, name, version, console_script="prefect"), uploaded)
    yield index
    index.stop()


@pytest.fixture(autouse=True)
def locks_from_the_release_index(release_index, tmp_path_factory, monkeypatch) -> None:
    """Every build test locks against the local index, never against PyPI, with a uv
    cache of this session's (an earlier session's index may have had the same port)."""
    monkeypatch.setenv("MATRIX_INDEX_URL", release_index.url)
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "uv-cache"))
