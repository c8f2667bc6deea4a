"""Real images behave as Prefect's do for the people, Helm charts and workers that start
them: the entrypoint by path under tini with no CMD, EXTRA_PIP_PACKAGES at start, a
leading `--`, a banner and login shell with no command, git, uv and the line's extras,
and the client image's own `prefect`. Each image is started as `docker run` would
start it (tests/support/standin_base.py)."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime

import pytest

from tests.support.package_index import make_wheel, start_index
from tests.support.standin_base import run_as_docker_would

ENTRYPOINT = ["/usr/bin/tini", "-g", "--", "/opt/prefect/entrypoint.sh"]
CASES = [
    ("2.11.5", "prefect", "standard"),
    ("3.4.25", "prefect", "kubernetes"),
    ("3.4.25", "prefect-client", "standard"),
]


def config_of(image: str) -> dict:
    """The image's config as `docker image inspect` shows it, pulled first if need be."""
    if subprocess.run(["podman", "image", "exists", image]).returncode != 0:
        subprocess.run(["podman", "pull", "--quiet", "--tls-verify=false", image], check=True)
    inspected = subprocess.run(
        ["podman", "image", "inspect", image], check=True, capture_output=True, text=True
    )
    return json.loads(inspected.stdout)[0]["Config"]


@pytest.fixture(scope="module")
def probe_index(tmp_path_factory):
    """An index on 127.0.0.1 with one small package, for EXTRA_PIP_PACKAGES at start."""
    folder = tmp_path_factory.mktemp("probe")
    index = start_index()
    index.add(make_wheel(folder, "matrix-probe", "1.0"), datetime.now(UTC))
    yield index
    index.stop()


def from_index(index) -> dict[str, str]:
    """Point both installers the images use at ``index`` (plain HTTP on loopback)."""
    return {
        "PIP_INDEX_URL": index.url,
        "PIP_TRUSTED_HOST": "127.0.0.1",
        "UV_INDEX_URL": index.url,
        "UV_CACHE_DIR": "/tmp/uv-cache",
    }


@pytest.mark.parametrize(("version", "image", "flavor"), CASES)
def test_the_entrypoint_runs_under_tini_with_no_cmd(real_images, version, image, flavor):
    reference = real_images.build(version, image, flavor)
    config = config_of(reference)
    assert config["Entrypoint"] == ENTRYPOINT
    assert not config.get("Cmd")
    assert config["WorkingDir"] == "/opt/prefect"
    assert "LANG=C.UTF-8" in config["Env"]


@pytest.mark.parametrize(("version", "image", "flavor"), CASES)
def test_prefect_version_also_after_a_leading_double_dash(real_images, version, image, flavor):
    reference = real_images.build(version, image, flavor)
    expected = version if image == "prefect-client" else rf"Version: +{re.escape(version)}"
    for command in (["prefect", "version"], ["--", "prefect", "version"]):
        ran = run_as_docker_would(reference, command)
        assert ran.returncode == 0, ran.stderr
        assert re.match(rf"{expected}\n", ran.stdout), ran.stdout


@pytest.mark.parametrize(("version", "image", "flavor"), CASES)
def test_extra_pip_packages_install_at_start(real_images, probe_index, version, image, flavor):
    reference = real_images.build(version, image, flavor)
    probe = ["python", "-c", "import matrix_probe; print(matrix_probe.__version__)"]
    without = run_as_docker_would(reference, probe, env=from_index(probe_index))
    assert without.returncode == 1 and "No module named 'matrix_probe'" in without.stderr

    env = {**from_index(probe_index), "EXTRA_PIP_PACKAGES": "matrix-probe"}
    ran = run_as_docker_would(reference, probe, env=env)
    assert ran.returncode == 0, ran.stderr
    installer = "+uv pip install --system" if version.startswith("3.") else "+pip install"
    assert ran.stdout.startswith(f"{installer}") and ran.stdout.endswith("1.0\n"), ran.stdout


