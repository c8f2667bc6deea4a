"""Options several subcommands share, defined once, and how they become settings."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matrix import settings
from matrix.errors import UserError
from matrix.settings import (
    ENGINES,
    BuildSettings,
    PublishSettings,
    Registries,
    ReleaseSelection,
    read_known_releases,
)

if TYPE_CHECKING:
    from matrix.config import LoadedConfig
    from matrix.render import ImageSources

FORMATS = ("table", "json", "github")


def add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="versions.toml to use (default: ./versions.toml when the current folder has "
        "one, else the one packaged with matrix)",
    )


def add_release_selection(parser: argparse.ArgumentParser) -> None:
    """--version and the filters that pick images out of a release."""
    parser.add_argument(
        "--version",
        required=True,
        metavar="V",
        help="Prefect version (PEP 440; a leading v is accepted): 2.11.5, 3.0.0rc1, "
        "2.6.9.post1, or a dev build such as 2.11.5+12.gabc1234",
    )
    parser.add_argument(
        "--sha",
        metavar="COMMIT",
        help="the release's git commit (7-40 hex); adds sha-<commit>-pythonX.Y tags",
    )
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="X.Y",
        help="only this Python version (repeatable)",
    )
    parser.add_argument(
        "--flavor",
        action="append",
        default=[],
        metavar="NAME",
        help="only this flavor: standard, conda, kubernetes (repeatable)",
    )
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="NAME",
        help="only this image of versions.toml: prefect, prefect-client (repeatable)",
    )
    parser.add_argument(
        "--branch",
        metavar="NAME",
        help="dev builds only: also tag <branch>-pythonX.Y in the dev repository",
    )
    newest = parser.add_argument_group(
        "newest in line",
        "Minor, major and N-latest tags move only for the newest final release of their "
        "line. Tell matrix which releases exist; with none, it assumes this one is newest "
        "and says so.",
    )
    newest.add_argument(
        "--releases",
        metavar="FILE",
        help="known releases, one version per line ('#' comments allowed)",
    )
    choice = newest.add_mutually_exclusive_group()
    choice.add_argument(
        "--latest",
        dest="latest",
        action="store_true",
        default=None,
        help="treat this release as the newest of its major: move major and N-latest tags",
    )
    choice.add_argument(
        "--no-latest",
        dest="latest",
        action="store_false",
        help="never move the major and N-latest tags",
    )


def add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table for people (default), json for programs, github for a GitHub Actions "
        "matrix ($GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY)",
    )


def add_result_format(parser: argparse.ArgumentParser) -> None:
    """--format of the commands that report: the shapes are in README.md."""
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="table for people (default); json puts the result on stdout as one JSON "
        "document for programs (progress and errors stay on stderr)",
    )


def add_writing_options(parser: argparse.ArgumentParser, changes: str) -> None:
    """--dry-run and --yes of every command that moves or overwrites tags."""
    parser.add_argument(
        "--dry-run", action="store_true", help=f"print the {changes}, change nothing"
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="write without asking (CI); without it matrix asks at a terminal and refuses "
        "elsewhere",
    )


def add_report(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--report",
        metavar="FILE",
        help=f"write {what} as JSON; written when the run fails too, with its error",
    )


def add_registry_options(parser: argparse.ArgumentParser) -> None:
    """How to reach registries; credentials come from docker's config or the environment."""
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        type=_registry_host,
        help="talk plain HTTP to this registry (repeatable; loopback registries always are)",
    )


def _registry_host(text: str) -> str:
    from matrix.registry import check_registry_host

    try:
        return check_registry_host(text)
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_registry(parser: argparse.ArgumentParser) -> None:
    """--registry of a command that writes to one registry and copies to no mirror."""
    parser.add_argument(
        "--registry",
        metavar="HOST[:PORT]",
        help="registry the images go to (default: versions.toml's `registry`, docker.io)",
    )
    parser.set_defaults(mirror=[])


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """The release, its filters, the config, and the registries to compare with."""
    add_release_selection(parser)
    add_config(parser)
    add_registries(parser)


def add_registries(parser: argparse.ArgumentParser) -> None:
    """--registry, --mirror and how to reach them."""
    parser.add_argument(
        "--registry",
        metavar="HOST[:PORT]",
        help="registry holding the images (default: versions.toml's `registry`, docker.io)",
    )
    parser.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="also a registry holding copies (repeatable); versions.toml's `mirrors` are "
        "added when --registry is its own registry",
    )
    add_registry_options(parser)


