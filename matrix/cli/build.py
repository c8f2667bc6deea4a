"""`matrix build`: render a release and build its images with buildx or podman."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from matrix.cli import options
from matrix.errors import UserError

HELP = "build (and push) the images of a release with docker buildx or podman"
DESCRIPTION = """\
Render the release's build contexts and build every planned image, for every platform
of its line, with docker buildx (default) or podman, both through python-on-whales.

--push pushes the immutable tags only (full and sha): floating tags (2.11-…, 2-…,
2-latest) move later, once every image under them is complete. --push-by-digest
pushes one platform untagged, so each platform can build on its own native runner;
--digests-out DIR records each pushed digest in a small file there, with the
image's build inputs (its bases' digests read from their registries), and
`matrix publish --digests DIR` merges them into the tagged indexes afterwards.

Every image installs its lock: its exact dependencies with hashes, resolved with uv
as of the release's upload to the package index (--index-url), or from --dist for a
dev build; a release the index lacks yet stops the build before anything runs.
"""
EPILOG = """\
examples:
  matrix build --version 2.11.5 --dry-run                  the exact calls, nothing run
  matrix build --version 2.11.5 --sha a597971f7156 --push
  matrix build --version 2.11.5 --python 3.10 --flavor conda --platform linux/arm64 \\
               --push-by-digest --digests-out digests/     one GitHub Actions job
  matrix build --version 2.11.5 --engine podman --registry 127.0.0.1:5000 --push
  matrix build --version 3.4.25+12.gabc1234 --dist dist/ --engine podman \
               --base-mirror docker.io=127.0.0.1:5000 --registry 127.0.0.1:5000 --push

