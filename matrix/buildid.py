"""Build ids: one digest of everything that decides an image's content.

An image's inputs are its rendered Dockerfile, the other files of its build context,
its build args, the labels the engine adds, its platforms, and, for every base
image its ``FROM`` lines name, the image manifest digest each platform builds on, read
from the registry (a tag such as ``python:3.12-slim`` moves; its digest does not).
``build_id`` is ``sha256:<hex>`` of a canonical JSON of those inputs (sorted keys, no
absolute path, no mtime, no file mode), so the same inputs give the same id on any
machine and in any run, and any change of them gives another id.

Where the id lives, and why there
---------------------------------
``BUILD_ID_LABEL`` (``io.prefect.matrix.build-id``) is both:

* a label on the image (its config), for people: ``docker inspect`` shows it; and
* an annotation on the index of the full tag (on each entry with podman, which cannot
  annotate the index itself), for ``publish``: it already reads each full tag's index
  with one manifest GET and never reads a blob, and a label lives in the config blob,
  one blob read per platform. The annotation costs no request at all.

``BUILD_INPUTS_ANNOTATION`` (``io.prefect.matrix.build-inputs``) holds the inputs
themselves, so a rebuild can say *which* input changed without reading anything more.
buildx joins its ``--output`` fields with commas and no quoting (``_ANNOTATION_RE`` in
``matrix.engines.base``), so JSON cannot go there; the record is written as
``;``-separated ``key=value`` entries instead, names percent-encoded, values digests::

    v=1;dockerfile=sha256:…;file:hello.txt=sha256:…;arg:PYTHON_VERSION=sha256:…;
    platforms=linux/amd64+linux/arm64;base:docker.io/library/python:3.12-slim@linux/amd64=sha256:…

(one line, no spaces). It is readable in ``crane manifest`` output, deterministic (no
compression whose bytes could vary between zlib builds) and round-trips exactly:
``decode_inputs(encode_inputs(r)) == r`` for a record ``r``. Build arg and label *values*
are recorded by digest, never verbatim, so the registry never holds a build arg's
value (one named like a secret, say) and the record stays small; the report then
names the build arg that changed, not its values. ``recorded_inputs`` trusts a
record only when it hashes to the build id next to it.

Decisions
---------
* Platforms are a set: sorted and deduplicated. Their order decides no image's
  content, only the order of the index's entries, which is not worth a rebuild.
* The Dockerfile is its own input (``dockerfile``); every other file of the context
  folder is a context file, whatever its name (``.dockerignore`` included: nothing is
  ignored). Empty folders and file modes are not inputs: rendered contexts have
  neither, and modes would make the id depend on the umask of the machine.
* The rendered Dockerfile holds ``org.opencontainers.image.created`` when
  SOURCE_DATE_EPOCH is set: render with the same epoch (the commit's time, say), or
  each run has another id.
* A base is named by its normalized reference (``docker.io/library/python:3.12-slim``;
  no tag means ``latest``, as docker reads it).
* An index gives a digest per platform. A plain image manifest names one image whose
  platform only its config blob knows; it is recorded for every platform (it cannot be
  told apart without reading a blob, and a build for a platform it lacks fails anyway).
* ``FROM --platform=…`` is read and set aside (`matrix.dockerfile` reads ``FROM``):
  bases are resolved for each *target* platform. A stage pinned to another platform
  (``--platform=$BUILDPLATFORM``) is still recorded for the target platforms; none of
  matrix's templates pins one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import quote, unquote

from matrix.dockerfile import DOCKERFILE, base_images
from matrix.errors import UserError
from matrix.publish.annotations import BUILD_ID_LABEL, BUILD_INPUTS_ANNOTATION
from matrix.reference import ImageReference, parse_reference
from matrix.registry.manifests import INDEX_TYPES, Platform, children, parse_manifest

if TYPE_CHECKING:
    from matrix.engines.mirrors import BaseMirrors
    from matrix.registry import RegistryClient

# Bumped when the record's shape or meaning changes: every id changes with it.
SCHEMA = 1

_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
# Characters a name keeps as they are in the inputs annotation; everything else
# (`;`, `=`, `+`, `,`, `%`, spaces, quotes, non-ASCII...) is percent-encoded.
_SAFE_IN_NAME = "/:.@_-"
_MAX_RECORD = 64 * 1024


# -- base digests from the registry ----------------------------------------------------


def base_reference(image: str) -> ImageReference:
    """``image`` normalized as docker reads it; no tag and no digest means ``latest``."""
    ref = parse_reference(image)
    if ref.tag is None and ref.digest is None:
        ref = ref.with_tag("latest")
    return ref


def resolve_bases(
    client: RegistryClient,
    images: Iterable[str],
    platforms: Sequence[str],
    mirrors: BaseMirrors | None = None,
) -> dict[str, dict[str, str]]:
    """Per base (normalized reference), per platform, the image manifest digest it builds on.

    One manifest GET per distinct base, through ``client.map``, and never a blob:
    an index maps each platform to its child; a plain image manifest is recorded for
    every platform (its platform is only in its config blob). A base pinned by
    digest costs the same one GET, of that exact manifest. A platform an index
    lacks is a UserError naming base and platform. With ``mirrors``, a base is read
    from its registry's mirror and recorded under its own name.
    """
    wanted = [(platform, _parse_platform(platform).normalized()) for platform in platforms]
    refs = list(dict.fromkeys(base_reference(image) for image in images))

    def resolve(ref: ImageReference) -> dict[str, str]:
        manifest = client.get_manifest(mirrors.redirect(ref) if mirrors else ref)
        if manifest.media_type not in INDEX_TYPES:
            return {platform: manifest.digest for platform, _ in wanted}
        entries = [entry for entry in children(parse_manifest(manifest.content)) if entry.platform]
        found = {}
        for platform, key in wanted:
            match = next((e for e in entries if e.platform.normalized() == key), None)
            if match is None:
                offered = sorted({str(e.platform) for e in entries if e.platform.os != "unknown"})
                raise UserError(
                    f"base image {ref} has no {platform} image "
                    f"(it has: {', '.join(offered) or 'none'})"
                )
            found[platform] = match.digest
        return found

    resolved = client.map(resolve, refs)
    return {str(ref): digests for ref, digests in zip(refs, resolved, strict=True)}


def _parse_platform(text: str) -> Platform:
    try:
        return Platform.parse(text)
    except ValueError as error:
        raise UserError(str(error)) from None


# -- the inputs and their id -----------------------------------------------------------


class InputsRecord(TypedDict):
    """The inputs as they travel (build jobs' digest files, annotations, publish): what
    the id digests, build arg and label values by digest. `BuildInputs.to_record`
    makes one; `decode_inputs` reads one back."""

    schema: int
    dockerfile: str
    context: dict[str, str]
    build_args: dict[str, str]
    labels: dict[str, str]
    platforms: list[str]
    bases: dict[str, dict[str, str]]


@dataclass(frozen=True)
class BuildInputs:
    """Everything that decides an image's content; see the module's docstring.

    The constructor normalizes: platforms sorted and unique, mappings sorted, the
    build id label left out of ``labels`` (it is the result, not an input).
    """

    dockerfile: str  # sha256 of the Dockerfile's bytes
    context: Mapping[str, str]  # context file (relative POSIX path) -> sha256
    build_args: Mapping[str, str]
    platforms: tuple[str, ...]
    base_digests: Mapping[str, Mapping[str, str]]  # base -> platform -> manifest digest
    labels: Mapping[str, str] = field(default_factory=dict)  # given to the engine

    def __post_init__(self) -> None:
        platforms = tuple(sorted(set(self.platforms)))
        if not platforms:
            raise ValueError("build inputs need at least one platform")
        for base, digests in self.base_digests.items():
            if set(digests) != set(platforms):
                raise ValueError(
                    f"base {base} is resolved for {sorted(digests)}, not for {list(platforms)}"
                )
        for digest in [self.dockerfile, *self.context.values()] + [
            d for digests in self.base_digests.values() for d in digests.values()
        ]:
            if not _DIGEST_RE.fullmatch(digest):
                raise ValueError(f"not a sha256 digest: {digest!r}")
        set_ = object.__setattr__
        set_(self, "platforms", platforms)
        set_(self, "context", dict(sorted(self.context.items())))
        set_(self, "build_args", dict(sorted(self.build_args.items())))
        labels = {k: v for k, v in self.labels.items() if k != BUILD_ID_LABEL}
        set_(self, "labels", dict(sorted(labels.items())))
        set_(
            self,
            "base_digests",
            {base: dict(sorted(d.items())) for base, d in sorted(self.base_digests.items())},
        )

    def to_record(self) -> InputsRecord:
        """The JSON-ready record the id is computed from (values of build args and
        labels by digest), as ``decode_inputs`` gives it back."""
        return {
            "schema": SCHEMA,
            "dockerfile": self.dockerfile,
            "context": dict(self.context),
            "build_args": {name: _text_digest(v) for name, v in self.build_args.items()},
            "labels": {name: _text_digest(v) for name, v in self.labels.items()},
            "platforms": list(self.platforms),
            "bases": {base: dict(digests) for base, digests in self.base_digests.items()},
        }

    @property
    def id(self) -> str:
        return build_id(self.to_record())


def build_id(record: InputsRecord) -> str:
    """``sha256:<hex>`` of the canonical JSON of the inputs' record."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def inputs_for_context(
    context_dir: Path,
    build_args: Mapping[str, str],
    platforms: Sequence[str],
    base_digests: Mapping[str, Mapping[str, str]],
    labels: Mapping[str, str] | None = None,
) -> BuildInputs:
    """The inputs of a rendered context folder (its ``Dockerfile`` and every other file)."""
    context_dir = Path(context_dir)
    dockerfile = _file_digest(context_dir / DOCKERFILE)
    files = {path: digest for path, digest in context_files(context_dir) if path != DOCKERFILE}
    return BuildInputs(
        dockerfile=dockerfile,
        context=files,
        build_args=dict(build_args),
        platforms=tuple(platforms),
        base_digests=base_digests,
        labels=dict(labels or {}),
    )


