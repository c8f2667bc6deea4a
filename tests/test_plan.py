"""The tag rules, pinned on real Prefect releases and the packaged versions.toml."""

from __future__ import annotations

import pytest
from packaging.specifiers import SpecifierSet

from matrix.config import load_config
from matrix.data import PACKAGED_CONFIG
from matrix.errors import PlanError, VersionError
from matrix.index import IndexFacts, PackageRelease
from matrix.plan import TagKind, plan_release
from matrix.tags import get_prefect_image_name
from matrix.versions import Kind, parse_version
from tests.support.prefect_releases import index_facts, prefect_history, requires_python

COMMIT = "a597971f7156e7c6e8a2f3b1c2d3e4f5a6b7c8d9"  # 40 hex, as git gives it


@pytest.fixture(scope="module")
def config():
    return load_config()


def known(*versions: str):
    return [parse_version(v) for v in versions]


def tags_by_key(plan) -> dict[str, set[str]]:
    return {spec.key: {str(t) for t in spec.targets} for spec in plan.images}


def test_2_11_5_newest_final_gets_every_tag(config):
    plan = plan_release(config, "2.11.5", commit=COMMIT, known=known("2.10.21", "2.11.4", "2.11.5"))
    assert plan.kind is Kind.FINAL
    tags = tags_by_key(plan)
    # 2.11: standard and kubernetes on 3.8-3.11, conda on 3.8-3.10 (conda 3.11 from 2.12.0).
    assert sorted(tags) == sorted(
        [f"prefect-python{p}" for p in ("3.8", "3.9", "3.10", "3.11")]
        + [f"prefect-python{p}-conda" for p in ("3.8", "3.9", "3.10")]
        + [f"prefect-python{p}-kubernetes" for p in ("3.8", "3.9", "3.10", "3.11")]
    )
    assert tags["prefect-python3.10"] == {
        "prefecthq/prefect:2.11.5-python3.10",
        "prefecthq/prefect:sha-a597971-python3.10",
        "prefecthq/prefect:2.11-python3.10",
        "prefecthq/prefect:2-python3.10",
        "prefecthq/prefect:2-latest",
    }
    assert tags["prefect-python3.10-conda"] == {
        "prefecthq/prefect:2.11.5-python3.10-conda",
        "prefecthq/prefect:sha-a597971-python3.10-conda",
        "prefecthq/prefect:2.11-python3.10-conda",
        "prefecthq/prefect:2-python3.10-conda",
        "prefecthq/prefect:2-latest-conda",
    }
    # 2-latest is Python 3.10 for 2.x, not the highest supported Python.
    assert tags["prefect-python3.11"] == {
        "prefecthq/prefect:2.11.5-python3.11",
        "prefecthq/prefect:sha-a597971-python3.11",
        "prefecthq/prefect:2.11-python3.11",
        "prefecthq/prefect:2-python3.11",
    }
    assert "prefecthq/prefect:2-latest-kubernetes" in tags["prefect-python3.10-kubernetes"]
    spec = plan.images[0]
    assert spec.platforms == ("linux/amd64", "linux/arm64")
    assert spec.labels["org.opencontainers.image.revision"] == COMMIT
    assert spec.labels["org.opencontainers.image.version"] == "2.11.5"
    assert plan.notes == ()


def test_backport_after_a_newer_minor_moves_only_its_minor_tags(config):
    plan = plan_release(
        config, "2.10.22", known=known("2.10.21", "2.11.0", "2.11.5"), commit=COMMIT
    )
    floating = {str(t) for t in plan.targets if t.kind.floating}
    assert floating == {
        f"prefecthq/prefect:2.10-python{p}{s}"
        for s, pythons in (
            ("", ("3.8", "3.9", "3.10", "3.11")),
            ("-conda", ("3.8", "3.9", "3.10")),
            ("-kubernetes", ("3.8", "3.9", "3.10", "3.11")),
        )
        for p in pythons
    }


