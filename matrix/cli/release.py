"""What publish, diff, verify and promote share: the target registry and the plan
judged against what that registry already holds."""

from __future__ import annotations

import argparse
from dataclasses import replace

from matrix.cli import options


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """The release, its filters, the config, and the registries to compare with."""
    options.add_release_selection(parser)
    options.add_config(parser)
    add_registries(parser)


def add_registries(parser: argparse.ArgumentParser) -> None:
    """--registry, --mirror and how to reach them."""
    parser.add_argument(
        "--registry",
        metavar="HOST[:PORT]",
        help="registry holding the images (default: versions.toml's `registry`, docker.io)",
    )
    parser.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="also a registry holding copies (repeatable); versions.toml's `mirrors` are "
        "added when --registry is its own registry",
    )
    options.add_registry_options(parser)


def mirrors(args: argparse.Namespace, plan, registry: str) -> tuple[str, ...]:
    """The line's mirrors (when ``registry`` is versions.toml's) and --mirror, without
    the primary registry, each once."""
    from matrix.config import registry_host
    from matrix.errors import UserError

    for host in args.mirror:
        try:
            registry_host(host)
        except ValueError as error:
            raise UserError(f"--mirror: {error}") from None
    # versions.toml's mirrors go with its registry: a run against another registry (a
    # local one, say) copies to nothing but the --mirror hosts it names.
    configured = plan.mirrors if registry == plan.registry else ()
    named = dict.fromkeys([*configured, *args.mirror])
    return tuple(host for host in named if host != registry)


def plan_against_registry(args: argparse.Namespace, client, *, latest: bool | None = None):
    """(plan, registry, loaded config). Unless --releases, --latest or --no-latest say
    otherwise, the known releases are the full tags in the release repositories."""
    from matrix.config import load_config
    from matrix.publish.state import known_releases
    from matrix.reference import ImageReference

    loaded = load_config(args.config)
    registry = args.registry or loaded.config.registry
    if latest is not None:
        args = argparse.Namespace(**{**vars(args), "latest": latest})
    plan = options.plan_from_args(args, loaded)
    if args.releases is None and args.latest is None:
        repositories = sorted({spec.repository for spec in plan.images})
        tag_lists = client.map(
            lambda repository: client.list_tags(ImageReference(registry, repository)),
            repositories,
        )
        plan = options.plan_from_args(args, loaded, known_releases(tag_lists))
        note = f"known releases read from the tags of {', '.join(repositories)} on {registry}"
        plan = replace(plan, notes=(*plan.notes, note))
    return plan, registry, loaded
