"""What every build engine takes and gives back, and the calls it makes.

An engine turns one ``BuildRequest`` (a rendered context and where it goes) into a
``BuildResult`` (what the registry now holds). Drivers express their work as a list
of ``Call`` objects: the same list is run for a build and printed for --dry-run, so
the dry run shows exactly what would run.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shlex
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from matrix.errors import UserError

# Build args whose name says they hold a credential are masked in everything shown.
_SECRET_NAME_RE = re.compile(r"(?i)(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_?KEY|AUTH)")
MASK = "***"
_ANNOTATION_RE = re.compile(r"[A-Za-z0-9._/-]+=[^,\"'\s\x00-\x1f]*")
LogSink = Callable[[str], None]


@dataclass(frozen=True)
class CacheSettings:
    """A registry cache: read from ``cache_from`` refs, write to ``cache_to`` (full refs)."""

    cache_from: tuple[str, ...]
    cache_to: str | None = None
    mode: str = "max"  # BuildKit's: max caches every stage, min only the final one


@dataclass(frozen=True)
class BuildRequest:
    key: str  # the ImageSpec key: prefect-python3.10-conda
    context: Path
    platforms: tuple[str, ...]
    # Full references (registry/repository:tag); empty with push_by_digest.
    tags: tuple[str, ...]
    # registry/repository the image goes to; push_by_digest names it in the output.
    repository: str
    labels: Mapping[str, str] = field(default_factory=dict)
    build_args: Mapping[str, str] = field(default_factory=dict)
    # OCI annotations of what is pushed: on the index and its manifests (buildx), on
    # each entry of the index (podman 4 cannot annotate the index itself).
    annotations: Mapping[str, str] = field(default_factory=dict)
    push: bool = False
    push_by_digest: bool = False
    # After the push, the one platform's image stays in the engine's local storage
    # under the pushed tags, to be run (podman; the default removes what it pushed).
    keep_local: bool = False
    cache: CacheSettings | None = None
    # Attach to each platform image (matrix.attest); readers keep them apart from platforms.
    provenance: bool = False
    sbom: bool = False
    pull: bool = True
    # Seconds since 1970 every timestamp of the image is set to (the config's
    # created, its history, the files in its layers): the same inputs then give the
    # same digest. None leaves the engine's clock in the image.
    source_date_epoch: int | None = None

    def __post_init__(self) -> None:
        if not self.platforms:
            raise UserError(f"{self.key}: no platform to build")
        if self.source_date_epoch is not None and self.source_date_epoch < 0:
            raise UserError(
                f"{self.key}: SOURCE_DATE_EPOCH must not be negative, got {self.source_date_epoch}"
            )
        if self.push_by_digest and len(self.platforms) != 1:
            raise UserError(
                f"{self.key}: --push-by-digest builds one platform at a time, got "
                f"{', '.join(self.platforms)} (pick one with --platform)"
            )
        if self.keep_local and len(self.platforms) != 1:
            raise UserError(
                f"{self.key}: --keep-local keeps one platform's image under the tags, got "
                f"{', '.join(self.platforms)} (pick one with --platform)"
            )
        if self.push and not self.push_by_digest and not self.tags:
            raise UserError(f"{self.key}: nothing to push: no tag")
        for name, value in self.annotations.items():
            # buildx joins --output fields with commas and no quoting.
            if not _ANNOTATION_RE.fullmatch(f"{name}={value}"):
                raise UserError(
                    f"{self.key}: annotation {name}={value!r} may not hold a comma, quote, "
                    "space or control character"
                )


@dataclass(frozen=True)
class BuildResult:
    key: str
    # What the registry reports for the pushed reference: the index digest for a
    # multi-platform build, the image manifest digest for push-by-digest. None when
    # nothing was pushed.
    digest: str | None = None
    media_type: str | None = None  # of what ``digest`` names, when the engine can tell
    # platform -> image manifest digest, when the engine can tell.
    platform_digests: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Call:
    """One python-on-whales call (``target`` = "buildx.build", ...) or raw argv ("run")."""

    target: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    # Environment of the command. python-on-whales' streaming builds take none, so it
    # is set in os.environ for as long as the call runs (calls run one at a time).
    env: Mapping[str, str] = field(default_factory=dict)

    def invoke(self, client: Any, on_line: LogSink | None = None) -> Any:
        """Run the call; with ``on_line``, the call streams and each line goes there."""
        with _environ(self.env):
            if self.target == "run":
                from python_on_whales.utils import run, stream_stdout_and_stderr

                if on_line is None:
                    return run(list(self.args[0]), **self.kwargs)
                # Both streams, as python-on-whales' streaming builds give them; a
                # failure raises the same DockerException, with the stderr it saw.
                for _, line in stream_stdout_and_stderr(list(self.args[0])):
                    on_line(line.decode(errors="replace"))
                return None
            method = functools.reduce(getattr, self.target.split("."), client)
            result = method(*self.args, **self.kwargs)
            if on_line is None:
                return result
            for line in result:
                on_line(line)
            return None

    def show(self, client_name: str) -> str:
        """The call as a person reads it, secrets masked."""
        env = [f"{name}={value}" for name, value in self.env.items()]
        if self.target == "run":
            return shlex.join([*env, *_masked_argv([str(word) for word in self.args[0]])])
        words = [repr(masked(a)) for a in self.args]
        words += [f"{name}={masked(value, name)!r}" for name, value in self.kwargs.items()]
        shown = f"{client_name}.{self.target}({', '.join(words)})"
        return f"{shown}  # env: {' '.join(env)}" if env else shown


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def masked(value: Any, name: str = "") -> Any:
    """``value`` with the values of secret-looking build args replaced by ***."""
    if name == "build_args" and isinstance(value, Mapping):
        return {k: MASK if _SECRET_NAME_RE.search(k) else v for k, v in value.items()}
    return value


def _masked_argv(argv: list[str]) -> list[str]:
    """``argv`` with the values of secret-looking ``--build-arg NAME=VALUE`` masked."""
    shown = list(argv)
    for i, word in enumerate(argv[1:], start=1):
        name, equals, _ = word.partition("=")
        if argv[i - 1] == "--build-arg" and equals and _SECRET_NAME_RE.search(name):
            shown[i] = f"{name}={MASK}"
    return shown


def stderr_lines(error: Exception) -> list[str]:
    """The non-blank stderr lines a python-on-whales DockerException carries."""
    text = getattr(error, "stderr", None) or ""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return [line for line in text.splitlines() if line.strip()]


class BuildFailed(Exception):
    """An engine command failed; carries the image key and the end of its log."""

    def __init__(self, key: str, message: str, log_tail: tuple[str, ...] = ()) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.log_tail = log_tail


# How many lines of a failed build's log a BuildFailed carries.
LOG_TAIL = 20


def stream_build(call: Call, client: Any, log: LogSink, tail: deque[str]) -> None:
    """Run a ``stream_logs=True`` build call, passing each line to ``log`` and ``tail``."""

    def each(line: str) -> None:
        line = line.rstrip("\n")
        tail.append(line)
        log(line)

    call.invoke(client, on_line=each)


class Engine(Protocol):
    name: str

    def require(self) -> None:
        """Refuse, before any work, an engine this machine cannot run (a UserError)."""
        ...

    def prepare_calls(self) -> list[Call]:
        """What ``prepare`` would run, once before the builds."""
        ...

    def prepare(self) -> None:
        """Get ready to build (a fresh builder, a work folder)."""
        ...

    def calls(self, request: BuildRequest) -> list[Call]:
        """Everything ``build`` would run for ``request``, in order."""
        ...

    def show(self, call: Call) -> str:
        """One call as --dry-run prints it."""
        ...

    def build(self, request: BuildRequest, log: LogSink) -> BuildResult:
        """Build (and push, if asked), streaming output lines to ``log``."""
        ...
