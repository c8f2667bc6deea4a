"""`matrix plan`: the dry run of a release, for people, programs and GitHub Actions."""

from __future__ import annotations

import argparse

from matrix.cli import options

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
"""
EPILOG = """\
examples:
  matrix plan --version 2.11.5 --sha a597971f7156
  matrix plan --version 2.11.5 --python 3.10 --flavor conda
  matrix plan --version 2.10.22 --releases releases.txt   # a backport
  matrix plan --version 3.4.25 --format json
  matrix plan --version 3.4.25 --format github            # in a workflow step
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


def run(args: argparse.Namespace) -> int:
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
    if args.format == "json":
        output.print_json(plan)
    elif args.format == "github":
        output.write_github(plan)
    else:
        output.print_table(plan)
    return 0