def test_rerun_of_an_older_patch_moves_nothing(config):
    plan = plan_release(config, "2.11.4", known=known("2.11.4", "2.11.5"))
    assert all(not t.kind.floating for t in plan.targets)
    assert {t.kind for t in plan.targets} == {TagKind.FULL}


def test_prereleases_of_newer_versions_do_not_hold_back_a_final(config):
    plan = plan_release(config, "2.11.5", known=known("2.12.0rc1", "3.0.0rc1"))
    assert "prefecthq/prefect:2-latest" in {str(t) for t in plan.targets}


def test_prerelease_gets_only_its_full_tag_in_the_release_repository(config):
    plan = plan_release(config, "2.14.0rc1", commit=COMMIT, known=known("2.13.9"))
    assert plan.kind is Kind.PRERELEASE
    assert {t.kind for t in plan.targets} == {TagKind.FULL}
    assert {t.repository for t in plan.targets} == {"prefecthq/prefect"}
    assert "prefecthq/prefect:2.14.0rc1-python3.10-conda" in {str(t) for t in plan.targets}


def test_3x_prerelease_also_gets_dev_repository_tags(config):
    plan = plan_release(config, "3.0.5.dev1", commit=COMMIT, pythons=["3.12"], flavors=["standard"])
    assert {str(t) for t in plan.targets} == {
        "prefecthq/prefect:3.0.5.dev1-python3.12",
        "prefecthq/prefect-dev:3.0.5.dev1-python3.12",
        "prefecthq/prefect-dev:sha-a597971-python3.12",
    }


@pytest.mark.parametrize("version", ["3.0.0-RC.1", "3.0.0rc2", "3.0.0rc3", "3.0.0rc20"])
def test_3_0_0_release_candidates_wrote_only_their_full_tags(config, version):
    plan = plan_release(config, version, commit=COMMIT)
    assert plan.kind is Kind.PRERELEASE
    assert {t.repository for t in plan.targets} == {"prefecthq/prefect"}
    assert {t.kind for t in plan.targets} == {TagKind.FULL}
    assert len(plan.targets) == len(plan.images) == 12  # 3.9-3.12 x 3 flavors


def test_era_d_prerelease_puts_the_sha_tag_in_the_release_repository(config):
    plan = plan_release(
        config,
        "3.7.0rc2",
        commit=COMMIT,
        pythons=["3.12"],
        flavors=["standard"],
        images=["prefect"],
    )
    assert {str(t) for t in plan.targets} == {
        "prefecthq/prefect:3.7.0rc2-python3.12",
        "prefecthq/prefect:sha-a597971-python3.12",
    }


@pytest.mark.parametrize(
    ("version", "repositories"),
    [
        ("3.6.13.dev1", {"prefecthq/prefect-dev", "prefecthq/prefect-client-dev"}),
        ("3.6.13.dev2", set()),
    ],
)
def test_dev_tags_move_to_the_release_repositories_from_3_6_13_dev2(config, version, repositories):
    plan = plan_release(config, version, commit=COMMIT, pythons=["3.12"], flavors=["standard"])
    names = {str(t) for t in plan.targets}
    assert {t.repository for t in plan.targets} - {
        "prefecthq/prefect",
        "prefecthq/prefect-client",
    } == repositories
    # The package index has no prefect-client 3.6.13.dev2: it gets no client image.
    images = ("prefect", "prefect-client") if repositories else ("prefect",)
    assert {spec.image for spec in plan.images} == set(images)
    for image in images:
        dev = f"prefecthq/{image}-dev" if repositories else f"prefecthq/{image}"
        assert f"{dev}:{version}-python3.12" in names
        assert f"{dev}:sha-a597971-python3.12" in names


