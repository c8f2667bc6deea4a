"""The run of publish and promote: settings, one library call, output, the report."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from matrix.cli import options
from matrix.cli.output import (
    check_github_summary,
    confirmer,
    print_changes,
    print_json_result,
    report_failures,
    write_report,
)

if TYPE_CHECKING:
    import argparse

    from matrix.config import LoadedConfig
    from matrix.publish.reconcile import Change
    from matrix.publish.run import PublishReport
    from matrix.settings import PublishSettings


def run_release(
    args: argparse.Namespace,
    command: str,
    settings_of: Callable[[LoadedConfig], PublishSettings],
    call: Callable[..., PublishReport],
    shown: Callable[[Change, PublishSettings], bool],
) -> int:
    """publish's and promote's run: ``call`` (``matrix.publish.release``) on the release
    and the settings ``settings_of`` makes, asking before it writes; the changes
    ``shown`` picks on stdout, or the report as JSON; --report however it ends."""
    from matrix.cli.progress import Reporter
    from matrix.config import load_config
    from matrix.publish.release import inputs_not_read
    from matrix.stopping import stopping_safely

    with stopping_safely(), report_failures(args.report, args.version):
        check_github_summary()
        selection = options.release_selection(args)
        loaded = load_config(args.config)
        settings = settings_of(loaded)
        with Reporter() as reporter, settings.registries.client() as client:
            report = call(
                client,
                loaded,
                selection,
                settings,
                confirm=confirmer(command, reporter.pause),
                progress=reporter.step,
            )
    if settings.report:
        write_report(settings.report, report.to_dict())
    if args.format == "json":
        print_json_result(report.to_dict())
    else:
        print_changes([c for c in report.changes if shown(c, settings)], report.registry)
    if command == "publish" and inputs_not_read(settings):
        print(f"note: {unread_inputs_note(report)}", file=sys.stderr)
    reporter.finish(report)
    return 0


def unread_inputs_note(report: PublishReport) -> str:
    """What a dry run that read no build inputs could not tell, image by image."""
    from matrix.plan import TagKind
    from matrix.publish.reconcile import Action

    full = [
        c
        for c in report.changes
        if c.target.kind is TagKind.FULL and c.registry in ("", report.registry)
    ]
    to_build = sum(c.writes for c in full)
    kept = sum(c.action is Action.KEEP for c in full)
    unknown = []
    if to_build:
        unknown.append(f"the build ids of the {_images(to_build)} to build")
    if kept:
        unknown.append(
            f"whether the {_images(kept)} kept were built from today's inputs (a changed "
            "base is a conflict a publish reports, or rebuilds with --refresh)"
        )
    told = f": not known are {' and '.join(unknown)}" if unknown else ""
    return (
        "a dry run reads no build inputs (base image digests, package index) and needs "
        f"no build engine{told}; --refresh --dry-run reads them"
    )


def _images(count: int) -> str:
    return f"{count} image{'' if count == 1 else 's'}"
