"""How a plan is shown: a rich table, JSON, or a GitHub Actions matrix."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TextIO

from matrix.errors import BuildError, UserError
from matrix.plan import ImageSpec, Plan
from matrix.platform import Cell, short, slug

# GitHub Actions refuses a job matrix with more entries than this.
GITHUB_MATRIX_LIMIT = 256


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The JSON form. Keys may be added; existing ones keep their meaning."""
    return {
        "version": plan.version,
        "kind": plan.kind.value,
        "commit": plan.commit,
        "registry": plan.registry,
        "mirrors": list(plan.mirrors),
        "line": plan.line,
        "config": plan.config,
        "notes": list(plan.notes),
        "images": [
            {
                "key": spec.key,
                "image": spec.repository,
                "name": spec.image,
                "python": spec.python,
                "flavor": spec.flavor,
                "platforms": list(spec.platforms),
                "tags": spec.tags,
                "targets": [
                    {
                        "repository": t.repository,
                        "tag": t.tag,
                        "kind": t.kind.value,
                        "floating": t.kind.floating,
                    }
                    for t in spec.targets
                ],
                "dockerfile": spec.template,
                "build_args": spec.build_args,
                "labels": spec.labels,
            }
            for spec in plan.images
        ],
        "summary": {"images": len(plan.images), "tags": len(plan.targets)},
    }


def print_json(plan: Plan) -> None:
    json.dump(plan_to_dict(plan), sys.stdout, indent=2)
    sys.stdout.write("\n")


def github_matrix(plan: Plan) -> dict[str, list[dict[str, str]]]:
    """A ``strategy.matrix`` value: one job per image and platform."""
    include = [
        {
            "key": spec.key,
            "name": spec.image,
            "image": spec.repository,
            "version": plan.version,
            "python": spec.python,
            "flavor": spec.flavor,
            "platform": platform,
            "platform_slug": slug(platform),
            "cell": str(Cell.of(spec.key, platform)),
        }
        for spec in plan.images
        for platform in spec.platforms
    ]
    if len(include) > GITHUB_MATRIX_LIMIT:
        raise UserError(
            f"the GitHub matrix would have {len(include)} jobs, GitHub allows "
            f"{GITHUB_MATRIX_LIMIT}: split it with --image, --flavor or --python"
        )
    return {"include": include}


def write_github(plan: Plan) -> None:
    """Write the matrix to $GITHUB_OUTPUT and a table to $GITHUB_STEP_SUMMARY."""
    matrix = json.dumps(github_matrix(plan), separators=(",", ":"))
    outputs = {
        "matrix": matrix,
        "version": plan.version,
        "kind": plan.kind.value,
        "jobs": str(len(json.loads(matrix)["include"])),
    }
    # Both files are opened before either is written: one that cannot be leaves both as
    # they were.
    with (
        github_file("GITHUB_OUTPUT") as output,
        github_file("GITHUB_STEP_SUMMARY") as summary,
    ):
        if output:
            output.write("".join(f"{name}={value}\n" for name, value in outputs.items()))
            output.flush()  # before the summary is written: a full disk leaves both alone
        if summary:
            summary.write(markdown_summary(plan))
    sys.stdout.write(matrix + "\n")


def check_github_summary() -> None:
    """Refuse, before anything is written, a step summary that could not be written at
    the end."""
    with github_file("GITHUB_STEP_SUMMARY"):
        pass


class GitHubFile:
    """A file a GitHub Actions variable names, open to append: a failed write (a full
    disk) is a UserError naming the variable."""

    def __init__(self, variable: str, path: str, handle: TextIO) -> None:
        self.variable, self.path, self._handle = variable, path, handle

    def write(self, text: str) -> None:
        try:
            self._handle.write(text)
        except OSError as error:
            raise self.error(error) from None

    def flush(self) -> None:
        try:
            self._handle.flush()
        except OSError as error:
            raise self.error(error) from None

    def error(self, error: OSError) -> UserError:
        reason = error.strerror or str(error)
        return UserError(f"${self.variable} {self.path}: cannot write it: {reason}")


@contextmanager
def github_file(variable: str) -> Iterator[GitHubFile | None]:
    """The file a GitHub Actions variable names, open to append; None when it is unset.

    Whatever fails before the file is closed, in it or in the other file of a pair,
    the file is cut back to what it held: a half-written output would hand the steps
    after it a cut value.
    """
    path = os.environ.get(variable)
    if not path:
        yield None
        return
    try:
        handle = open(path, "a", encoding="utf-8")  # noqa: SIM115  # closed below
        start = handle.tell()
    except OSError as error:
        raise UserError(f"${variable} {path}: cannot write it: {error.strerror}") from None
    file = GitHubFile(variable, path, handle)
    try:
        yield file
        file.flush()
    except BaseException:
        with suppress(OSError):
            handle.close()
        with suppress(OSError):
            os.truncate(path, start)
        raise
    finally:
        with suppress(OSError):
            handle.close()


def markdown_summary(plan: Plan) -> str:
    rows = [
        f"### Images of Prefect {plan.version} ({plan.kind.value})",
        "",
        "| image | python | flavor | platforms | tags |",
        "| --- | --- | --- | --- | --- |",
    ]
    for spec in plan.images:
        tags = " ".join(f"`{_marked(t)}`" for t in spec.targets)
        rows.append(
            f"| {spec.repository} | {spec.python} | {spec.flavor} | "
            f"{', '.join(spec.platforms)} | {tags} |"
        )
    rows += ["", _summary_line(plan), f"facts: {plan.config}"]
    rows += [*(f"> {note}" for note in plan.notes), ""]
    return "\n".join(rows) + "\n"