@pytest.mark.parametrize("version", ["3.10.0", "3.11.2"])
def test_a_minor_newer_than_the_file_is_planned_by_the_open_ended_line(config, version):
    newest_written = plan_release(config, "3.9.1", commit=COMMIT)
    assert not any("open-ended" in note for note in newest_written.notes)
    plan = plan_release(config, version, commit=COMMIT, known=known("3.8.3", "3.9.0", version))
    assert plan.line == newest_written.line == ">=3.9.0"
    assert any(
        f"line >=3.9.0 of versions.toml is open-ended: {version}" in note for note in plan.notes
    )
    assert [spec.key for spec in plan.images] == [
        spec.key for spec in plan_release(config, "3.9.0", commit=COMMIT).images
    ]
    names = {str(t) for t in plan.targets}
    minor = version.rsplit(".", 1)[0]
    assert {
        f"prefecthq/prefect:{version}-python3.14-conda",
        f"prefecthq/prefect:{minor}-python3.11",
        "prefecthq/prefect:3-python3.14-kubernetes",
        "prefecthq/prefect:3-latest",
        "prefecthq/prefect-client:3-latest",
        "prefecthq/prefect-client:sha-a597971-python3.13",
    } <= names
    assert not any("python3.10" in name for name in names)
    # A nightly of the new minor gets its dev tags in the release repositories.
    nightly = plan_release(config, f"{version}.dev3", commit=COMMIT, pythons=["3.12"])
    assert "prefecthq/prefect-client:sha-a597971-python3.12" in {str(t) for t in nightly.targets}


def test_lines_with_an_upper_bound_add_no_open_ended_note(config):
    plan = plan_release(config, "3.4.25", known=known("3.4.25"))
    assert plan.notes == ("no commit given (--sha): sha tags are left out",)


def test_the_newest_2x_line_is_open_ended_too(config):
    plan = plan_release(config, "2.21.0", known=known("2.20.25", "3.8.3"))
    assert plan.line == ">=2.20.6"
    assert "prefecthq/prefect:2-latest-kubernetes" in {str(t) for t in plan.targets}
    assert any("open-ended: 2.21.0 is planned with the newest 2.x facts" in n for n in plan.notes)


def test_post_release_supersedes_its_base_and_moves_floating_tags(config):
    plan = plan_release(config, "2.6.9.post1", known=known("2.6.8", "2.6.9"))
    assert plan.kind is Kind.FINAL
    names = {str(t) for t in plan.targets}
    assert "prefecthq/prefect:2.6.9.post1-python3.10" in names
    assert "prefecthq/prefect:2.6-python3.10" in names
    assert "prefecthq/prefect:2-latest" in names
    # 2.6 is amd64 only (arm64 from 2.7.10) and has standard 3.11 (from 2.6.5), no conda 3.11.
    assert {spec.platforms for spec in plan.images} == {("linux/amd64",)}
    keys = {spec.key for spec in plan.images}
    assert "prefect-python3.11" in keys and "prefect-python3.11-conda" not in keys


def test_base_release_after_its_post_release_is_not_newest(config):
    plan = plan_release(config, "2.6.9", known=known("2.6.9.post1"))
    assert not any(t.kind.floating for t in plan.targets)


def test_dev_build_goes_to_prefect_dev_like_get_prefect_image_name(config):
    plan = plan_release(config, "2.11.5+12.gabc1234", branch="feature/Ω fast")
    assert plan.kind is Kind.DEV
    assert plan.commit == "abc1234"
    for spec in plan.images:
        sha_target, branch_target = spec.targets
        flavor = None if spec.flavor == "standard" else spec.flavor
        assert str(sha_target) == get_prefect_image_name("2.11.5+12.gabc1234", spec.python, flavor)
        assert sha_target.repository == "prefecthq/prefect-dev"
        assert branch_target.kind is TagKind.BRANCH
        assert branch_target.tag.startswith("feature-O-fast-python")


def test_dev_build_without_a_commit_is_refused(config):
    with pytest.raises(PlanError, match="names no commit"):
        plan_release(config, "2.11.5+local")