Wanted = tuple[str, Path, Mapping[str, str], Sequence[str]]  # key, context, args, platforms


def gather_many(
    client: RegistryClient,
    wanted: Sequence[Wanted],
    labels: Mapping[str, str] | None = None,
    mirrors: BaseMirrors | None = None,
) -> dict[str, BuildInputs]:
    """The inputs of many images (key -> inputs), each distinct base resolved once:
    a release's twelve images on three bases cost three manifest GETs, not twelve."""
    bases: dict[str, list[str]] = {}
    by_platforms: dict[tuple[str, ...], set[str]] = {}
    for key, context_dir, build_args, platforms in wanted:
        dockerfile = Path(context_dir) / DOCKERFILE
        text = dockerfile.read_text(encoding="utf-8")
        bases[key] = [
            str(base_reference(b)) for b in base_images(text, build_args, name=str(dockerfile))
        ]
        by_platforms.setdefault(tuple(platforms), set()).update(bases[key])
    resolved = {
        platforms: resolve_bases(client, sorted(images), platforms, mirrors)
        for platforms, images in by_platforms.items()
    }
    return {
        key: inputs_for_context(
            context_dir,
            build_args,
            platforms,
            {base: resolved[tuple(platforms)][base] for base in bases[key]},
            labels,
        )
        for key, context_dir, build_args, platforms in wanted
    }


