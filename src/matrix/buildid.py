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
``decode_inputs(encode_inputs(x)) == x.to_record()``. Build arg and label *values*
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
* ``FROM --platform=…`` is read and set aside: bases are resolved for each *target*
  platform. A stage pinned to another platform (``--platform=$BUILDPLATFORM``) is still
  recorded for the target platforms; none of matrix's templates pins one.
* Only what docker itself offers a ``FROM`` line is used to expand it: ``ARG``
  declared before the first ``FROM`` (their defaults, or the build arg of the same
  name). A build arg that no such ``ARG`` declares does not reach ``FROM``, as in
  docker. The platform args BuildKit adds (``TARGETARCH``…) would name a different
  base per platform and are refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from matrix.errors import InvalidReference, UserError
from matrix.reference import ImageReference, parse_reference
from matrix.registry.manifests import INDEX_TYPES, Platform, children, parse_manifest

if TYPE_CHECKING:
    from matrix.registry import RegistryClient

BUILD_ID_LABEL = "io.prefect.matrix.build-id"
BUILD_INPUTS_ANNOTATION = "io.prefect.matrix.build-inputs"
# Bumped when the record's shape or meaning changes: every id changes with it.
SCHEMA = 1
DOCKERFILE = "Dockerfile"
SCRATCH = "scratch"

_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIRECTIVE_RE = re.compile(r"#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*")
_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_HEREDOC_RE = re.compile(r"<<(-?)\s*([\"']?)([A-Za-z_][A-Za-z0-9_.-]*)\2")
_HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})
# BuildKit defines these in the global scope; each differs per platform.
_PLATFORM_ARGS = frozenset(
    f"{scope}{part}"
    for scope in ("BUILD", "TARGET")
    for part in ("PLATFORM", "OS", "ARCH", "VARIANT")
)
# Characters a name keeps as they are in the inputs annotation; everything else
# (`;`, `=`, `+`, `,`, `%`, spaces, quotes, non-ASCII...) is percent-encoded.
_SAFE_IN_NAME = "/:.@_-"
_MAX_RECORD = 64 * 1024


# -- FROM lines -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Instruction:
    line: int  # first physical line, from 1
    keyword: str  # upper-case
    arguments: str  # continuation lines joined


class _Where:
    """Names a Dockerfile line in error messages."""

    def __init__(self, name: str, instruction: _Instruction) -> None:
        self.name = name
        self.instruction = instruction

    def error(self, reason: str) -> UserError:
        instruction = self.instruction
        text = " ".join(f"{instruction.keyword} {instruction.arguments}".split())
        return UserError(f"{self.name} line {instruction.line}: {text}: {reason}")


def base_images(
    dockerfile: str, build_args: Mapping[str, str], *, name: str = DOCKERFILE
) -> list[str]:
    """The external images the ``FROM`` lines of ``dockerfile`` name, in order, once each.

    Variables are expanded as docker expands them in ``FROM``: from the ``ARG``
    declared before the first ``FROM`` (a build arg of the same name wins over the
    default). ``scratch`` and the names of earlier stages are not images. ``name``
    is what error messages call the file (a UserError names its line).
    """
    variables: dict[str, str | None] = {}
    stages: set[str] = set()
    images: list[str] = []
    seen_from = False
    for instruction, escape in _instructions(dockerfile, name):
        where = _Where(name, instruction)
        if instruction.keyword == "ARG" and not seen_from:
            _declare(instruction, variables, build_args, escape, where)
        elif instruction.keyword == "FROM":
            seen_from = True
            image, stage = _from(instruction, variables, escape, where)
            if image != SCRATCH and image.lower() not in stages and image not in images:
                try:
                    parse_reference(image)
                except InvalidReference as error:
                    raise where.error(str(error)) from None
                images.append(image)
            if stage:
                stages.add(stage)
    return images


