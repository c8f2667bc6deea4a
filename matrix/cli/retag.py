"""`matrix retag`: point more tags (or repositories) at an image, by its manifest."""

from __future__ import annotations

import argparse
import sys

from matrix.cli import options
from matrix.errors import InvalidReference

HELP = "copy an image to other tags or repositories, keeping its digest"
DESCRIPTION = """\
Point one or more tags at the image SRC names, without pulling or pushing layers.

The manifest is copied byte for byte, so every target has SRC's digest; a
multi-platform index keeps all its platforms. A target in SRC's repository costs
one request. A target in another repository of the same registry gets the layers
mounted (no bytes move); one on another registry gets them streamed.

Each DST is either ':TAG' (a tag in SRC's repository) or a full reference; a
reference without a tag keeps SRC's tag. Each line of output says whether the tag
was created, moved from one digest to another, or left unchanged.

Credentials: docker's config.json ($DOCKER_CONFIG or ~/.docker) and its credential
helpers, or MATRIX_REGISTRY_USERNAME and MATRIX_REGISTRY_PASSWORD.
"""
EPILOG = """\
examples:
  matrix retag ghcr.io/acme/prefect:2.11.5-python3.10 :2.11-python3.10 :2-python3.10
  matrix retag ghcr.io/acme/prefect:2.11.5-python3.10 ghcr.io/acme/prefect-mirror
  matrix retag --dry-run localhost:5000/prefect:2.11.5 :2.11 :2   # what would change
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SRC", help="the image to copy: name:tag or name@digest")
    parser.add_argument("targets", metavar="DST", nargs="+", help="':TAG' or a full reference")
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would change and change nothing"
    )
    options.add_registry_options(parser)


def run(args: argparse.Namespace) -> int:
    from matrix.reference import parse_reference
    from matrix.registry import retag

    source = parse_reference(args.source)
    targets = [target_reference(source, text) for text in args.targets]
    with options.registries(args, None).client() as client:
        changes = retag(client, source, targets, dry_run=args.dry_run)
    for change in changes:
        print(f"{'would be ' if args.dry_run and change.action != 'unchanged' else ''}{change}")
    if args.dry_run:
        print("dry run: nothing was changed", file=sys.stderr)
    return 0


def target_reference(source, text: str):
    """``:TAG`` in SRC's repository, or a reference; without a tag it keeps SRC's."""
    from matrix.reference import parse_reference

    if text.startswith(":"):
        return parse_reference(f"{source.name}{text}")
    target = parse_reference(text)
    if target.digest:
        raise InvalidReference(f"{text!r}: a target is a tag, not a digest")
    if target.tag:
        return target
    if not source.tag:
        raise InvalidReference(f"{text!r}: give a tag, since {source} has none to keep")
    return target.with_tag(source.tag)
