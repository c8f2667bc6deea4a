"""The run of publish and promote: settings, one library call, output, the report."""

from __future__ import annotations

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
                confirm=confirmer(command),
                progress=reporter.step,
            )
    if settings.report:
        write_report(settings.report, report.to_dict())
    if args.format == "json":
        print_json_result(report.to_dict())
    else:
        print_changes([c for c in report.changes if shown(c, settings)], report.registry)
    reporter.finish(report)
    return 0
