"""The settings of one run: typed records, resolved and checked before any work.

A command turns its command line into these records (the command line over the
environment over versions.toml) and hands them to one library call; nothing
below the command looks at argv or at the environment again. Each record checks
its own flag combinations when it is made, so a bad combination is refused
before anything is rendered, built or contacted. To add a setting, add a field
to the record it belongs to (and its flag to `matrix.cli.options`).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from matrix.errors import UserError

if TYPE_CHECKING:
    from packaging.version import Version

    from matrix.config import LoadedConfig
    from matrix.index import IndexFacts
    from matrix.plan import Plan
    from matrix.registry import RegistryClient, RegistryHost, RegistryHosts
    from matrix.render import ImageSources

ENGINES = ("buildx", "podman")


def _default_hosts() -> RegistryHosts:
    from matrix.registry.hosts import RegistryHosts

    return RegistryHosts()


@dataclass(frozen=True)
class Registries:
    """The registry a run writes to (or reads), the mirrors named on the command line,
    and the one table of host records (`matrix.registry.hosts`) every reader and
    writer of the run, the engines included, reaches a registry by."""

    target: RegistryHost
    named_mirrors: tuple[RegistryHost, ...] = ()
    hosts: RegistryHosts = field(default_factory=_default_hosts)
    # Whether the target is versions.toml's own registry: its mirrors then apply too.
    configured: bool = True

    def mirrors(self, plan: Plan) -> tuple[RegistryHost, ...]:
        """The line's mirrors (when the target is versions.toml's registry) and the named
        ones, without the target, each once."""
        # versions.toml's mirrors go with its registry: a run against another registry
        # (a local one, say) copies to nothing but the mirrors it names.
        configured = plan.mirrors if self.configured and plan.registry == self.target.host else ()
        hosts = dict.fromkeys([*configured, *(m.host for m in self.named_mirrors)])
        return tuple(self.hosts[host] for host in hosts if host != self.target.host)

    def client(self) -> RegistryClient:
        """The run's registry client, reaching every host by its record."""
        from matrix.registry import RegistryClient

        return RegistryClient(hosts=self.hosts)


def registries(
    loaded: LoadedConfig | None,
    registry: str | None,
    *,
    mirrors: Sequence[str] = (),
    insecure: Sequence[str] = (),
) -> Registries:
    """The target is ``registry`` (the command line), else versions.toml's ``registry``
    (docker.io unless it says otherwise): the one place that default is decided."""
    from matrix.registry import RegistryHosts, check_registry_host

    for flag, hosts in (("--registry", [registry] if registry else []), ("--mirror", mirrors)):
        for host in hosts:
            try:
                check_registry_host(host)
            except ValueError as error:
                raise UserError(f"{flag}: {error}") from None
    default = loaded.config.registry if loaded is not None else "docker.io"
    table = RegistryHosts.of(insecure=insecure)
    return Registries(
        target=table[registry or default],
        named_mirrors=tuple(table[host] for host in mirrors),
        hosts=table,
        configured=registry is None or registry == default,
    )


@dataclass(frozen=True)
class ReleaseSelection:
    """Which release to plan, and which of its images."""

    version: str
    commit: str | None = None
    pythons: tuple[str, ...] = ()
    flavors: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    branch: str | None = None
    known: tuple[Version, ...] | None = None  # the releases that exist, when given
    latest: bool | None = None  # --latest / --no-latest

    @property
    def knows_newest(self) -> bool:
        """Whether the command line settled "newest in line" (else a registry's tags do)."""
        return self.known is not None or self.latest is not None

    def plan(
        self,
        loaded: LoadedConfig,
        *,
        known: Sequence[Version] | None = None,
        index: IndexFacts | None = None,
    ) -> Plan:
        """The release planned with ``loaded``; ``known`` stands in for ``self.known``;
        ``index`` is what the package index says of the release, when it was read."""
        from matrix.plan import plan_release

        return plan_release(
            loaded,
            self.version,
            commit=self.commit,
            known=known if known is not None else self.known,
            latest=self.latest,
            pythons=self.pythons,
            flavors=self.flavors,
            images=self.images,
            branch=self.branch,
            index=index,
        )


def read_known_releases(path: str | None) -> tuple[Version, ...] | None:
    """The versions in a --releases file, or None when none was given."""
    if path is None:
        return None
    from matrix.versions import parse_known_releases

    try:
        with open(path, encoding="utf-8") as handle:
            return tuple(parse_known_releases(handle, source=path))
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise UserError(f"{path}: cannot read the releases file: {reason}") from None


