"""The conda flavor, built and run: the real conda template on the stand-in miniconda
base (tests/support/standin_base.py) through the base mirror, started as `docker run`
would start it. Prefect's conda users rely on the `prefect` env being the one that
runs: for `prefect version`, for EXTRA_PIP_PACKAGES at start, and for the login shell
a container with no command opens."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from matrix.config import load_config
from matrix.plan import plan_release
from tests.support import standin_base
from tests.support.package_index import make_wheel, start_index
from tests.support.standin_base import run_as_docker_would

# One worker builds the image and runs every test of it (the module's fixture).
pytestmark = pytest.mark.xdist_group("real-image-3.9.1-prefect-conda")

# The newest release: a uv line (EXTRA_PIP_PACKAGES through `uv pip install --system`)
# whose conda stage starts from a miniconda pinned by version.
VERSION = "3.9.1"
ENV_BIN = "/opt/conda/envs/prefect/bin"
# Where the probe package landed, and which installer put it there.
REPORT = (
    "import importlib.metadata as m, matrix_probe; print(matrix_probe.__file__); "
    "print(m.distribution('matrix-probe').read_text('INSTALLER').strip())"
)


@pytest.fixture(scope="module")
def conda_image(real_images, registry) -> str:
    """3.9.1-python3.11-conda, built on the stand-in pushed under the tag its line pins."""
    plan = plan_release(load_config(), VERSION, pythons=["3.11"], flavors=["conda"])
    (spec,) = plan.images
    repository, _, tag = spec.contents.conda_base.rpartition(":")
    assert repository == f"docker.io/{standin_base.CONDA_REPOSITORY}"
    standin_base.import_and_push_conda(registry.host, tag)
    return real_images.build(VERSION, flavor="conda")


@pytest.fixture(scope="module")
def probe_index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conda-probe")
    index = start_index()
    index.add(make_wheel(folder, "matrix-probe", "1.0"), datetime.now(UTC))
    yield index
    index.stop()


def test_prefect_version_runs_in_the_env(conda_image):
    for command in (["prefect", "version"], ["--", "prefect", "version"]):
        ran = run_as_docker_would(conda_image, command)
        assert ran.returncode == 0, ran.stderr
        assert re.match(rf"Version: +{re.escape(VERSION)}\n", ran.stdout), ran.stdout
    where = run_as_docker_would(conda_image, ["bash", "-c", "command -v prefect python"])
    assert where.stdout.split() == [f"{ENV_BIN}/prefect", f"{ENV_BIN}/python"], where.stderr


def test_extra_pip_packages_install_into_the_env_with_uv(conda_image, probe_index):
    probe = ["python", "-c", REPORT]
    env = {"UV_INDEX_URL": probe_index.url, "UV_CACHE_DIR": "/tmp/uv-cache"}
    without = run_as_docker_would(conda_image, probe, env=env)
    assert without.returncode == 1 and "No module named 'matrix_probe'" in without.stderr
    ran = run_as_docker_would(conda_image, probe, env={**env, "EXTRA_PIP_PACKAGES": "matrix-probe"})
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0] == "+uv pip install --system matrix-probe"
    assert lines[1].startswith("/opt/conda/envs/prefect/lib/"), ran.stdout
    assert lines[2] == "uv", ran.stdout  # installed by uv, not pip


def test_no_command_opens_a_login_shell_in_the_activated_env(conda_image):
    ran = run_as_docker_would(
        conda_image, [], stdin='echo "env:$CONDA_DEFAULT_ENV"; command -v python prefect\n'
    )
    assert ran.returncode == 0, ran.stderr
    assert "|_| |_|_\\___|_| |___\\___| |_|" in ran.stdout
    assert ran.stdout.rstrip().splitlines()[-3:] == [
        "env:prefect",
        f"{ENV_BIN}/python",
        f"{ENV_BIN}/prefect",
    ]


def test_the_env_comes_first_without_the_entrypoint_too(conda_image):
    """An overridden entrypoint (a worker's own command) still gets the env's Python."""
    ran = run_as_docker_would(
        conda_image, ["python", "-c", "import prefect, sys; print(sys.prefix)"]
    )
    assert ran.stdout == "/opt/conda/envs/prefect\n", ran.stderr
