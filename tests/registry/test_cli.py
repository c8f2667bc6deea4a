"""`matrix retag` and `matrix tags` as a maintainer uses them."""

import pytest

from matrix.cli import main
from matrix.cli.tags import version_order
from tests.support.images import push_index


@pytest.fixture(autouse=True)
def no_docker_login(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    for name in ("MATRIX_REGISTRY_USERNAME", "MATRIX_REGISTRY_PASSWORD", "DOCKER_AUTH_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def test_retag_dry_run_then_for_real(registry, make_client, repo, capsys):
    client = make_client()
    source = repo(registry.host, "2.11.5-python3.10")
    pushed = push_index(client, source)
    other = f"{registry.host}/{source.repository}-dev"

    assert main(["retag", "--dry-run", str(source), ":2.11-python3.10", other]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"would be {source.name}:2.11-python3.10: created at {pushed.digest}",
        f"would be {other}:2.11.5-python3.10: created at {pushed.digest}",
    ]
    assert "dry run" in err
    assert client.head_manifest(source.with_tag("2.11-python3.10")) is None

    assert main(["retag", str(source), ":2.11-python3.10", other]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[0] == f"{source.name}:2.11-python3.10: created at {pushed.digest}"
    assert client.head_manifest(source.with_tag("2.11-python3.10")).digest == pushed.digest

    assert main(["retag", str(source), ":2.11-python3.10"]) == 0
    assert "unchanged at" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["{host}/test/never-pushed:1", ":2"], "get manifest: not found (MANIFEST_UNKNOWN"),
        (["{host}/test/x@sha256:" + "a" * 64, "{host}/test/y"], "give a tag"),
        (["{host}/test/x:1", "{host}/Test/Upper:2"], "must be lowercase"),
    ],
)
def test_retag_user_errors_are_one_line_and_exit_2(registry, capsys, arguments, message):
    argv = ["retag", *(a.format(host=registry.host) for a in arguments)]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("matrix: error: ")
    assert message in err


def test_tags_sorted_by_version_and_filtered(registry, make_client, repo, capsys):
    client = make_client()
    source = repo(registry.host, "2.10.0")
    push_index(client, source)
    names = ["2.9.1", "2.10.0rc1", "2.9.1-python3.10", "2.10.0-python3.10", "sha-abc1234"]
    for name in names:
        client.put_manifest(source.with_tag(name), *client.get_manifest(source)[:2])

    assert main(["tags", source.name]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2.9.1",
        "2.10.0rc1",
        "2.10.0",
        "2.9.1-python3.10",
        "2.10.0-python3.10",
        "sha-abc1234",
    ]
    assert main(["tags", source.name, r"--filter=-python3\.10$"]) == 0
    assert capsys.readouterr().out.splitlines() == ["2.9.1-python3.10", "2.10.0-python3.10"]


def test_tags_of_a_mistyped_repository_is_one_error_line(registry, capsys):
    assert main(["tags", f"{registry.host}/test/nothing-here"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("matrix: error: ") and "test/nothing-here" in line
    assert "no such repository" in line


def test_tags_bad_filter_is_a_user_error(registry, capsys):
    assert main(["tags", f"{registry.host}/test/x", "--filter", "("]) == 2
    assert "--filter '(' is not a regular expression" in capsys.readouterr().err


def test_version_order_puts_pre_releases_before_their_final():
    assert sorted(["3.0.0", "3.0.0rc1", "2.20.0"], key=version_order) == [
        "2.20.0",
        "3.0.0rc1",
        "3.0.0",
    ]


def test_help_teaches_with_examples(capsys):
    for command in ("retag", "tags"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "examples:" in capsys.readouterr().out