def _instructions(dockerfile: str, name: str) -> Iterator[tuple[_Instruction, str]]:
    """Each instruction with the file's escape character: comments dropped, continuation
    lines joined, heredoc bodies (``RUN <<EOF``…``EOF``) skipped."""
    lines = dockerfile.splitlines()
    escape = "\\"
    index = 0
    while index < len(lines):  # parser directives: only at the very top
        match = _DIRECTIVE_RE.fullmatch(lines[index].strip())
        if not match or match[1].lower() not in _DIRECTIVES:
            break
        if match[1].lower() == "escape":
            if match[2] not in ("\\", "`"):
                raise UserError(
                    f"{name} line {index + 1}: escape directive must be \\ or `, got {match[2]!r}"
                )
            escape = match[2]
        index += 1
    pending: list[str] = []
    start = 0
    while index < len(lines):
        raw = lines[index]
        index += 1
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # comments and blank lines, also inside a continuation
        if not pending:
            start = index
        body = raw.rstrip()
        pending.append(body.removesuffix(escape))
        if body.endswith(escape):
            continue
        instruction = _instruction(start, pending)
        pending = []
        if instruction.keyword in _HEREDOC_INSTRUCTIONS:
            for strip_tabs, word in _heredocs(instruction.arguments):
                while index < len(lines):
                    line = lines[index].rstrip()
                    index += 1
                    if (line.lstrip("\t") if strip_tabs else line) == word:
                        break
        yield instruction, escape
    if pending:  # the file ends with a continuation
        yield _instruction(start, pending), escape


def _instruction(start: int, parts: list[str]) -> _Instruction:
    match = re.match(r"(\S+)\s*(.*)", "".join(parts).strip(), re.DOTALL)
    assert match is not None  # parts hold at least one non-blank line
    return _Instruction(start, match[1].upper(), match[2].strip())


def _heredocs(arguments: str) -> list[tuple[bool, str]]:
    """The heredocs (``<<EOF``, ``<<-"EOF"``) an instruction opens, outside quotes."""
    found = []
    quote_char = None
    position = 0
    while position < len(arguments):
        char = arguments[position]
        if quote_char:
            if char == quote_char:
                quote_char = None
        elif char in "'\"":
            quote_char = char
        elif arguments.startswith("<<", position):
            match = _HEREDOC_RE.match(arguments, position)
            if match:
                found.append((bool(match[1]), match[3]))
                position = match.end()
                continue
        position += 1
    return found


def _declare(
    instruction: _Instruction,
    variables: dict[str, str | None],
    build_args: Mapping[str, str],
    escape: str,
    where: _Where,
) -> None:
    """A global ``ARG``: each ``NAME`` or ``NAME=default``; a build arg overrides."""
    words = _words(instruction.arguments, escape, where)
    if not words:
        raise where.error("ARG names no variable")
    for word in words:
        name, equals, default = word.partition("=")
        if not _NAME_RE.fullmatch(name):
            raise where.error(f"{name!r} is not a valid ARG name")
        if name in build_args:
            variables[name] = build_args[name]
        elif equals:
            variables[name] = _expand(default, variables, escape, where)
        else:
            variables.setdefault(name, None)


def _from(
    instruction: _Instruction, variables: Mapping[str, str | None], escape: str, where: _Where
) -> tuple[str, str | None]:
    """``FROM [--platform=P] image [AS name]``: the image, expanded, and the stage name."""
    words = _words(instruction.arguments, escape, where)
    while words and words[0].startswith("--"):
        flag = words.pop(0)
        if not re.fullmatch(r"--platform=\S+", flag):
            raise where.error(f"unknown flag {flag.partition('=')[0]} (FROM takes --platform=)")
    if len(words) == 1:
        stage = None
    elif len(words) == 3 and words[1].lower() == "as":
        stage = words[2].lower()
    else:
        raise where.error("expected FROM [--platform=…] image [AS name]")
    image = _expand(words[0], variables, escape, where)
    if not image:
        raise where.error("the image name expands to nothing")
    return image, stage


