"""Rollbacks as a record in the registry: floating tags a maintainer held at a release.

`matrix promote --version 2.11.4` (or a publish with --latest / --no-latest) moves
floating tags back by hand. That decision is written next to the tags it concerns:
one small OCI artifact per repository under the reserved tag ``matrix-holds``, its
manifest's annotation a JSON table of floating tag -> the release it is held at, by
whom, when, and the newest release of the tag's line at that moment. The artifact
has no layer of its own (the empty ``{}`` descriptor), so reading it is one manifest
GET and no blob.

Every run that is not by hand honours the table: publish, refresh, `missing` and
`verify` leave a held tag alone (its change is ``held``), as long as the release they
plan is no newer than the newest of the line at rollback time. A newer release takes
the tag over and clears its entry; so does a promote forward (a promote of the newest
release of the tag's line). The entry is written before the tags move and cleared
before they move forward, so an interrupted run leaves no tag that a rerun would fight.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

from packaging.version import Version

from matrix.plan import Plan, TagKind, TagTarget
from matrix.publish.reconcile import LEFT_ALONE, Action, Change
from matrix.reference import ImageReference
from matrix.versions import Kind, kind, parse_version

HOLDS_TAG = "matrix-holds"  # reserved in every release repository; never a release's tag
ARTIFACT_TYPE = "application/vnd.prefect.matrix.holds.v1+json"
ANNOTATION = "io.prefect.matrix.holds"
_EMPTY = b"{}"
_EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
_MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
HOLDABLE = (TagKind.MINOR, TagKind.MAJOR, TagKind.LATEST)


@dataclass(frozen=True)
class Hold:
    """A floating tag held at ``version`` by hand; releases up to ``newest`` leave it."""

    version: str
    newest: str  # the newest release of the tag's line when it was held
    by: str
    at: str  # ISO 8601, UTC

    def keeps(self, version: str) -> bool:
        """Whether a run of ``version`` (not by hand) must leave the tag alone."""
        return parse_version(version) <= parse_version(self.newest)

    def describe(self) -> str:
        return f"held at {self.version} by {self.by} at {self.at} (newest then: {self.newest})"


Holds = dict[str, Hold]  # tag -> its hold, for one repository
Table = dict[tuple[str, str], Holds]  # (registry, repository) -> its holds


def holdable(target: TagTarget) -> bool:
    return target.kind in HOLDABLE


def repositories_of(plan: Plan) -> list[str]:
    """The repositories where ``plan`` writes a tag that can be held."""
    return sorted({t.repository for t in plan.targets if holdable(t)})


def read_holds(client, registry: str, repository: str, tags: Iterable[str] | None = None) -> Holds:
    """The holds of one repository: nothing when ``tags`` (its tag list, if read
    already) lack the reserved tag, else one manifest GET."""
    from matrix.errors import UserError
    from matrix.registry import RegistryError

    ref = ImageReference(registry, repository, HOLDS_TAG)
    if tags is not None and HOLDS_TAG not in tags:
        return {}
    # A HEAD first: on Docker Hub it is free, a GET counts as a pull.
    if tags is None and client.head_manifest(ref) is None:
        return {}
    try:
        manifest = client.get_manifest(ref)
    except RegistryError as error:
        if error.status == 404:
            return {}
        raise
    try:
        document = json.loads(manifest.content)
        table = json.loads(document["annotations"][ANNOTATION])
        return {tag: Hold(**entry) for tag, entry in table["tags"].items()}
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(
            f"{ref} is not a holds record of matrix ({error}); the tag {HOLDS_TAG} is "
            "reserved: move what is there away"
        ) from None


def read_table(client, registries: Sequence[str], repositories: Sequence[str]) -> Table:
    """Every (registry, repository)'s holds: a HEAD each, and a GET where there are."""
    pairs = [(r, repo) for r in registries for repo in repositories]
    found = client.map(lambda pair: read_holds(client, *pair), pairs)
    return dict(zip(pairs, found, strict=True))


