"""Build ids: FROM parsing, the id's stability, the inputs record, and base digests
resolved in a real registry."""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import pytest

from matrix.buildid import (
    SCHEMA,
    BuildInputs,
    base_images,
    base_reference,
    build_annotations,
    build_id,
    changed_inputs,
    context_files,
    decode_inputs,
    encode_inputs,
    gather_many,
    inputs_for_context,
    recorded_inputs,
    resolve_bases,
)
from matrix.config import load_config
from matrix.engines.base import BuildRequest
from matrix.errors import UserError
from matrix.plan import plan_release
from matrix.publish.annotations import BUILD_ID_LABEL, BUILD_INPUTS_ANNOTATION
from matrix.reference import parse_reference
from matrix.registry import RegistryError, assemble_index
from tests.support.images import PLATFORMS, push_index
from tests.support.locks import fixed_locks

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64
PYTHON = "docker.io/library/python:3.12-slim"


# -- FROM lines -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dockerfile", "build_args", "expected"),
    [
        pytest.param("FROM python:3.12-slim\n", {}, ["python:3.12-slim"], id="plain"),
        pytest.param(
            'ARG PY="3.10"\nFROM python:${PY}-slim\n', {}, ["python:3.10-slim"], id="arg-default"
        ),
        pytest.param(
            "ARG PY=3.10\nFROM python:$PY-slim\n",
            {"PY": "3.12"},
            ["python:3.12-slim"],
            id="build-arg-wins",
        ),
        pytest.param(
            "ARG PY\nFROM python:${PY}-slim\n",
            {"PY": "3.11"},
            ["python:3.11-slim"],
            id="no-default",
        ),
        pytest.param(
            "FROM golang:1.22 AS build\nFROM build\nFROM BUILD AS final\nFROM final\n",
            {},
            ["golang:1.22"],
            id="stages",
        ),
        pytest.param(
            "FROM base AS base\nFROM base\n", {}, ["base"], id="stage-named-like-its-image"
        ),
        pytest.param("FROM scratch\nFROM scratch AS empty\nFROM empty\n", {}, [], id="scratch"),
        pytest.param(
            "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\n"
            "FROM --platform=linux/amd64 alpine:3.20\n",
            {},
            ["golang:1.22", "alpine:3.20"],
            id="platform-flag",
        ),
        pytest.param(
            "from python:3.12-slim as base\narg X=1\nFrOm base\n",
            {},
            ["python:3.12-slim"],
            id="keywords-any-case",
        ),
        pytest.param(
            "# syntax=docker/dockerfile:1\n# a comment naming FROM evil:1\n"
            "  # indented comment\n\nFROM \\\n    # a comment inside the continuation\n"
            "    python:3.12-slim \\\n\n    AS base\n",
            {},
            ["python:3.12-slim"],
            id="continuation-and-comments",
        ),
        pytest.param(
            "ARG A=3.1\nFROM python:${A}\\\n2-slim\n", {}, ["python:3.12-slim"], id="split-name"
        ),
        pytest.param(
            "# escape=`\nARG PY=3.10\nFROM `\n  python:${PY}-slim\n",
            {},
            ["python:3.10-slim"],
            id="escape-directive",
        ),
        pytest.param(
            "FROM alpine:3.20\nRUN <<EOF\nFROM evil:1\nEOF\nCOPY <<-'A' <<B /x\n\tFROM evil:2\n"
            "\tA\nFROM evil:3\nB\nFROM debian:12\n",
            {},
            ["alpine:3.20", "debian:12"],
            id="heredocs",
        ),
        pytest.param(
            'FROM alpine:3.20\nRUN echo "<<EOF"\nFROM debian:12\n',
            {},
            ["alpine:3.20", "debian:12"],
            id="quoted-heredoc-marker",
        ),
        pytest.param(
            "FROM python:3.12-slim\nFROM python:3.12-slim AS again\nFROM alpine\n",
            {},
            ["python:3.12-slim", "alpine"],
            id="each-once",
        ),
        pytest.param(
            "ARG PY=3.10\nFROM python:${PY}-slim\nARG PY=3.99\nFROM python:${PY}-slim\n",
            {},
            ["python:3.10-slim"],
            id="stage-arg-is-not-global",
        ),
        pytest.param(
            'ARG BASE="python:3.12-slim"\nFROM "${BASE}"\n',
            {},
            ["python:3.12-slim"],
            id="double-quotes",
        ),
        pytest.param("FROM python:3.12-slim", {}, ["python:3.12-slim"], id="no-final-newline"),
        pytest.param(
            "ARG REGISTRY=ghcr.io NAME=org/base\nFROM $REGISTRY/${NAME}:1\n",
            {"NAME": "org/other"},
            ["ghcr.io/org/other:1"],
            id="several-args-one-line",
        ),
        pytest.param(
            "ARG SUFFIX=\nFROM python:3.12-slim${SUFFIX}\n",
            {},
            ["python:3.12-slim"],
            id="declared-empty",
        ),
        pytest.param(
            "FROM alpine:3.20\nRUN <<EOF\necho \\\nEOF\nFROM debian:12\n",
            {},
            ["alpine:3.20", "debian:12"],
            id="heredoc-body-ends-with-a-continuation",
        ),
        pytest.param(
            "FROM alpine:3.20\nRUN cat <<EOF >/x\n  RUN <<X\nEOF\nFROM debian:12\n",
            {},
            ["alpine:3.20", "debian:12"],
            id="heredoc-in-a-heredoc-body-is-text",
        ),
        # dockerfile-parse reads only the escape directives docker accepts; docker refuses
        # this file when it builds it.
        pytest.param("# escape=x\nFROM alpine\n", {}, ["alpine"], id="unknown-escape-directive"),
    ],
)
def test_base_images(dockerfile, build_args, expected):
    assert base_images(dockerfile, build_args) == expected