def _words(text: str, escape: str, where: _Where) -> list[str]:
    """Split on whitespace outside quotes; quotes and escapes stay for ``_expand``."""
    words: list[str] = []
    current: list[str] = []
    quote_char = None
    braces = 0  # inside ${...}, whose default may hold spaces
    position = 0
    while position < len(text):
        char = text[position]
        if char == escape and quote_char != "'" and position + 1 < len(text):
            current.append(text[position : position + 2])
            position += 2
            continue
        if quote_char != "'" and text.startswith("${", position):
            braces += 1
        elif braces and char == "}" and quote_char != "'":
            braces -= 1
        elif quote_char:
            if char == quote_char:
                quote_char = None
        elif char in "'\"":
            quote_char = char
        elif char.isspace() and not braces:
            if current:
                words.append("".join(current))
                current = []
            position += 1
            continue
        current.append(char)
        position += 1
    if quote_char:
        raise where.error(f"unterminated {quote_char} quote")
    if current:
        words.append("".join(current))
    return words


def _expand(word: str, variables: Mapping[str, str | None], escape: str, where: _Where) -> str:
    """Remove quotes and escapes and substitute ``$VAR``, ``${VAR}`` and ``${VAR:-x}``,
    ``${VAR-x}``, ``${VAR:+x}``, ``${VAR+x}``, ``${VAR:?msg}``, ``${VAR?msg}``."""
    out: list[str] = []
    quote_char = None
    position = 0
    while position < len(word):
        char = word[position]
        if char == escape and quote_char != "'" and position + 1 < len(word):
            following = word[position + 1]
            if quote_char == '"' and following not in ('"', "$", escape):
                out.append(char)
            out.append(following)
            position += 2
        elif quote_char is None and char in "'\"":
            quote_char = char
            position += 1
        elif char == quote_char:
            quote_char = None
            position += 1
        elif char == "$" and quote_char != "'":
            value, position = _variable(word, position, variables, escape, where)
            out.append(value)
        else:
            out.append(char)
            position += 1
    return "".join(out)


def _variable(
    word: str,
    position: int,
    variables: Mapping[str, str | None],
    escape: str,
    where: _Where,
) -> tuple[str, int]:
    """The value of the variable at ``word[position] == "$"``, and where it ends."""
    if word.startswith("${", position):
        depth, end = 1, position + 2
        while end < len(word) and depth:
            depth += {"{": 1, "}": -1}.get(word[end], 0)
            end += 1
        if depth:
            raise where.error(f"unterminated {word[position:]}")
        inner = word[position + 2 : end - 1]
        match = _NAME_RE.match(inner)
        if not match:
            raise where.error(f"bad substitution ${{{inner}}}")
        name, modifier = match[0], inner[match.end() :]
    else:
        match = _NAME_RE.match(word, position + 1)
        if not match:
            return "$", position + 1
        name, modifier, end = match[0], "", match.end()
    value = variables.get(name)
    is_set = value is not None
    colon = modifier.startswith(":")
    operator, argument = modifier[colon : colon + 1], modifier[colon + 1 :]
    if operator and colon:
        is_set = is_set and value != ""
    if operator == "-":
        chosen = value if is_set else _expand(argument, variables, escape, where)
    elif operator == "+":
        chosen = _expand(argument, variables, escape, where) if is_set else ""
    elif operator == "?":
        if not is_set:
            raise where.error(f"${{{name}}}: {argument or 'not set'}")
        chosen = value
    elif modifier:
        raise where.error(f"unsupported substitution ${{{name}{modifier}}}")
    else:
        chosen = value
    if chosen is None:
        raise where.error(_unset(name))
    return chosen, end


def _unset(name: str) -> str:
    if name in _PLATFORM_ARGS:
        return f"${name} differs per platform: matrix names one base image per FROM line"
    return (
        f"${name} has no value (declare it with an ARG before the first FROM, "
        "with a default or a build arg of that name)"
    )


# -- base digests from the registry ----------------------------------------------------


def base_reference(image: str) -> ImageReference:
    """``image`` normalized as docker reads it; no tag and no digest means ``latest``."""
    ref = parse_reference(image)
    if ref.tag is None and ref.digest is None:
        ref = ref.with_tag("latest")
    return ref


