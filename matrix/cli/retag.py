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
was created, moved from one digest to another, or left unchanged. Moving a tag
that exists asks first at a terminal; elsewhere it is refused unless --yes.

Credentials: docker's config.json ($DOCKER_CONFIG or ~/.docker) and its credential
helpers, or MATRIX_REGISTRY_USERNAME and MATRIX_REGISTRY_PASSWORD.
"""
EPILOG = """\
examples:
  matrix retag ghcr.io/acme/prefect:2.11.5-python3.10 :2.11-python3.10 :2-python3.10
  matrix retag ghcr.io/acme/prefect:2.11.5-python3.10 ghcr.io/acme/prefect-mirror
  matrix retag --dry-run localhost:5000/prefect:2.11.5 :2.11 :2   # what would change
  matrix retag --yes localhost:5000/prefect:2.11.4 :2.11 :2       # a rollback, in CI
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SRC", help="the image to copy: name:tag or name@digest")
    parser.add_argument("targets", metavar="DST", nargs="+", help="':TAG' or a full reference")
    options.add_writing_options(parser, "tags it would create or move")
    options.add_result_format(parser)
    options.add_registry_options(parser)


def run(args: argparse.Namespace) -> int:
    from matrix.cli.output import print_json_result
    from matrix.reference import parse_reference
    from matrix.registry import retag

    source = parse_reference(args.source)
    if not source.tag and not source.digest:
        raise InvalidReference(
            f"SRC {args.source!r}: say which image, {source.name}:TAG or @DIGEST"
        )
    targets = [target_reference(source, text) for text in args.targets]
    with options.any_registry(args).client() as client:
        if args.dry_run or args.yes:
            changes = retag(client, source, targets, dry_run=args.dry_run)
        else:
            changes = retag(client, source, targets, dry_run=True)
            _confirm_moves(source, changes)
            changes = retag(client, source, targets)
    if args.format == "json":
        print_json_result(
            {
                "source": str(source),
                "dry_run": args.dry_run,
                "changes": [
                    {
                        "reference": str(c.target),
                        "action": c.action,
                        "from": c.before,
                        "to": c.after,
                    }
                    for c in changes
                ],
            }
        )
    else:
        for change in changes:
            would = args.dry_run and change.action != "unchanged"
            print(f"{'would be ' if would else ''}{change}")
    if args.dry_run:
        print("dry run: nothing was changed", file=sys.stderr)
    return 0


def _confirm_moves(source, changes) -> None:
    """Creating a tag overwrites nothing; moving one does: ask first, refuse in CI."""
    from matrix.cli.output import ask

    moved = [str(c.target) for c in changes if c.action == "moved"]
    if moved:
        more = f" and {len(moved) - 1} more" if len(moved) > 1 else ""
        ask("retag", f"move {moved[0]}{more} to {source}")


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
