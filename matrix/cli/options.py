"""Options several subcommands share, defined once."""

from __future__ import annotations

import argparse

from matrix.errors import UserError

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


def read_known_releases(path: str | None):
    """The versions in a --releases file, or None when none was given."""
    if path is None:
        return None
    from matrix.versions import parse_known_releases

    try:
        with open(path, encoding="utf-8") as handle:
            return parse_known_releases(handle, source=path)
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise UserError(f"{path}: cannot read the releases file: {reason}") from None


def plan_from_args(args: argparse.Namespace, loaded, known=None):
    """Plan the release the common options describe, with ``loaded`` versions.toml.

    ``known`` (releases read from a registry, say) stands in for --releases.
    """
    from matrix.plan import plan_release

    return plan_release(
        loaded,
        args.version,
        commit=args.sha,
        known=known if known is not None else read_known_releases(args.releases),
        latest=args.latest,
        pythons=args.python,
        flavors=args.flavor,
        images=args.image,
        branch=args.branch,
    )


def add_registry_options(parser: argparse.ArgumentParser) -> None:
    """How to reach registries; credentials come from docker's config or the environment."""
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="talk plain HTTP to this registry (repeatable; loopback registries always are)",
    )


def registry_client(args: argparse.Namespace):
    """A RegistryClient configured by add_registry_options' flags."""
    import stamina.instrumentation

    from matrix.registry import RegistryClient

    # stamina logs every retry as a bare warning line; a command's output is its own
    # lines, and an error that outlives the retries ends in one clear line anyway.
    stamina.instrumentation.set_on_retry_hooks([])

    return RegistryClient(insecure_registries=args.insecure_registry)


def add_registry(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--registry",
        metavar="HOST[:PORT]",
        help="registry the images go to (default: versions.toml's `registry`, docker.io)",
    )


def check_output_file(path: str | None, flag: str) -> None:
    """Refuse, before any work, a file that could not be written at the end."""
    if path is None:
        return
    import os

    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path) or not os.path.isdir(folder):
        raise UserError(f"{flag} {path}: cannot write a file there (no such folder, or a folder)")


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
    if dist:
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


def progress_line(text: str) -> None:
    """A line of progress on stderr (waiting for the package index, say)."""
    import sys

    print(f"matrix: {text}", file=sys.stderr, flush=True)


def image_sources(args: argparse.Namespace, loaded):
    """The ImageSources add_image_sources' flags, the environment and versions.toml give."""
    import os

    from matrix.engines.mirrors import base_mirrors
    from matrix.index import index_from
    from matrix.render import ImageSources

    if args.wait_for_index < 0:
        raise UserError("--wait-for-index: seconds must not be negative")
    return ImageSources(
        index=index_from(args.index_url, os.environ, loaded.config.index_url),
        base_mirrors=base_mirrors(
            args.base_mirror,
            os.environ,
            loaded.config.base_mirrors,
            getattr(args, "insecure_registry", ()),
        ),
        dist=getattr(args, "dist", None),
        re_resolve=args.re_resolve,
        wait_for_index=args.wait_for_index,
    )
