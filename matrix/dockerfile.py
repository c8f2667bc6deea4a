"""The base images a Dockerfile's ``FROM`` lines name, read as docker reads them.

Build ids (`matrix.buildid`) record each base's digest, and engines mark a base's
registry for plain HTTP; both ask this module, which knows Dockerfiles and
nothing of registries or builds.

* Only what docker itself offers a ``FROM`` line is used to expand it: ``ARG``
  declared before the first ``FROM`` (their defaults, or the build arg of the same
  name). A build arg that no such ``ARG`` declares does not reach ``FROM``, as in
  docker. The platform args BuildKit adds (``TARGETARCH``…) would name a different
  base per platform and are refused.
* The Dockerfile is read by dockerfile-parse (``DockerfileParser``: its ``structure``
  for instructions and lines, its ``parent_images`` for the expanded ``FROM``). matrix
  adds only what its answer lacks: stages and ``scratch`` are left out, heredoc bodies
  (which it reads as instructions) are skipped, and what it would read wrong is a
  UserError naming the line: a variable without a value (it would substitute
  nothing), ``${NAME:-x}`` and the other shell forms (it knows ``$NAME`` and
  ``${NAME}`` only), a variable inside an ``ARG`` default (it takes defaults as
  written), an unterminated quote, words after the image.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

from dockerfile_parse import DockerfileParser
from dockerfile_parse.parser import image_from
from dockerfile_parse.util import WordSplitter

from matrix.errors import InvalidReference, UserError
from matrix.reference import parse_reference

DOCKERFILE = "Dockerfile"
SCRATCH = "scratch"

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A ${ that is not ${NAME}: ${NAME:-x}, ${NAME%x}, an unterminated ${NAME...
_SUBSTITUTION_RE = re.compile(r"\$\{(?![A-Za-z0-9_]+\})")
_PLATFORM_FLAG_RE = re.compile(r"--platform=\S+", re.IGNORECASE)
# A word that opens a heredoc, as BuildKit reads it: [n]<<[-]NAME, NAME maybe quoted.
_HEREDOC_RE = re.compile(r"\d*<<(-?)([^<]+)")
_HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})
# BuildKit defines these in the global scope; each differs per platform.
_PLATFORM_ARGS = frozenset(
    f"{scope}{part}"
    for scope in ("BUILD", "TARGET")
    for part in ("PLATFORM", "OS", "ARCH", "VARIANT")
)


class _Where:
    """Names an instruction (an entry of ``DockerfileParser.structure``) in errors."""

    def __init__(self, name: str, entry: Mapping[str, Any]) -> None:
        self.name = name
        self.entry = entry

    def error(self, reason: str) -> UserError:
        entry = self.entry
        text = " ".join(f"{entry['instruction']} {entry['value']}".split())
        return UserError(f"{self.name} line {entry['startline'] + 1}: {text}: {reason}")


class _Lookups(dict):
    """An empty ``args`` for the library's WordSplitter that remembers each name asked
    for: the variables a word refers to, by the library's own quoting rules."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __contains__(self, name: object) -> bool:
        self.names.append(str(name))
        return False


def base_images(
    dockerfile: str, build_args: Mapping[str, str], *, name: str = DOCKERFILE
) -> list[str]:
    """The external images the ``FROM`` lines of ``dockerfile`` name, in order, once each.

    Variables are expanded as docker expands them in ``FROM``: from the ``ARG``
    declared before the first ``FROM`` (a build arg of the same name wins over the
    default). ``scratch`` and the names of earlier stages are not images. ``name``
    is what error messages call the file (a UserError names its line).
    """
    parser = DockerfileParser(
        fileobj=io.BytesIO(dockerfile.encode()), build_args=dict(build_args), env_replace=True
    )
    entries = parser.structure
    declared = _global_args(entries, build_args, name)
    in_heredoc = _heredoc_lines(entries, parser.lines)
    # One per FROM that names anything (heredoc lines included), in order.
    expanded = iter(parser.parent_images)
    stages: set[str] = set()
    images: list[str] = []
    for entry in entries:
        if entry["instruction"] != "FROM":
            continue
        image = next(expanded) if image_from(entry["value"])[0] is not None else ""
        if entry["startline"] in in_heredoc:
            continue
        where = _Where(name, entry)
        word, stage = _from(where)
        variables = _variables(word, declared, where)
        if not image:
            raise where.error("the image name expands to nothing")
        if image.lower() != SCRATCH and image.lower() not in stages and image not in images:
            try:
                parse_reference(image)
            except InvalidReference as error:
                hint = ""
                if "$" in image and variables:
                    hint = " (a variable's value holds a $: ARG defaults are not expanded)"
                raise where.error(f"{error}{hint}") from None
            images.append(image)
        if stage:
            stages.add(stage.lower())
    return images


