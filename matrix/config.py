"""versions.toml: schema, loading, and the facts in force for one release.

The file is validated by pydantic; any problem becomes one ConfigError line that
names the file, the line, the key, the value and what was expected.
"""

from __future__ import annotations

import bisect
import itertools
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from matrix.data import find_config
from matrix.errors import ConfigError, InvalidReference, PlanError, VersionError
from matrix.reference import check_registry_host, parse_reference
from matrix.versions import parse_version

_BUILD_ARG_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Build args reach Dockerfile ARG lines and pip command lines: no newline, quote,
# `$`, `;`, `&`, `|`, backtick or other shell syntax can get through.
_BUILD_ARG_VALUE_RE = re.compile(r"[A-Za-z0-9_.,:=<>!~\[\]/+@ -]*")
_SUFFIX_RE = re.compile(r"(?:-[a-z0-9]+)?")


def _matching(pattern: str, expected: str):
    """A validator: the whole value matches ``pattern``, else 'expected ..., got ...'."""
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"expected {expected}, got {value!r}")
        return value

    return check


def _build_args(value: dict[str, str]) -> dict[str, str]:
    for name, arg in value.items():
        if not _BUILD_ARG_NAME_RE.fullmatch(name):
            raise ValueError(f"build arg name {name!r} is not a valid ARG name")
        if not _BUILD_ARG_VALUE_RE.fullmatch(arg):
            raise ValueError(
                f"build arg {name}={arg!r} has a character outside letters, digits, "
                "spaces and _.,:=<>!~[]/+@-"
            )
    return value


def _repository(value: str) -> str:
    try:
        parsed = parse_reference(f"registry.invalid/{value}")
    except InvalidReference:
        parsed = None
    if parsed is None or parsed.repository != value or parsed.tag or parsed.digest:
        raise ValueError(f"expected a repository path like 'prefecthq/prefect', got {value!r}")
    return value


def registry_host(value: str) -> str:
    """``value`` if it is a registry host[:port] as image references name one."""
    return check_registry_host(value)


