"""Every command that reports has --format json; --report is written when a run fails;
every command that moves a tag asks first. On a real registry."""

from __future__ import annotations

import json

from matrix.cli import main
from matrix.plan import TagKind
from matrix.publish.state import reference
from matrix.reference import ImageReference
from tests.support.images import push_index
from tests.support.publishing import COMMIT, VERSION, Release


def _release(tmp_path, registry, name: str) -> Release:
    return Release(tmp_path, registry.host, name)


def test_publish_json_is_its_report_and_verify_json_says_ok(tmp_path, registry, capsys):
    release = _release(tmp_path, registry, "json")
    report = tmp_path / "report.json"

    assert main([*release.args(registry.host), "--format", "json", "--report", str(report)]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data == json.loads(report.read_text())
    assert data["writes"] == len(release.plan.targets) and data["version"] == VERSION
    assert all(c["done"] for c in data["changes"])
    assert "{" not in err  # progress on stderr, the result alone on stdout

    verify = [
        *("verify", "--version", VERSION, "--sha", COMMIT, "--config", str(release.config)),
        *("--registry", registry.host, "--format", "json"),
    ]
    assert main(verify) == 0
    checked = json.loads(capsys.readouterr().out)
    assert checked["ok"] is True and checked["registries"][0]["problems"] == []


def test_a_failed_publish_still_writes_its_report_with_the_error(
    make_client, tmp_path, registry, capsys
):
    release = _release(tmp_path, registry, "fails")
    sha = next(t for t in release.plan.images[0].targets if t.kind is TagKind.SHA)
    client = make_client()
    push_index(client, reference(registry.host, sha), salt="someone else's")
    before = release.tags()
    report = tmp_path / "report.json"

    assert main([*release.args(registry.host), "--report", str(report)]) == 2
    err = capsys.readouterr().err
    data = json.loads(report.read_text())
    assert data["error"] in err and "immutable" in data["error"]
    assert data["writes"] == 0 and any(c["action"] == "conflict" for c in data["changes"])
    assert release.tags() == before


def test_retag_asks_before_moving_a_tag_and_reports_json(make_client, tmp_path, registry, capsys):
    repository = ImageReference(registry.host, "test/retag-asks")
    client = make_client()
    one = push_index(client, repository.with_tag("one"), salt="one")
    push_index(client, repository.with_tag("two"), salt="two")
    source = str(repository.with_tag("one"))

    assert main(["retag", source, ":three", "--format", "json"]) == 0  # creates: no question
    (created,) = json.loads(capsys.readouterr().out)["changes"]
    assert created["action"] == "created" and created["to"] == one.digest

    assert main(["retag", source, ":two"]) == 2  # moves: refused without a terminal
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--yes" in err and ":two" in err
    client = make_client()
    assert client.head_manifest(repository.with_tag("two")).digest != one.digest

    assert main(["retag", source, ":two", "--yes", "--format", "json"]) == 0
    (moved,) = json.loads(capsys.readouterr().out)["changes"]
    assert moved["action"] == "moved" and moved["to"] == one.digest

    assert main(["tags", str(repository), "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == {"repository": str(repository), "tags": ["one", "three", "two"]}