def add_rebuild_options(parser: argparse.ArgumentParser) -> None:
    """How publish and refresh build what is missing, and whether they may write."""
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="buildx",
        help="what builds the missing images (default buildx; podman for local use)",
    )
    parser.add_argument(
        "--workdir",
        metavar="DIR",
        default=".matrix",
        help="where build contexts are rendered (default .matrix)",
    )
    add_writing_options(parser, "changes")
    add_result_format(parser)


def add_image_sources(parser: argparse.ArgumentParser, *, dist: bool = True) -> None:
    """Where images' bytes come from: the package index, a dist, base mirrors."""
    group = parser.add_argument_group(
        "image sources",
        "Each image installs a lock: its exact dependencies with hashes, resolved with uv "
        "as of the date on its first build, else the release's upload to the index.",
    )
    group.add_argument(
        "--base-mirror",
        action="append",
        default=[],
        metavar="REGISTRY=HOST[:PORT]",
        help="pull base images of REGISTRY (docker.io) from this mirror instead, for build "
        "ids and the engine alike (repeatable; also MATRIX_BASE_MIRRORS, versions.toml's "
        "base_mirrors); a loopback mirror speaks plain HTTP",
    )
    group.add_argument(
        "--index-url",
        metavar="URL",
        help="package index to lock against and install from (default: MATRIX_INDEX_URL, "
        "else versions.toml's index_url, else https://pypi.org/simple); credentials in it "
        "are never shown",
    )
    if not dist:
        parser.set_defaults(dist=None)  # refresh rebuilds from the index alone
    else:
        group.add_argument(
            "--dist",
            metavar="PATH",
            help="install this wheel or sdist of prefect / prefect-client (or the one in this "
            "folder) instead of the index's; its version must be the planned one (dev builds "
            "need it)",
        )
    group.add_argument(
        "--re-resolve",
        action="store_true",
        help="resolve the locks again as of now, not as of the release (changes the images)",
    )
    group.add_argument(
        "--wait-for-index",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to this long for a release the package index does not list yet "
        "(default: fail at once)",
    )


# -- from the command line to the settings records -------------------------------------


def release_selection(args: argparse.Namespace) -> ReleaseSelection:
    return ReleaseSelection(
        version=args.version,
        commit=args.sha,
        pythons=tuple(args.python),
        flavors=tuple(args.flavor),
        images=tuple(args.image),
        branch=args.branch,
        known=read_known_releases(args.releases),
        latest=args.latest,
    )


def registries(args: argparse.Namespace, loaded: LoadedConfig | None) -> Registries:
    """The target and mirrors of a command with --registry (and --mirror, where it has
    it), and the plain-HTTP hosts of --insecure-registry."""
    return settings.registries(
        loaded, args.registry, mirrors=args.mirror, insecure=args.insecure_registry
    )


def any_registry(args: argparse.Namespace) -> Registries:
    """The host records of a command that names its registries in image references
    (tags, retag): --insecure-registry alone."""
    return settings.registries(None, None, insecure=args.insecure_registry)


def image_sources(
    args: argparse.Namespace, loaded: LoadedConfig, insecure: Sequence[str] = ()
) -> ImageSources:
    """add_image_sources' flags over the environment over versions.toml."""
    return settings.image_sources(
        loaded,
        index_url=args.index_url,
        base_mirror=args.base_mirror,
        dist=args.dist,
        re_resolve=args.re_resolve,
        wait_for_index=args.wait_for_index,
        insecure=insecure,
    )


def build_settings(
    args: argparse.Namespace, loaded: LoadedConfig, insecure: Sequence[str] = (), **fields: Any
) -> BuildSettings:
    """What render, build, publish and refresh share about building, and ``fields``
    of the command's own: a setting they all take is read here, once, with the image
    sources resolved (``insecure``: base mirrors named plain-HTTP)."""
    return BuildSettings(
        source_date_epoch=settings.source_date_epoch(),
        sources=image_sources(args, loaded, insecure),
        **fields,
    )


def rebuild_settings(args: argparse.Namespace, loaded: LoadedConfig) -> BuildSettings:
    """publish's and refresh's, from add_rebuild_options."""
    return build_settings(
        args, loaded, args.insecure_registry, engine=args.engine, workdir=Path(args.workdir)
    )


def publish_settings(
    args: argparse.Namespace, loaded: LoadedConfig, **more: Any
) -> PublishSettings:
    """What publish, refresh and promote share; ``more`` are the fields only some have."""
    return PublishSettings(
        registries=registries(args, loaded),
        dry_run=args.dry_run,
        yes=args.yes,
        report=Path(args.report) if args.report else None,
        **more,
    )
