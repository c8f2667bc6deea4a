"""Which versions.toml a run uses, and an installed wheel that plans and renders anywhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def matrix(*argv: str, cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [sys.executable, "-m", "matrix", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def plan_json(*argv: str, cwd: Path, pythonpath: Path | None = None) -> dict:
    done = matrix(
        "plan", "--version", "2.11.5", "--format", "json", *argv, cwd=cwd, pythonpath=pythonpath
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# One worker runs the module under xdist: the wheel is built once.
pytestmark = pytest.mark.xdist_group("test_packaging")


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    """The wheel built from this checkout, unpacked as pip would install it."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = out.glob("matrix-*.whl")
    site = out / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def test_wheel_carries_the_facts_and_templates(installed_wheel):
    data = installed_wheel / "matrix" / "_data"
    assert (data / "versions.toml").read_bytes() == (REPO / "versions.toml").read_bytes()
    shipped = sorted(p.name for p in (data / "dockerfiles").iterdir())
    assert shipped == sorted(p.name for p in (REPO / "dockerfiles").iterdir())


def test_installed_wheel_plans_and_renders_from_an_empty_folder(installed_wheel, tmp_path):
    plan = plan_json(cwd=tmp_path, pythonpath=installed_wheel)
    packaged = installed_wheel / "matrix" / "_data" / "versions.toml"
    assert plan["config"] == f"{packaged} (packaged with matrix)"
    assert any("2.11.5-python3.10" in image["tags"] for image in plan["images"])

    done = matrix(
        "render",
        "--version",
        "2.11.5",
        "--python",
        "3.10",
        "--out",
        "contexts",
        cwd=tmp_path,
        pythonpath=installed_wheel,
    )
    assert done.returncode == 0, done.stderr
    dockerfiles = list((tmp_path / "contexts").rglob("Dockerfile"))
    assert dockerfiles
    assert all('ARG PREFECT_VERSION="2.11.5"' in f.read_text() for f in dockerfiles)


def own_config(folder: Path, registry: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = (REPO / "versions.toml").read_text()
    (folder / "versions.toml").write_text(
        text.replace('registry = "docker.io"', f'registry = "{registry}"', 1)
    )
    shutil.copytree(REPO / "dockerfiles", folder / "dockerfiles")
    return folder / "versions.toml"


def test_a_folder_with_its_own_versions_toml_plans_from_it(tmp_path):
    config = own_config(tmp_path, "ghcr.io")
    plan = plan_json(cwd=tmp_path)
    assert plan["registry"] == "ghcr.io"
    assert plan["config"] == f"{config} (the current folder)"


def test_config_flag_wins_over_the_current_folder(tmp_path):
    own_config(tmp_path, "ghcr.io")
    other = own_config(tmp_path / "other", "quay.io")
    plan = plan_json("--config", str(other), cwd=tmp_path)
    assert plan["registry"] == "quay.io"
    assert plan["config"] == f"{other} (--config)"


def test_table_names_the_file_it_used(tmp_path):
    config = own_config(tmp_path, "ghcr.io")
    done = matrix("plan", "--version", "2.11.5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"facts: {config} (the current folder)\n" in done.stdout
