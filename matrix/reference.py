"""Image references, parsed and normalized the way the docker CLI does it.

Grammar (distribution/reference): ``name [":" tag] ["@" digest]`` with
``name := [domain "/"] path``. Normalization follows ``ParseNormalizedNamed``:
the text before the first ``/`` is a registry only if it contains ``.`` or ``:``,
is ``localhost``, or has an uppercase letter; otherwise the registry is
``docker.io`` and a one-component path on Docker Hub gets ``library/``.
No default tag is added: ``tag`` and ``digest`` are None when absent.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from matrix.errors import InvalidReference, UserError

DOCKER_HUB = "docker.io"
_LEGACY_HUB = "index.docker.io"

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_HOST_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_HOST = rf"(?:{_HOST_COMPONENT}(?:\.{_HOST_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
# ASCII only: in Python `\w` would also accept non-ASCII letters.
TAG_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_REFERENCE_RE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH})"
    rf"(?::(?P<tag>{TAG_PATTERN}))?(?:@(?P<digest>{_DIGEST}))?"
)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_MAX_PATH_LENGTH = 255


@dataclass(frozen=True, slots=True)
class ImageReference:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository``, the fully qualified name without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What the registry API calls the reference: the digest if any, else the tag."""
        if self.digest:
            return self.digest
        if self.tag:
            return self.tag
        raise ValueError(f"{self} has neither tag nor digest")

    def with_tag(self, tag: str) -> ImageReference:
        return ImageReference(self.registry, self.repository, tag, None)

    def with_digest(self, digest: str) -> ImageReference:
        return ImageReference(self.registry, self.repository, None, validate_digest(digest))

    @property
    def familiar(self) -> str:
        """The short form docker prints: ``ubuntu:22.04`` for ``docker.io/library/ubuntu``."""
        name = self.name
        if self.registry == DOCKER_HUB:
            name = self.repository.removeprefix("library/")
        return name + self._suffix()

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()


def parse_reference(text: str) -> ImageReference:
    """Parse and normalize an image reference; raise InvalidReference like docker would."""
    if not isinstance(text, str) or not text:
        raise InvalidReference("invalid reference: empty image reference")
    if _IDENTIFIER_RE.fullmatch(text):
        raise InvalidReference(
            f"invalid reference {text!r}: cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_domain(text)
    match = _REFERENCE_RE.fullmatch(f"{domain}/{remainder}")
    if match is None:
        lowered = _REFERENCE_RE.fullmatch(f"{domain}/{remainder}".lower())
        reason = "repository name must be lowercase" if lowered else "invalid reference format"
        raise InvalidReference(f"invalid reference {text!r}: {reason}")
    if match["domain"] != domain:
        # The regex fell back to reading the domain as a path component (an `_` in
        # a host, say): docker would then send the request to the wrong place.
        raise InvalidReference(f"invalid reference {text!r}: invalid registry host {domain!r}")
    path = match["path"]
    if len(path) > _MAX_PATH_LENGTH:
        raise InvalidReference(
            f"invalid reference {text!r}: repository name must not be more than "
            f"{_MAX_PATH_LENGTH} characters"
        )
    digest = match["digest"]
    if digest is not None:
        digest = _validate_digest(digest, text)
    return ImageReference(domain, path, match["tag"], digest)


def validate_digest(digest: str) -> str:
    """Check a content digest (``sha256:<64 lowercase hex>``) and return it."""
    if not re.fullmatch(_DIGEST, digest or ""):
        raise InvalidReference(f"invalid digest {digest!r}: invalid checksum digest format")
    return _validate_digest(digest, digest)


def _validate_digest(digest: str, text: str) -> str:
    algorithm, _, hex_part = digest.partition(":")
    expected = _DIGEST_HEX_LENGTH.get(algorithm)
    if expected is None:
        raise InvalidReference(f"invalid reference {text!r}: unsupported digest algorithm")
    if len(hex_part) != expected:
        raise InvalidReference(f"invalid reference {text!r}: invalid checksum digest length")
    if hex_part != hex_part.lower():
        raise InvalidReference(f"invalid reference {text!r}: invalid checksum digest format")
    return digest


def _split_domain(text: str) -> tuple[str, str]:
    head, slash, tail = text.partition("/")
    is_domain = slash and (
        "." in head or ":" in head or head == "localhost" or head.lower() != head
    )
    if not is_domain:
        domain, remainder = DOCKER_HUB, text
    else:
        domain, remainder = head, tail
    if domain == _LEGACY_HUB:
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in remainder:
        remainder = f"library/{remainder}"
    return domain, remainder


_HOST_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def check_registry_host(text: str) -> str:
    """``text`` if it is a registry's HOST[:PORT] as image references name one (a DNS
    name, an IPv4 address or a bracketed IPv6 one; a port of 1-65535), else a
    UserError saying what is wrong. The one check of a host, wherever it is given."""
    problem = _host_problem(text) or _reference_problem(text)
    if problem:
        raise UserError(
            f"expected a registry host like 'ghcr.io' or 'host:5000', got {text!r}, "
            f"which is not a registry HOST[:PORT]: {problem}"
        )
    return text


def _reference_problem(text: str) -> str | None:
    try:
        named = parse_reference(f"{text}/x").registry
    except InvalidReference:
        named = None
    if named != text:
        return "an image reference would not take it for a registry (a dot, a port or localhost)"
    return None


def _host_problem(text: str) -> str | None:
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            return "an IPv6 address needs its closing ]"
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{host!r} is not an IPv6 address"
        if rest and not rest.startswith(":"):
            return "only :PORT may follow the address"
        port = rest[1:] if rest else None
    else:
        host, colon, port_text = text.partition(":")
        port = port_text if colon else None
        if "://" in text or "/" in text:
            return "give the host alone, without scheme or path"
        labels = host.split(".")
        if not host or not all(_HOST_LABEL.match(label) for label in labels):
            return "a host is letters, digits, hyphens and dots"
    if port is not None and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        return f"the port {port!r} is not a number from 1 to 65535"
    return None
