"""Two writers of one release: Prefect's release run and this repository's schedule or
dispatch can publish the same version at once (GitHub's concurrency groups are per
repository). Full tags are immutable, so the first writer's image is the release's:
a later writer keeps it; a tag that another writer moved since a run read it stops
that run with one line, written over by nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from matrix.cli import main
from matrix.plan import TagKind
from matrix.publish.build import digest_merger
from matrix.publish.digests import write_digest
from matrix.publish.run import observe, publish
from matrix.publish.state import read_state, reference
from matrix.publish.verify import verify_problems
from matrix.reference import ImageReference
from matrix.registry import Overtaken, RegistryClient
from tests.support.images import push_index, push_platform_images
from tests.support.publishing import Release


def second_build(release: Release, folder: Path) -> Path:
    """The same release built again into the same repository (other digests, as a
    second build job would push), its digest files in ``folder``."""
    with RegistryClient() as client:
        for spec in release.plan.images:
            children, _ = push_platform_images(
                client,
                ImageReference(release.host, release.repository),
                spec.platforms,
                salt=f"{spec.key} built again",
            )
            for platform, digest in children.items():
                write_digest(folder, spec.key, platform, digest)
    return folder


def assert_complete_and_consistent(release: Release) -> None:
    tags = release.tags()
    assert set(tags) >= {t.tag for t in release.plan.targets}
    with RegistryClient() as client:
        state = read_state(client, release.plan, release.host)
    assert verify_problems(release.plan, state) == []
    for spec in release.plan.images:
        assert {tags[t.tag] for t in spec.targets} == {tags[spec.full_target.tag]}, spec.key


def test_two_publishes_of_one_release_at_once_leave_it_whole(
    tmp_path, registry, fault_proxy, capsys
):
    release = Release(tmp_path, registry.host, "twice")
    other = second_build(release, tmp_path / "other-digests")
    # Both read the registry slowly, so both decide before either writes.
    fault_proxy.delay(0.3, method="GET", path="/manifests/", times=10_000)
    runs = []
    for digests in (release.digests, other):
        args = release.args(fault_proxy.host)
        args[args.index("--digests") + 1] = str(digests)
        runs.append(
            subprocess.Popen(
                [sys.executable, "-m", "matrix", *args],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "CI": "true"},
            )
        )
    for run in runs:
        _, err = run.communicate(timeout=300)
        last = err.strip().splitlines()[-1]
        # Either writer may finish first; one that lost a race says so in one line.
        assert run.returncode == 0 or (
            run.returncode == 2 and "another writer got there first" in last
        ), err
    fault_proxy.clear()

    assert_complete_and_consistent(release)
    report = tmp_path / "rerun.json"
    assert main([*release.args(registry.host), "--report", str(report)]) == 0
    assert json.loads(report.read_text())["writes"] == 0, capsys.readouterr().err


def test_an_image_another_writer_published_meanwhile_is_kept(tmp_path, registry):
    release = Release(tmp_path, registry.host, "kept")
    other = second_build(release, tmp_path / "other-digests")
    host = registry.host
    with RegistryClient() as client:
        observation = observe(client, release.plan, [host])
        # Another writer merges the first image after this run read the registry.
        first = release.plan.images[0]
        theirs, _ = digest_merger(client, release.plan, host, other)
        theirs(first)
        their_digest = client.head_manifest(reference(host, first.full_target)).digest
        ours, inputs = digest_merger(
            client, release.plan, host, release.digests, observation.states[host].images
        )
        report = publish(client, release.plan, host, ours, inputs=inputs, observation=observation)
    assert (host, first.repository, first.full_target.tag) not in report.done
    assert release.tags()[first.full_target.tag] == their_digest
    assert_complete_and_consistent(release)


def test_a_tag_another_writer_moved_meanwhile_stops_the_run_in_one_line(tmp_path, registry, capsys):
    release = Release(tmp_path, registry.host, "moved")
    host = registry.host
    with RegistryClient() as client:
        observation = observe(client, release.plan, [host])
        spec = release.plan.images[0]
        latest = next(t for t in spec.targets if t.kind is TagKind.LATEST)
        # Another writer (a newer release, say) points 2-latest elsewhere meanwhile.
        elsewhere = push_index(client, reference(host, latest), salt="newer release")
        merge, inputs = digest_merger(
            client, release.plan, host, release.digests, observation.states[host].images
        )
        with pytest.raises(Overtaken) as stopped:
            publish(client, release.plan, host, merge, inputs=inputs, observation=observation)
    message = str(stopped.value)
    assert "\n" not in message and f"{host}/{latest}" in message
    assert "another writer got there first" in message
    assert release.tags()[latest.tag] == elsewhere.digest  # not written over

    # A rerun decides afresh: 2.11.4 is still the newest release the registry holds.
    assert main(release.args(host)) == 0, capsys.readouterr().err
    assert release.tags()[latest.tag] == release.tags()[spec.full_target.tag]
