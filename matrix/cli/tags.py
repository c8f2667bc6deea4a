"""`matrix tags`: the tags of a repository, newest version last."""

from __future__ import annotations

import argparse
import re

from matrix.cli import options
from matrix.errors import UserError

HELP = "list a repository's tags, sorted by version"
DESCRIPTION = """\
List the tags of IMAGE's repository, one a line.

Tags that are versions (2.11.5, 3.0.0rc1) sort by version; the others, such as
2.11.5-python3.10, sort with their numbers compared as numbers, so 2.9 comes
before 2.10. A repository the registry does not have is an error (exit 2).
"""
EPILOG = """\
examples:
  matrix tags docker.io/prefecthq/prefect --filter '^2\\.11\\.\\d+-python3\\.10$'
  matrix tags localhost:5000/prefect
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="a repository: registry/name")
    parser.add_argument(
        "--filter", metavar="REGEX", help="only tags this regular expression matches (search)"
    )
    options.add_result_format(parser)
    options.add_registry_options(parser)


def run(args: argparse.Namespace) -> int:
    from matrix.reference import parse_reference

    pattern = None
    if args.filter is not None:
        try:
            pattern = re.compile(args.filter)
        except re.error as error:
            raise UserError(
                f"--filter {args.filter!r} is not a regular expression: {error}"
            ) from None
    repository = parse_reference(args.image)
    with options.any_registry(args).client() as client:
        tags = client.list_tags(repository, missing_ok=False)
    if pattern is not None:
        tags = [tag for tag in tags if pattern.search(tag)]
    ordered = sorted(tags, key=version_order)
    if args.format == "json":
        from matrix.cli.output import print_json_result

        print_json_result(
            {"repository": f"{repository.registry}/{repository.repository}", "tags": ordered}
        )
        return 0
    for tag in ordered:
        print(tag)
    return 0


def version_order(tag: str) -> tuple:
    """Versions by PEP 440 first, then other tags with digit runs compared as numbers."""
    from packaging.version import InvalidVersion, Version

    try:
        return (0, Version(tag), ())
    except InvalidVersion:
        pieces = re.split(r"(\d+)", tag)
        return (1, None, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pieces))
