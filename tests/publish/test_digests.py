"""Digest files between the build jobs and publish: what they carry, what is refused."""

from __future__ import annotations

import json

import pytest

from matrix.buildid import BuildInputs, build_id
from matrix.errors import UserError
from matrix.publish.annotations import KEY_ANNOTATION, PINS_ANNOTATION, RESOLVED_AS_OF
from matrix.publish.digests import image_inputs, lock_annotations, read_digests, write_digest

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def inputs(base: str) -> BuildInputs:
    return BuildInputs(
        dockerfile="sha256:" + "c" * 64,
        context={},
        build_args={"PYTHON_VERSION": "3.10"},
        platforms=("linux/amd64", "linux/arm64"),
        base_digests={
            "docker.io/library/python:3.10-slim": {"linux/amd64": base, "linux/arm64": base}
        },
    )


def test_both_platform_jobs_hand_over_the_same_inputs(tmp_path, plan):
    (spec,) = plan.images
    built = inputs(DIGEST)
    write_digest(tmp_path / "amd", spec.key, "linux/amd64", DIGEST, built.to_record())
    write_digest(tmp_path / "arm", spec.key, "linux/arm64", OTHER, built.to_record())

    found = read_digests(tmp_path)

    assert found[(spec.key, "linux/arm64")].digest == OTHER
    (record,) = image_inputs(found, plan, tmp_path).values()
    assert build_id(record) == built.id


def test_platform_jobs_built_on_different_bases_are_refused(tmp_path, plan):
    (spec,) = plan.images
    write_digest(tmp_path, spec.key, "linux/amd64", DIGEST, inputs(DIGEST).to_record())
    write_digest(tmp_path, spec.key, "linux/arm64", OTHER, inputs(OTHER).to_record())
    with pytest.raises(UserError, match="built from different inputs"):
        image_inputs(read_digests(tmp_path), plan, tmp_path)


def test_a_record_whose_id_does_not_match_its_inputs_is_refused(tmp_path, plan):
    (spec,) = plan.images
    path = write_digest(tmp_path, spec.key, "linux/amd64", DIGEST, inputs(DIGEST).to_record())
    record = json.loads(path.read_text())
    record["build_id"] = OTHER
    path.write_text(json.dumps(record))
    with pytest.raises(UserError, match="not a digest file of matrix build"):
        read_digests(tmp_path)


@pytest.mark.parametrize(
    "change",
    [
        {"key": ["a"]},
        {"platform": {"os": "linux"}},
        {"build_inputs": {"v": 1}},
        {"digest": 7},
        {"lock": {RESOLVED_AS_OF: 7}},
        {"lock": {"org.example.other": "x"}},
    ],
)
def test_a_digest_file_with_values_of_the_wrong_type_is_one_clear_error(tmp_path, plan, change):
    (spec,) = plan.images
    path = write_digest(tmp_path, spec.key, "linux/amd64", DIGEST, inputs(DIGEST).to_record())
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(UserError, match="not a digest file of matrix build"):
        read_digests(tmp_path)


LOCKED = {RESOLVED_AS_OF: "2023-08-24T20:02:09Z", PINS_ANNOTATION: "amd64:griffe==0.35.0"}


def test_the_lock_each_job_installed_reaches_the_index(tmp_path, plan):
    """The merged index carries the lock's date and pins, as a podman-pushed one does:
    a refresh keeps the date, and refuses a rebuild that would change a pin."""
    (spec,) = plan.images
    # A build's other annotations (its key, say) are not the digest file's to carry.
    built = {**LOCKED, KEY_ANNOTATION: spec.key}
    write_digest(tmp_path, spec.key, "linux/amd64", DIGEST, annotations=built)
    write_digest(tmp_path, spec.key, "linux/arm64", OTHER, annotations=built)
    assert lock_annotations(read_digests(tmp_path), spec, tmp_path) == LOCKED


def test_platform_jobs_that_installed_different_locks_are_refused(tmp_path, plan):
    (spec,) = plan.images
    write_digest(tmp_path, spec.key, "linux/amd64", DIGEST, annotations=LOCKED)
    later = {**LOCKED, RESOLVED_AS_OF: "2023-08-25T00:00:00Z"}
    write_digest(tmp_path, spec.key, "linux/arm64", OTHER, annotations=later)
    with pytest.raises(UserError, match="installed different locks"):
        lock_annotations(read_digests(tmp_path), spec, tmp_path)