def context_files(context_dir: Path) -> list[tuple[str, str]]:
    """(relative POSIX path, sha256) of every file under ``context_dir``, sorted.

    A symbolic link is recorded by its target (the build sends the link, not what
    it points to); anything that is neither a file nor a link is refused.
    """
    found = []
    for folder, folders, names in os.walk(context_dir, onerror=_raise):
        base = Path(folder)
        for name in [*names, *(n for n in folders if (base / n).is_symlink())]:
            path = base / name
            relative = path.relative_to(context_dir).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                digest = _text_digest("symlink:" + os.readlink(path))
            elif stat.S_ISREG(mode):
                digest = _file_digest(path)
            else:
                raise UserError(f"{path}: neither a file nor a link, cannot be in a build context")
            found.append((relative, digest))
    return sorted(found)


def _raise(error: OSError) -> None:
    raise error


def _file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()


def _text_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# -- in the registry, and what changed --------------------------------------------------


def build_annotations(record: InputsRecord) -> dict[str, str]:
    """The annotations that carry the id and the inputs (none holds a comma or space)."""
    return {BUILD_ID_LABEL: build_id(record), BUILD_INPUTS_ANNOTATION: encode_inputs(record)}


def encode_inputs(record: InputsRecord) -> str:
    """The record as one annotation value: ``;``-separated entries, names percent-encoded."""
    entries = [f"v={record['schema']}", f"dockerfile={record['dockerfile']}"]
    entries += [f"file:{_name(path)}={d}" for path, d in sorted(record["context"].items())]
    entries += [f"arg:{_name(name)}={d}" for name, d in sorted(record["build_args"].items())]
    entries += [f"label:{_name(name)}={d}" for name, d in sorted(record["labels"].items())]
    entries.append("platforms=" + "+".join(_name(p) for p in record["platforms"]))
    for base, digests in sorted(record["bases"].items()):
        entries += [f"base:{_name(base)}@{_name(p)}={d}" for p, d in sorted(digests.items())]
    return ";".join(entries)


