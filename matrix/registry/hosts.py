"""One record per registry host: where its API answers and over which scheme, whose
credentials it takes, how fast it may be asked, and how long to wait for it.

The run's settings (`matrix.settings.Registries`) make one `RegistryHosts` table from
the command line, and every reader and writer (the client and its transport, the
build engines, the base mirrors) takes what it needs to know about a host from it.
A host the command line never named (a base image's registry, say) gets its record
by the same rules, so plain HTTP, endpoints, credentials, pacing and timeouts are
each decided here and nowhere else.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

import httpx

from matrix.errors import UserError
from matrix.reference import check_registry_host
from matrix.registry.credentials import Credentials, find_credentials
from matrix.registry.ratelimit import DEFAULT_RATE_LIMITS, RateLimit

CONNECT_TIMEOUT_VARIABLE = "MATRIX_REGISTRY_CONNECT_TIMEOUT"
READ_TIMEOUT_VARIABLE = "MATRIX_REGISTRY_READ_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
# A request that went unanswered is tried once more with this read timeout at most:
# a fresh connection to a live registry answers within it, a hung one costs no
# second full read timeout.
RETRY_READ_TIMEOUT = 5.0

# Docker Hub's references say docker.io; its API lives elsewhere.
DEFAULT_ENDPOINTS: Mapping[str, str] = {"docker.io": "registry-1.docker.io"}


CredentialSource = Callable[[str], Credentials | None]  # host -> its credentials, or None


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds to wait for a connection, and for each read of an answer."""

    connect: float = DEFAULT_CONNECT_TIMEOUT
    read: float = DEFAULT_READ_TIMEOUT

    @classmethod
    def resolve(
        cls,
        connect: float | None = None,
        read: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Timeouts:
        """Arguments over ``MATRIX_REGISTRY_*_TIMEOUT`` over the defaults."""
        environ = os.environ if environ is None else environ
        return cls(
            _seconds_setting(connect, CONNECT_TIMEOUT_VARIABLE, environ, DEFAULT_CONNECT_TIMEOUT),
            _seconds_setting(read, READ_TIMEOUT_VARIABLE, environ, DEFAULT_READ_TIMEOUT),
        )

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(self.read, connect=self.connect)

    def after_no_answer(self) -> httpx.Timeout:
        """The timeouts of a request tried again after one went unanswered."""
        return httpx.Timeout(
            self.read, connect=self.connect, read=min(self.read, RETRY_READ_TIMEOUT)
        )


def _seconds_setting(
    given: float | None, variable: str, environ: Mapping[str, str], default: float
) -> float:
    if given is not None:
        value, source = given, f"a timeout of {given!r}"
    elif environ.get(variable, "").strip():
        text = environ[variable].strip()
        source = f"{variable}={text!r}"
        try:
            value = float(text)
        except ValueError:
            raise UserError(f"{source}: expected a number of seconds, such as 10") from None
    else:
        return default
    if not 0 < value < float("inf"):
        raise UserError(f"{source}: expected a number of seconds greater than 0")
    return value


@dataclass(frozen=True)
class RegistryHost:
    """Everything about reaching one registry host."""

    host: str  # as image references name it: docker.io, ghcr.io, 127.0.0.1:5000
    endpoint: str  # where its API answers
    plain_http: bool  # loopback or named insecure; everything else is verified TLS
    rate_limit: RateLimit | None  # the pacing assumed until its answers say more
    timeouts: Timeouts = Timeouts()
    # Looked up at first use, never stored with the record.
    credentials: CredentialSource = field(default=find_credentials, repr=False, compare=False)

    @property
    def scheme(self) -> str:
        return "http" if self.plain_http else "https"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.endpoint}"

    def find_credentials(self) -> Credentials | None:
        return self.credentials(self.host)


@dataclass(frozen=True)
class RegistryHosts:
    """The rules every registry host is reached by; ``hosts[name]`` is its record."""

    insecure: frozenset[str] = frozenset()  # named plain-HTTP besides loopback
    endpoints: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ENDPOINTS))
    rate_limits: Mapping[str, RateLimit | None] = field(
        default_factory=lambda: dict(DEFAULT_RATE_LIMITS)
    )
    timeouts: Timeouts = field(default_factory=Timeouts.resolve)
    credentials: CredentialSource = field(default=find_credentials, repr=False, compare=False)

    @classmethod
    def of(
        cls,
        *,
        insecure: Iterable[str] = (),
        endpoints: Mapping[str, str] = DEFAULT_ENDPOINTS,
        rate_limits: Mapping[str, RateLimit | None] = DEFAULT_RATE_LIMITS,
        timeouts: Timeouts | None = None,
        credentials: CredentialSource = find_credentials,
    ) -> RegistryHosts:
        """The table, every insecure host checked."""
        return cls(
            frozenset(check_registry_host(host) for host in insecure),
            dict(endpoints),
            dict(rate_limits),
            timeouts or Timeouts.resolve(),
            credentials,
        )

    def __getitem__(self, host: str) -> RegistryHost:
        endpoint = self.endpoints.get(host, host)
        return RegistryHost(
            host,
            endpoint,
            plain_http=speaks_plain_http(host, self.insecure, endpoint),
            rate_limit=self.rate_limits.get(host),
            timeouts=self.timeouts,
            credentials=self.credentials,
        )


def speaks_plain_http(
    host: str, insecure: Collection[str] = (), endpoint: str | None = None
) -> bool:
    """Whether matrix talks plain HTTP to ``host``: its endpoint is loopback, or the
    command line named it insecure. The one place that is decided."""
    return is_loopback(endpoint or host) or host in insecure


def is_loopback(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
