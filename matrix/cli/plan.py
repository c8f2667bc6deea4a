"""`matrix plan`: the dry run of a release, for people, programs and GitHub Actions."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from matrix.cli import options

if TYPE_CHECKING:
    from matrix.config import LoadedConfig
    from matrix.plan import Plan

HELP = "show every image and tag a release publishes (changes nothing)"
DESCRIPTION = """\
Show every image and tag a release publishes, without touching any registry.

Tags marked * are floating: they move to the newest final release of their line.
Full and sha tags are immutable. Pre-releases get only their full tag; dev builds
(a local version such as 2.11.5+12.gabc1234) go to the dev repository as
sha-<commit>-pythonX.Y, the way Prefect's get_prefect_image_name names them.

No image that cannot install is offered: each image's Pythons are bounded by its
distribution's Requires-Python, and an image whose distribution the release lacks
(prefect-client 3.9.1) is left out, each said in the notes. With --index-url these
facts are read from the package index, else from versions.toml (requires_python of
the line, not_on_index of the image); when the index disagrees with versions.toml
the plan stops with one line naming the fix. A release the index lacks (a dev build,
a yanked release) is planned from versions.toml.

--dist PATH (the folder a dev build's `matrix build --dist` gets) checks that it holds
the wheel or sdist of the planned version of every package the planned images
install, and names each in the plan's notes; one missing is an error before any
build job starts.
"""
EPILOG = """\
examples:
  matrix plan --version 2.11.5 --sha a597971f7156
  matrix plan --version 2.11.5 --python 3.10 --flavor conda
  matrix plan --version 2.10.22 --releases releases.txt   # a backport
  matrix plan --version 3.4.25 --format json
  matrix plan --version 3.4.25 --format github            # in a workflow step
  matrix plan --version 3.4.26+12.gabc1234 --sha abc1234 --dist dist/
  matrix plan --version 3.9.1 --index-url https://pypi.org/simple
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_release_selection(parser)
    options.add_config(parser)
    options.add_format(parser)
    parser.add_argument(
        "--index-url",
        metavar="URL",
        help="read each image's Requires-Python and whether its distribution exists from "
        "this package index (the release workflow passes https://pypi.org/simple); without "
        "it the facts are versions.toml's",
    )
    parser.add_argument(
        "--dist",
        metavar="PATH",
        help="the wheels or sdists the images will install (a dev build's): each planned "
        "package's must be there, and the notes name it",
    )


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from matrix.cli import output
    from matrix.config import load_config

    selection = options.release_selection(args)
    loaded = load_config(args.config)
    facts = None
    if args.index_url is not None:
        import os

        from matrix.index import index_facts, index_from, packages_of
        from matrix.versions import Kind, kind, parse_version

        index = index_from(args.index_url, os.environ, None)
        version = parse_version(selection.version)
        if kind(version) is not Kind.DEV:  # no index has a local version
            facts = index_facts(index, packages_of(loaded), version)
    plan = selection.plan(loaded, index=facts)
    if args.dist:
        plan = replace(plan, notes=(*plan.notes, *dist_notes(plan, loaded, args.dist)))
    if args.format == "json":
        output.print_json(plan)
    elif args.format == "github":
        output.write_github(plan)
    else:
        output.print_table(plan)
    return 0


def dist_notes(plan: Plan, loaded: LoadedConfig, dist: str) -> list[str]:
    """One note per package the planned images install: the file they get from
    ``dist``. A package without one is a UserError, as `matrix build --dist` says."""
    from matrix.lock import read_dist

    installs: dict[str, set[str]] = {}
    for spec in plan.images:
        package = loaded.config.images[spec.image].package
        if package:
            installs.setdefault(package, set()).add(spec.repository)
    notes = []
    for package, repositories in sorted(installs.items()):
        found = read_dist(dist, package, plan.version)
        notes.append(f"{', '.join(sorted(repositories))}: {package} from {found.path.name}")
    return notes
