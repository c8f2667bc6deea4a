"""The registry client: auth, manifests, tags, blobs and copies over the registry HTTP API.

Layers, bottom up: `answers` (size limits and typed models of what registries send),
`hosts` (one record per registry host: endpoint, scheme, credentials, rate budget,
timeouts), `auth` (an ``httpx.Auth`` flow), `transport` (sessions, retries, timeouts, errors),
`client` (the v2 calls), `ensure` (the one write primitive) with its sources (a
registry repository, an OCI layout folder in `layout`), and `copy` (retag, copy,
index assembly, all written through ``ensure``).

Timeouts: ``MATRIX_REGISTRY_CONNECT_TIMEOUT`` (10 s) and ``MATRIX_REGISTRY_READ_TIMEOUT``
(30 s); every retry is said on stderr as a ``matrix: ...`` line.

Credentials (see `matrix.registry.credentials`): ``MATRIX_REGISTRY_USERNAME`` and
``MATRIX_REGISTRY_PASSWORD`` (optionally limited to the hosts in
``MATRIX_REGISTRY_HOSTS``), then ``DOCKER_AUTH_CONFIG``, then docker's
``config.json`` (``$DOCKER_CONFIG`` or ``~/.docker``) with its credential helpers.

Requests are paced by a rate budget per registry (`matrix.registry.ratelimit`):
Docker Hub's published pull limit until its ``ratelimit-*`` headers say otherwise,
and a pause for every request to a registry that answered 429.
"""

from matrix.registry.client import Manifest, RegistryClient
from matrix.registry.copy import TagChange, assemble_index, copy, copy_content, plan_retag, retag
from matrix.registry.credentials import Credentials, find_credentials
from matrix.registry.ensure import Overtaken, RegistrySource, Source, ensure, ensure_content
from matrix.registry.errors import AuthenticationError, CredentialsError, RegistryError
from matrix.registry.hosts import RegistryHost, RegistryHosts, Timeouts, check_registry_host
from matrix.registry.layout import LayoutSource, push_layout
from matrix.registry.manifests import Descriptor, Platform
from matrix.registry.ratelimit import RateBudget, RateLimit, parse_quota
from matrix.registry.transport import RequestCounter, RetryNotice, RetryPolicy

__all__ = [
    "AuthenticationError",
    "Credentials",
    "CredentialsError",
    "Descriptor",
    "LayoutSource",
    "Manifest",
    "Overtaken",
    "Platform",
    "RateBudget",
    "RateLimit",
    "RegistryClient",
    "RegistryError",
    "RegistryHost",
    "RegistryHosts",
    "RegistrySource",
    "RequestCounter",
    "RetryNotice",
    "RetryPolicy",
    "Source",
    "TagChange",
    "Timeouts",
    "assemble_index",
    "check_registry_host",
    "copy",
    "copy_content",
    "ensure",
    "ensure_content",
    "find_credentials",
    "parse_quota",
    "plan_retag",
    "push_layout",
    "retag",
]
