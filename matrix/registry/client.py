"""A synchronous registry client: one keep-alive connection pool per registry.

Every request goes through one place that counts it, authenticates it
(`matrix.registry.auth`), retries what is worth retrying with exponential backoff
and jitter (stamina), and turns a refusal into a `RegistryError` naming registry,
repository and reference. Plain HTTP is used only for loopback registries and the
ones named as insecure; everything else is HTTPS with verified certificates.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

import httpx
import stamina

from matrix.errors import InvalidReference
from matrix.reference import ImageReference, parse_reference
from matrix.registry.auth import RegistryAuth, refusal_reason, retry_after_seconds
from matrix.registry.credentials import Credentials, find_credentials
from matrix.registry.errors import AuthenticationError, RegistryError, TransientError
from matrix.registry.manifests import (
    ACCEPT,
    MANIFEST_TYPES,
    Descriptor,
    digest_matches,
    sha256_digest,
)
from matrix.registry.ratelimit import DEFAULT_RATE_LIMITS, RateBudgets, RateLimit, RequestsSpent

T = TypeVar("T")
R = TypeVar("R")

# Docker Hub's references say docker.io; its API lives elsewhere.
DEFAULT_ENDPOINTS: Mapping[str, str] = {"docker.io": "registry-1.docker.io"}
_BLOB_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: stamina's knobs, plus a ceiling on a server's Retry-After."""

    attempts: int = 6
    timeout: float = 120.0
    wait_initial: float = 0.2
    wait_max: float = 10.0
    wait_jitter: float = 1.0
    max_retry_after: float = 60.0


class Manifest(NamedTuple):
    content: bytes
    media_type: str
    digest: str


class RequestCounter:
    """Requests sent, in total and by method (token requests included), and how many
    of them read a blob: layers and configs are what rate limits and bills count.
    With ``budget``, ``by_method`` also tells how long the rate budget held requests
    back and how many 429s came."""

    def __init__(self, budget: RateBudgets | None = None) -> None:
        self._lock = threading.Lock()
        self._by_method: Counter[str] = Counter()
        self._blob_reads = 0
        self.budget = budget

    def record(self, request: httpx.Request) -> None:
        with self._lock:
            self._by_method[request.method] += 1
            if request.method == "GET" and "/blobs/sha" in request.url.path:
                self._blob_reads += 1

    @property
    def blob_reads(self) -> int:
        with self._lock:
            return self._blob_reads

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._by_method.values())

    @property
    def by_method(self) -> RequestsSpent:
        with self._lock:
            counts = dict(self._by_method)
        return RequestsSpent(counts, self.budget)

    def reset(self) -> None:
        with self._lock:
            self._by_method.clear()
            self._blob_reads = 0
        if self.budget is not None:
            self.budget.reset_counts()


@dataclass(frozen=True, slots=True)
class _Where:
    """What an error message names."""

    registry: str
    repository: str | None = None
    reference: str | None = None

    @classmethod
    def of(cls, ref: ImageReference, reference: str | None = None) -> _Where:
        if reference is None:
            reference = ref.digest or ref.tag
        return cls(ref.registry, ref.repository, reference)


