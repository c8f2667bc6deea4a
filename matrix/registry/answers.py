"""What registries send back: the size each answer may have, and a typed model for each JSON.

A registry (or something posing as one: a captive portal, a proxy's error page, a
broken mirror) may answer anything. Every body is read up to a limit and every JSON
is validated against its model, so a bad answer becomes one `BadAnswer` saying what
was wrong, never a traceback, a 400 MB read or a tag list made of letters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

KIB = 1024
MIB = 1024 * KIB

# distribution refuses to store a manifest over 4 MiB, so no real one is larger.
MANIFEST_LIMIT = 4 * MIB
# A page of tags: Docker Hub's busiest repositories list tens of thousands of tags
# (about 30 bytes each) on one page; 16 MiB leaves room for far more.
TAG_LIST_LIMIT = 16 * MIB
# A token answer carries a JWT (a few kB) and maybe a refresh token.
TOKEN_LIMIT = 1 * MIB
# Error bodies are read for their first error only; larger ones are cut, not refused.
ERROR_LIMIT = 64 * KIB
# Everything else a registry answers has no body worth reading (ping, uploads).
SMALL_LIMIT = 64 * KIB

_DIGEST_PATTERN = r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"


class BadAnswer(ValueError):
    """An answer that is not what the registry protocol says; the text says how."""


class TooLarge(BadAnswer):
    """An answer larger than its limit; reading stopped there."""


def size_text(limit: int) -> str:
    if limit % MIB == 0:
        return f"{limit // MIB} MiB"
    return f"{limit // KIB} KiB"


def read_limited(chunks: Iterator[bytes], limit: int, declared: str | None = None) -> bytes:
    """Join ``chunks`` (a streamed body) while they fit in ``limit`` bytes.

    A ``Content-Length`` over the limit is refused before a byte is read; a body that
    grows past it is refused at the first chunk that crosses it.
    """
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise TooLarge(f"the answer is {declared} bytes, over the {size_text(limit)} limit")
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"the answer is larger than the {size_text(limit)} limit")
    return bytes(body)


def read_response(response: httpx.Response, limit: int, *, cut: bool = False) -> bytes:
    """A streamed response's body within ``limit`` (TooLarge past it, or with ``cut``
    the first ``limit`` bytes and the rest left unread).

    The body then counts as read: httpx reads every answer an auth flow has seen
    before sending the next request, and would otherwise read it whole (or fail on
    a stream already consumed).
    """
    declared = (
        None if cut or response.request.method == "HEAD" else response.headers.get("content-length")
    )
    try:
        body = read_limited(response.iter_bytes(), limit, declared)
    except TooLarge:
        response.close()
        if not cut:
            raise
        body = b""
    response._content = body  # what Response.read() returns from now on
    return body


class _Answer(BaseModel):
    # Registries add fields of their own; only the ones matrix reads are checked.
    model_config = ConfigDict(extra="ignore", frozen=True)


class ErrorDetail(_Answer):
    code: str = ""
    message: str = ""


class ErrorBody(_Answer):
    """``{"errors": [{"code", "message", "detail"}]}`` (distribution-spec, error codes)."""

    errors: list[ErrorDetail] = []


class TagList(_Answer):
    """``GET /v2/<name>/tags/list``; distribution 2.8 sends ``"tags": null`` when empty."""

    name: str | None = None
    tags: list[str] | None = None


class TokenAnswer(_Answer):
    """A token service's answer (docker token spec; OAuth2 names it access_token)."""

    token: str | None = None
    access_token: str | None = None
    expires_in: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _has_a_token(self) -> TokenAnswer:
        if not (self.token or self.access_token):
            raise ValueError("no token or access_token")
        return self

    @property
    def value(self) -> str:
        return self.token or self.access_token or ""


class PlatformModel(_Answer):
    os: str
    architecture: str
    variant: str | None = None


class DescriptorModel(_Answer):
    mediaType: str = ""
    digest: str = Field(pattern=_DIGEST_PATTERN)
    size: int = Field(ge=0)
    platform: PlatformModel | None = None
    annotations: dict[str, str] | None = None


class ImageManifestModel(_Answer):
    """An OCI image manifest or a Docker v2 schema 2 manifest."""

    schemaVersion: Literal[2]
    mediaType: str | None = None
    config: DescriptorModel
    layers: list[DescriptorModel]
    annotations: dict[str, str] | None = None


class IndexModel(_Answer):
    """An OCI index or a Docker manifest list."""

    schemaVersion: Literal[2]
    mediaType: str | None = None
    manifests: list[DescriptorModel]
    annotations: dict[str, str] | None = None


M = TypeVar("M", bound=BaseModel)


def parse_answer(model: type[M], body: bytes, content_type: str = "") -> M:
    """``body`` as ``model``; a BadAnswer naming the first thing that does not fit."""
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise BadAnswer(_describe(error, body, content_type)) from None


def _describe(error: ValidationError, body: bytes, content_type: str) -> str:
    first: dict[str, Any] = error.errors(include_url=False, include_input=False)[0]
    if first["type"] in ("json_invalid", "json_type"):
        kind = f"{content_type}, " if content_type else ""
        return f"not valid JSON ({kind}starts {_start(body)})"
    where = ".".join(str(part) for part in first["loc"])
    return f"{where or 'the answer'}: {first['msg'].lower()}"


def _start(body: bytes) -> str:
    if not body:
        return "empty"
    text = body[:40].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text)
    return repr(text + ("..." if len(body) > 40 else ""))