@pytest.mark.parametrize(("version", "image", "flavor"), [CASES[0]])
def test_a_package_that_cannot_install_stops_the_container_and_says_why(
    real_images, probe_index, version, image, flavor
):
    reference = real_images.build(version, image, flavor)
    env = {**from_index(probe_index), "EXTRA_PIP_PACKAGES": "no-such-package-anywhere"}
    ran = run_as_docker_would(reference, ["prefect", "version"], env=env)
    assert ran.returncode != 0 and "Version:" not in ran.stdout
    assert "no-such-package-anywhere" in ran.stderr
    assert ran.stderr.rstrip().splitlines()[-1].startswith("EXTRA_PIP_PACKAGES: pip failed")


@pytest.mark.parametrize(("version", "image", "flavor"), CASES)
def test_no_command_prints_the_banner_and_opens_a_login_shell(real_images, version, image, flavor):
    reference = real_images.build(version, image, flavor)
    ran = run_as_docker_would(reference, [], stdin="echo shell:$0\n")
    assert ran.returncode == 0, ran.stderr
    assert "|_| |_|_\\___|_| |___\\___| |_|" in ran.stdout
    assert ran.stdout.rstrip().endswith("shell:bash")


@pytest.mark.parametrize(("version", "image", "flavor"), CASES)
def test_prefect_starts_from_the_images_own_bytecode(real_images, version, image, flavor):
    """Every file's time is the image's epoch (reproducible builds): bytecode checked
    by the source's time would be stale, and each start would compile prefect again."""
    reference = real_images.build(version, image, flavor)
    ran = run_as_docker_would(reference, ["python", "-v", "-c", "import prefect"])
    assert ran.returncode == 0, ran.stderr[-2000:]
    # `python -v` names the .pyc a module comes from, or its .py when it compiled it.
    loaded = re.findall(r"^# code object from '?(\S+?)'?$", ran.stderr, re.MULTILINE)
    from_prefect = [path for path in loaded if "/prefect/" in path]
    assert from_prefect, ran.stderr[-2000:]
    compiled = [path for path in from_prefect if path.endswith(".py")]
    assert compiled == [], f"{len(compiled)} of {len(from_prefect)} compiled at start"


@pytest.mark.parametrize(("version", "image", "flavor"), CASES)
def test_git_uv_and_the_lines_extras_are_there(real_images, version, image, flavor):
    reference = real_images.build(version, image, flavor)
    git = run_as_docker_would(reference, ["git", "--version"])
    assert git.returncode == 0 and git.stdout.startswith("git version"), git.stderr
    uv = run_as_docker_would(reference, ["uv", "--version"])
    if version.startswith("3."):
        assert uv.returncode == 0 and uv.stdout.startswith("uv "), uv.stderr
    else:
        assert uv.returncode != 0  # 2.x images had no uv
    if (image, flavor) == ("prefect", "kubernetes"):
        extras = ["python", "-c", "import prefect_kubernetes, prefect_redis"]
        ran = run_as_docker_would(reference, extras)
        assert ran.returncode == 0, ran.stderr


@pytest.mark.parametrize(("version", "image", "flavor"), [CASES[2]])
def test_the_client_command_answers_what_workers_and_people_ask(
    real_images, version, image, flavor
):
    reference = real_images.build(version, image, flavor)
    imported = run_as_docker_would(
        reference, ["python", "-c", "import prefect; print(prefect.__version__)"]
    )
    assert imported.stdout == "3.4.25\n", imported.stderr
    execute = run_as_docker_would(reference, ["prefect", "flow-run", "execute"])
    assert execute.returncode == 1
    assert "no flow run id: pass one, or set PREFECT__FLOW_RUN_ID" in execute.stderr
    other = run_as_docker_would(reference, ["prefect", "server", "start"])
    assert other.returncode == 1
    assert "prefecthq/prefect:3.4.25-python3.11" in other.stderr
    at_root = run_as_docker_would(reference, ["test", "-x", "/entrypoint.sh"])
    assert at_root.returncode == 0