def test_3x_release_publishes_prefect_client_with_3_latest_on_python_3_12(config):
    plan = plan_release(config, "3.4.25", commit=COMMIT, known=known("3.4.24"))
    client = [s for s in plan.images if s.image == "prefect-client"]
    assert {s.flavor for s in client} == {"standard"}
    assert [s.python for s in client] == ["3.9", "3.10", "3.11", "3.12", "3.13", "3.14"]
    names = {str(t) for t in plan.targets}
    assert "prefecthq/prefect-client:3-latest" in names
    assert "prefecthq/prefect:3-latest" in names
    latest_writers = {s.key for s in plan.images for t in s.targets if t.kind is TagKind.LATEST}
    assert latest_writers == {
        "prefect-python3.12",
        "prefect-python3.12-conda",
        "prefect-python3.12-kubernetes",
        "prefect-client-python3.12",
    }
    assert "prefecthq/prefect:3-python3.14" in names


@pytest.mark.parametrize(
    ("version", "present", "absent"),
    [
        ("3.2.14", set(), {"prefect-client-python3.12"}),
        ("3.2.15", {"prefect-client-python3.12"}, set()),
        ("2.8.5", set(), {"prefect-python3.10-kubernetes"}),
        ("2.9.0", {"prefect-python3.10-kubernetes"}, set()),
        ("2.10.19", {"prefect-python3.7"}, set()),
        ("2.10.20", set(), {"prefect-python3.7"}),
        ("2.11.9", set(), {"prefect-python3.11-conda"}),
        ("2.12.0", {"prefect-python3.11-conda"}, set()),
        ("2.14.13", set(), {"prefect-python3.12"}),
        ("2.14.14", {"prefect-python3.12"}, set()),
        ("3.3.0", set(), {"prefect-python3.13"}),
        ("3.3.1", {"prefect-python3.13"}, set()),
        ("3.4.25", {"prefect-python3.14", "prefect-python3.9"}, set()),
        ("3.5.0", set(), {"prefect-python3.9"}),
        # Changes between nightlies of one X.Y.Z: the last release before, the first after.
        ("3.2.15.dev4", set(), {"prefect-client-python3.12"}),
        # 3.2.15.dev5 begins the client's line, but the package index has no prefect-client
        # of it nor of dev6: their first client images are dev7's.
        ("3.2.15.dev6", {"prefect-python3.12"}, {"prefect-client-python3.12"}),
        ("3.2.15.dev7", {"prefect-client-python3.12", "prefect-client-python3.9"}, set()),
        ("3.4.25.dev5", {"prefect-python3.13"}, {"prefect-python3.14"}),
        ("3.4.25", {"prefect-python3.14", "prefect-client-python3.14"}, set()),
        ("3.4.26.dev2", {"prefect-python3.9", "prefect-python3.14"}, set()),
        ("3.4.26.dev3", {"prefect-python3.10"}, {"prefect-python3.9", "prefect-client-python3.9"}),
    ],
)
def test_support_matrix_changes_inside_lines(config, version, present, absent):
    keys = {spec.key for spec in plan_release(config, version).images}
    assert present <= keys
    assert not absent & keys


@pytest.mark.parametrize(
    ("version", "platforms"),
    [("2.7.9", ("linux/amd64",)), ("2.7.10", ("linux/amd64", "linux/arm64"))],
)
def test_arm64_from_2_7_10(config, version, platforms):
    assert {s.platforms for s in plan_release(config, version).images} == {platforms}


@pytest.mark.parametrize(
    ("version", "args"),
    [
        ("2.9.0", {"EXTRA_PIP_PACKAGES": "prefect-kubernetes"}),
        ("2.20.5", {"EXTRA_PIP_PACKAGES": "prefect-kubernetes"}),
        ("2.20.6", {"PREFECT_EXTRAS": "[kubernetes]"}),
        ("3.0.0rc1", {"EXTRA_PIP_PACKAGES": "prefect-kubernetes"}),
        ("3.0.0rc2", {"EXTRA_PIP_PACKAGES": "prefect-kubernetes"}),
        ("3.0.0rc3", {"PREFECT_EXTRAS": "[kubernetes]"}),
        ("3.0.0", {"PREFECT_EXTRAS": "[kubernetes]"}),
        ("3.1.13", {"PREFECT_EXTRAS": "[kubernetes]"}),
        ("3.1.14.dev4", {"PREFECT_EXTRAS": "[kubernetes]"}),
        ("3.1.14", {"PREFECT_EXTRAS": "[redis,kubernetes]"}),
    ],
)
def test_kubernetes_build_args_per_era(config, version, args):
    spec = plan_release(config, version, flavors=["kubernetes"], pythons=["3.10"]).images[0]
    assert spec.build_args == {"PYTHON_VERSION": "3.10", "PREFECT_VERSION": version, **args}


