"""Fixtures of the build tests: a recording stand-in for docker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