@pytest.mark.parametrize(
    ("dockerfile", "build_args", "message"),
    [
        pytest.param(
            "FROM alpine\nFROM python:${PY}-slim\n",
            {"PY": "3.12"},
            r"Dockerfile line 2: FROM python:\$\{PY\}-slim: \$PY has no value \(declare it with "
            r"an ARG before the first FROM",
            id="build-arg-not-declared",
        ),
        pytest.param(
            "ARG PY\n\nFROM python:$PY-slim\n",
            {},
            r"Dockerfile line 3: FROM python:\$PY-slim: \$PY has no value",
            id="declared-without-value",
        ),
        pytest.param(
            "FROM \\\n  alpine:${TARGETARCH}\n",
            {},
            r"Dockerfile line 1: FROM alpine:\$\{TARGETARCH\}: \$TARGETARCH differs per platform",
            id="platform-arg",
        ),
        pytest.param(
            "ARG TAG\nFROM alpine:${TAG:?give a tag}\n",
            {},
            r"line 2: .*unsupported substitution",
            id="required",
        ),
        # dockerfile-parse knows $NAME and ${NAME} only; the other forms are refused.
        pytest.param(
            "ARG TAG\nFROM alpine:${TAG:-3.20}\n",
            {},
            r"line 2: FROM alpine:\$\{TAG:-3.20\}: unsupported substitution",
            id="default-if-unset",
        ),
        pytest.param(
            "ARG TAG=\nFROM debian${TAG-:12}\n", {}, r"unsupported substitution", id="default"
        ),
        pytest.param(
            "ARG TAG=1\nFROM busybox${TAG:+:}${TAG}\n",
            {},
            r"unsupported substitution",
            id="alternative",
        ),
        pytest.param(
            "ARG V=2\nFROM alpine:${MISSING:-${V}.0}\n",
            {},
            r"unsupported substitution",
            id="nested-default",
        ),
        # ARG defaults are taken as written (dockerfile-parse expands no variable in them):
        # what is left of one is refused, never read as another image.
        pytest.param(
            "ARG REGISTRY=ghcr.io NAME=org/base\nARG IMAGE=${REGISTRY}/${NAME}\nFROM $IMAGE:1\n",
            {},
            r"line 3: FROM \$IMAGE:1: invalid reference '\$\{REGISTRY\}/\$\{NAME\}:1'.*"
            r"ARG defaults are not expanded",
            id="args-built-from-args",
        ),
        pytest.param("FROM alpine:3$\n", {}, r"line 1: .*a \$ that names no variable", id="bare-$"),
        pytest.param(
            "ARG A B\nFROM $A\n", {"B": "alpine"}, r"line 1: ARG A B: declare each", id="arg-a-b"
        ),
        pytest.param(
            "ARG A=alpine B\nFROM $A\n", {}, r"line 1: .*its own ARG line", id="arg-mixed"
        ),
        pytest.param(
            "ARG\nFROM alpine\n", {}, r"line 1: ARG: ARG names no variable", id="arg-empty"
        ),
        pytest.param(
            "ARG TAG=1\nFROM alpine:${TAG%1}\n", {}, r"unsupported substitution", id="unsupported"
        ),
        pytest.param("FROM alpine:${TAG\n", {}, r"line 1: .*unterminated", id="unterminated"),
        pytest.param('FROM "alpine\n', {}, r"line 1: .*unterminated \" quote", id="open-quote"),
        pytest.param("FROM\n", {}, r"line 1: FROM: expected FROM", id="no-image"),
        pytest.param("FROM a AS\n", {}, r"expected FROM \[--platform=…\] image", id="as-no-name"),
        pytest.param("FROM a b\n", {}, r"expected FROM", id="extra-word"),
        pytest.param("FROM --pull=true alpine\n", {}, r"unknown flag --pull", id="unknown-flag"),
        pytest.param(
            "ARG A=Python\nFROM $A:3\n",
            {},
            r"line 2: FROM \$A:3: invalid reference 'Python:3'",
            id="invalid-reference",
        ),
        pytest.param("ARG EMPTY=\nFROM ${EMPTY}\n", {}, r"expands to nothing", id="empty"),
        pytest.param("ARG 1A=x\nFROM alpine\n", {}, r"line 1: .*not a valid ARG name", id="arg"),
    ],
)
def test_base_images_errors(dockerfile, build_args, message):
    with pytest.raises(UserError, match=message):
        base_images(dockerfile, build_args)