def resolve_bases(
    client: RegistryClient, images: Iterable[str], platforms: Sequence[str]
) -> dict[str, dict[str, str]]:
    """Per base (normalized reference), per platform, the image manifest digest it builds on.

    One manifest GET per distinct base, through ``client.map``, and never a blob:
    an index maps each platform to its child; a plain image manifest is recorded for
    every platform (its platform is only in its config blob). A base pinned by
    digest costs the same one GET, of that exact manifest. A platform an index
    lacks is a UserError naming base and platform.
    """
    wanted = [(platform, _platform_key(_parse_platform(platform))) for platform in platforms]
    refs = list(dict.fromkeys(base_reference(image) for image in images))

    def resolve(ref: ImageReference) -> dict[str, str]:
        manifest = client.get_manifest(ref)
        if manifest.media_type not in INDEX_TYPES:
            return {platform: manifest.digest for platform, _ in wanted}
        entries = [entry for entry in children(parse_manifest(manifest.content)) if entry.platform]
        found = {}
        for platform, key in wanted:
            match = next((e for e in entries if _platform_key(e.platform) == key), None)
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


def _platform_key(platform: Platform) -> tuple[str, str, str]:
    """os, architecture and variant as containerd compares them (arm64 is arm64/v8)."""
    os_name = platform.os.lower()
    architecture = platform.architecture.lower()
    variant = (platform.variant or "").lower()
    architecture = {"aarch64": "arm64", "x86_64": "amd64", "x86-64": "amd64"}.get(
        architecture, architecture
    )
    # Each architecture's default variant is the same as naming none.
    if variant == {"arm64": "v8", "amd64": "v1"}.get(architecture):
        variant = ""
    elif architecture == "arm" and not variant:
        variant = "v7"
    return os_name, architecture, variant


# -- the inputs and their id -----------------------------------------------------------


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

    def to_record(self) -> dict[str, Any]:
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
        return build_id(self)


def build_id(inputs: BuildInputs | Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of the inputs (or of their record)."""
    record = inputs.to_record() if isinstance(inputs, BuildInputs) else inputs
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


def gather_inputs(
    client: RegistryClient,
    context_dir: Path,
    build_args: Mapping[str, str],
    platforms: Sequence[str],
    labels: Mapping[str, str] | None = None,
) -> BuildInputs:
    """Everything at once: the context's bases, resolved in the registry, and its files."""
    dockerfile = Path(context_dir) / DOCKERFILE
    images = base_images(dockerfile.read_text(encoding="utf-8"), build_args, name=str(dockerfile))
    bases = resolve_bases(client, images, platforms)
    return inputs_for_context(context_dir, build_args, platforms, bases, labels)


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


def build_annotations(inputs: BuildInputs) -> dict[str, str]:
    """The annotations that carry the id and the inputs (none holds a comma or space)."""
    return {BUILD_ID_LABEL: build_id(inputs), BUILD_INPUTS_ANNOTATION: encode_inputs(inputs)}


def encode_inputs(inputs: BuildInputs | Mapping[str, Any]) -> str:
    """The record as one annotation value: ``;``-separated entries, names percent-encoded."""
    record = inputs.to_record() if isinstance(inputs, BuildInputs) else inputs
    entries = [f"v={record['schema']}", f"dockerfile={record['dockerfile']}"]
    entries += [f"file:{_name(path)}={d}" for path, d in sorted(record["context"].items())]
    entries += [f"arg:{_name(name)}={d}" for name, d in sorted(record["build_args"].items())]
    entries += [f"label:{_name(name)}={d}" for name, d in sorted(record["labels"].items())]
    entries.append("platforms=" + "+".join(_name(p) for p in record["platforms"]))
    for base, digests in sorted(record["bases"].items()):
        entries += [f"base:{_name(base)}@{_name(p)}={d}" for p, d in sorted(digests.items())]
    return ";".join(entries)


def decode_inputs(text: str) -> dict[str, Any]:
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
    return record


def recorded_inputs(annotations: Mapping[str, str]) -> dict[str, Any] | None:
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


def changed_inputs(old: Mapping[str, Any] | BuildInputs, new: BuildInputs) -> list[str]:
    """What differs between an earlier record (``to_record``/``decode_inputs``) and
    ``new``, one phrase per input, for a report: ``Dockerfile``, ``context file X``,
    ``build arg X``, ``label X``, ``platforms: a -> b``,
    ``base docker.io/library/python:3.12-slim linux/arm64: sha256:… -> sha256:…``."""
    before = old.to_record() if isinstance(old, BuildInputs) else old
    after = new.to_record()
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
