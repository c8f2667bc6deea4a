"""Prefect's 2.x and 3.x release history, in publish order, for tests and benchmarks.

Built from how Prefect releases rather than stored as a list: each minor line
publishes its patches in order; 3.0.0 was preceded by twenty release candidates;
from 3.0.5 on, nightlies X.Y.Z.dev1, dev2, ... come before the final X.Y.Z (and a
patch may get nightlies but never a final, when the next minor came first). The 2.x
patches published after 3.0.0rc1 (2.19.4 on) are spread evenly through the 3.x
releases, as they were published between them. The counts are those of Prefect's
release tags up to 3.8.4.dev6 (763 releases), then of the package index through
3.9.1 (uploaded 2026-10-30): 807 releases. The tags 2.6.9.post1 and 2.6.10 are
not among them: they mark a fork's test commit ("Disable dockerhub stuff for
testing", 15e84512e2) and were never uploaded to the package index.

Beside the history, what the package index says of each release (read 2026-12-04,
PEP 691 JSON): its Requires-Python, and which releases it lacks a distribution of.
"""

from __future__ import annotations

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from matrix.index import IndexFacts, PackageRelease

# Finals per 2.x minor line: 2.0.0-2.0.4, 2.1.0-2.1.1, ...
FINALS_2X = (5, 2, 1, 3, 6, 1, 10, 13, 8, 1, 22, 6, 2, 9, 22, 1, 10, 2, 4, 10, 28)
# The last 2.x release published before 3.0.0rc1.
LAST_2X_BEFORE_3X = "2.19.3"
RELEASE_CANDIDATES_3_0_0 = 20
# Per 3.x minor line: the number of finals, and the nightlies before each patch
# (index = patch; an index past the last final is a patch that got only nightlies).
LINES_3X = {
    0: (12, "0 0 0 0 0 4 0 0 0 3 0 10 3"),
    1: (16, "0 6 2 5 0 5 9 4 1 3 3 5 5 6 4 6 7"),
    2: (16, "0 0 2 0 0 0 0 1 4 0 4 0 4 4 4 9 1"),
    3: (8, "0 0 2 1 3 4 4 1 4"),
    4: (26, "0 5 5 2 2 5 2 9 8 5 1 5 4 3 4 4 6 0 5 5 2 5 0 3 5 5 6"),
    5: (1, "0 4"),
    6: (30, "0 1 1 3 1 7 5 9 3 1 5 5 5 2 7 0 7 6 6 3 5 5 8 4 5 7 6 5 6 4 4"),
    7: (9, "0 9 5 7 4 6 4 2 4 7"),
    8: (9, "0 5 6 3 7 6 5 7 4 7"),
    9: (2, "0 5"),
}