def test_errors_name_the_file_given():
    with pytest.raises(UserError, match=r"^ctx/prefect/Dockerfile line 1: "):
        base_images("FROM $NOPE\n", {}, name="ctx/prefect/Dockerfile")


def test_single_quotes_keep_a_dollar_literal():
    with pytest.raises(UserError, match=r"line 2: FROM '\$\{BASE\}': invalid reference"):
        base_images("ARG BASE=alpine\nFROM '${BASE}'\n", {})


def test_escaped_dollar_is_literal_then_refused_as_a_reference():
    with pytest.raises(UserError, match=r"invalid reference 'alpine\$X'"):
        base_images("ARG X=1\nFROM alpine\\$X\n", {})


@pytest.fixture(scope="module")
def loaded():
    return load_config()


@pytest.mark.parametrize(
    ("version", "image", "python", "flavor", "expected"),
    [
        ("2.11.5", "prefect", "3.10", "standard", ["docker.io/library/python:3.10-slim"]),
        ("2.11.5", "prefect", "3.10", "kubernetes", ["docker.io/library/python:3.10-slim"]),
        ("2.11.5", "prefect", "3.9", "conda", ["docker.io/continuumio/miniconda3:24.7.1-0"]),
        ("3.4.25", "prefect", "3.12", "standard", ["docker.io/library/python:3.12-slim"]),
        ("3.4.25", "prefect-client", "3.13", "standard", ["docker.io/library/python:3.13-slim"]),
    ],
)
def test_base_images_of_the_packaged_templates(
    loaded, tmp_path, version, image, python, flavor, expected
):
    from matrix.render import render_plan

    plan = plan_release(loaded, version, images=[image], pythons=[python], flavors=[flavor])
    (spec,) = plan.images
    (context,) = render_plan(plan, loaded, tmp_path, locks=fixed_locks(plan))
    text = context.dockerfile.read_text()
    assert base_images(text, spec.build_args) == expected
    if flavor == "conda":
        # The final stage is FROM ${BASE_IMAGE}, the prefect-conda stage: not an image.
        assert spec.build_args["BASE_IMAGE"] == "prefect-conda"
        assert "FROM ${BASE_IMAGE}" in text