def test_conda_build_args_and_template(config):
    spec = plan_release(config, "2.11.5", flavors=["conda"], pythons=["3.9"]).images[0]
    assert spec.build_args["BASE_IMAGE"] == "prefect-conda"
    assert spec.template == "conda.Dockerfile.j2"


def test_no_plain_latest_and_one_writer_per_tag_on_every_line(config):
    for facts in config.facts:
        assert plan_release(config, str(facts.span.low)).line == facts.versions
        plan = plan_release(config, facts.span.low_text, commit=COMMIT)
        targets = [str(t) for t in plan.targets]
        assert len(targets) == len(set(targets))
        assert not any(t.endswith(":latest") for t in targets)


def test_without_known_releases_the_plan_says_what_it_assumed(config):
    plan = plan_release(config, "2.11.5")
    assert any("assuming 2.11.5 is the newest" in note for note in plan.notes)
    assert any("sha tags are left out" in note for note in plan.notes)
    assert not any(t.kind is TagKind.SHA for t in plan.targets)


def test_latest_and_no_latest_decide_by_hand(config):
    forced = plan_release(config, "2.10.22", latest=True)
    assert "prefecthq/prefect:2-latest" in {str(t) for t in forced.targets}
    held = plan_release(config, "2.11.5", latest=False)
    kinds = {t.kind for t in held.targets}
    assert TagKind.MINOR in kinds
    assert not kinds & {TagKind.MAJOR, TagKind.LATEST}


def test_sha_length_is_seven_and_the_label_keeps_the_full_commit(config):
    plan = plan_release(config, "2.11.5", commit=COMMIT.upper(), pythons=["3.10"])
    sha_tags = [t.tag for t in plan.targets if t.kind is TagKind.SHA]
    assert sha_tags == [
        "sha-a597971-python3.10",
        "sha-a597971-python3.10-conda",
        "sha-a597971-python3.10-kubernetes",
    ]


def test_leading_v_is_accepted(config):
    assert plan_release(config, "v2.11.5").version == "2.11.5"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"version_text": "2.x"}, VersionError, "not a PEP 440 version"),
        ({"version_text": "2.11"}, VersionError, "exactly three numbers"),
        ({"version_text": "2.11.5.1"}, VersionError, "exactly three numbers"),
        ({"version_text": "1!2.11.5"}, VersionError, "epoch"),
        ({"version_text": "1.0.0"}, PlanError, "covers 1.0.0"),
        ({"version_text": "4.0.0"}, PlanError, "covers 4.0.0: major 4 has no entry"),
        ({"version_text": "4.0.0rc1"}, PlanError, "covers 4.0.0rc1: major 4 has no entry"),
        ({"version_text": "2.11.5", "pythons": ["3.12"]}, PlanError, "no image for Python 3.12"),
        (
            {"version_text": "2.11.5", "pythons": ["3.11"], "flavors": ["conda"]},
            PlanError,
            r"no conda image for Python 3.11 \(conda: 3.8 3.9 3.10\)",
        ),
        ({"version_text": "2.8.0", "flavors": ["kubernetes"]}, PlanError, "no 'kubernetes'"),
        ({"version_text": "2.11.5", "images": ["prefect-client"]}, PlanError, "no image"),
        ({"version_text": "2.11.5", "commit": "xyz"}, PlanError, "invalid commit"),
        ({"version_text": "2.11.5", "branch": "main"}, PlanError, "--branch is for dev"),
    ],
)
def test_bad_requests_raise_one_clear_error(config, kwargs, error, message):
    version = kwargs.pop("version_text")
    with pytest.raises(error, match=message):
        plan_release(config, version, **kwargs)