def write_holds(client, registry: str, repository: str, holds: Mapping[str, Hold]) -> None:
    """Replace the repository's record with ``holds`` (an empty table clears it)."""
    ref = ImageReference(registry, repository, HOLDS_TAG)
    client.upload_blob(ref, _EMPTY)
    empty = {"mediaType": _EMPTY_TYPE, "digest": _empty_digest(), "size": len(_EMPTY)}
    table = {"tags": {tag: asdict(hold) for tag, hold in sorted(holds.items())}}
    document = {
        "schemaVersion": 2,
        "mediaType": _MANIFEST_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": empty,
        "layers": [empty],
        "annotations": {ANNOTATION: json.dumps(table, sort_keys=True)},
    }
    client.put_manifest(ref, json.dumps(document, indent=2).encode(), _MANIFEST_TYPE)


def _empty_digest() -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(_EMPTY).hexdigest()


def newest_of_line(target: TagTarget, version: Version, known: Iterable[Version]) -> Version:
    """The newest final release the tag's line holds (``version`` counts): its minor
    line for a minor tag, its major for a major or N-latest tag."""
    same = [
        v
        for v in (*known, version)
        if kind(v) is Kind.FINAL
        and v.major == version.major
        and (target.kind is not TagKind.MINOR or v.minor == version.minor)
    ]
    return max(same, default=version)


@dataclass
class Judged:
    """Changes with held tags marked, and the records the run must write first."""

    changes: list[Change]
    records: Table  # (registry, repository) -> its new table, only where it changed
    notes: list[dict]  # for the report: every hold the run honoured, set or cleared


def judge(
    plan: Plan,
    changes: Sequence[Change],
    table: Mapping[tuple[str, str], Holds],
    *,
    by: str | None = None,
    known: Mapping[str, Sequence[Version]] | None = None,
    now: datetime | None = None,
) -> Judged:
    """Apply the holds of ``table`` to ``changes`` (each naming its registry).

    Not by hand (``by`` None): a held tag's write becomes ``held``, unless the plan is
    newer than the newest of the line at rollback time, which clears the hold. By hand
    (``by``: who): every floating tag moved back behind the newest release of its line
    (``known``: registry -> the releases it holds) is held at the plan's release, and
    every one moved to the newest is cleared.
    """
    version = parse_version(plan.version)
    at = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    new: Table = {}
    notes: list[dict] = []
    judged: list[Change] = []
    for change in changes:
        target = change.target
        key = (change.registry, target.repository)
        holds = new.get(key, table.get(key, {}))
        hold = holds.get(target.tag)
        if not holdable(target) or plan.kind is not Kind.FINAL:
            judged.append(change)
            continue
        if by is not None:
            newest = newest_of_line(target, version, (known or {}).get(change.registry, ()))
            if version < newest:
                held = Hold(plan.version, str(newest), by, at)
                if hold is None or (hold.version, hold.newest) != (held.version, held.newest):
                    new[key] = {**holds, target.tag: held}
                    notes.append(_note(change, held, "recorded"))
            elif hold is not None:
                new[key] = {t: h for t, h in holds.items() if t != target.tag}
                notes.append(_note(change, hold, "released"))
            judged.append(change)
        elif hold is not None and hold.keeps(plan.version):
            # A refresh has already left the tag alone (it did not follow the image): it
            # is held all the same, and said so.
            if change.action is not Action.KEEP or change.reason == LEFT_ALONE:
                change = replace(change, action=Action.HELD, reason=hold.describe())
                notes.append(_note(change, hold, "held"))
            judged.append(change)
        else:
            if hold is not None:
                new[key] = {t: h for t, h in holds.items() if t != target.tag}
                notes.append(_note(change, hold, "released"))
            judged.append(change)
    return Judged(judged, new, notes)


def _note(change: Change, hold: Hold, state: str) -> dict:
    return {
        "registry": change.registry,
        "repository": change.target.repository,
        "tag": change.target.tag,
        "state": state,
    } | asdict(hold)


def held_changes(changes: Iterable[Change]) -> list[Change]:
    return [c for c in changes if c.action is Action.HELD]


def operator(environ: Mapping[str, str]) -> str:
    """Who a run acts for, as the record of a rollback names them: the GitHub actor and
    the run, or the local user."""
    actor = environ.get("GITHUB_ACTOR")
    if actor:
        run = environ.get("GITHUB_RUN_ID")
        where = f"{environ.get('GITHUB_SERVER_URL', 'https://github.com')}/" + (
            f"{environ.get('GITHUB_REPOSITORY', '')}/actions/runs/{run}"
        )
        return f"{actor} ({where})" if run and environ.get("GITHUB_REPOSITORY") else actor
    return environ.get("USER") or environ.get("LOGNAME") or "an unnamed operator"