def _global_args(
    entries: Sequence[Mapping[str, Any]], build_args: Mapping[str, str], name: str
) -> dict[str, bool]:
    """The ``ARG`` declared before the first ``FROM``, the only variables ``FROM`` sees,
    each with whether it has a value (a default, or a build arg of its name)."""
    declared: dict[str, bool] = {}
    for entry in entries:
        if entry["instruction"] == "FROM":
            break
        if entry["instruction"] != "ARG":
            continue
        where = _Where(name, entry)
        words = list(WordSplitter(entry["value"]).split(dequote=False))
        if not words:
            raise where.error("ARG names no variable")
        if len(words) > 1 and not all("=" in word for word in words):
            # The library reads `ARG A B` as A="B" (ENV's old form) and fails on `ARG A=1 B`.
            raise where.error("declare each variable without a default on its own ARG line")
        for word in words:
            variable, equals, _ = word.partition("=")
            if not _NAME_RE.fullmatch(variable):
                raise where.error(f"{variable!r} is not a valid ARG name")
            declared[variable] = bool(equals) or variable in build_args
    return declared


def _heredoc_lines(entries: Sequence[Mapping[str, Any]], lines: Sequence[str]) -> set[int]:
    """The lines (from 0) of heredoc bodies (``RUN <<EOF`` … ``EOF``), which the library
    reads as instructions. A heredoc is a word ``[n]<<[-]NAME`` as BuildKit reads it."""
    inside: set[int] = set()
    for entry in entries:
        if entry["instruction"] not in _HEREDOC_INSTRUCTIONS or entry["startline"] in inside:
            continue
        line = entry["endline"] + 1
        for word in WordSplitter(entry["value"]).split(dequote=False):
            match = _HEREDOC_RE.fullmatch(word)
            if not match:
                continue
            end = WordSplitter(match[2]).dequote()
            while line < len(lines):
                text = lines[line].rstrip()
                inside.add(line)
                line += 1
                if (text.lstrip("\t") if match[1] else text) == end:
                    break
    return inside


def _from(where: _Where) -> tuple[str, str | None]:
    """``FROM [--platform=P] image [AS name]``: the image as written, and the stage name.
    The library takes the first word as the image and ignores what follows it unless it
    is ``AS name``; docker refuses such lines, and so does this."""
    value = where.entry["value"]
    if _SUBSTITUTION_RE.search(value):
        raise where.error(
            "unsupported substitution or unterminated ${: FROM takes only $NAME and ${NAME}, "
            "not ${NAME:-default} and the like"
        )
    image, stage = image_from(value)
    words = list(WordSplitter(value).split(dequote=False))
    if words and _PLATFORM_FLAG_RE.fullmatch(words[0]):
        words.pop(0)
    if words and words[0].startswith("--"):
        raise where.error(f"unknown flag {words[0].partition('=')[0]} (FROM takes --platform=)")
    wanted = [image] if stage is None else [image, "AS", stage]
    if image is None or [w.upper() for w in words] != [w.upper() for w in wanted]:
        raise where.error("expected FROM [--platform=…] image [AS name]")
    return image, stage


def _variables(word: str, declared: Mapping[str, bool], where: _Where) -> list[str]:
    """The variables ``word`` refers to; a UserError for any without a value."""
    lookups = _Lookups()
    splitter = WordSplitter(word, args=lookups)
    splitter.dequote()
    if splitter.quotes:
        raise where.error(f"unterminated {splitter.quotes} quote")
    for variable in lookups.names:
        if not variable:
            raise where.error("a $ that names no variable")
        if not declared.get(variable):
            raise where.error(_unset(variable))
    return lookups.names


def _unset(name: str) -> str:
    if name in _PLATFORM_ARGS:
        return f"${name} differs per platform: matrix names one base image per FROM line"
    return (
        f"${name} has no value (declare it with an ARG before the first FROM, "
        "with a default or a build arg of that name)"
    )
