"""`matrix diff`: the release as planned against what the registry holds."""

from __future__ import annotations

import argparse

from matrix.cli import options

HELP = "compare a release's planned tags with the registry (changes nothing)"
DESCRIPTION = """\
Compare every planned tag of a release with what the registry holds, one line per
tag: create (missing), move (names another digest: from which release, to which),
keep (already right) or conflict (an immutable full or sha tag names other content),
for the registry and every mirror.
Reads manifests with HEAD and GET only; never pulls a layer.
"""
EPILOG = """\
examples:
  matrix diff --version 2.11.5 --sha a597971f7156
  matrix diff --version 2.11.5 --registry 127.0.0.1:5000
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_target_options(parser)


def run(args: argparse.Namespace) -> int:
    from matrix.config import load_config
    from matrix.publish.reconcile import Action, describe
    from matrix.publish.state import plan_on_registry
    from matrix.publish.verify import diff_release

    selection = options.release_selection(args)
    loaded = load_config(args.config)
    registries = options.registries(args, loaded)
    changes = []
    with registries.client() as client:
        plan = plan_on_registry(client, loaded, selection, registries.target.host)
        hosts = [registries.target.host, *(m.host for m in registries.mirrors(plan))]
        for found, names in diff_release(client, plan, hosts):
            for change in found:
                print(describe(change, change.registry, names))
            changes += found
    counts = {action: sum(c.action is action for c in changes) for action in Action}
    print(", ".join(f"{n} {action.value}" for action, n in counts.items()))
    for note in plan.notes:
        print(f"note: {note}")
    return 0
