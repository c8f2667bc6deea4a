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
"""
EPILOG = """\
examples:
  matrix plan --version 2.11.5 --sha a597971f7156
  matrix plan --version 2.11.5 --python 3.10 --flavor conda
  matrix plan --version 2.10.22 --releases releases.txt   # a backport
  matrix plan --version 3.4.25 --format json
  matrix plan --version 3.4.25 --format github            # in a workflow step
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_release_selection(parser)
    options.add_config(parser)
    options.add_format(parser)


def run(args: argparse.Namespace) -> int:
    from matrix.cli import output
    from matrix.config import load_config

    plan = options.release_selection(args).plan(load_config(args.config))
    if args.format == "json":
        output.print_json(plan)
    elif args.format == "github":
        output.write_github(plan)
    else:
        output.print_table(plan)
    return 0