# -- the inputs and their id -----------------------------------------------------------


def make_context(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text("ARG PY=3.12\nFROM python:${PY}-slim\nCOPY . /src\n")
    (folder / "requirements.txt").write_text("prefect==3.4.25\n")
    (folder / "sub" / "deeper").mkdir(parents=True)
    (folder / "sub" / "deeper" / "data.bin").write_bytes(bytes(range(256)))
    (folder / ".dockerignore").write_text("*.pyc\n")
    return folder


def inputs_of(folder: Path, **changes) -> BuildInputs:
    arguments = {
        "build_args": {"PY": "3.12", "PREFECT_VERSION": "3.4.25"},
        "platforms": ("linux/amd64", "linux/arm64"),
        "base_digests": {PYTHON: {"linux/amd64": A, "linux/arm64": B}},
        "labels": {"org.opencontainers.image.version": "3.4.25"},
    }
    arguments |= changes
    return inputs_for_context(folder, **arguments)


def test_the_context_files_are_every_file_but_the_dockerfile(tmp_path):
    context = make_context(tmp_path / "ctx")
    inputs = inputs_of(context)
    assert list(inputs.context) == [".dockerignore", "requirements.txt", "sub/deeper/data.bin"]
    assert [path for path, _ in context_files(context)] == [
        ".dockerignore",
        "Dockerfile",
        "requirements.txt",
        "sub/deeper/data.bin",
    ]


def test_same_inputs_same_id_wherever_the_context_is(tmp_path):
    first = make_context(tmp_path / "one")
    second = tmp_path / "elsewhere" / "two"
    shutil.copytree(first, second)
    os.utime(second / "requirements.txt", (0, 0))  # mtimes are not inputs
    (second / "requirements.txt").chmod(0o755)  # nor are modes
    ids = {inputs_of(first).id, inputs_of(first).id, inputs_of(second).id}
    assert len(ids) == 1
    assert ids.pop().startswith("sha256:")


def test_platform_order_and_mapping_order_do_not_matter(tmp_path):
    context = make_context(tmp_path / "ctx")
    one = inputs_of(context)
    other = inputs_of(
        context,
        platforms=["linux/arm64", "linux/amd64", "linux/arm64"],
        build_args={"PREFECT_VERSION": "3.4.25", "PY": "3.12"},
        base_digests={PYTHON: {"linux/arm64": B, "linux/amd64": A}},
    )
    assert other.platforms == ("linux/amd64", "linux/arm64")
    assert one == other
    assert one.id == other.id


def test_the_id_is_pinned():
    """The canonical form is part of the contract: ids already in registries must keep
    meaning the same. A deliberate change bumps SCHEMA and this value."""
    inputs = BuildInputs(
        dockerfile=A,
        context={"requirements.txt": B},
        build_args={"PYTHON_VERSION": "3.12"},
        platforms=("linux/arm64", "linux/amd64"),
        base_digests={PYTHON: {"linux/amd64": B, "linux/arm64": C}},
        labels={"org.opencontainers.image.version": "3.4.25"},
    )
    assert inputs.to_record() == {
        "schema": 1,
        "dockerfile": A,
        "context": {"requirements.txt": B},
        "build_args": {
            "PYTHON_VERSION": (
                "sha256:33307da56af13f791584518fef2e49641180bfbf2ef7b2d256c9ab6fad564f80"
            )
        },
        "labels": {
            "org.opencontainers.image.version": (
                "sha256:453993ed670b2da055d62bfc6391fef50d3ed7d056100a89fec5b65824e1c2c8"
            )
        },
        "platforms": ["linux/amd64", "linux/arm64"],
        "bases": {PYTHON: {"linux/amd64": B, "linux/arm64": C}},
    }
    assert build_id(inputs.to_record()) == (
        "sha256:d7d3d61677253701b370e51449718c512cf9c688ee1b0d6a1c9d71d927e037f2"
    )


def _edit(path: Path, text: str) -> None:
    path.write_text(text)


CHANGES = {
    "Dockerfile": lambda ctx: _edit(ctx / "Dockerfile", "FROM python:3.13-slim\n"),
    "a context file's bytes": lambda ctx: _edit(ctx / "requirements.txt", "prefect==3.4.26\n"),
    "a nested file's bytes": lambda ctx: (ctx / "sub" / "deeper" / "data.bin").write_bytes(b"x"),
    "a new file": lambda ctx: _edit(ctx / "new.txt", ""),
    "a new empty file in a folder": lambda ctx: _edit(ctx / "sub" / "empty", ""),
    "a removed file": lambda ctx: (ctx / ".dockerignore").unlink(),
    "a renamed file": lambda ctx: (ctx / "requirements.txt").rename(ctx / "requirements.in"),
    "a moved file": lambda ctx: (ctx / "requirements.txt").rename(ctx / "sub" / "requirements.txt"),
    "a file turned link": lambda ctx: (
        (ctx / "requirements.txt").unlink(),
        (ctx / "requirements.txt").symlink_to("sub/deeper/data.bin"),
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_of_the_context_changes_the_id(tmp_path, change):
    context = make_context(tmp_path / "ctx")
    before = inputs_of(context)
    CHANGES[change](context)
    assert inputs_of(context).id != before.id


@pytest.mark.parametrize(
    "changes",
    [
        {"build_args": {"PY": "3.13", "PREFECT_VERSION": "3.4.25"}},
        {"build_args": {"PY": "3.12", "PREFECT_VERSION": "3.4.25", "EXTRA": ""}},
        {"build_args": {"PY": "3.12"}},
        {"build_args": {"PY": "3.12", "PREFECT_VERSION": "3.4.25 "}},
        {
            "platforms": ["linux/amd64"],
            "base_digests": {PYTHON: {"linux/amd64": A}},
        },
        {"base_digests": {PYTHON: {"linux/amd64": A, "linux/arm64": C}}},
        {"base_digests": {PYTHON: {"linux/amd64": B, "linux/arm64": A}}},
        {
            "base_digests": {
                "docker.io/library/python:3.13-slim": {"linux/amd64": A, "linux/arm64": B}
            }
        },
        {
            "base_digests": {
                PYTHON: {"linux/amd64": A, "linux/arm64": B},
                "docker.io/library/alpine:3.20": {"linux/amd64": A, "linux/arm64": B},
            }
        },
        {"labels": {}},
        {"labels": {"org.opencontainers.image.version": "3.4.26"}},
    ],
    ids=lambda changes: "-".join(changes),
)
def test_every_other_input_changes_the_id(tmp_path, changes):
    context = make_context(tmp_path / "ctx")
    assert inputs_of(context, **changes).id != inputs_of(context).id


def test_the_build_id_label_is_not_an_input(tmp_path):
    context = make_context(tmp_path / "ctx")
    plain = inputs_of(context)
    labels = {**plain.labels, BUILD_ID_LABEL: "sha256:" + "f" * 64}
    assert inputs_of(context, labels=labels).id == plain.id


def test_bases_must_be_resolved_for_exactly_the_platforms(tmp_path):
    context = make_context(tmp_path / "ctx")
    with pytest.raises(ValueError, match="resolved for"):
        inputs_of(context, platforms=["linux/amd64", "linux/arm64", "linux/arm/v7"])
    with pytest.raises(ValueError, match="not a sha256 digest"):
        inputs_of(context, base_digests={PYTHON: {"linux/amd64": "latest", "linux/arm64": B}})
    with pytest.raises(ValueError, match="at least one platform"):
        inputs_of(context, platforms=[], base_digests={})


# -- the record in the registry, and what changed ------------------------------------------


def test_the_record_round_trips_through_an_annotation_buildx_accepts(tmp_path):
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\n")
    for name in ["a b,c.txt", "x=y;z", "100%+1", "naïve", "at@sign", "q'\"uote"]:
        (context / name).write_text(name)
    inputs = inputs_for_context(
        context,
        {"EXTRA_PIP_PACKAGES": "prefect-aws prefect-gcp>=0.5,<1", "API_TOKEN": "hunter2"},
        ["linux/arm/v7", "linux/amd64"],
        {
            "127.0.0.1:5000/base@" + C: {"linux/arm/v7": A, "linux/amd64": B},
            "docker.io/library/python:3.12-slim": {"linux/arm/v7": C, "linux/amd64": C},
        },
        {"org.opencontainers.image.description": "Prefect, with extras; and = signs"},
    )
    annotations = build_annotations(inputs.to_record())
    assert annotations[BUILD_ID_LABEL] == inputs.id
    text = annotations[BUILD_INPUTS_ANNOTATION]
    assert decode_inputs(text) == inputs.to_record()
    assert "hunter2" not in text  # build arg values are recorded by digest only
    assert text.startswith(f"v={SCHEMA};dockerfile=sha256:")
    assert "base:docker.io/library/python:3.12-slim@linux/amd64=" + C in text
    # What the buildx engine checks before it puts annotations into --output.
    BuildRequest(
        key="k",
        context=context,
        platforms=("linux/amd64",),
        tags=(),
        repository="127.0.0.1:5000/prefect",
        annotations=annotations,
        push=True,
        push_by_digest=True,
    )
    assert recorded_inputs(annotations) == inputs.to_record()


def test_recorded_inputs_trusts_only_a_record_matching_its_id(tmp_path):
    inputs = inputs_of(make_context(tmp_path / "ctx"))
    annotations = build_annotations(inputs.to_record())
    other = "sha256:" + "e" * 64
    tampered = annotations[BUILD_INPUTS_ANNOTATION].replace(A, other)
    assert recorded_inputs({**annotations, BUILD_INPUTS_ANNOTATION: tampered}) is None
    assert recorded_inputs({**annotations, BUILD_INPUTS_ANNOTATION: "garbage"}) is None
    assert recorded_inputs({BUILD_ID_LABEL: inputs.id}) is None
    assert recorded_inputs({BUILD_INPUTS_ANNOTATION: annotations[BUILD_INPUTS_ANNOTATION]}) is None
    assert recorded_inputs({}) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "v=1",
        "dockerfile=" + A,
        "v=x;dockerfile=" + A,
        "v=1;dockerfile=latest",
        "v=1;dockerfile=" + A + ";file:a=sha256:short",
        "v=1;dockerfile=" + A + ";base:nowhere=" + A,
        "v=1;dockerfile=" + A + ";what:ever=" + A,
        "v=1;dockerfile=" + A + ";noequals",
        "v=1;dockerfile=" + A + ";" + "x" * 70000,
    ],
)
def test_decode_refuses_what_encode_never_writes(text):
    with pytest.raises(ValueError):
        decode_inputs(text)


def test_changed_inputs_names_each_input(tmp_path):
    context = make_context(tmp_path / "ctx")
    old = inputs_of(context)
    assert changed_inputs(old.to_record(), old.to_record()) == []
    assert changed_inputs(decode_inputs(encode_inputs(old.to_record())), old.to_record()) == []

    (context / "Dockerfile").write_text("FROM python:3.12-slim\n")
    (context / "requirements.txt").write_text("prefect==3.4.26\n")
    (context / ".dockerignore").unlink()
    (context / "sub" / "new.txt").write_text("new")
    new = inputs_of(
        context,
        build_args={"PY": "3.12", "PREFECT_VERSION": "3.4.26", "EXTRA": "x"},
        labels={"org.opencontainers.image.version": "3.4.26", "io.prefect.flavor": "standard"},
        base_digests={
            PYTHON: {"linux/amd64": A, "linux/arm64": C},
            "docker.io/library/alpine:3.20": {"linux/amd64": A, "linux/arm64": A},
        },
    )
    assert changed_inputs(old.to_record(), new.to_record()) == [
        "Dockerfile",
        "context file .dockerignore (removed)",
        "context file requirements.txt",
        "context file sub/new.txt (added)",
        "build arg EXTRA (added)",
        "build arg PREFECT_VERSION",
        "label io.prefect.flavor (added)",
        "label org.opencontainers.image.version",
        "base docker.io/library/alpine:3.20 (added)",
        f"base {PYTHON} linux/arm64: {B} -> {C}",
    ]
    assert changed_inputs(new.to_record(), old.to_record()) == [
        "Dockerfile",
        "context file .dockerignore (added)",
        "context file requirements.txt",
        "context file sub/new.txt (removed)",
        "build arg EXTRA (removed)",
        "build arg PREFECT_VERSION",
        "label io.prefect.flavor (removed)",
        "label org.opencontainers.image.version",
        "base docker.io/library/alpine:3.20 (removed)",
        f"base {PYTHON} linux/arm64: {C} -> {B}",
    ]


def test_changed_platforms_are_named_once(tmp_path):
    context = make_context(tmp_path / "ctx")
    old = inputs_of(context, platforms=["linux/amd64"], base_digests={PYTHON: {"linux/amd64": A}})
    assert changed_inputs(old.to_record(), inputs_of(context).to_record()) == [
        "platforms: linux/amd64 -> linux/amd64, linux/arm64"
    ]


def test_changed_inputs_across_schemas(tmp_path):
    inputs = inputs_of(make_context(tmp_path / "ctx"))
    older = {**inputs.to_record(), "schema": 0}
    assert changed_inputs(older, inputs.to_record()) == [f"build id schema 0 -> {SCHEMA}"]


# -- base digests from a real registry -------------------------------------------------------

_names = itertools.count()


@pytest.fixture
def client(registry, make_client):
    """A client that sends docker.io's requests to the test registry, so Docker Hub
    names (python:3.12-slim) resolve there and nothing leaves 127.0.0.1."""
    return make_client(endpoints={"docker.io": registry.host})


@pytest.fixture
def base(registry, request):
    """``base(tag)``: a reference in a repository no other test uses."""

    def make(tag: str = "1"):
        name = "".join(c if c.isalnum() else "-" for c in request.node.name.lower()).strip("-")
        return parse_reference(f"{registry.host}/bases/{name}-{next(_names)}:{tag}")

    return make


def test_resolve_reads_one_manifest_per_base_and_no_blob(client, base):
    first, second = base(), base()
    pushed_first = push_index(client, first)
    pushed_second = push_index(client, second, salt="2")
    client.requests.reset()
    resolved = resolve_bases(client, [str(first), str(second), str(first)], PLATFORMS)
    assert resolved == {str(first): pushed_first.platforms, str(second): pushed_second.platforms}
    assert client.requests.by_method == {"GET": 2}
    assert client.requests.blob_reads == 0


def test_a_base_pinned_by_digest_costs_its_one_read(client, base):
    ref = base()
    pushed = push_index(client, ref)
    pinned = f"{ref.name}@{pushed.digest}"
    client.requests.reset()
    assert resolve_bases(client, [pinned], PLATFORMS) == {pinned: pushed.platforms}
    assert client.requests.by_method == {"GET": 1}


def test_a_plain_manifest_names_every_platform(client, base):
    ref = base()
    pushed = push_index(client, ref, platforms=("linux/arm64",))
    child = client.get_manifest(ref.with_digest(pushed.platforms["linux/arm64"]))
    plain = ref.with_tag("plain")
    client.put_manifest(plain, child.content, child.media_type)
    assert resolve_bases(client, [str(plain)], PLATFORMS) == {
        str(plain): {"linux/amd64": child.digest, "linux/arm64": child.digest}
    }


def test_a_platform_the_base_lacks_is_a_user_error(client, base):
    ref = base()
    push_index(client, ref, platforms=("linux/amd64",))
    with pytest.raises(UserError, match=rf"base image {ref} has no linux/arm64 image \(it has: "):
        resolve_bases(client, [str(ref)], PLATFORMS)


def test_arm64_is_arm64_v8(client, base):
    ref = base()
    pushed = push_index(client, ref.with_tag("parts"), salt="v8")
    assemble_index(
        client,
        ref,
        [
            (pushed.platforms["linux/amd64"], "linux/amd64"),
            (pushed.platforms["linux/arm64"], "linux/arm64/v8"),
        ],
    )
    assert resolve_bases(client, [str(ref)], PLATFORMS)[str(ref)] == pushed.platforms


def test_a_missing_base_is_a_registry_error(client, base):
    ref = base()
    with pytest.raises(RegistryError, match="not found"):
        resolve_bases(client, [str(ref)], PLATFORMS)


def test_base_reference_reads_as_docker_does():
    assert str(base_reference("python:3.12-slim")) == PYTHON
    assert str(base_reference("ubuntu")) == "docker.io/library/ubuntu:latest"
    assert str(base_reference("ghcr.io/org/img@" + A)) == "ghcr.io/org/img@" + A


def test_gather_inputs_of_rendered_templates_and_one_moved_base(client, loaded, tmp_path):
    """The packaged templates, their Docker Hub bases served by the test registry: one
    platform of one base moves, and exactly that is what changed."""
    from matrix.render import render_plan

    plan = plan_release(loaded, "2.11.5", pythons=["3.10"], flavors=["standard", "conda"])
    contexts = {c.key: c for c in render_plan(plan, loaded, tmp_path, locks=fixed_locks(plan))}
    specs = {spec.key: spec for spec in plan.images}
    python = parse_reference("python:3.10-slim")
    conda = parse_reference("continuumio/miniconda3:24.7.1-0")
    python_before = push_index(client, python, salt="before")
    conda_pushed = push_index(client, conda)

    def gather(key: str) -> BuildInputs:
        spec = specs[key]
        wanted = [(key, contexts[key].path, spec.build_args, spec.platforms)]
        return gather_many(client, wanted, spec.labels)[key]

    standard, conda_inputs = gather("prefect-python3.10"), gather("prefect-python3.10-conda")
    assert standard.base_digests == {str(python): python_before.platforms}
    assert conda_inputs.base_digests == {str(conda): conda_pushed.platforms}
    recorded = recorded_inputs(build_annotations(standard.to_record()))
    assert recorded is not None
    assert gather("prefect-python3.10").id == standard.id

    # python:3.10-slim moves on for arm64 only.
    arm64 = push_index(client, python.with_tag("arm64-rebuild"), ("linux/arm64",), salt="after")
    assemble_index(
        client,
        python,
        [
            (python_before.platforms["linux/amd64"], "linux/amd64"),
            (arm64.platforms["linux/arm64"], "linux/arm64"),
        ],
    )
    moved = gather("prefect-python3.10")
    assert moved.id != standard.id
    assert changed_inputs(recorded, moved.to_record()) == [
        f"base docker.io/library/python:3.10-slim linux/arm64: "
        f"{python_before.platforms['linux/arm64']} -> {arm64.platforms['linux/arm64']}"
    ]
    assert gather("prefect-python3.10-conda").id == conda_inputs.id
    # Many images at once: each distinct base is read once, with one manifest GET.
    client.requests.reset()
    both = gather_many(
        client, [(k, contexts[k].path, specs[k].build_args, specs[k].platforms) for k in specs]
    )
    assert set(both) == set(specs)
    assert client.requests.by_method == {"GET": 2}


def test_a_base_mirror_serves_the_base_and_changes_no_build_id(
    client, make_client, registry, tmp_path
):
    """Docker Hub's name, the mirror's bytes: the same digests, the same record, and
    nothing sent to docker.io (the suite refuses to resolve it)."""
    from matrix.engines.mirrors import BaseMirrors

    name = f"mirrored-{os.getpid()}/python:3.12-slim"
    pushed = push_index(client, parse_reference(name), salt="mirrored")
    through_hub = resolve_bases(client, [name], PLATFORMS)
    mirrors = BaseMirrors.parse([f"docker.io={registry.host}"])
    with make_client() as direct:
        through_mirror = resolve_bases(direct, [name], PLATFORMS, mirrors)
        with pytest.raises(RegistryError):
            resolve_bases(direct, [name], PLATFORMS)
    assert through_mirror == through_hub == {f"docker.io/{name}": pushed.platforms}