exit codes: 0 every image built, 1 an image failed (named on stderr), 2 bad input.
"""
STATE_STYLES = {"waiting": "dim", "building": "yellow", "done": "green", "failed": "bold red"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_release_selection(parser)
    options.add_config(parser)
    options.add_registry(parser)
    options.add_registry_options(parser)
    options.add_image_sources(parser)
    what = parser.add_argument_group("what to build")
    what.add_argument(
        "--platform",
        action="append",
        default=[],
        metavar="OS/ARCH",
        help="only this platform of the line's (repeatable)",
    )
    what.add_argument("--push", action="store_true", help="push the full and sha tags")
    what.add_argument(
        "--push-by-digest",
        action="store_true",
        help="push one platform (--platform) untagged and report its digest",
    )
    what.add_argument(
        "--digests-out",
        metavar="DIR",
        help="with --push-by-digest: write each pushed digest to a file in DIR, for "
        "`matrix publish --digests DIR`",
    )
    what.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra image label, e.g. a CI run URL (repeatable)",
    )
    what.add_argument(
        "--out",
        metavar="DIR",
        help="keep the rendered contexts here (default: a temporary folder)",
    )
    how = parser.add_argument_group("how to build")
    how.add_argument("--engine", choices=("buildx", "podman"), default="buildx")
    how.add_argument("--builder", metavar="NAME", help="buildx builder to use")
    how.add_argument(
        "--create-builder",
        action="store_true",
        help="docker buildx create a fresh docker-container builder (named by --builder, "
        "default matrix) first",
    )
    how.add_argument(
        "--cache-repository",
        metavar="REPO",
        help="registry cache, one tag per image: REPO:buildcache-<key> (buildx)",
    )
    how.add_argument("--cache-mode", choices=("min", "max"), default="max")
    how.add_argument(
        "--provenance", action="store_true", help="attach a provenance attestation (buildx)"
    )
    how.add_argument("--sbom", action="store_true", help="attach an SBOM attestation (buildx)")
    run_group = parser.add_argument_group("running")
    run_group.add_argument(
        "--dry-run",
        action="store_true",
        help="print the exact python-on-whales calls and command lines, run nothing (a "
        "--push-by-digest run also adds the build id label and annotations, which need "
        "the base images' digests from their registries)",
    )
    run_group.add_argument(
        "--keep-going",
        action="store_true",
        help="after a failed image, build the others anyway",
    )
    run_group.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="json prints every image's pushed digests on stdout, for programs",
    )


def run(args: argparse.Namespace) -> int:
    labels = _labels(args.label)
    with tempfile.TemporaryDirectory(prefix="matrix-build-") as scratch:
        out = Path(args.out) if args.out else Path(scratch) / "contexts"
        return _build(args, labels, out, Path(scratch) / "work")


def _build(args: argparse.Namespace, labels: dict[str, str], out: Path, workdir: Path) -> int:
    from matrix.config import load_config
    from matrix.engines.requests import build_requests
    from matrix.render import render_release, source_date_epoch_from

    loaded = load_config(args.config)
    plan = options.plan_from_args(args, loaded)
    registry = args.registry or plan.registry
    sources = options.image_sources(args, loaded)
    contexts = render_release(
        plan,
        loaded,
        out,
        sources,
        source_date_epoch=source_date_epoch_from(os.environ),
        progress=options.progress_line,
    )
    requests = build_requests(
        plan,
        {context.key: context.path for context in contexts},
        registry=registry,
        platforms=args.platform,
        push=args.push,
        push_by_digest=args.push_by_digest,
        cache_repository=args.cache_repository,
        cache_mode=args.cache_mode,
        provenance=args.provenance,
        sbom=args.sbom,
        labels=labels,
        annotations={context.key: context.annotations for context in contexts},
    )
    if args.digests_out and not args.push_by_digest:
        raise UserError("--digests-out records the digests of --push-by-digest; add it")
    if args.digests_out and Path(args.digests_out).exists() and not Path(args.digests_out).is_dir():
        raise UserError(f"--digests-out {args.digests_out}: not a folder")
    if (args.builder or args.create_builder) and args.engine != "buildx":
        raise UserError("--builder and --create-builder are for --engine buildx")
    engine = make_engine(
        args.engine,
        workdir,
        registry,
        builder=args.builder,
        create_builder=args.create_builder,
        insecure_registries=args.insecure_registry,
        base_mirrors=sources.base_mirrors,
    )
    inputs = {}
    if args.push_by_digest and not args.dry_run:
        # What publish --digests needs to label the image and judge it next time.
        with options.registry_client(args) as client:
            inputs = plan_inputs(
                client, plan, {c.key: c.path for c in contexts}, labels, sources.base_mirrors
            )
        requests = [with_build_id(plan, request, inputs[request.key]) for request in requests]
    if args.dry_run:
        for call in engine.prepare_calls():
            print(engine.show(call))
        for context in contexts:
            if context.lock is not None:
                options.progress_line(f"{context.key}: {context.describe_lock()}")
        for request in requests:
            print(f"# {request.key}")
            for call in engine.calls(request):
                print(engine.show(call))
        return 0
    engine.prepare()
    results, failures = _run_builds(engine, requests, keep_going=args.keep_going)
    if args.digests_out:
        from matrix.publish.digests import write_digest

        for result in results:
            for platform, digest in result.platform_digests.items():
                write_digest(
                    Path(args.digests_out), result.key, platform, digest, inputs[result.key]
                )
    if args.format == "json":
        json.dump(
            {
                "results": [_result_json(result) for result in results],
                "failed": [{"key": f.key, "error": str(f)} for f in failures],
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    for failure in failures:
        print(f"matrix: error: {failure}", file=sys.stderr)
    return 1 if failures else 0


def plan_inputs(client, plan, contexts, labels=None, base_mirrors=None):
    """Image key -> build inputs of every image of ``plan``, the bases' digests read
    from their registries. Each image's bases are resolved for all its planned
    platforms, so jobs that build its platforms apart record the same inputs."""
    from matrix.buildid import gather_many

    wanted = [(s.key, contexts[s.key], s.build_args, s.platforms) for s in plan.images]
    return gather_many(client, wanted, labels, base_mirrors)


def with_build_id(plan, request, inputs):
    """The request labelled with its build id and annotated as publish annotates."""
    from dataclasses import replace

    from matrix.buildid import BUILD_ID_LABEL, build_id
    from matrix.publish.run import annotations_for

    spec = next(spec for spec in plan.images if spec.key == request.key)
    return replace(
        request,
        labels={**request.labels, BUILD_ID_LABEL: build_id(inputs)},
        annotations={**request.annotations, **annotations_for(plan, spec, inputs)},
    )


def make_engine(name: str, workdir: Path, registry: str, **options):
    """The buildx or podman engine (``matrix.engines.create_engine``)."""
    from matrix.engines import create_engine

    return create_engine(name, workdir, registry, **options)


def _run_builds(engine, requests, *, keep_going: bool):
    """Build one image after the other, shown live: one line per image."""
    from rich.console import Console
    from rich.live import Live

    from matrix.engines import BuildFailed

    console = Console(stderr=True)
    view = _View(requests, live=console.is_terminal)
    results, failures = [], []
    with Live(view, console=console, refresh_per_second=8, transient=False) as live:
        for request in requests:
            if failures and not keep_going:
                view.states[request.key] = ("waiting", "skipped: an earlier image failed")
                continue
            view.states[request.key] = ("building", "")

            def log(line: str, key: str = request.key) -> None:
                view.states[key] = ("building", line)
                if not view.live:
                    console.print(f"[{key}] {line}", highlight=False, markup=False)

            try:
                result = engine.build(request, log)
            except BuildFailed as failure:
                failures.append(failure)
                view.states[request.key] = ("failed", str(failure))
            else:
                results.append(result)
                view.states[request.key] = ("done", _describe(result))
            live.refresh()
    for failure in failures:
        console.rule(f"{failure.key}: last lines of the log", style="red")
        for line in failure.log_tail:
            console.print(line, highlight=False, markup=False)
    return results, failures


class _View:
    """A rich renderable: one row per image with its state and latest log line."""

    def __init__(self, requests, *, live: bool) -> None:
        self.live = live
        self.platforms = {
            r.key: " ".join(p.removeprefix("linux/") for p in r.platforms) for r in requests
        }
        self.states: dict[str, tuple[str, str]] = {r.key: ("waiting", "") for r in requests}

    def __rich__(self):
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 2))
        for key, (state, detail) in self.states.items():
            table.add_row(
                Text(key, style="bold"),
                Text(self.platforms[key], style="dim"),
                Text(state, style=STATE_STYLES[state]),
                Text(detail[-120:], no_wrap=True, overflow="ellipsis"),
            )
        return table


def _describe(result) -> str:
    if result.digest:
        return f"pushed {result.digest}"
    return "built" if not result.tags else f"built {' '.join(result.tags)}"


def _result_json(result) -> dict:
    return {
        "key": result.key,
        "digest": result.digest,
        "media_type": result.media_type,
        "platform_digests": dict(result.platform_digests),
        "tags": list(result.tags),
    }


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise UserError(f"--label {pair!r}: expected KEY=VALUE")
        labels[name] = value
    return labels
