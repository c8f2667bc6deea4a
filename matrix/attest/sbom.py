"""The SBOM of a platform image: CycloneDX 1.6 JSON, written with cyclonedx-python-lib.

Python packages come from the cell's lock (names, versions and every hash the lock
allows), Debian packages from the image's own dpkg status file. Each component has a
package URL (``pkg:pypi/anyio@3.7.1``, ``pkg:deb/debian/bash@5.2.15-2?arch=amd64``),
which is also how `python_packages` reads an SBOM back, be it matrix's CycloneDX or
the SPDX document BuildKit writes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cyclonedx.model import HashAlgorithm, HashType
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL
from packaging.utils import canonicalize_name

from matrix.lock import _entries, pins

SBOM_MEDIA_TYPE = "application/vnd.cyclonedx+json"
_HASH_RE = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    sha256: tuple[str, ...] = ()
    architecture: str = ""  # Debian's, for dpkg packages


def lock_packages(text: str) -> list[Package]:
    """Every package a lock pins, with the sha256 hashes it accepts for it."""
    versions = pins(text)
    found = []
    for entry in _entries(text):
        first = entry.splitlines()[0]
        if first.startswith("-"):
            continue
        name = str(canonicalize_name(re.split(r"[\s=@;\[]", first, maxsplit=1)[0]))
        if name in versions:
            found.append(Package(name, versions[name], tuple(_HASH_RE.findall(entry))))
    return sorted(found, key=lambda p: p.name)


def dpkg_packages(status: str) -> list[Package]:
    """The installed packages of a dpkg status file (its stanzas whose Status ends in
    ``installed``)."""
    found = []
    for stanza in status.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line[:1].isspace() or ":" not in line:
                continue
            name, _, value = line.partition(":")
            fields[name.strip()] = value.strip()
        if fields.get("Package") and fields.get("Status", "").endswith(" installed"):
            found.append(
                Package(
                    fields["Package"], fields.get("Version", ""), (), fields.get("Architecture", "")
                )
            )
    return sorted(found, key=lambda p: (p.name, p.architecture))


def _python_component(package: Package) -> Component:
    purl = PackageURL("pypi", None, package.name, package.version)
    return Component(
        type=ComponentType.LIBRARY,
        name=package.name,
        version=package.version,
        purl=purl,
        bom_ref=str(purl),
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=h) for h in package.sha256],
    )


def _debian_component(package: Package) -> Component:
    qualifiers = {"arch": package.architecture} if package.architecture else None
    purl = PackageURL("deb", "debian", package.name, package.version, qualifiers)
    return Component(
        type=ComponentType.LIBRARY,
        name=package.name,
        version=package.version,
        purl=purl,
        bom_ref=str(purl),
    )


def image_sbom(
    image: str,
    digest: str,
    python: Iterable[Package],
    debian: Iterable[Package],
    created: datetime,
) -> bytes:
    """The CycloneDX document of the image ``image@digest``. Its serial number comes from
    the digest and its time is ``created``, so the same image gets the same document."""
    bom = Bom(serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"{image}@{digest}"))
    bom.metadata.timestamp = created
    root = Component(
        type=ComponentType.CONTAINER,
        name=image,
        version=digest,
        bom_ref=f"{image}@{digest}",
    )
    bom.metadata.component = root
    components = [_python_component(p) for p in python]
    components += [_debian_component(p) for p in debian]
    bom.components.update(components)
    # The image holds every package directly: the graph names them as its dependencies.
    bom.register_dependency(root, components)
    return JsonV1Dot6(bom).output_as_string(indent=2).encode() + b"\n"


def python_packages(document: dict[str, Any]) -> dict[str, str]:
    """Package -> version of every ``pkg:pypi`` package an SBOM lists: CycloneDX
    components, or SPDX packages' purl references (as BuildKit's scanner writes them)."""
    purls: list[str] = [c.get("purl", "") for c in document.get("components") or []]
    for package in document.get("packages") or []:
        purls += [
            ref.get("referenceLocator", "")
            for ref in package.get("externalRefs") or []
            if ref.get("referenceType") == "purl"
        ]
    found = {}
    for text in purls:
        if not text.startswith("pkg:pypi/"):
            continue
        purl = PackageURL.from_string(text)
        found[str(canonicalize_name(purl.name))] = purl.version or ""
    return found
