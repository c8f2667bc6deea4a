"""`matrix missing` notices a new line instead of guessing it: a final release
versions.toml has no facts for is reported as needing a [[lines]] entry, and nothing of
it is listed for the catch-up to publish."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from matrix.cli import main
from matrix.data import PACKAGED_CONFIG
from tests.support.package_index import make_wheel, start_index

RP_38 = ">=3.10,<3.15"
RP_39 = "<3.16,>=3.11"


@pytest.fixture
def index(tmp_path):
    """prefect 3.8.8, 3.9.0 and 3.9.1 as the package index has them (with prefect-client
    for all but 3.9.1), uploaded in the last days."""
    served = start_index()
    now = datetime.now(UTC)
    for age, version, requires in ((3, "3.8.8", RP_38), (2, "3.9.0", RP_39), (1, "3.9.1", RP_39)):
        for name in ("prefect", "prefect-client") if version != "3.9.1" else ("prefect",):
            wheel = make_wheel(tmp_path / "wheels", name, version, requires_python=requires)
            served.add(wheel, now - timedelta(days=age), requires_python=requires)
    yield served
    served.stop()


def config(tmp_path, *, before_3_9: bool) -> str:
    """The packaged versions.toml with repositories of this test's own; ``before_3_9``:
    as it was before 3.9, its newest 3.x line open-ended on 3.8's facts."""
    text = PACKAGED_CONFIG.read_text(encoding="utf-8")
    if before_3_9:
        text = text[: text.index("[[lines]]\n# Python 3.10 dropped: the nightlies 3.8.9.dev1")]
        text = text.replace('versions = ">=3.8.4.dev2, <3.8.9.dev1"', 'versions = ">=3.8.4.dev2"')
    text = text.replace('"prefecthq/', f'"t{uuid.uuid4().hex[:8]}/')
    path = tmp_path / "versions.toml"
    path.write_text(text, encoding="utf-8")
    (tmp_path / "dockerfiles").symlink_to(PACKAGED_CONFIG.parent / "dockerfiles")
    return str(path)


def missing(capsys, registry, index, path: str) -> dict:
    argv = ["missing", "--config", path, "--registry", registry.host, "--index-url", index.url]
    code = main([*argv, "--days", "30", "--format", "json"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, ""), err
    return json.loads(out)


def test_releases_of_a_minor_the_file_was_not_written_for_wait_for_their_line(
    capsys, registry, index, tmp_path
):
    found = missing(capsys, registry, index, config(tmp_path, before_3_9=True))
    assert [r["version"] for r in found["releases"]] == ["3.8.8"]
    assert [r["version"] for r in found["needs_line"]] == ["3.9.0", "3.9.1"]
    reason = found["needs_line"][0]["reason"]
    assert reason == (
        f"only the open-ended line >=3.8.4.dev2 of {tmp_path / 'versions.toml'} covers it, "
        "written for 3.8: write a [[lines]] entry for 3.9"
    )
    # The table says it too, with the fix.
    argv = ["missing", "--config", str(tmp_path / "versions.toml"), "--registry", registry.host]
    assert main([*argv, "--index-url", index.url]) == 0
    out = capsys.readouterr().out
    assert "3.9.1 needs a new line in versions.toml" in out
    assert "write a [[lines]] entry for 3.9" in out


def test_with_the_3_9_line_each_release_is_listed_with_what_it_can_install(
    capsys, registry, index, tmp_path
):
    found = missing(capsys, registry, index, config(tmp_path, before_3_9=False))
    assert found["needs_line"] == []
    releases = {r["version"]: r for r in found["releases"]}
    assert list(releases) == ["3.8.8", "3.9.0", "3.9.1"]
    assert {r["state"] for r in releases.values()} == {"missing"}
    lacking = releases["3.9.1"]["lacking"]
    assert any(ref.endswith("/prefect:3.9.1-python3.11") for ref in lacking)
    assert not any("python3.10" in ref for ref in lacking)
    # No prefect-client 3.9.1 on the index: no client image is lacking.
    assert not any("/prefect-client:" in ref for ref in lacking)
    assert any("/prefect-client:3.9.0-python3.11" in ref for ref in releases["3.9.0"]["lacking"])


def test_a_new_minor_and_a_disagreeing_release_are_noticed_not_published(
    capsys, registry, index, tmp_path
):
    now = datetime.now(UTC)
    wheels = tmp_path / "wheels"
    for version, requires in (
        ("3.10.0.dev1", RP_39),  # a nightly of the new minor: left out without a word
        ("3.10.0", RP_39),  # a minor the 3.9 line was not written for
        ("3.9.2", ">=3.12,<3.16"),  # the index says otherwise than versions.toml
    ):
        index.add(make_wheel(wheels, "prefect", version), now, requires_python=requires)
    found = missing(capsys, registry, index, config(tmp_path, before_3_9=False))
    assert [r["version"] for r in found["releases"]] == ["3.8.8", "3.9.0", "3.9.1"]
    waiting = {r["version"]: r["reason"] for r in found["needs_line"]}
    assert list(waiting) == ["3.9.2", "3.10.0"]
    assert waiting["3.10.0"].endswith("written for 3.9: write a [[lines]] entry for 3.10")
    assert waiting["3.9.2"].startswith(
        "prefect 3.9.2 requires Python '>=3.12,<3.16' on the package index"
    )
    assert "would build Python 3.11: give 3.9.2 a [[lines]] entry" in waiting["3.9.2"]