@dataclass(frozen=True)
class BuildSettings:
    """How images are built and pushed."""

    engine: str = "buildx"
    workdir: Path = Path(".matrix")  # rendered contexts and the engine's scratch files
    builder: str | None = None
    create_builder: bool = False
    platforms: tuple[str, ...] = ()  # only these of each image's
    push: bool = False
    push_by_digest: bool = False
    digests_out: Path | None = None
    keep_local: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    cache_repository: str | None = None
    cache_mode: str = "max"
    # None: attached to every image that is pushed (a security reviewer's default);
    # True or False: as the command line says.
    provenance: bool | None = None
    sbom: bool | None = None
    keep_going: bool = False
    source_date_epoch: int | None = None  # $SOURCE_DATE_EPOCH
    # Where an image's bytes come from, resolved when the command starts (image_sources).
    sources: ImageSources | None = None

    @property
    def attest_provenance(self) -> bool:
        return self.push or self.push_by_digest if self.provenance is None else self.provenance

    @property
    def attest_sbom(self) -> bool:
        return self.push or self.push_by_digest if self.sbom is None else self.sbom

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise UserError(f"--engine {self.engine}: expected one of {', '.join(ENGINES)}")
        if self.digests_out and not self.push_by_digest:
            raise UserError("--digests-out records the digests of --push-by-digest; add it")
        if self.digests_out and self.digests_out.exists() and not self.digests_out.is_dir():
            raise UserError(f"--digests-out {self.digests_out}: not a folder")
        if self.keep_local and (not self.push or self.push_by_digest):
            raise UserError("--keep-local keeps the image --push pushed to its tags: add --push")
        if self.keep_local and self.engine != "podman":
            raise UserError(
                "--keep-local is for --engine podman: buildx pushes from its builder, "
                "so pull the pushed tag to run it"
            )
        if (self.builder or self.create_builder) and self.engine != "buildx":
            raise UserError("--builder and --create-builder are for --engine buildx")

    @property
    def image_sources(self) -> ImageSources:
        if self.sources is None:
            raise AssertionError("the image sources are resolved when the command starts")
        return self.sources


def image_sources(
    loaded: LoadedConfig,
    *,
    index_url: str | None = None,
    base_mirror: Sequence[str] = (),
    dist: str | None = None,
    re_resolve: bool = False,
    wait_for_index: float = 0.0,
    insecure: Collection[str] = (),
) -> ImageSources:
    """The package index, base mirrors and dist: flag over environment over
    versions.toml (``loaded``); ``insecure``: mirrors named plain-HTTP."""
    from matrix.engines.mirrors import base_mirrors
    from matrix.index import index_from
    from matrix.render import ImageSources

    if wait_for_index < 0:
        raise UserError("--wait-for-index: seconds must not be negative")
    return ImageSources(
        index=index_from(index_url, os.environ, loaded.config.index_url),
        base_mirrors=base_mirrors(base_mirror, os.environ, loaded.config.base_mirrors, insecure),
        dist=dist,
        re_resolve=re_resolve,
        wait_for_index=wait_for_index,
    )


def source_date_epoch(environ: Mapping[str, str] | None = None) -> int | None:
    from matrix.render import source_date_epoch_from

    return source_date_epoch_from(os.environ if environ is None else environ)


def parse_labels(pairs: Sequence[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise UserError(f"--label {pair!r}: expected KEY=VALUE")
        labels[name] = value
    return labels


@dataclass(frozen=True)
class Policy:
    """What a publish may change besides creating what is missing."""

    build: bool = True  # put missing images under their full tags (promote may not)
    refresh: bool = False  # rebuild images whose build inputs changed
    force: bool = False  # replace full and sha tags that name other content
    only_following: bool = False  # move only tags that named an earlier build (refresh)


PUBLISH = Policy()
PROMOTE = Policy(build=False)
REFRESH = Policy(refresh=True, only_following=True)


@dataclass(frozen=True)
class PublishSettings:
    """One publish, promote or refresh run."""

    registries: Registries
    policy: Policy = PUBLISH
    build: BuildSettings = BuildSettings()
    digests: Path | None = None  # merge the build jobs' digests instead of building
    dry_run: bool = False
    yes: bool = False  # write without asking
    report: Path | None = None
    operator: str = ""  # who runs it, for the record of a rollback (matrix.publish.holds)

    def __post_init__(self) -> None:
        check_output_file(self.report, "--report")
        if self.digests is not None and not self.digests.is_dir():
            raise UserError(f"--digests {self.digests}: not a directory")


def check_output_file(path: Path | None, flag: str) -> None:
    """Refuse, before any work, a file that could not be written at the end."""
    if path is None:
        return
    folder = path.absolute().parent
    if path.is_dir() or not folder.is_dir():
        raise UserError(f"{flag} {path}: cannot write a file there (no such folder, or a folder)")
