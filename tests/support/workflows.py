"""Running GitHub Actions workflow steps here, as a runner would.

A step's `run:` script is executed verbatim with bash, its `env:` evaluated from the
contexts GitHub would give it, $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY pointing at
temporary files. The only local change: the word `matrix` in those scripts is this
interpreter's matrix with the options a test adds (a fixture config, the local
registry, podman), appended.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

GITHUB_MATRIX_LIMIT = 256
ENTRY_KEYS = {
    *("key", "name", "image", "version", "python", "flavor", "platform", "platform_slug", "cell"),
}
PREFECT = "PrefectHQ/prefect"


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
                if path.split(".")[0] in _LENIENT or _skipped_output(path, context):
                    return ""
                raise AssertionError(f"${{{{ {path} }}}} names nothing")
            found = found[part]
        if isinstance(found, bool):
            return "true" if found else "false"
        return "" if found is None else str(found)

    return _EXPRESSION.sub(lookup, str(value))


def _skipped_output(path: str, context: dict[str, Any]) -> bool:
    """A step that ran (or was skipped by its `if:`) without writing this output: ''."""
    parts = path.split(".")
    steps = context.get("steps", {})
    return len(parts) == 4 and parts[0] == "steps" and parts[1] in steps and parts[2] == "outputs"


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

    def run(
        self,
        step: dict,
        context: dict[str, Any],
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ):
        """(completed process, its outputs, its step summary)."""
        self.count += 1
        output = self.workdir / f".github-output-{self.count}"
        summary = self.workdir / f".github-summary-{self.count}"
        github, extra = context.get("github", {}), env or {}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))}
        env |= {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": github.get("event_name", "workflow_call"),
            "GITHUB_SHA": github.get("sha", ""),
            "GITHUB_REPOSITORY": github.get("repository", PREFECT),
            "GITHUB_REF_TYPE": github.get("ref_type", ""),
            "GITHUB_REF_NAME": github.get("ref_name", ""),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
        }
        env |= extra
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
