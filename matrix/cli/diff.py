"""`matrix diff`: the release as planned against what the registry holds."""

from __future__ import annotations

import argparse

from matrix.cli import release

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
    release.add_target_options(parser)


def run(args: argparse.Namespace) -> int:
    from matrix.cli import options
    from matrix.publish.reconcile import Action, describe, reconcile
    from matrix.publish.state import read_state, releases_of

    changes = []
    with options.registry_client(args) as client:
        plan, registry, _ = release.plan_against_registry(args, client)
        for host in (registry, *release.mirrors(args, plan, registry)):
            found = reconcile(plan, read_state(client, plan, host), registry=host)
            moved = [c for c in found if c.action is Action.MOVE]
            names = releases_of(client, host, moved)
            for change in found:
                print(describe(change, host, names))
            changes += found
    counts = {action: sum(c.action is action for c in changes) for action in Action}
    print(", ".join(f"{n} {action.value}" for action, n in counts.items()))
    for note in plan.notes:
        print(f"note: {note}")
    return 0
