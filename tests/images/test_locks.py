"""Locks against a local PEP 691 index of small wheels: what a user relies on when an
old release is rebuilt (the dependencies it shipped with), offline."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from matrix.cli import main
from matrix.lock import lock_changes
from tests.build.conftest import FAKE_DOCKER
from tests.support.package_index import PackageIndex, make_wheel, start_index

RELEASED = datetime(2023, 8, 24, 20, 2, 8, tzinfo=UTC)
KEY = "prefect-python3.11"
ARGS = ["--version", "2.11.5", "--python", "3.11", "--flavor", "standard"]


@pytest.fixture
def index(tmp_path) -> PackageIndex:
    """prefect 2.11.5 needing `dep`, which had 1.0 before the release and 2.0 after."""
    served = start_index()
    wheels = tmp_path / "wheels"
    served.add(make_wheel(wheels, "dep", "1.0"), datetime(2023, 1, 1, tzinfo=UTC))
    served.add(make_wheel(wheels, "dep", "2.0"), datetime(2024, 6, 1, tzinfo=UTC))
    served.add(make_wheel(wheels, "prefect", "2.11.5", requires=("dep",)), RELEASED)
    yield served
    served.stop()


def render(tmp_path: Path, index: PackageIndex, *extra: str, out: str = "out") -> Path:
    code = main(["render", *ARGS, "--index-url", index.url, "--out", str(tmp_path / out), *extra])
    assert code == 0
    return tmp_path / out / KEY / "install" / "requirements-amd64.lock"


def test_cutoff_at_the_release_picks_the_dependency_it_shipped_with(tmp_path, index):
    lock = render(tmp_path, index).read_text()
    assert "\ndep==1.0 \\\n    --hash=sha256:" in lock
    assert "\nprefect==2.11.5 \\\n    --hash=sha256:" in lock
    assert "as of 2023-08-24T20:02:09Z" in lock
    dockerfile = (tmp_path / "out" / KEY / "Dockerfile").read_text()
    assert 'io.prefect.matrix.resolved-as-of="2023-08-24T20:02:09Z"' in dockerfile
    # arm64 is resolved too, on this amd64 host.
    assert (
        "dep==1.0" in (tmp_path / "out" / KEY / "install" / "requirements-arm64.lock").read_text()
    )


def test_same_release_same_lock_and_another_only_when_re_resolved(tmp_path, index):
    first = render(tmp_path, index, out="a").read_bytes()
    index.add(
        make_wheel(tmp_path / "later", "dep", "3.0"), datetime.now(UTC) - timedelta(minutes=1)
    )
    assert render(tmp_path, index, out="b").read_bytes() == first
    again = render(tmp_path, index, "--re-resolve", out="c").read_text()
    assert "dep==3.0" in again
    assert lock_changes(first.decode(), again) == ["dep 1.0 -> 3.0"]


def test_a_changed_file_on_the_index_fails_the_install(tmp_path, index):
    lock = render(tmp_path, index)
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--require-hashes"]
    install += ["--target", str(tmp_path / "site"), "--requirement", str(lock)]
    # Only the lock's own --index-url: no local wheel folder of this machine.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_FIND_LINKS")}
    done = subprocess.run(install, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "dep" / "__init__.py").read_text().startswith("__version__ = '1.0'")
    # Same name and version, other bytes: what a tampered or rebuilt upload looks like.
    make_wheel(tmp_path / "wheels", "dep", "1.0", module_text="print('not the same')\n")
    done = subprocess.run(
        [*install[:-4], "--target", str(tmp_path / "site2"), "--requirement", str(lock)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode != 0
    assert "DO NOT MATCH THE HASHES" in done.stderr


def test_a_release_missing_from_the_index_fails_before_any_build(
    tmp_path, index, monkeypatch, capsys
):
    record = tmp_path / "docker-calls.jsonl"
    monkeypatch.setenv("FAKE_DOCKER_RECORD", str(record))
    # buildx cannot run here: a recording `docker` stands in, so any build call shows.
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    (bin_folder / "docker").symlink_to(FAKE_DOCKER)
    monkeypatch.setenv("PATH", f"{bin_folder}:{os.environ['PATH']}")
    url = index.url.replace("http://", "http://alice:s3cret@")
    code = main(
        [
            "build",
            "--version",
            "2.11.4",
            "--python",
            "3.11",
            "--flavor",
            "standard",
            "--index-url",
            url,
            "--push",
            "--create-builder",
        ]
    )
    captured = capsys.readouterr()
    assert code == 2
    (line,) = captured.err.splitlines()
    assert "prefect 2.11.4 is not on the package index" in line
    assert index.url in line
    assert "s3cret" not in captured.err + captured.out
    assert not record.exists(), "nothing may run before the index is known to hold the release"


def test_a_dev_build_without_a_dist_is_refused_at_once(tmp_path, index, capsys):
    code = main(["render", "--version", "2.11.5+12.gabc1234", "--index-url", index.url])
    assert code == 2
    assert "dev build" in capsys.readouterr().err
    assert index.requests == []


def test_dist_of_another_version_is_refused(tmp_path, index, capsys):
    wheel = make_wheel(tmp_path / "dist", "prefect", "2.11.4")
    code = main(["render", *ARGS, "--index-url", index.url, "--dist", str(wheel)])
    assert code == 2
    assert "version 2.11.4, but the plan builds 2.11.5" in capsys.readouterr().err


def test_dist_goes_into_the_context_and_its_hash_into_the_lock(tmp_path, index):
    version = "2.11.5+12.gabc1234"
    wheel = make_wheel(tmp_path / "dist", "prefect", version, requires=("dep",))
    out = tmp_path / "out"
    args = ["--version", version, "--python", "3.11", "--flavor", "standard"]
    dist = str(tmp_path / "dist")
    code = main(["render", *args, "--index-url", index.url, "--dist", dist, "--out", str(out)])
    assert code == 0
    install = out / KEY / "install"
    lock = (install / "requirements-amd64.lock").read_text()
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert (
        f"prefect @ file:///tmp/matrix-install/{wheel.name} \\\n    --hash=sha256:{digest}" in lock
    )
    assert (install / wheel.name).read_bytes() == wheel.read_bytes()
    assert "dep==" in lock


def test_waiting_for_the_index_reports_progress_and_ends_when_the_release_is_there(
    tmp_path, index, capsys
):
    wheel = make_wheel(tmp_path / "upload", "prefect", "2.11.6", requires=("dep",))
    timer = threading.Timer(1.5, index.add, (wheel, datetime(2024, 1, 1, tzinfo=UTC)))
    timer.start()
    args = ["--version", "2.11.6", "--python", "3.11", "--flavor", "standard"]
    out = tmp_path / "out"
    code = main(
        ["render", *args, "--index-url", index.url, "--wait-for-index", "30", "--out", str(out)]
    )
    timer.join()
    err = capsys.readouterr().err
    assert code == 0, err
    assert "prefect 2.11.6 is not on " + index.url + " yet; asking again" in err
    # Cut off at the upload it waited for: dep 2.0 came later.
    assert "dep==1.0" in (out / KEY / "install" / "requirements-amd64.lock").read_text()


def test_a_bounded_wait_ends_in_one_clear_error(tmp_path, index, capsys):
    args = ["--version", "2.11.6", "--python", "3.11", "--flavor", "standard"]
    started = time.monotonic()
    code = main(["render", *args, "--index-url", index.url, "--wait-for-index", "1"])
    assert code == 2
    assert time.monotonic() - started < 10
    assert "not on the package index" in capsys.readouterr().err.splitlines()[-1]


def test_the_date_a_build_recorded_wins_over_the_index_and_a_dist_build_records_its_own(
    tmp_path, index
):
    """A release built from its dist before the upload is locked as of that build; once
    the image carries that date, later builds keep it although the index has the
    release now (with another upload time)."""
    from matrix.config import load_config
    from matrix.index import Index
    from matrix.lock import lock_plan, recorded_dates
    from matrix.plan import plan_release

    loaded = load_config()
    plan = plan_release(loaded, "2.11.6", pythons=["3.11"], flavors=["standard"])
    dist = make_wheel(tmp_path / "dist", "prefect", "2.11.6", requires=("dep",))
    built = datetime(2023, 9, 1, 12, 0, tzinfo=UTC)
    first = lock_plan(plan, loaded, Index(index.url), dist=str(dist), now=lambda: built)[KEY]
    assert (first.as_of, first.as_of_source) == (built, "dist")

    index.add(
        make_wheel(tmp_path / "upload", "prefect", "2.11.6", requires=("dep",)),
        datetime(2024, 7, 1, tzinfo=UTC),
    )
    recorded = recorded_dates({KEY: {"io.prefect.matrix.resolved-as-of": "2023-09-01T12:00:00Z"}})
    later = lock_plan(plan, loaded, Index(index.url), recorded=recorded)[KEY]
    assert (later.as_of, later.as_of_source) == (built, "recorded")
    assert "dep==1.0" in later.locks["linux/amd64"]
    fresh = lock_plan(plan, loaded, Index(index.url))[KEY]
    assert fresh.as_of_source == "index" and "dep==2.0" in fresh.locks["linux/amd64"]


def test_index_credentials_stay_out_of_the_lock_and_the_output(tmp_path, index, capsys):
    secret_url = index.url.replace("http://", "http://alice:s3cret@")
    code = main(["render", *ARGS, "--index-url", secret_url, "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lock = (tmp_path / "out" / KEY / "install" / "requirements-amd64.lock").read_text()
    assert f"\n--index-url {index.url}\n" in lock
    for text in (lock, captured.out, captured.err):
        assert "s3cret" not in text and "alice" not in text