def test_too_long_branch_tag_is_an_error_not_a_truncation(config):
    with pytest.raises(PlanError, match=r"--branch 'b.*130 characters, at most 118 fit"):
        plan_release(config, "2.11.5+1.gabc1234", branch="b" * 130)


# What the images hold besides Prefect changed between releases: each fact on the last
# release before it and the first with it.
@pytest.mark.parametrize(
    ("version", "git", "uv", "installer", "extras"),
    [
        ("2.3.0", False, False, "pip", None),
        ("2.3.1", True, False, "pip", None),
        ("3.1.5", True, False, "pip", None),
        ("3.1.6", True, True, "pip", None),
        ("3.1.7", True, True, "uv", None),
        ("3.1.13", True, True, "uv", None),
        ("3.1.14", True, True, "uv", "[redis]"),
        ("3.2.2", True, True, "uv", "[redis]"),
        ("3.2.3", True, True, "uv", "[redis,otel]"),
        ("3.9.1", True, True, "uv", "[redis,otel]"),
    ],
)
def test_image_contents_on_their_boundary_releases(version, git, uv, installer, extras):
    plan = plan_release(load_config(), version)
    standard = next(s for s in plan.images if s.key == f"prefect-python{s.python}")
    assert ("git" in standard.contents.system_packages) is git
    assert standard.contents.uv is uv
    assert standard.contents.extra_installer == installer
    assert standard.build_args.get("PREFECT_EXTRAS") == extras
    for spec in plan.images:
        assert "tini" in spec.contents.system_packages
        if spec.image == "prefect-client":
            assert spec.contents.system_packages == ("tini", "git")
            assert "PREFECT_EXTRAS" not in spec.build_args


# -- what the package index says of a release ------------------------------------------


def test_every_release_of_prefect_plans_the_same_from_the_index_as_from_versions_toml(config):
    """The planner-history figure: each of Prefect's releases plans with the package
    index's facts, offers no Python its Requires-Python excludes nor an image whose
    distribution is missing, and plans exactly what versions.toml alone plans."""
    history = prefect_history()
    planned = 0
    for version in history:
        facts = index_facts(version)
        plan = plan_release(config, version, commit=COMMIT, known=(), index=facts)
        alone = plan_release(config, version, commit=COMMIT, known=())
        assert [s.key for s in plan.images] == [s.key for s in alone.images], version
        rp = requires_python(version)
        for spec in plan.images:
            assert rp.contains(f"{spec.python}.0"), (version, spec.key)
            package = "prefect-client" if spec.image == "prefect-client" else "prefect"
            assert facts.of(package).present or not facts.of("prefect").present, spec.key
        planned += 1
    assert planned == len(history) == 807


def test_3_9_1_offers_python_3_11_to_3_14_and_no_client_image(config):
    with_index = plan_release(config, "3.9.1", index=index_facts("3.9.1"))
    alone = plan_release(config, "3.9.1")
    for plan in (with_index, alone):
        assert plan.line == ">=3.9.0"
        assert {s.python for s in plan.images} == {"3.11", "3.12", "3.13", "3.14"}
        assert {s.image for s in plan.images} == {"prefect"}
        assert len(plan.images) == 12
    assert (
        "no prefect-client image: the package index https://pypi.org/simple has no "
        "prefect-client 3.9.1" in with_index.notes
    )
    assert (
        "no prefect-client image: versions.toml says the package index has no "
        "prefect-client 3.9.1" in alone.notes
    )
    # Its nightlies have their client images.
    nightly = plan_release(config, "3.9.1.dev5", index=index_facts("3.9.1.dev5"))
    assert "prefect-client-python3.11" in {s.key for s in nightly.images}


