"""One build, several registries: the primary (here behind basic auth) gets the images,
the mirror a registry-to-registry copy, and no floating tag moves anywhere until
every registry holds the complete release."""

from __future__ import annotations

import pytest

from matrix.cli import main
from matrix.publish.annotations import annotations_for
from matrix.publish.state import reference
from matrix.registry import RegistryClient
from tests.conftest import BASIC_USERS
from tests.support.images import push_index
from tests.support.publishing import COMMIT, VERSION, Release, count_lines, kill_when


def push_other_build(release: Release, host: str):
    """A complete, annotated build of the release's first image, other than the
    primary's, under its full tag in ``host``; that image's spec."""
    spec = release.plan.images[0]
    with RegistryClient() as client:
        push_index(
            client,
            reference(host, spec.full_target),
            spec.platforms,
            salt="built elsewhere",
            annotations=annotations_for(release.plan, spec),
        )
    return spec


@pytest.fixture
def alice(monkeypatch, basic_registry):
    """Credentials for the basic-auth registry only, as CI passes them."""
    ((user, password),) = BASIC_USERS.items()
    monkeypatch.setenv("MATRIX_REGISTRY_USERNAME", user)
    monkeypatch.setenv("MATRIX_REGISTRY_PASSWORD", password)
    monkeypatch.setenv("MATRIX_REGISTRY_HOSTS", basic_registry.host)
    return basic_registry


def test_publish_to_two_registries_gives_identical_digests(tmp_path, alice, registry, capsys):
    release = Release(tmp_path, alice.host, "two")

    code = main([*release.args(alice.host), "--mirror", registry.host])

    assert code == 0, capsys.readouterr().err
    primary, mirror = release.tags(), release.tags(registry.host)
    assert len(primary) == len(release.plan.targets)
    assert primary == mirror
    verify = ["verify", "--version", VERSION, "--sha", COMMIT, "--config", str(release.config)]
    assert main([*verify, "--registry", alice.host, "--mirror", registry.host]) == 0
    assert capsys.readouterr().out.count("as planned") == 2

    again = main(
        [*release.args(alice.host), "--mirror", registry.host, "--report", str(tmp_path / "r.json")]
    )
    assert again == 0
    assert "wrote 0 tags" in capsys.readouterr().err


def test_killed_between_registries_moves_no_floating_tag_and_a_rerun_converges(
    tmp_path, alice, fault_proxy, capsys
):
    release = Release(tmp_path, alice.host, "killed")
    mirror = fault_proxy.host  # the shared plain registry, behind the proxy
    # Two images reach the mirror; the conda ones are held back until the kill.
    fault_proxy.fail(
        503, method="PUT", path=r"/manifests/2\.11\.4-python3\.1[01]-conda$", times=10_000
    )

    kill_when(
        [*release.args(alice.host), "--mirror", mirror],
        lambda lines: count_lines("mirror  ", lines) >= 2,
    )

    full = {spec.full_target.tag for spec in release.plan.images}
    assert set(release.tags()) == full  # the primary is complete, but nothing floats
    assert set(release.tags(mirror)) == {"2.11.4-python3.10", "2.11.4-python3.11"}
    release.assert_no_floating_tag_names_an_incomplete_release(mirror)

    fault_proxy.clear()
    assert main([*release.args(alice.host), "--mirror", mirror]) == 0, capsys.readouterr().err
    assert release.tags() == release.tags(mirror)
    assert len(release.tags()) == len(release.plan.targets)


def test_a_mirror_holding_other_content_stops_publish_before_any_write(
    tmp_path, alice, registry, capsys
):
    release = Release(tmp_path, alice.host, "diverged")
    assert main(release.args(alice.host)) == 0
    # The mirror's full tag already names a different image of the same release.
    spec = push_other_build(release, registry.host)
    before = release.tags(registry.host)
    capsys.readouterr()

    assert main([*release.args(alice.host), "--mirror", registry.host]) == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert error.startswith("matrix: error:") and "--force-republish" in error
    assert spec.full_target.tag in error
    assert release.tags(registry.host) == before
    assert not any(tag.startswith("2") and "-" in tag[:4] for tag in before)  # nothing floats


def test_verify_finds_a_mirror_whose_complete_copy_has_other_digests(
    tmp_path, alice, registry, capsys
):
    release = Release(tmp_path, alice.host, "rebuilt")
    assert main([*release.args(alice.host), "--mirror", registry.host]) == 0
    spec = push_other_build(release, registry.host)
    capsys.readouterr()
    verify = ["verify", "--version", VERSION, "--sha", COMMIT, "--config", str(release.config)]
    assert main([*verify, "--registry", alice.host, "--mirror", registry.host]) == 1
    out = capsys.readouterr().out
    assert f"{registry.host}/{spec.full_target} = sha256:" in out
    assert f"as on {alice.host}" in out


def test_the_configured_mirrors_go_with_the_configured_registry(tmp_path):
    from matrix.config import load_config
    from matrix.plan import plan_release
    from matrix.settings import registries
    from tests.support.configs import release_config
    from tests.support.publishing import RELEASE

    path = tmp_path / "versions.toml"
    text = release_config("test/m", **RELEASE).replace(
        'latest_python = "3.10"', 'latest_python = "3.10"\nmirrors = ["ghcr.io"]'
    )
    path.write_text(text)
    loaded = load_config(path)
    plan = plan_release(loaded, VERSION)

    def mirrors(registry: str | None, named: list[str]) -> tuple[str, ...]:
        return tuple(m.host for m in registries(loaded, registry, mirrors=named).mirrors(plan))

    assert mirrors(None, []) == ("ghcr.io",)
    assert mirrors("docker.io", []) == ("ghcr.io",)
    # A local run against another registry copies to nothing it did not name.
    assert mirrors("127.0.0.1:5000", []) == ()
    assert mirrors("127.0.0.1:5000", ["127.0.0.1:5001"]) == ("127.0.0.1:5001",)
