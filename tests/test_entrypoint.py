"""The files every image gets: the entrypoint script and the client image's `prefect`.

They run here as they run in an image: the entrypoint with bash, in a virtualenv that
stands in for the image's Python; the stub with a stand-in `prefect` package. The
real-image tests run the same files inside built images.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.support.package_index import make_wheel

FILES = Path(__file__).parents[1] / "dockerfiles" / "context"
ENTRYPOINT = FILES / "entrypoint.sh"
CLIENT_CLI = FILES / "prefect-client-cli"

# One worker runs the module under xdist: its virtualenv with pip takes seconds to make.
pytestmark = pytest.mark.xdist_group("test_entrypoint")


@pytest.fixture(scope="module")
def image_python(tmp_path_factory) -> Path:
    """A virtualenv with pip: the image's Python, first on PATH."""
    root = tmp_path_factory.mktemp("image-python")
    venv.EnvBuilder(with_pip=True).create(root)
    return root


@pytest.fixture
def run(image_python, tmp_path):
    home = tmp_path / "home"
    home.mkdir()

    def run(*command: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
        environ = {
            "PATH": f"{image_python / 'bin'}:{os.environ['PATH']}",
            "HOME": str(home),
            "PIP_NO_INDEX": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "UV_OFFLINE": "1",
            # `uv pip install --system` skips virtualenvs when it looks for Python; in an
            # image the first is the image's, here it has to be told.
            "UV_PYTHON": str(image_python / "bin" / "python"),
            **env,
        }
        return subprocess.run(
            ["bash", str(ENTRYPOINT), *command],
            env=environ,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    run.home = home
    return run


def test_a_command_runs_as_given_and_a_leading_double_dash_is_dropped(run):
    done = run("python", "-c", "import sys; print(sys.argv[1:])", "a b", "--")
    assert done.returncode == 0 and done.stdout == "['a b', '--']\n"
    done = run("--", "python", "-c", "print('after --')")
    assert done.returncode == 0 and done.stdout == "after --\n"
    assert run("--", "sh", "-c", "exit 7").returncode == 7


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_extra_pip_packages_are_installed_before_the_command(run, tmp_path, installer):
    one, two = f"one_by_{installer}", f"two_by_{installer}"
    first, second = make_wheel(tmp_path, one, "1.0"), make_wheel(tmp_path, two, "2.5")
    probe = f"import {one}, {two}; print({one}.__version__, {two}.__version__)"

    without = run("python", "-c", probe, MATRIX_EXTRA_INSTALLER=installer)
    assert without.returncode == 1 and f"No module named '{one}'" in without.stderr

    done = run(
        "python",
        "-c",
        probe,
        EXTRA_PIP_PACKAGES=f" {first}  {second} ",
        MATRIX_EXTRA_INSTALLER=installer,
    )
    assert done.returncode == 0, done.stderr
    shown = "+uv pip install --system" if installer == "uv" else "+pip install --no-cache-dir"
    assert done.stdout.splitlines() == [f"{shown} {first} {second}", "1.0 2.5"]


def test_a_package_that_cannot_install_stops_the_container_and_says_why(run, tmp_path):
    missing = tmp_path / "missing-1.0-py3-none-any.whl"
    done = run("python", "-c", "print('never')", EXTRA_PIP_PACKAGES=str(missing))
    assert done.returncode != 0 and "never" not in done.stdout
    assert str(missing) in done.stderr  # pip's own words about the file
    assert done.stderr.rstrip().splitlines()[-1] == (
        f"EXTRA_PIP_PACKAGES: pip failed (exit {done.returncode}) installing: {missing}"
    )


def test_no_command_prints_the_banner_and_opens_a_login_shell(run):
    done = run(stdin="echo in-the-shell $0\nexit 0\n")
    assert done.returncode == 0, done.stderr
    banner, _, rest = done.stdout.partition("\n\n")
    assert "|_| |_|_\\___|_| |___\\___| |_|" in banner
    assert rest.strip() == "in-the-shell bash"
    assert run(stdin="exit 3\n").returncode == 3


def test_bashrc_is_read_first_where_a_conda_image_activates_its_env(run):
    (run.home / ".bashrc").write_text("export ACTIVATED_BY_BASHRC=prefect\n")
    done = run("sh", "-c", "echo $ACTIVATED_BY_BASHRC")
    assert done.stdout == "prefect\n"


# --- the client image's `prefect` -----------------------------------------------------


@pytest.fixture
def client(tmp_path):
    package = tmp_path / "site" / "prefect"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('__version__ = "3.4.25"\n')

    def client(*args: str, **env: str) -> subprocess.CompletedProcess:
        # A flow run id only where the test gives one.
        inherited = {k: v for k, v in os.environ.items() if k != "PREFECT__FLOW_RUN_ID"}
        environ = {**inherited, "PYTHONPATH": str(tmp_path / "site"), **env}
        return subprocess.run(
            [sys.executable, str(CLIENT_CLI), *args],
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return client


def test_the_client_command_answers_version(client):
    done = client("version")
    assert done.returncode == 0 and done.stdout == "3.4.25\n"


def test_flow_run_execute_needs_a_flow_run_id(client):
    done = client("flow-run", "execute")
    assert done.returncode == 1
    assert done.stderr == (
        "prefect flow-run execute: no flow run id: pass one, or set PREFECT__FLOW_RUN_ID\n"
    )
    done = client("flow-run", "execute", PREFECT__FLOW_RUN_ID="not-a-uuid")
    assert done.returncode == 1
    assert "'not-a-uuid' is not a flow run id (a UUID)" in done.stderr


def test_any_other_subcommand_points_to_the_full_image(client):
    done = client("server", "start")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert done.returncode == 1 and done.stdout == ""
    assert f"For the full command line use prefecthq/prefect:3.4.25-python{python}." in (
        done.stderr
    )
    assert client().returncode == 1


def test_the_shell_scripts_pass_shellcheck():
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: scripts/test.sh installs it"
    scripts = [ENTRYPOINT, *sorted((FILES.parents[1] / "scripts").glob("*.sh"))]
    done = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