def _marked(target) -> str:
    """A tag as shown to people: the repository when it is not the image's, * if floating."""
    return f"{target.tag}*" if target.kind.floating else target.tag


def _summary_line(plan: Plan) -> str:
    floating = sum(t.kind.floating for t in plan.targets)
    return f"{len(plan.images)} images, {len(plan.targets)} tags ({floating} floating, marked *)"


def print_table(plan: Plan, console=None) -> None:
    """For people: a table per repository at a terminal; elsewhere (a CI log, a pipe)
    one plain line per image, which no width cuts."""
    from rich.console import Console

    console = console or Console(highlight=False, soft_wrap=True)
    title = f"Prefect {plan.version} ({plan.kind.value}, line {plan.line})"
    rows = _rows(plan)
    if console.is_terminal:
        _print_tables(console, title, rows)
    else:
        console.print(title, markup=False)
        for repository, spec, tags in rows:
            console.print(
                f"{repository}  python {spec.python}  {spec.flavor}  "
                f"{','.join(spec.platforms)}  {' '.join(tags)}",
                markup=False,
            )
    # Lines under the table are never wrapped: a path or a note stays one line in a log.
    console.print(_summary_line(plan), markup=False)
    console.print(f"facts: {plan.config}", markup=False)
    for note in plan.notes:
        console.print(f"note: {note}", style="yellow", markup=False)


def _rows(plan: Plan) -> list[tuple[str, ImageSpec, list[str]]]:
    """(repository, image, its tags there as people read them) per image and repository."""
    rows = []
    for spec in plan.images:
        by_repository: dict[str, list[str]] = {}
        for target in spec.targets:
            by_repository.setdefault(target.repository, []).append(_marked(target))
        rows += [(repository, spec, tags) for repository, tags in by_repository.items()]
    return rows


def _print_tables(console, title: str, rows: list[tuple[str, ImageSpec, list[str]]]) -> None:
    """One table per repository, its name in the title: at 80 columns every cell fits
    whole (the longest tag, sha-<7>-python3.10-kubernetes*, and the flavor names)."""
    from rich import box
    from rich.table import Table

    for repository in dict.fromkeys(row[0] for row in rows):
        table = Table(title=f"{repository}: {title}", box=box.SIMPLE_HEAD, title_justify="left")
        for column in ("python", "flavor", "platforms", "tags (* floating)"):
            table.add_column(column, no_wrap=True)
        for _, spec, tags in (row for row in rows if row[0] == repository):
            table.add_row(spec.python, spec.flavor, short(spec.platforms), "\n".join(tags))
        console.print(table)


def print_changes(changes, registry: str) -> None:
    """One line per tag, as diff and dry runs print them."""
    from matrix.publish.reconcile import describe

    for change in changes:
        print(describe(change, registry))


def confirmer(command: str, pause: Callable[[], None] | None = None):
    """Ask before ``command`` writes; refuse outside a terminal (CI passes --yes). At a
    terminal, ``pause`` stops the live display, then every tag the run would write is
    listed as --dry-run prints it, then the question."""
    from matrix.publish.reconcile import describe

    def confirm(preview) -> None:
        writes = [change for change in preview.changes if change.writes]
        if not writes:
            return

        def show() -> None:
            if pause is not None:
                pause()
            for change in writes:
                print(describe(change, preview.registry), file=sys.stderr)

        where = ", ".join(preview.registries)
        tags = f"{len(writes)} tag{'' if len(writes) == 1 else 's'}"
        ask(command, f"write {tags} to {where}", f"{command} {preview.version}", before=show)

    return confirm


def ask(
    command: str,
    change: str,
    subject: str | None = None,
    *,
    before: Callable[[], None] | None = None,
) -> None:
    """Go ahead only if the person at the terminal says yes; without a terminal refuse,
    naming --yes: a job must say so explicitly. ``before`` runs at a terminal only,
    before the question. The question goes to stderr, as progress does: stdout keeps
    the command's result alone."""
    if not sys.stdin.isatty():
        raise UserError(
            f"{command} would {change}: pass --yes to go ahead, or --dry-run to see the changes"
        )
    if before is not None:
        before()
    sys.stderr.write(f"{subject or command}: {change}? [y/N] ")
    sys.stderr.flush()
    try:
        answer = input()
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise UserError(f"{command} cancelled, nothing was changed")


def print_json_result(data: Any) -> None:
    """A command's result for programs: one JSON document on stdout."""
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def write_report(path, data: Any) -> None:
    """--report FILE, whether the run succeeded or not."""
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(data, indent=2) + "\n")
    except OSError as error:
        raise UserError(f"--report {path}: cannot write it: {error.strerror}") from None


def failed_report(error: BaseException, version: str | None = None) -> dict[str, Any]:
    """The --report of a run that ended in ``error``: what it did before, and why it ended."""
    from matrix.publish.run import partial_report

    report = partial_report(error)
    data = report.to_dict() if report is not None else {"version": version}
    return data | {"error": str(error)}


@contextmanager
def report_failures(
    path: str | None, version: str | None, *, before: list[dict[str, Any]] | None = None
) -> Iterator[None]:
    """Write --report FILE when the run ends in an error a user can act on, then let the
    error end the command. With ``before`` the report is that list of earlier reports
    and the failed run's."""
    try:
        yield
    except (UserError, BuildError) as error:
        if path:
            failed = failed_report(error, version)
            write_report(path, failed if before is None else [*before, failed])
        raise