def is_loopback(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RegistryClient:
    """Talks to any number of registries; use it as a context manager to close its pools."""

    def __init__(
        self,
        *,
        insecure_registries: Iterable[str] = (),
        endpoints: Mapping[str, str] = DEFAULT_ENDPOINTS,
        credentials: Callable[[str], Credentials | None] = find_credentials,
        retry: RetryPolicy = RetryPolicy(),
        timeout: float = 30.0,
        max_workers: int = 8,
        transport: httpx.BaseTransport | None = None,
        rate_limits: Mapping[str, RateLimit | None] = DEFAULT_RATE_LIMITS,
    ) -> None:
        self.insecure_registries = frozenset(insecure_registries)
        self.endpoints = dict(endpoints)
        self.retry = retry
        # Pacing per registry (matrix.registry.ratelimit); a 429 pauses no longer
        # than the retry policy would wait for it.
        self.budget = RateBudgets(rate_limits, max_wait=retry.max_retry_after)
        self.requests = RequestCounter(self.budget)
        self.max_workers = max_workers
        self._find_credentials = credentials
        self._timeout = timeout
        self._transport = transport  # for callers that route requests themselves
        self._sessions: dict[str, httpx.Client] = {}
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._worker = threading.local()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown()
        for session in sessions:
            session.close()

    # -- plumbing ------------------------------------------------------------------

    def base_url(self, registry: str) -> str:
        endpoint = self.endpoints.get(registry, registry)
        plain = is_loopback(endpoint) or registry in self.insecure_registries
        return f"{'http' if plain else 'https'}://{endpoint}"

    def session(self, registry: str) -> httpx.Client:
        """The registry's connection pool, created on first use."""
        with self._lock:
            session = self._sessions.get(registry)
            if session is None:
                budget = self.budget[registry]
                session = httpx.Client(
                    base_url=self.base_url(registry),
                    auth=RegistryAuth(registry, self._find_credentials(registry)),
                    timeout=self._timeout,
                    limits=httpx.Limits(
                        max_connections=self.max_workers * 2,
                        max_keepalive_connections=self.max_workers * 2,
                    ),
                    event_hooks={
                        "request": [self.requests.record, budget.before],
                        "response": [budget.after],
                    },
                    headers={"User-Agent": "matrix"},
                    transport=self._transport,
                )
                self._sessions[registry] = session
            return session

    def map(self, function: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``function`` over ``items`` on the client's bounded thread pool, in order.

        Called from a task of the pool itself, it runs inline: tasks waiting on
        tasks of the same bounded pool would deadlock it.
        """
        items = list(items)
        if len(items) <= 1 or getattr(self._worker, "busy", False):
            return [function(item) for item in items]
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.max_workers, "registry")
            executor = self._executor

        def run(item: T) -> R:
            self._worker.busy = True
            try:
                return function(item)
            finally:
                self._worker.busy = False

        return list(executor.map(run, items))

    def call(self, where: _Where, action: str, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` under the retry policy; what still fails becomes a RegistryError.

        ``attempt`` must be safe to repeat from its start: it is the unit that is
        retried (a blob upload retries POST and PUT together, say).
        """
        policy = self.retry
        try:
            for retrying in stamina.retry_context(
                on=self._should_retry,
                attempts=policy.attempts,
                timeout=policy.timeout,
                wait_initial=policy.wait_initial,
                wait_max=policy.wait_max,
                wait_jitter=policy.wait_jitter,
            ):
                with retrying:
                    return attempt()
        except TransientError as error:
            raise _error(where, f"{action}: {error.description}", status=error.status) from None
        except httpx.TransportError as error:
            reason = str(error) or type(error).__name__
            raise _error(where, f"{action}: {reason}") from None
        raise AssertionError("stamina ended without an answer")  # pragma: no cover

    def _should_retry(self, error: Exception) -> bool | float:
        if isinstance(error, TransientError):
            if error.retry_after is not None:
                return min(error.retry_after, self.retry.max_retry_after)
            return True
        return isinstance(error, httpx.TransportError) and not isinstance(
            error, httpx.UnsupportedProtocol
        )

    def send(
        self,
        where: _Where,
        method: str,
        url: str | httpx.URL,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
    ) -> httpx.Response:
        """One attempt of a request whose body is already read; 429 and 5xx raise to retry."""
        response = self.session(where.registry).request(
            method, url, headers=headers, content=content
        )
        raise_if_transient(response, method)
        return response

    def request(
        self,
        where: _Where,
        action: str,
        method: str,
        url: str | httpx.URL,
        *,
        expect: tuple[int, ...] = (200,),
        missing_ok: bool = False,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response | None:
        """Send with retries; None for a 404 when ``missing_ok``, else the expected answer."""
        response = self.call(
            where,
            action,
            lambda: self.send(where, method, url, headers=headers, content=content),
        )
        if response.status_code in expect:
            return response
        if missing_ok and response.status_code == 404:
            return None
        raise refusal(where, action, response, self.session(where.registry).auth)

    # -- the API ------------------------------------------------------------------

    def ping(self, registry: str) -> None:
        """Check that ``registry`` speaks the v2 API and accepts our credentials."""
        self.request(_Where(registry), "ping", "GET", "/v2/")

    def head_manifest(self, ref: ImageReference) -> Descriptor | None:
        """The manifest's digest, media type and size without its body; None if absent."""
        where = _Where.of(ref)
        response = self.request(
            where,
            "head manifest",
            "HEAD",
            _manifest_path(ref),
            headers={"Accept": ACCEPT},
            missing_ok=True,
        )
        if response is None:
            return None
        digest = response.headers.get("docker-content-digest")
        if not digest:
            # Old registries may leave it out of HEAD answers.
            manifest = self.get_manifest(ref)
            return Descriptor(manifest.media_type, manifest.digest, len(manifest.content))
        return Descriptor(
            _media_type(response), digest, int(response.headers.get("content-length", 0))
        )

    def get_manifest(self, ref: ImageReference) -> Manifest:
        """The manifest's exact bytes, checked against its digest."""
        where = _Where.of(ref)
        response = self.request(
            where, "get manifest", "GET", _manifest_path(ref), headers={"Accept": ACCEPT}
        )
        assert response is not None
        content = response.content
        claimed = [d for d in (ref.digest, response.headers.get("docker-content-digest")) if d]
        for digest in claimed:
            if not digest_matches(content, digest):
                raise _error(where, f"the manifest received does not match its digest {digest}")
        media_type = _media_type(response)
        if media_type not in MANIFEST_TYPES:
            raise _error(where, f"unsupported manifest media type {media_type!r}")
        return Manifest(content, media_type, claimed[0] if claimed else sha256_digest(content))

    def put_manifest(self, ref: ImageReference, content: bytes, media_type: str) -> str:
        """Store ``content`` under ``ref`` (a tag or its digest); returns its digest."""
        where = _Where.of(ref)
        digest = sha256_digest(content)
        response = self.request(
            where,
            "put manifest",
            "PUT",
            _manifest_path(ref),
            expect=(200, 201),
            headers={"Content-Type": media_type},
            content=content,
        )
        assert response is not None
        stored = response.headers.get("docker-content-digest")
        if stored and stored != digest:
            raise _error(where, f"the registry stored {stored}, not the {digest} sent")
        return digest

    def delete_manifest(self, ref: ImageReference) -> None:
        """Delete a manifest by digest (and so every tag naming it)."""
        where = _Where.of(ref)
        self.request(where, "delete manifest", "DELETE", _manifest_path(ref), expect=(202,))

    def list_tags(self, name: ImageReference | str) -> list[str]:
        """Every tag of a repository, following ``Link`` pages; [] if it does not exist."""
        ref = parse_reference(name) if isinstance(name, str) else name
        where = _Where(ref.registry, ref.repository)
        tags: list[str] = []
        url: httpx.URL | None = httpx.URL(f"/v2/{ref.repository}/tags/list")
        while url is not None:
            response = self.request(where, "list tags", "GET", url, missing_ok=True)
            if response is None:
                return []
            tags += response.json().get("tags") or []
            url = _next_page(response)
        return tags

    def blob_exists(self, ref: ImageReference, digest: str) -> bool:
        """Whether ``digest`` is a blob of ``ref``'s repository."""
        where = _Where.of(ref, digest)
        response = self.request(
            where, "head blob", "HEAD", f"/v2/{ref.repository}/blobs/{digest}", missing_ok=True
        )
        return response is not None

    def mount_blob(self, ref: ImageReference, digest: str, source_repository: str) -> bool:
        """Link a blob from another repository of the same registry; no bytes move.

        False when the registry declined (it then opened an upload session, which
        is cancelled so nothing is left half-written).
        """
        where = _Where.of(ref, digest)
        path = httpx.URL(f"/v2/{ref.repository}/blobs/uploads/").copy_merge_params(
            {"mount": digest, "from": source_repository}
        )
        response = self.request(where, "mount blob", "POST", path, expect=(201, 202))
        assert response is not None
        if response.status_code == 201:
            return True
        location = response.headers.get("location")
        if location:
            self.call(where, "cancel upload", lambda: self.send(where, "DELETE", location))
        return False

    def upload_blob(self, ref: ImageReference, content: bytes) -> str:
        """Upload bytes as a blob of ``ref``'s repository; returns its digest."""
        digest = sha256_digest(content)
        where = _Where.of(ref, digest)

        def attempt() -> httpx.Response:
            location = self._start_upload(where, ref)
            return self.send(
                where,
                "PUT",
                location.copy_merge_params({"digest": digest}),
                headers={"Content-Type": "application/octet-stream"},
                content=content,
            )

        self._expect_created(where, "upload blob", self.call(where, "upload blob", attempt))
        return digest

    def upload_blob_file(self, ref: ImageReference, path: Path, digest: str) -> None:
        """Stream a file as the blob ``digest`` of ``ref``'s repository; the registry
        checks the digest, so a file that changed under us is refused, not stored."""
        where = _Where.of(ref, digest)
        size = path.stat().st_size

        def attempt() -> httpx.Response:
            location = self._start_upload(where, ref)
            with path.open("rb") as handle:
                return self.send(
                    where,
                    "PUT",
                    location.copy_merge_params({"digest": digest}),
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(size),
                    },
                    content=iter(lambda: handle.read(_BLOB_CHUNK), b""),
                )

        self._expect_created(where, "upload blob", self.call(where, "upload blob", attempt))

    def copy_blob(self, source: ImageReference, target: ImageReference, digest: str) -> None:
        """Stream a blob from one registry to another without holding it in memory."""
        where = _Where.of(target, digest)
        source_where = _Where.of(source, digest)

        def attempt() -> httpx.Response:
            session = self.session(source.registry)
            url = f"/v2/{source.repository}/blobs/{digest}"
            with session.stream("GET", url, follow_redirects=True) as blob:
                raise_if_transient(blob, "GET")
                if blob.status_code != 200:
                    blob.read()
                    raise refusal(source_where, "read blob", blob, session.auth)
                location = self._start_upload(where, target)
                headers = {"Content-Type": "application/octet-stream"}
                if "content-length" in blob.headers:
                    headers["Content-Length"] = blob.headers["content-length"]
                response = self.session(target.registry).put(
                    location.copy_merge_params({"digest": digest}),
                    headers=headers,
                    content=blob.iter_raw(_BLOB_CHUNK),
                )
            raise_if_transient(response, "PUT")
            return response

        self._expect_created(where, "copy blob", self.call(where, "copy blob", attempt))

    def _start_upload(self, where: _Where, ref: ImageReference) -> httpx.URL:
        response = self.send(where, "POST", f"/v2/{ref.repository}/blobs/uploads/")
        if response.status_code != 202 or "location" not in response.headers:
            raise refusal(where, "start upload", response, self.session(where.registry).auth)
        # The Location may be absolute or relative, and carries a _state query to keep.
        return self.session(ref.registry).base_url.join(response.headers["location"])

    def _expect_created(self, where: _Where, action: str, response: httpx.Response) -> None:
        if response.status_code != 201:
            raise refusal(where, action, response, self.session(where.registry).auth)


def raise_if_transient(response: httpx.Response, method: str) -> None:
    status = response.status_code
    if status == 429 or status >= 500:
        response.read()
        raise TransientError(
            f"HTTP {status} to {method} {response.request.url.path}",
            status,
            retry_after_seconds(response.headers.get("retry-after")),
        )


def refusal(
    where: _Where, action: str, response: httpx.Response, auth: object | None = None
) -> RegistryError:
    """The error for an answer that will not change by asking again."""
    status = response.status_code
    code, message = _error_detail(response)
    detail = f" ({code}: {message})" if code and message else f" ({code})" if code else ""
    if status == 401:
        credentials = auth.credentials if isinstance(auth, RegistryAuth) else None
        text = _unauthorized_reason(credentials, refusal_reason(response), action)
    elif status == 403:
        text = f"access denied{detail}"
    elif status == 404:
        text = f"not found{detail}"
    else:
        text = f"HTTP {status}{detail}"
    kind = AuthenticationError if status in (401, 403) else RegistryError
    return kind(
        f"{action}: {text}",
        registry=where.registry,
        repository=where.repository,
        reference=where.reference,
        status=status,
        code=code,
    )


def _unauthorized_reason(credentials: Credentials | None, reason: str | None, action: str) -> str:
    if credentials is None:
        return (
            "authentication required: run 'docker login' or set "
            "MATRIX_REGISTRY_USERNAME and MATRIX_REGISTRY_PASSWORD"
        )
    if reason == "insufficient_scope":
        return f"user {credentials.username!r} lacks the permission to {action}"
    if reason == "invalid_token":
        return "the registry refused the token it was given (expired or invalid)"
    return f"the registry refused the credentials of user {credentials.username!r}"


def _error(where: _Where, message: str, **details: object) -> RegistryError:
    return RegistryError(
        message,
        registry=where.registry,
        repository=where.repository,
        reference=where.reference,
        **details,  # type: ignore[arg-type]
    )


def _error_detail(response: httpx.Response) -> tuple[str | None, str | None]:
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        return first.get("code"), first.get("message")
    except (ValueError, AttributeError, IndexError, TypeError):
        return None, None


def _manifest_path(ref: ImageReference) -> str:
    return f"/v2/{ref.repository}/manifests/{ref.reference}"


def _media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip()


def _next_page(response: httpx.Response) -> httpx.URL | None:
    link = response.links.get("next")
    if not link or not link.get("url"):
        return None
    return response.request.url.join(link["url"])


def parse_repository(text: str) -> ImageReference:
    """``registry/repository`` with neither tag nor digest, for commands that list tags."""
    ref = parse_reference(text)
    if ref.tag or ref.digest:
        raise InvalidReference(f"{text!r}: name a repository, without tag or digest")
    return ref
