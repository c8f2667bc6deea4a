"""`matrix missing`: the releases the package index has and the registry lacks."""

from __future__ import annotations

import argparse

from matrix.cli import options
from matrix.errors import UserError

HELP = "list the releases the package index has and the registry lacks or holds incomplete"
DESCRIPTION = """\
List the releases of Prefect uploaded to the package index in the last --days days
that versions.toml has facts for and the registry lacks (no full tag) or holds
incomplete (a tag absent, or a floating tag naming another image than its
release's; a floating tag that a rollback holds, `matrix promote`, was moved on
purpose and is not judged). The scheduled catch-up of the release workflow
publishes each one it lists; publish is idempotent, so a release whose first run
lost the race with its upload, or died halfway, is completed. Each is planned with
what the index says of it (Requires-Python, whether prefect-client has it), as
`matrix plan --index-url`.

A new line is noticed, not guessed: a final release versions.toml has no facts for
(a minor after the one its open-ended newest line was written for, a new major, or
a Requires-Python the index gives otherwise) is listed apart as needing a new
[[lines]] entry, with the reason, and nothing of it is published; its pre-releases
are left out too.

Cheap enough for a schedule: one index read per distribution (prefect,
prefect-client), one tag list per repository, and a HEAD per tag of the releases
whose full tags are there (HEADs do not count against Docker Hub's pull limit). Sha
tags are not judged: their commit is the caller's to find. Exit 0 whatever it finds;
an error is one line and exit 2.
"""
EPILOG = """\
examples:
  matrix missing                          the last 30 days, against docker.io
  matrix missing --days 3 --format json   what the catch-up job reads
  matrix missing --registry 127.0.0.1:5000 --index-url http://127.0.0.1:8080/simple
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_config(parser)
    parser.add_argument(
        "--registry",
        metavar="HOST[:PORT]",
        help="registry holding the images (default: versions.toml's `registry`, docker.io)",
    )
    parser.set_defaults(mirror=[])  # the target's holdings alone
    options.add_registry_options(parser)
    parser.add_argument(
        "--index-url",
        metavar="URL",
        help="package index to read the releases from (default: MATRIX_INDEX_URL, else "
        "versions.toml's index_url, else https://pypi.org/simple)",
    )
    parser.add_argument(
        "--days",
        type=float,
        default=30.0,
        metavar="N",
        help="only releases uploaded in the last N days (default 30)",
    )
    options.add_result_format(parser)


def run(args: argparse.Namespace) -> int:
    import os
    from datetime import UTC, datetime, timedelta

    from matrix.config import load_config
    from matrix.index import index_from
    from matrix.publish.missing import missing_releases

    if not 0 < args.days <= 3650:
        raise UserError(f"--days {args.days:g}: expected a number of days from 0 to 3650")
    loaded = load_config(args.config)
    registries = options.registries(args, loaded)
    index = index_from(args.index_url, os.environ, loaded.config.index_url)
    since = datetime.now(UTC) - timedelta(days=args.days)
    with registries.client() as client:
        missing = missing_releases(client, loaded, index, registries.target.host, since=since)
    found = missing.releases
    if args.format == "json":
        from matrix.cli.output import print_json_result

        print_json_result(
            {
                "registry": registries.target.host,
                "index": index.shown,
                "since": since.isoformat(timespec="seconds"),
                "releases": [release.to_json() for release in found],
                "needs_line": [release.to_json() for release in missing.needs_line],
            }
        )
        return 0
    for release in found:
        when = release.uploaded.strftime("%Y-%m-%d %H:%M") if release.uploaded else "?"
        print(f"{release.version} {release.state} (uploaded {when}): {len(release.lacking)} tags")
        for ref in release.lacking:
            print(f"  {ref}")
    for release in missing.needs_line:
        when = release.uploaded.strftime("%Y-%m-%d %H:%M") if release.uploaded else "?"
        print(f"{release.version} needs a new line in versions.toml (uploaded {when}):")
        print(f"  {release.reason}")
    if not found and not missing.needs_line:
        print(f"nothing missing on {registries.target.host} since {since:%Y-%m-%d}")
    return 0