Python = Annotated[
    str, AfterValidator(_matching(r"3\.\d{1,2}", "a Python minor version like '3.10'"))
]
Platform = Annotated[
    str,
    AfterValidator(
        _matching(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?", "a platform like 'linux/amd64'")
    ),
]
BuildArgs = Annotated[dict[str, str], AfterValidator(_build_args)]
Repository = Annotated[str, AfterValidator(_repository)]
Template = Annotated[
    str, AfterValidator(_matching(r"[A-Za-z0-9_.-]+\.j2", "a template file name ending in .j2"))
]
RegistryHost = Annotated[str, AfterValidator(registry_host)]
DebPackage = Annotated[
    str,
    AfterValidator(_matching(r"[a-z0-9][a-z0-9+.-]+", "a Debian package name like 'git'")),
]
Extras = Annotated[
    str,
    AfterValidator(_matching(r"(?:\[[a-z0-9][a-z0-9,-]*\])?", "extras like '[redis,otel]' or ''")),
]
PrereleaseDevTags = Literal["none", "dev-repository", "release-repository"]
UvVersion = Annotated[
    str, AfterValidator(_matching(r"\d+\.\d+\.\d+", "a uv release like '0.12.5'"))
]


def _requires_python(value: str) -> str:
    try:
        SpecifierSet(value)
    except InvalidSpecifier:
        raise ValueError(f"expected a Requires-Python like '>=3.11,<3.16', got {value!r}") from None
    return value


def _base_image(value: str) -> str:
    try:
        parsed = parse_reference(value)
    except InvalidReference:
        parsed = None
    # Named in full with its tag, so the base is what the file says and nothing else.
    if parsed is None or not parsed.tag or not value.startswith(f"{parsed.registry}/"):
        raise ValueError(
            f"expected an image named in full with its tag, like "
            f"'docker.io/continuumio/miniconda3:26.5.3', got {value!r}"
        )
    return value


def _release(value: str) -> str:
    try:
        parse_version(value)
    except VersionError as error:
        raise ValueError(str(error)) from None
    return value


RequiresPython = Annotated[str, AfterValidator(_requires_python)]
BaseImage = Annotated[str, AfterValidator(_base_image)]
Release = Annotated[str, AfterValidator(_release)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageConfig(_Strict):
    repository: Repository
    dev_repository: Repository
    source: str
    flavors: list[str] = Field(min_length=1)
    template: Template | None = None
    # The distribution its images install; each cell of such an image is locked.
    package: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    # Whether the line's default extras apply (prefect-client has none of prefect's).
    extras: bool = True
    # apt packages in place of the line's (the client image needs no compilers).
    system_packages: list[DebPackage] | None = None
    # Releases whose `package` the package index does not have: no image of them can
    # install it, so none is planned (what the index says wins when a command reads it).
    not_on_index: list[Release] = []


class ContentsConfig(_Strict):
    """What a line's images hold besides Prefect; keys a line leaves out come from
    [defaults.contents], then from ``Contents``' own defaults."""

    system_packages: list[DebPackage] | None = None  # apt packages of the final image
    uv: bool | None = None  # uv in the image (UV_SYSTEM_PYTHON=1, UV_LINK_MODE=copy)
    extra_installer: Literal["pip", "uv"] | None = None  # EXTRA_PIP_PACKAGES at start
    extras: Extras | None = None  # PREFECT_EXTRAS of a flavor that sets none
    uv_version: UvVersion | None = None  # the uv release the image carries, when pinned
    apt_upgrade: bool | None = None  # `apt-get upgrade` of the base before the packages
    conda_base: BaseImage | None = None  # the miniconda image the conda stage starts from


@dataclass(frozen=True)
class Contents:
    """The resolved contents of one line's images (see ``ContentsConfig``)."""

    system_packages: tuple[str, ...] = ("tini", "build-essential", "git")
    uv: bool = False
    extra_installer: str = "pip"
    extras: str = ""
    uv_version: str | None = None
    apt_upgrade: bool = False
    conda_base: str = "docker.io/continuumio/miniconda3:24.7.1-0"

    @property
    def uv_requirement(self) -> str:
        """uv as the lock installs it: the line's pin, else as of the release."""
        return f"uv=={self.uv_version}" if self.uv_version else "uv"

    def merged(self, given: ContentsConfig | None) -> Contents:
        """These contents with what ``given`` sets."""
        if given is None:
            return self
        changes = {name: value for name, value in given if value is not None}
        if "system_packages" in changes:
            changes["system_packages"] = tuple(changes["system_packages"])
        return replace(self, **changes)


class FlavorConfig(_Strict):
    suffix: str
    template: Template
    build_args: BuildArgs = {}

    @field_validator("suffix")
    @classmethod
    def _suffix(cls, value: str) -> str:
        if not _SUFFIX_RE.fullmatch(value):
            raise ValueError(f"expected '' or a suffix like '-conda', got {value!r}")
        return value


class LineSettings(_Strict):
    """Settings a [[lines]] entry may give and [defaults] may supply."""

    platforms: list[Platform] | None = Field(default=None, min_length=1)
    release_sha_tags: bool | None = None
    sha_length: int | None = Field(default=None, ge=7, le=40)
    prerelease_dev_tags: PrereleaseDevTags | None = None
    images: list[str] | None = Field(default=None, min_length=1)
    latest_python: Python | None = None
    python: dict[str, list[Python]] | None = None
    # The Requires-Python the line's releases declare on the package index: no image of
    # a Python it excludes is planned, since none could install the release.
    requires_python: RequiresPython | None = None
    build_args: dict[str, BuildArgs] | None = None
    # Registries that get a copy of every image of the line, besides `registry`.
    mirrors: list[RegistryHost] | None = None
    contents: ContentsConfig | None = None


class LineConfig(LineSettings):
    versions: str

    @field_validator("versions")
    @classmethod
    def _versions(cls, value: str) -> str:
        parse_span(value)
        return value

    @property
    def span(self) -> Span:
        return parse_span(self.versions)


@dataclass(frozen=True)
class Span:
    """The releases of one [[lines]] entry: ``low <= release < high`` in PEP 440 order."""

    low: Version
    high: Version
    low_text: str  # the bounds as written, for messages
    high_text: str | None  # None: open-ended, the rest of the major

    @property
    def open_ended(self) -> bool:
        return self.high_text is None

    def written_for(self, release: Version) -> bool:
        """Whether the entry's facts were written for ``release``: a closed entry's for
        all it covers, an open-ended one's for the minor it begins in. A later minor
        is covered only by extension: planned with the newest facts, a guess."""
        point = release_point(release)
        if point not in self:
            return False
        return not self.open_ended or (point.major, point.minor) <= (
            self.low.major,
            self.low.minor,
        )

    def __contains__(self, release: Version) -> bool:
        return self.low <= release_point(release) < self.high


def parse_span(text: str) -> Span:
    """``">=2.10.20, <2.12.0"``, ``">=3.2.15.dev5, <3.3.1"`` or ``">=3.6.13.dev2"``.

    A plain ``X.Y.Z`` bound stands for ``X.Y.Z.dev0``, so X.Y.Z's pre-releases belong
    to the entry it begins; a bound naming a pre-release (or a dev or post release)
    is that exact version. Without an upper bound the entry is open-ended: it covers
    the rest of its major, so a new minor is planned with the newest facts.
    """
    expected = "expected '>=X.Y.Z, <X.Y.Z' or '>=X.Y.Z' (bounds may name pre-releases)"
    try:
        specifiers = [(s.operator, s.version) for s in SpecifierSet(text)]
    except InvalidSpecifier:
        raise ValueError(f"{expected}, got {text!r}") from None
    written = dict(specifiers)
    if sorted(operator for operator, _ in specifiers) not in ([">="], ["<", ">="]):
        raise ValueError(f"{expected}, got {text!r}")
    try:
        low = _bound(written[">="])
        high = _bound(written["<"]) if "<" in written else None
    except VersionError as error:
        raise ValueError(f"{expected}: {error}") from None
    if high is None:
        # The next major begins at its first possible version, X+1.0.0.dev0.
        return Span(low, Version(f"{low.major + 1}.0.0.dev0"), written[">="], None)
    if not low < high:
        raise ValueError(f"empty range {text!r}: the lower bound must be below the upper")
    return Span(low, high, written[">="], written["<"])


def _bound(text: str) -> Version:
    version = parse_version(text)  # SpecifierSet already refused a local segment
    if version.is_prerelease or version.is_postrelease:
        return version
    return Version(f"{version.base_version}.dev0")


def release_point(version: Version) -> Version:
    """Where ``version`` falls among [[lines]] bounds: a dev build (``+local``) sits
    with the release it was built from."""
    return Version(version.public) if version.local is not None else version


class Config(_Strict):
    schema_version: Literal[1] = Field(alias="schema")
    registry: RegistryHost
    templates: str = "dockerfiles"
    # Where locks resolve and builds install from, and where base images are pulled
    # from instead ("docker.io=mirror:5000"); the command line and environment win.
    index_url: str | None = None
    base_mirrors: list[str] = []
    # The release lines a refresh rebuilds on a patched base unless told --lines: X.Y
    # is that minor's newest final release, X.x the newest minor of major X.
    supported: list[str] = []
    defaults: LineSettings = LineSettings()
    images: dict[str, ImageConfig] = Field(min_length=1)
    flavors: dict[str, FlavorConfig] = Field(min_length=1)
    lines: list[LineConfig] = Field(min_length=1)

    @field_validator("supported")
    @classmethod
    def _supported(cls, value: list[str]) -> list[str]:
        from matrix.versions import parse_lines

        parse_lines(",".join(value))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        for name, image in self.images.items():
            for flavor in image.flavors:
                if flavor not in self.flavors:
                    raise ValueError(f"image {name!r} names flavor {flavor!r}, not in [flavors]")
        return self


@dataclass(frozen=True)
class LineFacts:
    """Everything versions.toml says about the releases of one [[lines]] entry."""

    versions: str
    platforms: tuple[str, ...]
    release_sha_tags: bool
    sha_length: int
    prerelease_dev_tags: PrereleaseDevTags
    images: tuple[str, ...]
    latest_python: str
    python: dict[str, tuple[str, ...]]  # flavor -> Pythons, in file order
    build_args: dict[str, dict[str, str]]  # flavor -> args this line sets
    span: Span
    mirrors: tuple[str, ...] = ()  # registries that get copies, besides `registry`
    contents: Contents = field(default_factory=Contents)
    requires_python: SpecifierSet | None = None  # None: versions.toml records none


@dataclass(frozen=True)
class LoadedConfig:
    """A validated versions.toml and where it came from."""

    config: Config
    source: str  # shown in messages
    templates_dir: Path
    facts: tuple[LineFacts, ...]  # ordered by their spans, oldest first
    origin: str = ""  # why this file: "--config", "the current folder", "packaged with matrix"
    _lows: tuple[Version, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lows", tuple(facts.span.low for facts in self.facts))

    @property
    def described(self) -> str:
        """The file and why it was chosen, for a plan's header."""
        return f"{self.source} ({self.origin})" if self.origin else self.source

    def covers(self, version: Version) -> bool:
        """Whether a [[lines]] entry covers ``version``."""
        try:
            self.facts_for(version)
        except PlanError:
            return False
        return True

    def facts_for(self, version: Version) -> LineFacts:
        point = release_point(version)
        index = bisect.bisect_right(self._lows, point) - 1
        if index >= 0 and point < self.facts[index].span.high:
            return self.facts[index]
        majors = {facts.span.low.major for facts in self.facts}
        unknown = "" if version.major in majors else f": major {version.major} has no entry"
        raise PlanError(
            f"no [[lines]] entry of {self.source} covers {version}{unknown} "
            f"(it covers {_describe_coverage(self.facts)})"
        )


def _describe_coverage(facts: tuple[LineFacts, ...]) -> str:
    """``2.0.0 and the rest of 2.x and 3.x``, or ``2.0.0 up to 2.12.0 (excluded)``."""
    runs: list[list[Span]] = []
    for span in (f.span for f in facts):
        if runs and runs[-1][-1].high == span.low:
            runs[-1].append(span)
        else:
            runs.append([span])
    described = []
    for run in runs:
        first, last = run[0], run[-1]
        if last.open_ended:
            majors = sorted({s.low.major for s in run if s.open_ended})
            rest = " and ".join(f"{major}.x" for major in majors)
            described.append(f"{first.low_text} and the rest of {rest}")
        else:
            described.append(f"{first.low_text} up to {last.high_text} (excluded)")
    return ", ".join(described)


def _resolve(config: Config, line: LineConfig) -> LineFacts:
    merged: dict[str, Any] = {}
    for name in LineSettings.model_fields:
        if name == "contents":
            continue  # merged key by key below
        value = getattr(line, name)
        merged[name] = value if value is not None else getattr(config.defaults, name)
        if merged[name] is None and name == "build_args":
            merged[name] = {}  # the flavors' own build args are enough
        elif merged[name] is None and name == "mirrors":
            merged[name] = []
        elif merged[name] is None and name == "requires_python":
            continue
        elif merged[name] is None:
            raise ValueError(f"no {name!r}, and [defaults] gives none")
    for image in merged["images"]:
        if image not in config.images:
            raise ValueError(f"image {image!r} is not in [images]")
    for flavor in list(merged["python"]) + list(merged["build_args"]):
        if flavor not in config.flavors:
            raise ValueError(f"flavor {flavor!r} is not in [flavors]")
    for flavor, pythons in merged["python"].items():
        if len(set(pythons)) != len(pythons):
            raise ValueError(f"python.{flavor} lists a version twice")
    latest = merged["latest_python"]
    if latest not in merged["python"].get("standard", ()):
        raise ValueError(f"latest_python {latest!r} is not in python.standard")
    return LineFacts(
        versions=line.versions,
        platforms=tuple(merged["platforms"]),
        release_sha_tags=merged["release_sha_tags"],
        sha_length=merged["sha_length"],
        prerelease_dev_tags=merged["prerelease_dev_tags"],
        images=tuple(merged["images"]),
        latest_python=latest,
        python={flavor: tuple(pythons) for flavor, pythons in merged["python"].items()},
        build_args=dict(merged["build_args"]),
        span=line.span,
        mirrors=tuple(merged["mirrors"]),
        contents=Contents().merged(config.defaults.contents).merged(line.contents),
        requires_python=SpecifierSet(merged["requires_python"])
        if merged["requires_python"]
        else None,
    )


def load_config(path: str | Path | None = None) -> LoadedConfig:
    """Load versions.toml from ``path`` (``--config``), else the current folder's, else
    the one packaged with matrix (see ``matrix.data.find_config``)."""
    path, why = find_config(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ConfigError(f"{path}: cannot read the config: {reason}") from None
    loaded = parse_config(text, source=str(path), base_dir=path.parent)
    return replace(loaded, origin=why)


def parse_config(text: str, source: str, base_dir: Path) -> LoadedConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML: {error}") from None
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, text, source)) from None

    def row(index: int) -> int | None:
        return _locate(text, ("lines", index, "versions"))

    resolved = []
    for index, line in enumerate(config.lines):
        try:
            resolved.append((index, _resolve(config, line)))
        except ValueError as error:
            where = f"{source}:{row(index)}: lines[{index}] ({line.versions})"
            raise ConfigError(f"{where}: {error}") from None
    resolved.sort(key=lambda pair: pair[1].span.low)
    for (i, before), (j, after) in itertools.pairwise(resolved):
        if before.span.high > after.span.low:
            raise ConfigError(
                f"{source}:{row(i)}: lines[{i}] ({before.versions}) overlaps "
                f"lines[{j}] ({after.versions}) at line {row(j)}"
            )
    facts = tuple(facts for _, facts in resolved)
    return LoadedConfig(config, source, base_dir / config.templates, facts)


def _describe(error: ValidationError, text: str, source: str) -> str:
    first = error.errors()[0]
    loc = tuple(first["loc"])
    key = _format_loc(loc)
    message = first["msg"].removeprefix("Value error, ")
    line = _locate(text, loc)
    where = f"{source}:{line}" if line else source
    more = error.error_count() - 1
    tail = f" (+{more} more {'error' if more == 1 else 'errors'})" if more else ""
    if first["type"] in ("missing", "value_error") and not key:
        return f"{where}: {message}{tail}"
    if first["type"] == "missing":
        return f"{where}: {key}: required key is missing{tail}"
    value = first.get("input")
    got = f"got {value!r}"
    shown = "" if isinstance(value, dict | list) or got in message else f" ({got})"
    return f"{where}: {key}: {message}{shown}{tail}"


def _format_loc(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts)


_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"]+)\s*\]\]?")


def _locate(text: str, loc: tuple[Any, ...]) -> int | None:
    """Best-effort 1-based line of the key at ``loc``, for error messages.

    tomllib keeps no positions, so this finds the table header the key lives under
    (counting ``[[lines]]`` occurrences for list indexes) and then the key's line.
    """
    rows = text.splitlines()
    headers = []
    for number, row in enumerate(rows):
        match = _HEADER_RE.match(row)
        if match:
            headers.append((number, match.group(2).replace('"', ""), match.group(1) == "[["))
    start, end, rest = 0, len(rows), [str(p) for p in loc if not isinstance(p, int)]
    if len(loc) >= 2 and isinstance(loc[1], int):
        occurrences = [n for n, name, array in headers if array and name == loc[0]]
        if loc[1] < len(occurrences):
            start = occurrences[loc[1]]
            later = [
                n
                for n, name, array in headers
                if n > start and (array or not name.startswith(f"{loc[0]}."))
            ]
            end = later[0] if later else len(rows)
            rest = [str(p) for p in loc[2:] if not isinstance(p, int)]
    else:
        for size in range(len(rest), 0, -1):
            dotted = ".".join(rest[:size])
            found = [n for n, name, _ in headers if name == dotted]
            if found:
                start = found[0]
                end = next((n for n, _, _ in headers if n > start), len(rows))
                rest = rest[size:]
                break
    for key in rest:
        pattern = re.compile(rf"^\s*(?:[\w\-\"]+\.)*\"?{re.escape(key)}\"?\s*(?:=|\.)")
        hit = next((n for n in range(start, end) if pattern.match(rows[n])), None)
        if hit is None:
            break
        start = hit
    return start + 1 if rows else None
