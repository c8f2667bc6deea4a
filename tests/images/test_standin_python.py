"""The stand-in python:3.11-slim is faithful where the images' behaviour depends on it:
a plain system interpreter with no PEP 668 marker, so the uv lines' entrypoint really
runs `uv pip install --system` against it for EXTRA_PIP_PACKAGES, as in the official
image, and installs where pip does."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.package_index import make_wheel, start_index
from tests.support.standin_base import run_as_docker_would

REPORT = (
    "import importlib.metadata as m, sys, matrix_probe; "
    "print(sys.prefix == sys.base_prefix); print(matrix_probe.__file__); "
    "print(m.distribution('matrix-probe').read_text('INSTALLER').strip())"
)


@pytest.fixture(scope="module")
def probe_index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slim-probe")
    index = start_index()
    index.add(make_wheel(folder, "matrix-probe", "1.0"), datetime.now(UTC))
    yield index
    index.stop()


# Images the contract tests build too: each is built once per run.
@pytest.mark.parametrize(
    ("version", "flavor", "installer"),
    [("3.4.25", "kubernetes", "uv"), ("2.11.5", "standard", "pip")],
)
def test_extra_pip_packages_go_through_the_lines_installer_into_the_system_python(
    real_images, probe_index, version, flavor, installer
):
    image = real_images.build(version, flavor=flavor)
    env = {
        "EXTRA_PIP_PACKAGES": "matrix-probe",
        "PIP_INDEX_URL": probe_index.url,
        "PIP_TRUSTED_HOST": "127.0.0.1",
        "UV_INDEX_URL": probe_index.url,
        "UV_CACHE_DIR": "/tmp/uv-cache",
    }
    ran = run_as_docker_would(image, ["python", "-c", REPORT], env=env)
    assert ran.returncode == 0, ran.stderr
    shown, plain, where, installed_by = ran.stdout.splitlines()
    assert shown.startswith("+uv pip install --system" if installer == "uv" else "+pip install")
    assert plain == "True"  # no venv: the interpreter python:slim has
    assert where == "/usr/local/lib/python3.11/dist-packages/matrix_probe/__init__.py"
    assert installed_by == installer


def test_the_base_has_no_marker_and_no_venv_setting(standin_python):
    config_env = run_as_docker_would(
        standin_python,
        [
            "sh",
            "-c",
            "ls /usr/lib/python3.11/EXTERNALLY-MANAGED; env; readlink /usr/local/bin/python",
        ],
    )
    assert "No such file" in config_env.stderr
    assert "UV_PYTHON=" not in config_env.stdout and "VIRTUAL_ENV=" not in config_env.stdout
    assert config_env.stdout.rstrip().endswith("/usr/bin/python3")