def test_nightlies_that_drop_a_python_get_no_image_of_it(config):
    """3.8.9.dev1 requires Python >=3.11 while 3.8.8 took 3.10: Prefect's 3.10 image of
    it could not install, so none is planned."""
    assert "prefect-python3.10" in {s.key for s in plan_release(config, "3.8.8").images}
    plan = plan_release(config, "3.8.9.dev1", index=index_facts("3.8.9.dev1"))
    assert {s.python for s in plan.images} == {"3.11", "3.12", "3.13", "3.14"}


def without_the_3_9_lines(tmp_path):
    """The packaged file as it was before 3.9: its newest line open-ended on 3.8's facts."""
    text = PACKAGED_CONFIG.read_text(encoding="utf-8")
    cut = text.index("[[lines]]\n# Python 3.10 dropped: the nightlies 3.8.9.dev1")
    text = text[:cut].replace('versions = ">=3.8.4.dev2, <3.8.9.dev1"', 'versions = ">=3.8.4.dev2"')
    path = tmp_path / "versions.toml"
    path.write_text(text.rstrip() + "\n", encoding="utf-8")
    return load_config(path)


def test_a_release_the_file_does_not_know_is_refused_with_the_fix(tmp_path):
    old = without_the_3_9_lines(tmp_path)
    with pytest.raises(PlanError) as raised:
        plan_release(old, "3.9.1", index=index_facts("3.9.1"))
    assert str(raised.value) == (
        "prefect 3.9.1 requires Python '>=3.11,<3.16' on the package index "
        "https://pypi.org/simple, but versions.toml's line >=3.8.4.dev2 (requires_python "
        "'>=3.10,<3.15') would build Python 3.10: give 3.9.1 a [[lines]] entry with "
        f'requires_python = ">=3.11,<3.16" in {tmp_path / "versions.toml"}'
    )
    # Without the index the file's facts are all there is: its guess, said as one.
    guessed = plan_release(old, "3.9.1")
    assert "prefect-python3.10" in {s.key for s in guessed.images}
    assert any("open-ended: 3.9.1 is planned with the newest 3.x facts" in n for n in guessed.notes)


def test_a_requires_python_that_keeps_the_same_pythons_is_no_disagreement(config):
    """3.2.16.dev1 added <3.14 to Requires-Python; its line builds up to 3.12 either way."""
    facts = IndexFacts(
        "https://pypi.org/simple",
        {
            "prefect": PackageRelease(True, SpecifierSet(">=3.9")),
            "prefect-client": PackageRelease(True, SpecifierSet(">=3.9")),
        },
    )
    plan = plan_release(config, "3.3.0", index=facts)
    assert {s.python for s in plan.images} == {"3.9", "3.10", "3.11", "3.12"}


def test_the_index_leaving_out_a_python_the_file_builds_is_refused(config):
    facts = IndexFacts(
        "http://127.0.0.1:9/simple",
        {
            "prefect": PackageRelease(True, SpecifierSet(">=3.11,<3.15")),
            "prefect-client": PackageRelease(True, SpecifierSet(">=3.11,<3.15")),
        },
    )
    with pytest.raises(PlanError, match=r"would build Python 3\.10: give 3\.8\.8 a \[\[lines\]\]"):
        plan_release(config, "3.8.8", index=facts)


def test_a_release_the_index_lacks_is_planned_from_versions_toml(config):
    """2.7.4 was yanked: the index is silent, and the plan is what Prefect published."""
    plan = plan_release(config, "2.7.4", index=index_facts("2.7.4"))
    assert len(plan.images) == 9  # 3.7-3.11 standard, 3.7-3.10 conda
    assert (
        "prefect 2.7.4 is not on the package index https://pypi.org/simple: its images are "
        "planned from versions.toml"
    ) in plan.notes


def test_asking_for_the_missing_client_image_says_what_there_is(config):
    with pytest.raises(
        PlanError, match=r"3\.9\.1 publishes no image 'prefect-client' \(it has: prefect\)"
    ):
        plan_release(config, "3.9.1", images=["prefect-client"])
