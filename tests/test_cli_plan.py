"""`matrix plan` as users and workflows run it."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from matrix.cli import main
from matrix.data import PACKAGED_CONFIG
from tests.support.package_index import make_wheel, start_index
from tests.support.prefect_releases import prefect_history


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's own exits (--help, usage errors)
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_has_the_documented_keys(capsys):
    code, out, err = run(
        capsys,
        "plan",
        "--version",
        "2.11.5",
        "--format",
        "json",
        "--sha",
        "a597971f7156",
        "--python",
        "3.10",
        "--flavor",
        "conda",
    )
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["version"] == "2.11.5"
    (image,) = data["images"]
    assert image["image"] == "prefecthq/prefect"
    assert image["python"] == "3.10"
    assert image["flavor"] == "conda"
    assert image["platforms"] == ["linux/amd64", "linux/arm64"]
    assert image["tags"] == [
        "2.11.5-python3.10-conda",
        "sha-a597971-python3.10-conda",
        "2.11-python3.10-conda",
        "2-python3.10-conda",
        "2-latest-conda",
    ]
    assert image["dockerfile"] == "conda.Dockerfile.j2"
    assert image["build_args"] == {
        "PYTHON_VERSION": "3.10",
        "PREFECT_VERSION": "2.11.5",
        "BASE_IMAGE": "prefect-conda",
    }
    assert [t["floating"] for t in image["targets"]] == [False, False, True, True, True]


def test_table_lists_every_image_and_marks_floating_tags(capsys):
    code, out, _ = run(capsys, "plan", "--version", "2.11.5", "--python", "3.10")
    assert code == 0
    assert "2.11.5-python3.10" in out and "2-latest*" in out and "2-latest-conda*" in out
    assert "3 images, 15 tags" not in out  # no sha given: no sha tags
    assert "3 images, 12 tags (9 floating" in out
    assert "assuming 2.11.5 is the newest" in out.replace("\n", " ")


def test_releases_file_drives_newest_in_line(capsys, tmp_path):
    releases = tmp_path / "releases.txt"
    releases.write_text("# published\n2.10.21\n2.11.0\n2.11.5\n")
    code, out, _ = run(
        capsys, "plan", "--version", "2.10.22", "--releases", str(releases), "--format", "json"
    )
    assert code == 0
    floating = {t["tag"] for i in json.loads(out)["images"] for t in i["targets"] if t["floating"]}
    assert floating and all(tag.startswith("2.10-python") for tag in floating)


@pytest.mark.parametrize(
    ("version", "floating"),
    [
        # 2.x patches went on after 3.x began: 2.20.27 is still the newest 2.x final.
        ("2.20.27", {"2.20-python3.10", "2-python3.10", "2-latest"}),
        ("2.20.25", set()),
        ("3.7.9", {"3.7-python3.10"}),  # a backport after 3.8: its minor tags only
        ("3.7.7", set()),  # a rerun of an older patch moves nothing
        ("3.8.8", {"3.8-python3.10"}),  # the last 3.8 patch came after 3.9.0's nightlies
        ("3.9.1", {"3-latest"}),  # no Python 3.10 image: 3.9 requires Python 3.11
        ("3.8.4.dev6", set()),
    ],
)
def test_prefect_history_as_the_releases_file(capsys, tmp_path, version, floating):
    releases = tmp_path / "releases.txt"
    history = prefect_history()
    releases.write_text("\n".join(history) + "\n")
    code, out, err = run(
        capsys, "plan", "--version", version, "--releases", str(releases), "--format", "json"
    )
    assert (code, err) == (0, "")
    plan = json.loads(out)
    tags = {
        t["tag"] for i in plan["images"] if i["image"] == "prefecthq/prefect" for t in i["targets"]
    }
    assert {t for t in tags if t.endswith(("-python3.10", "-latest"))} - {
        f"{version}-python3.10",
    } == floating


def test_a_release_newer_than_versions_toml_is_planned_and_says_so(capsys):
    code, out, err = run(capsys, "plan", "--version", "3.10.0", "--format", "json")
    assert (code, err) == (0, "")
    plan = json.loads(out)
    assert plan["line"] == ">=3.9.0"
    assert (
        "line >=3.9.0 of versions.toml is open-ended: 3.10.0 is planned with the newest 3.x facts"
    ) in plan["notes"]
    assert plan["summary"]["images"] == 16  # 3.11-3.14 x 3 flavors + 4 client images
    code, out, _ = run(capsys, "plan", "--version", "3.10.0")
    assert code == 0 and "open-ended" in out


def test_github_format_writes_outputs_and_summary(capsys, tmp_path, monkeypatch):
    output, summary = tmp_path / "output", tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, _ = run(capsys, "plan", "--version", "3.4.25", "--format", "github")
    assert code == 0
    values = dict(line.split("=", 1) for line in output.read_text().splitlines())
    matrix = json.loads(values["matrix"])
    # 3.4.25: (6 Pythons x 3 flavors + 6 client images) x 2 platforms
    assert len(matrix["include"]) == 48
    assert values["jobs"] == "48" and values["version"] == "3.4.25"
    job = matrix["include"][0]
    assert set(job) >= {"key", "image", "python", "flavor", "platform", "version"}
    assert {j["platform"] for j in matrix["include"]} == {"linux/amd64", "linux/arm64"}
    assert json.loads(out) == matrix
    text = summary.read_text()
    assert "| prefecthq/prefect-client | 3.12 | standard |" in text
    assert "`3-latest*`" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plan", "--version", "2.x"], "invalid version '2.x'"),
        (["plan", "--version", "9.0.0"], "covers 9.0.0: major 9 has no entry"),
        (["plan", "--version", "4.0.0rc1"], "covers 4.0.0rc1: major 4 has no entry"),
        (["plan", "--version", "2.11.5", "--python", "3.13"], "no image for Python 3.13"),
        (["plan", "--version", "2.11.5", "--flavor", "gpu"], "no 'gpu' flavor"),
        (["plan", "--version", "2.11.5", "--config", "/nonexistent.toml"], "cannot read"),
        (["plan", "--version", "2.11.5", "--releases", "/nonexistent"], "cannot read"),
        (["plan", "--version", "2.11.5", "--format", "yaml"], "invalid choice: 'yaml'"),
        (["plan"], "required: --version"),
        (["plan", "--version", "2.11.5", "--latest", "--no-latest"], "not allowed with"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and message in err
    assert "Traceback" not in err


def test_bad_releases_file_names_the_line(capsys, tmp_path):
    releases = tmp_path / "releases.txt"
    releases.write_text("2.11.4\nnot-a-version\n")
    code, _, err = run(capsys, "plan", "--version", "2.11.5", "--releases", str(releases))
    assert code == 2 and f"{releases}:2: invalid version 'not-a-version'" in err


def test_help_teaches_with_examples(capsys):
    code, out, _ = run(capsys, "plan", "--help")
    assert code == 0
    assert "examples:" in out and "--releases" in out and "floating" in out


def test_console_script_runs_the_packaged_default():
    result = subprocess.run(
        [sys.executable, "-m", "matrix", "plan", "--version", "2.11.5", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout)["summary"]["images"] == 11


def test_planning_imports_no_network_or_build_library():
    code = (
        "import sys; from matrix.cli import main; "
        "main(['plan', '--version', '2.11.5', '--format', 'json']); "
        "heavy = {'httpx', 'python_on_whales', 'jinja2', 'rich'} & set(sys.modules); "
        "sys.stderr.write(repr(sorted(heavy)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stderr == "[]"


def test_without_a_terminal_each_image_is_one_whole_line(capsys):
    """A CI log: no table to cut a value at 80 columns."""
    code, out, _ = run(capsys, "plan", "--version", "2.11.5", "--sha", "a597971f7156")
    assert code == 0 and "…" not in out
    line = next(line for line in out.splitlines() if "python 3.10  kubernetes" in line)
    assert "linux/amd64,linux/arm64" in line
    assert line.endswith(
        "2.11.5-python3.10-kubernetes sha-a597971-python3.10-kubernetes "
        "2.11-python3.10-kubernetes* 2-python3.10-kubernetes* 2-latest-kubernetes*"
    )


def test_the_table_at_a_terminal_of_80_columns_cuts_nothing():
    from rich.console import Console

    from matrix.cli.output import print_table
    from matrix.config import load_config
    from matrix.settings import ReleaseSelection

    console = Console(force_terminal=True, width=80, record=True, color_system=None)
    plan = ReleaseSelection("2.11.5", commit="a597971f7156").plan(load_config(None))
    print_table(plan, console)
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert "kubernetes" in text and "amd64 arm64" in text
    assert "sha-a597971-python3.10-kubernetes" in text and "prefecthq/prefect:" in text


@pytest.fixture
def prefect_index(tmp_path):
    """A package index on 127.0.0.1 with prefect 3.8.8, 3.9.0 and 3.9.1 as PyPI has them:
    their Requires-Python, and prefect-client for all but 3.9.1."""
    index = start_index()
    uploaded = datetime(2026, 10, 30, tzinfo=UTC)
    for version, requires in (
        ("3.8.8", ">=3.10,<3.15"),
        ("3.9.0", "<3.16,>=3.11"),
        ("3.9.1", "<3.16,>=3.11"),
    ):
        for name in ("prefect", "prefect-client") if version != "3.9.1" else ("prefect",):
            wheel = make_wheel(tmp_path, name, version, requires_python=requires)
            index.add(wheel, uploaded, requires_python=requires)
    yield index
    index.stop()


def test_with_the_index_each_release_offers_what_it_can_install(capsys, prefect_index):
    argv = ["plan", "--version", "3.9.1", "--index-url", prefect_index.url, "--format", "json"]
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, "")
    plan = json.loads(out)
    assert {i["python"] for i in plan["images"]} == {"3.11", "3.12", "3.13", "3.14"}
    assert {i["name"] for i in plan["images"]} == {"prefect"}
    assert (
        f"no prefect-client image: the package index {prefect_index.url} has no "
        "prefect-client 3.9.1"
    ) in plan["notes"]
    assert "/simple/prefect/" in prefect_index.requests
    assert "/simple/prefect-client/" in prefect_index.requests
    code, out, _ = run(capsys, *[("3.9.0" if a == "3.9.1" else a) for a in argv])
    assert code == 0 and "prefect-client" in {i["name"] for i in json.loads(out)["images"]}


def test_an_index_that_disagrees_with_versions_toml_is_one_line_naming_the_fix(
    capsys, prefect_index, tmp_path
):
    # versions.toml as it was before 3.9: its newest line open-ended on 3.8's facts.
    text = PACKAGED_CONFIG.read_text(encoding="utf-8")
    text = text[: text.index("[[lines]]\n# Python 3.10 dropped: the nightlies 3.8.9.dev1")]
    text = text.replace('versions = ">=3.8.4.dev2, <3.8.9.dev1"', 'versions = ">=3.8.4.dev2"')
    config = tmp_path / "versions.toml"
    config.write_text(text, encoding="utf-8")
    argv = ["plan", "--version", "3.9.1", "--config", str(config)]
    code, out, err = run(capsys, *argv, "--index-url", prefect_index.url)
    assert (code, out) == (2, "")
    assert err == (
        f"matrix: error: prefect 3.9.1 requires Python '>=3.11,<3.16' on the package index "
        f"{prefect_index.url}, but versions.toml's line >=3.8.4.dev2 (requires_python "
        "'>=3.10,<3.15') would build Python 3.10: give 3.9.1 a [[lines]] entry with "
        f'requires_python = ">=3.11,<3.16" in {config}\n'
    )
    # 3.8.8 agrees with the same file.
    argv[2] = "3.8.8"
    code, _, err = run(capsys, *argv, "--index-url", prefect_index.url)
    assert (code, err) == (0, "")


def test_an_unreachable_index_is_one_line(capsys):
    code, out, err = run(
        capsys, "plan", "--version", "3.9.1", "--index-url", "http://127.0.0.1:9/simple"
    )
    assert (code, out) == (2, "")
    assert err.startswith("matrix: error: package index http://127.0.0.1:9/simple: ")
    assert err.count("\n") == 1
