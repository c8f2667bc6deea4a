"""`matrix diff`: the release as planned against what the registry holds."""

from __future__ import annotations

import argparse

from matrix.cli import options

HELP = "compare a release's planned tags with the registry (changes nothing)"
DESCRIPTION = """\
Compare every planned tag of a release with what the registry holds, one line per
tag: create (missing), move (names another digest: from which release, to which),
keep (already right), conflict (an immutable full or sha tag names other content)
or held (a floating tag a rollback holds at an older release, which publish leaves;
not with --latest / --no-latest, which decide the floating tags by hand), for the
registry and every mirror.
Reads manifests with HEAD and GET only; never pulls a layer.
"""
EPILOG = """\
examples:
  matrix diff --version 2.11.5 --sha a597971f7156
  matrix diff --version 2.11.5 --registry 127.0.0.1:5000
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_target_options(parser)
    options.add_result_format(parser)


def run(args: argparse.Namespace) -> int:
    from matrix.cli.output import print_json_result
    from matrix.config import load_config
    from matrix.publish.reconcile import Action, change_to_dict, describe
    from matrix.publish.state import plan_on_registry
    from matrix.publish.verify import diff_release

    selection = options.release_selection(args)
    loaded = load_config(args.config)
    registries = options.registries(args, loaded)
    changes, found = [], []
    with registries.client() as client:
        plan = plan_on_registry(client, loaded, selection, registries.target.host)
        hosts = [registries.target.host, *(m.host for m in registries.mirrors(plan))]
        diffs = diff_release(client, plan, hosts, holds=selection.latest is None)
        for host, (changed, names) in zip(hosts, diffs, strict=True):
            found.append((host, changed, names))
            changes += changed
    counts = {action.value: sum(c.action is action for c in changes) for action in Action}
    if args.format == "json":
        print_json_result(
            {
                "version": plan.version,
                "registries": [
                    {
                        "registry": host,
                        "changes": [
                            change_to_dict(c) | {"from_release": names.get(c.current or "")}
                            for c in changed
                        ],
                    }
                    for host, changed, names in found
                ],
                "summary": counts,
                "notes": list(plan.notes),
            }
        )
        return 0
    for _, changed, names in found:
        for change in changed:
            print(describe(change, change.registry, names))
    print(", ".join(f"{n} {action}" for action, n in counts.items()))
    for note in plan.notes:
        print(f"note: {note}")
    return 0
