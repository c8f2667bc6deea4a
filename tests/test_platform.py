"""The shared vocabulary: one platform type and the cell, one image on one platform."""

from __future__ import annotations

import pytest

from matrix.platform import Cell, Platform, short, slug
from matrix.publish.digests import digest_file_name


@pytest.mark.parametrize("text", ["linux/amd64", "linux/arm64", "linux/arm/v7"])
def test_a_platform_prints_as_it_was_written_and_slugs_without_slashes(text):
    platform = Platform.parse(text)
    assert str(platform) == text
    assert platform.slug == text.replace("/", "-") == slug(text)
    assert Platform.from_slug(platform.slug) == platform


@pytest.mark.parametrize("text", ["linux", "linux/", "/arm64", "a/b/c/d"])
def test_a_platform_needs_os_and_architecture(text):
    with pytest.raises(ValueError, match="expected os/arch"):
        Platform.parse(text)


def test_tables_show_linux_platforms_by_architecture():
    assert short(["linux/amd64", "linux/arm/v7", "windows/amd64"]) == "amd64 arm/v7 windows/amd64"


def test_a_cell_names_an_image_on_one_platform_and_reads_back():
    cell = Cell.of("prefect-python3.10-conda", "linux/arm64")
    assert str(cell) == "prefect-python3.10-conda@linux-arm64"
    assert Cell.parse(str(cell)) == cell
    with pytest.raises(ValueError, match="KEY@OS-ARCH"):
        Cell.parse("prefect-python3.10")


def test_digest_files_are_named_by_their_cell():
    assert (
        digest_file_name("prefect-python3.10", "linux/amd64")
        == "prefect-python3.10@linux-amd64.json"
    )


def test_an_oci_platform_object_reads_as_the_platform_it_names():
    assert str(Platform.from_json({"os": "linux", "architecture": "arm", "variant": "v7"})) == (
        "linux/arm/v7"
    )
    assert Platform.from_json(Platform.parse("linux/amd64").to_json()) == Platform.parse(
        "linux/amd64"
    )