def decode_inputs(text: str) -> InputsRecord:
    """The record ``encode_inputs`` wrote; ValueError for anything else."""
    if len(text) > _MAX_RECORD:
        raise ValueError("build inputs record too long")
    record: dict[str, Any] = {
        "context": {},
        "build_args": {},
        "labels": {},
        "platforms": [],
        "bases": {},
    }
    sections = {"file": "context", "arg": "build_args", "label": "labels"}
    for entry in text.split(";"):
        key, equals, value = entry.partition("=")
        if not equals:
            raise ValueError(f"build inputs entry without '=': {entry!r}")
        kind, colon, name = key.partition(":")
        if not colon and kind == "v":
            if not value.isdigit():
                raise ValueError(f"bad build inputs schema {value!r}")
            record["schema"] = int(value)
        elif not colon and kind == "platforms":
            record["platforms"] = [unquote(p) for p in value.split("+") if p]
        elif not colon and kind == "dockerfile":
            record["dockerfile"] = _checked_digest(value)
        elif colon and kind in sections:
            record[sections[kind]][unquote(name)] = _checked_digest(value)
        elif colon and kind == "base":
            base, at, platform = name.rpartition("@")
            if not at:
                raise ValueError(f"build inputs base entry without platform: {entry!r}")
            record["bases"].setdefault(unquote(base), {})[unquote(platform)] = _checked_digest(
                value
            )
        else:
            raise ValueError(f"unknown build inputs entry {entry!r}")
    if "schema" not in record or "dockerfile" not in record:
        raise ValueError("build inputs record without schema or Dockerfile")
    return record  # type: ignore[return-value]  # every key is there, as checked


def recorded_inputs(annotations: Mapping[str, str]) -> InputsRecord | None:
    """The inputs record among an image's annotations, if it is there, readable and
    hashes to the build id next to it; None otherwise (an older or foreign image)."""
    text = annotations.get(BUILD_INPUTS_ANNOTATION)
    build = annotations.get(BUILD_ID_LABEL)
    if not text or not build:
        return None
    try:
        record = decode_inputs(text)
    except ValueError:
        return None
    return record if build_id(record) == build else None


def changed_inputs(before: Mapping[str, Any], after: InputsRecord) -> list[str]:
    """What differs between an earlier record ``before`` (of any schema) and
    ``after``, one phrase per input, for a report: ``Dockerfile``, ``context file X``,
    ``build arg X``, ``label X``, ``platforms: a -> b``,
    ``base docker.io/library/python:3.12-slim linux/arm64: sha256:… -> sha256:…``."""
    if before.get("schema") != after["schema"]:
        return [f"build id schema {before.get('schema')} -> {after['schema']}"]
    changes = []
    if before.get("dockerfile") != after["dockerfile"]:
        changes.append("Dockerfile")
    for section, what in (
        ("context", "context file"),
        ("build_args", "build arg"),
        ("labels", "label"),
    ):
        changes += _mapping_changes(what, before.get(section) or {}, after[section])
    old_platforms, new_platforms = before.get("platforms") or [], after["platforms"]
    if sorted(old_platforms) != new_platforms:
        changes.append(f"platforms: {', '.join(old_platforms)} -> {', '.join(new_platforms)}")
    old_bases, new_bases = before.get("bases") or {}, after["bases"]
    for base in sorted(old_bases.keys() | new_bases.keys()):
        if base not in new_bases:
            changes.append(f"base {base} (removed)")
        elif base not in old_bases:
            changes.append(f"base {base} (added)")
        else:
            # A platform added or removed is reported once, as a platforms change.
            for platform in sorted(old_bases[base].keys() & new_bases[base].keys()):
                was, now = old_bases[base][platform], new_bases[base][platform]
                if was != now:
                    changes.append(f"base {base} {platform}: {was} -> {now}")
    return changes


def _mapping_changes(what: str, old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    changes = []
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            changes.append(f"{what} {name} (removed)")
        elif name not in old:
            changes.append(f"{what} {name} (added)")
        elif old[name] != new[name]:
            changes.append(f"{what} {name}")
    return changes


def _name(text: str) -> str:
    return quote(text, safe=_SAFE_IN_NAME)


def _checked_digest(value: str) -> str:
    if not _DIGEST_RE.fullmatch(value):
        raise ValueError(f"not a sha256 digest: {value!r}")
    return value
