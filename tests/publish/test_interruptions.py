"""A publish killed (SIGKILL) or hit by registry faults is repaired by running it again.

`matrix publish` runs as a real process against a real registry behind the fault
proxy. The proxy holds chosen writes back (503 until the process dies), so each
kill lands at a known point; after every kill no floating tag may name an
incomplete release, and after a rerun the registry must hold exactly what an
uninterrupted publish of the same release writes.
"""

from __future__ import annotations

import pytest

from matrix.cli import main
from matrix.plan import TagKind
from matrix.publish.state import reference
from tests.support.images import push_index
from tests.support.publishing import Release, count_lines, kill_when

# (held back: a regex of the PUT paths answered 503 until the kill; kill after these lines)
KILL_POINTS = {
    "after-some-builds": (
        r"/manifests/2\.11\.4-python3\.10-conda$",
        lambda lines: count_lines("build   ", lines, "pushed") >= 2,
    ),
    "between-verify-and-promote": (
        r"/manifests/(sha-|2\.11-|2-)",
        lambda lines: count_lines("verify  ", lines) >= 1,
    ),
    "in-the-middle-of-promote": (
        r"/manifests/2-",  # major and 2-latest tags; sha and minor tags go through
        lambda lines: count_lines("promote ", lines) >= 8,
    ),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_publish_never_exposes_a_partial_release_and_a_rerun_converges(
    point, tmp_path, registry, fault_proxy, capsys
):
    uninterrupted = Release(tmp_path, registry.host, "whole")
    assert main(uninterrupted.args(registry.host)) == 0, capsys.readouterr().err
    killed = Release(tmp_path, registry.host, "killed")
    held, seen_enough = KILL_POINTS[point]
    fault_proxy.fail(503, method="PUT", path=held, times=10_000)

    kill_when(killed.args(fault_proxy.host), seen_enough)

    written = killed.tags()
    full = {spec.full_target.tag for spec in killed.plan.images}
    floating = {t.tag for t in killed.plan.targets if t.kind is not TagKind.FULL}
    if point == "after-some-builds":
        assert set(written) == {"2.11.4-python3.10", "2.11.4-python3.11"}
    elif point == "between-verify-and-promote":
        assert set(written) == full
    else:
        assert full < set(written) < full | floating
        assert not any(tag.startswith("2-") for tag in written)
    killed.assert_no_floating_tag_names_an_incomplete_release()

    fault_proxy.clear()
    assert main(killed.args(fault_proxy.host)) == 0, capsys.readouterr().err
    assert killed.tags() == uninterrupted.tags()
    assert len(killed.tags()) == len(killed.plan.targets)


def test_killed_twice_then_rerun_converges(tmp_path, registry, fault_proxy, capsys):
    uninterrupted = Release(tmp_path, registry.host, "whole")
    assert main(uninterrupted.args(registry.host)) == 0, capsys.readouterr().err
    killed = Release(tmp_path, registry.host, "killed")
    for point in ("after-some-builds", "in-the-middle-of-promote"):
        held, seen_enough = KILL_POINTS[point]
        fault_proxy.clear()
        fault_proxy.fail(503, method="PUT", path=held, times=10_000)
        kill_when(killed.args(fault_proxy.host), seen_enough)
        killed.assert_no_floating_tag_names_an_incomplete_release()
    fault_proxy.clear()
    assert main(killed.args(fault_proxy.host)) == 0, capsys.readouterr().err
    assert killed.tags() == uninterrupted.tags()


def test_publish_rides_out_503s_and_429s(tmp_path, registry, fault_proxy, capsys):
    uninterrupted = Release(tmp_path, registry.host, "whole")
    assert main(uninterrupted.args(registry.host)) == 0, capsys.readouterr().err
    flaky = Release(tmp_path, registry.host, "flaky")
    fault_proxy.fail(503, method="GET", path="/manifests/", times=3)
    fault_proxy.fail(429, method="HEAD", retry_after="1", times=2)
    fault_proxy.fail(503, method="PUT", path="/manifests/2.11.4-", times=2)
    fault_proxy.fail(429, method="PUT", path="/manifests/2-latest", retry_after="1", times=1)

    assert main(flaky.args(fault_proxy.host)) == 0, capsys.readouterr().err

    injected = [seen for seen in fault_proxy.seen if "injected" in seen.outcome]
    assert len(injected) == 8  # every fault was met, and retried past
    assert flaky.tags() == uninterrupted.tags()
    assert "registry requests" in capsys.readouterr().err


def test_a_registry_that_keeps_failing_stops_publish_with_one_line_and_a_rerun_repairs(
    tmp_path, registry, fault_proxy, capsys
):
    uninterrupted = Release(tmp_path, registry.host, "whole")
    assert main(uninterrupted.args(registry.host)) == 0, capsys.readouterr().err
    broken = Release(tmp_path, registry.host, "broken")
    fault_proxy.fail(503, method="PUT", path=r"/manifests/2\.11-python3\.11$", times=10_000)

    assert main(broken.args(fault_proxy.host)) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("matrix: error:") and "2.11-python3.11" in error and "503" in error
    broken.assert_no_floating_tag_names_an_incomplete_release()

    fault_proxy.clear()
    assert main(broken.args(fault_proxy.host)) == 0, capsys.readouterr().err
    assert broken.tags() == uninterrupted.tags()


def test_publish_with_nothing_to_write_still_verifies(make_client, tmp_path, registry, capsys):
    """Every tag is there, but the images are not matrix's (no annotations): publish
    must say the release is incomplete, not that there is nothing to do."""
    release = Release(tmp_path, registry.host, "foreign")
    client = make_client()
    for spec in release.plan.images:
        image = push_index(client, reference(registry.host, spec.full_target), salt="x")
        manifest = client.get_manifest(reference(registry.host, spec.full_target))
        for target in spec.targets:
            client.put_manifest(
                reference(registry.host, target), manifest.content, manifest.media_type
            )
        assert image.digest == manifest.digest
    assert main(release.args(registry.host)) == 2
    assert "not complete" in capsys.readouterr().err