INDEX = "https://pypi.org/simple"
# prefect's Requires-Python from each release on, in PEP 440 order.
REQUIRES_PYTHON = (
    ("2.0.0", ">=3.7"),
    ("2.10.20", ">=3.8"),
    ("3.0.0rc1", ">=3.9"),
    ("3.2.16.dev1", "<3.14,>=3.9"),
    ("3.4.25", "<3.15,>=3.9"),
    ("3.4.26.dev3", "<3.15,>=3.10"),
    ("3.8.9.dev1", "<3.15,>=3.11"),
    ("3.9.0", "<3.16,>=3.11"),
)
# Releases of the history the index has no prefect of (2.7.4 and 2.7.5 are yanked).
PREFECT_NOT_ON_INDEX = [
    "2.7.4",
    "2.7.5",
    "2.14.7",
    "3.0.11.dev9",
    "3.2.13.dev1",
    "3.2.14.dev4",
    "3.6.5.dev5",
    "3.6.5.dev6",
    "3.6.5.dev7",
    "3.6.6.dev1",
    "3.6.6.dev2",
    "3.6.6.dev3",
    "3.6.6.dev4",
    "3.6.6.dev5",
    "3.6.7.dev1",
    "3.6.7.dev2",
    "3.6.7.dev4",
    "3.6.7.dev5",
    "3.6.7.dev6",
    "3.6.7.dev7",
    "3.6.7.dev8",
    "3.6.7.dev9",
    "3.6.8.dev1",
    "3.6.8.dev2",
    "3.6.9.dev1",
    "3.6.10.dev1",
    "3.6.10.dev2",
    "3.6.10.dev3",
    "3.6.10.dev4",
    "3.6.10.dev5",
    "3.6.11.dev1",
    "3.6.11.dev2",
    "3.6.11.dev3",
    "3.6.11.dev4",
    "3.6.11.dev5",
    "3.6.12.dev1",
    "3.6.12.dev2",
    "3.6.12.dev3",
    "3.6.12.dev4",
    "3.6.12.dev5",
    "3.6.13.dev1",
    "3.6.16.dev1",
    "3.6.17.dev2",
    "3.6.17.dev3",
    "3.7.9.dev6",
    "3.7.9.dev7",
    "3.8.7.dev1",
]
# prefect-client has been uploaded since 2.14.0 (images from 3.2.15.dev5); of those
# releases it lacks these, besides the ones that lack prefect too.
CLIENT_NOT_ON_INDEX = [
    "3.2.15.dev5",
    "3.2.15.dev6",
    "3.6.13.dev2",
    "3.6.14.dev1",
    "3.6.14.dev2",
    "3.6.14.dev3",
    "3.6.14.dev4",
    "3.6.14.dev5",
    "3.6.14.dev6",
    "3.6.14.dev7",
    "3.6.16.dev2",
    "3.6.16.dev4",
    "3.6.16.dev5",
    "3.6.16.dev6",
    "3.6.16.dev7",
    "3.6.17.dev1",
    "3.6.17.dev4",
    "3.6.17.dev5",
    "3.6.17.dev6",
    "3.6.18.dev1",
    "3.6.18.dev2",
    "3.6.18.dev3",
    "3.6.18.dev4",
    "3.6.18.dev5",
    "3.6.18.dev6",
    "3.6.19.dev1",
    "3.6.19.dev2",
    "3.6.19.dev3",
    "3.6.20.dev1",
    "3.6.20.dev3",
    "3.6.20.dev4",
    "3.6.20.dev5",
    "3.6.21.dev1",
    "3.6.21.dev2",
    "3.6.21.dev3",
    "3.6.21.dev4",
    "3.6.21.dev5",
    "3.6.22.dev1",
    "3.6.22.dev2",
    "3.6.22.dev3",
    "3.6.22.dev4",
    "3.6.22.dev5",
    "3.6.22.dev6",
    "3.6.22.dev7",
    "3.6.22.dev8",
    "3.6.23.dev1",
    "3.9.1",
]
# prefect-client releases whose prefect the index lacks.
CLIENT_WITHOUT_PREFECT = ("2.14.7", "3.7.9.dev6", "3.7.9.dev7", "3.8.7.dev1")


def requires_python(version: str) -> SpecifierSet:
    """prefect's Requires-Python at ``version`` (prefect-client's is the same)."""
    release = Version(version)
    return SpecifierSet([rp for start, rp in REQUIRES_PYTHON if Version(start) <= release][-1])


def index_facts(version: str) -> IndexFacts:
    """What the package index says of ``version`` of prefect and prefect-client."""
    release = Version(version)
    rp = requires_python(version)
    prefect = version not in PREFECT_NOT_ON_INDEX
    client = (
        release >= Version("2.14.0")
        and version not in CLIENT_NOT_ON_INDEX
        and (prefect or version in CLIENT_WITHOUT_PREFECT)
    )
    return IndexFacts(
        INDEX,
        {
            "prefect": PackageRelease(prefect, rp if prefect else None),
            "prefect-client": PackageRelease(client, rp if client else None),
        },
    )


def releases_2x() -> list[str]:
    versions = []
    for minor, finals in enumerate(FINALS_2X):
        for patch in range(finals):
            versions.append(f"2.{minor}.{patch}")
    return versions


def releases_3x() -> list[str]:
    versions = [f"3.0.0rc{n}" for n in range(1, RELEASE_CANDIDATES_3_0_0 + 1)]
    for minor, (finals, nightlies) in LINES_3X.items():
        for patch, count in enumerate(int(n) for n in nightlies.split()):
            versions += [f"3.{minor}.{patch}.dev{n}" for n in range(1, count + 1)]
            if patch < finals:
                versions.append(f"3.{minor}.{patch}")
    return versions


def prefect_history() -> list[str]:
    """Every 2.x and 3.x release, oldest first, one version string each."""
    two, three = releases_2x(), releases_3x()
    cut = two.index(LAST_2X_BEFORE_3X) + 1
    history, later_2x = two[:cut], two[cut:]
    step = len(three) / len(later_2x)
    for index, version in enumerate(three):
        history.append(version)
        while later_2x and len(two) - len(later_2x) - cut < (index + 1) / step:
            history.append(later_2x.pop(0))
    return history + later_2x
