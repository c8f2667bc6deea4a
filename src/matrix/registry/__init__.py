"""The registry client: auth, manifests, tags, blobs and copies over the registry HTTP API.

Credentials (see `matrix.registry.credentials`): ``MATRIX_REGISTRY_USERNAME`` and
``MATRIX_REGISTRY_PASSWORD`` (optionally limited to the hosts in
``MATRIX_REGISTRY_HOSTS``), then ``DOCKER_AUTH_CONFIG``, then docker's
``config.json`` (``$DOCKER_CONFIG`` or ``~/.docker``) with its credential helpers.
"""

from matrix.registry.client import Manifest, RegistryClient, RequestCounter, RetryPolicy
from matrix.registry.copy import TagChange, assemble_index, copy, copy_content, plan_retag, retag
from matrix.registry.credentials import Credentials, find_credentials
from matrix.registry.errors import AuthenticationError, CredentialsError, RegistryError
from matrix.registry.manifests import Descriptor, Platform

__all__ = [
    "AuthenticationError",
    "Credentials",
    "CredentialsError",
    "Descriptor",
    "Manifest",
    "Platform",
    "RegistryClient",
    "RegistryError",
    "RequestCounter",
    "RetryPolicy",
    "TagChange",
    "assemble_index",
    "copy",
    "copy_content",
    "find_credentials",
    "plan_retag",
    "retag",
]
