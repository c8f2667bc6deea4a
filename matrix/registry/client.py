"""The registry HTTP API v2: manifests, tags and blobs, over `matrix.registry.transport`.

Each call names what it does (``get manifest``, ``list tags``) so an error says which
request of a release went wrong; the transport retries, paces, authenticates and
reads answers within their limits. The client also owns the bounded thread pool its
callers fan out on (`RegistryClient.map`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple, TypeVar

import httpx

from matrix.reference import ImageReference, parse_reference
from matrix.registry.answers import (
    MANIFEST_LIMIT,
    TAG_LIST_LIMIT,
    BadAnswer,
    TagList,
)
from matrix.registry.credentials import find_credentials
from matrix.registry.hosts import (
    DEFAULT_ENDPOINTS,
    CredentialSource,
    RegistryHosts,
    Timeouts,
)
from matrix.registry.manifests import (
    ACCEPT,
    MANIFEST_TYPES,
    Descriptor,
    digest_matches,
    sha256_digest,
    validate_manifest,
)
from matrix.registry.ratelimit import DEFAULT_RATE_LIMITS, RateBudgets, RateLimit
from matrix.registry.transport import (
    Answer,
    RequestCounter,
    RetryNotice,
    RetryPolicy,
    Transport,
    Where,
    print_notice,
)

__all__ = ["Manifest", "RegistryClient", "RequestCounter", "RetryPolicy"]

T = TypeVar("T")
R = TypeVar("R")

_BLOB_CHUNK = 1024 * 1024
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


class Manifest(NamedTuple):
    content: bytes
    media_type: str
    digest: str


class RegistryClient:
    """Talks to any number of registries; use it as a context manager to close its pools.

    How each registry is reached is its record in ``hosts`` (`RegistryHosts`, which a
    run's settings make); without it the table is made from the other arguments:
    timeouts from ``connect_timeout`` / ``read_timeout``, else the environment's
    ``MATRIX_REGISTRY_CONNECT_TIMEOUT`` / ``MATRIX_REGISTRY_READ_TIMEOUT``, else 10 s
    and 30 s. Every retry is handed to ``notify`` (a line on stderr by default).
    """

    def __init__(
        self,
        *,
        hosts: RegistryHosts | None = None,
        insecure_registries: Iterable[str] = (),
        endpoints: Mapping[str, str] = DEFAULT_ENDPOINTS,
        credentials: CredentialSource = find_credentials,
        retry: RetryPolicy | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_workers: int = 8,
        transport: httpx.BaseTransport | None = None,
        rate_limits: Mapping[str, RateLimit | None] = DEFAULT_RATE_LIMITS,
        notify: Callable[[RetryNotice], None] = print_notice,
    ) -> None:
        if hosts is None:
            hosts = RegistryHosts.of(
                insecure=insecure_registries,
                endpoints=endpoints,
                rate_limits=rate_limits,
                timeouts=Timeouts.resolve(connect_timeout, read_timeout),
                credentials=credentials,
            )
        self.transport = Transport(
            hosts,
            retry=retry or RetryPolicy(),
            max_connections=max_workers * 2,
            transport=transport,
            notify=notify,
        )
        self.max_workers = max_workers
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._worker = threading.local()

    @property
    def hosts(self) -> RegistryHosts:
        return self.transport.hosts

    @property
    def requests(self) -> RequestCounter:
        return self.transport.requests

    @property
    def budget(self) -> RateBudgets:
        return self.transport.budget

    @property
    def retry(self) -> RetryPolicy:
        return self.transport.retry

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, kind: object, error: BaseException | None, *exc_info: object) -> None:
        from matrix.stopping import Stopped

        # A run stopped by a second signal does not wait for a request that hangs: its
        # report and its line come first (matrix.stopping).
        self.close(wait=not (isinstance(error, Stopped) and not error.waited))

    def close(self, *, wait: bool = True) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=not wait)
        if wait:
            self.transport.close()

    def base_url(self, registry: str) -> str:
        return self.transport.base_url(registry)

    def session(self, registry: str) -> httpx.Client:
        return self.transport.session(registry)

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

    # -- manifests -----------------------------------------------------------------

    def ping(self, registry: str) -> None:
        """Check that ``registry`` speaks the v2 API and accepts our credentials."""
        self.transport.request(Where(registry), "ping", "GET", "/v2/")

    def head_manifest(self, ref: ImageReference) -> Descriptor | None:
        """The manifest's digest, media type and size without its body; None if absent."""
        answer = self.transport.request(
            Where.of(ref),
            "head manifest",
            "HEAD",
            _manifest_path(ref),
            headers={"Accept": ACCEPT},
            missing_ok=True,
        )
        if answer is None:
            return None
        digest = answer.headers.get("docker-content-digest")
        size = answer.headers.get("content-length", "")
        if not digest or not size.isdigit():
            # Old registries may leave them out of HEAD answers.
            manifest = self.get_manifest(ref)
            return Descriptor(manifest.media_type, manifest.digest, len(manifest.content))
        if not _DIGEST.match(digest):
            raise answer.bad(f"Docker-Content-Digest {digest[:80]!r} is not a digest")
        return Descriptor(_manifest_type(answer), digest, int(size))

    def get_manifest(self, ref: ImageReference) -> Manifest:
        """The manifest's exact bytes, checked against its digest and its schema."""
        answer = self.transport.request(
            Where.of(ref),
            "get manifest",
            "GET",
            _manifest_path(ref),
            headers={"Accept": ACCEPT},
            limit=MANIFEST_LIMIT,
        )
        assert answer is not None
        content = answer.body
        claimed = [d for d in (ref.digest, answer.headers.get("docker-content-digest")) if d]
        for digest in claimed:
            if not digest_matches(content, digest):
                raise answer.where.error(
                    f"the manifest received does not match its digest {digest[:80]}"
                )
        media_type = _manifest_type(answer)
        try:
            validate_manifest(content, media_type)
        except BadAnswer as error:
            raise answer.bad(str(error)) from None
        return Manifest(content, media_type, claimed[0] if claimed else sha256_digest(content))

    def put_manifest(self, ref: ImageReference, content: bytes, media_type: str) -> str:
        """Store ``content`` under ``ref`` (a tag or its digest); returns its digest."""
        digest = sha256_digest(content)
        answer = self.transport.request(
            Where.of(ref),
            "put manifest",
            "PUT",
            _manifest_path(ref),
            expect=(200, 201),
            headers={"Content-Type": media_type},
            content=content,
        )
        assert answer is not None
        stored = answer.headers.get("docker-content-digest")
        if stored and stored != digest:
            raise answer.where.error(f"the registry stored {stored[:80]}, not the {digest} sent")
        return digest

    # -- tags ------------------------------------------------------------------------

    def list_tags(self, name: ImageReference | str, *, missing_ok: bool = True) -> list[str]:
        """Every tag of a repository, following ``Link`` pages; [] if it does not exist,
        or, unless ``missing_ok``, an error saying so (a name typed by a person)."""
        ref = parse_reference(name) if isinstance(name, str) else name
        where = Where(ref.registry, ref.repository)
        tags: list[str] = []
        url: httpx.URL | None = httpx.URL(f"/v2/{ref.repository}/tags/list")
        pages: set[str] = set()
        while url is not None:
            answer = self.transport.request(
                where, "list tags", "GET", url, missing_ok=True, limit=TAG_LIST_LIMIT
            )
            if answer is None and not missing_ok:
                raise where.error("list tags: the registry has no such repository")
            if answer is None:
                return []
            tags += answer.parse(TagList).tags or []
            pages.add(str(answer.url))
            url = answer.next_page()
            if url is not None and str(url) in pages:
                raise answer.bad(f"its next page is {url.path}?{url.query.decode()} again")
        return tags

    # -- blobs -----------------------------------------------------------------------

    def blob_exists(self, ref: ImageReference, digest: str) -> bool:
        """Whether ``digest`` is a blob of ``ref``'s repository."""
        answer = self.transport.request(
            Where.of(ref, digest),
            "head blob",
            "HEAD",
            f"/v2/{ref.repository}/blobs/{digest}",
            missing_ok=True,
        )
        return answer is not None

    def mount_blob(self, ref: ImageReference, digest: str, source_repository: str) -> bool:
        """Link a blob from another repository of the same registry; no bytes move.

        False when the registry declined (it then opened an upload session, which
        is cancelled so nothing is left half-written).
        """
        where = Where.of(ref, digest)
        path = httpx.URL(f"/v2/{ref.repository}/blobs/uploads/").copy_merge_params(
            {"mount": digest, "from": source_repository}
        )
        answer = self.transport.request(where, "mount blob", "POST", path, expect=(201, 202))
        assert answer is not None
        if answer.status == 201:
            return True
        location = answer.headers.get("location")
        if location:
            self.transport.call(
                where,
                "cancel upload",
                lambda: self.transport.send(where, "cancel upload", "DELETE", location),
            )
        return False

    def upload_blob(self, ref: ImageReference, content: bytes) -> str:
        """Upload bytes as a blob of ``ref``'s repository; returns its digest."""
        digest = sha256_digest(content)
        self._upload(ref, digest, lambda: content, len(content))
        return digest

    def upload_blob_file(self, ref: ImageReference, path: Path, digest: str) -> None:
        """Stream a file as the blob ``digest`` of ``ref``'s repository; the registry
        checks the digest, so a file that changed under us is refused, not stored."""

        def chunks() -> Iterable[bytes]:
            with path.open("rb") as handle:
                yield from iter(lambda: handle.read(_BLOB_CHUNK), b"")

        self._upload(ref, digest, chunks, path.stat().st_size)

    def copy_blob(self, source: ImageReference, target: ImageReference, digest: str) -> None:
        """Stream a blob from one registry to another without holding it in memory."""
        where = Where.of(target, digest)
        transport = self.transport

        def attempt() -> Answer:
            url = f"/v2/{source.repository}/blobs/{digest}"
            with transport.stream(Where.of(source, digest), "read blob", url) as blob:
                location = self._start_upload(where, target)
                headers = {"Content-Type": "application/octet-stream"}
                if "content-length" in blob.headers:
                    headers["Content-Length"] = blob.headers["content-length"]
                return transport.send(
                    where,
                    "copy blob",
                    "PUT",
                    location.copy_merge_params({"digest": digest}),
                    headers=headers,
                    content=blob.iter_raw(_BLOB_CHUNK),
                )

        self._expect_created(transport.call(where, "copy blob", attempt))

    def _upload(
        self,
        ref: ImageReference,
        digest: str,
        content: Callable[[], bytes | Iterable[bytes]],
        size: int,
    ) -> None:
        where = Where.of(ref, digest)

        def attempt() -> Answer:
            location = self._start_upload(where, ref)
            return self.transport.send(
                where,
                "upload blob",
                "PUT",
                location.copy_merge_params({"digest": digest}),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                content=content(),
            )

        self._expect_created(self.transport.call(where, "upload blob", attempt))

    def _start_upload(self, where: Where, ref: ImageReference) -> httpx.URL:
        answer = self.transport.send(
            where, "start upload", "POST", f"/v2/{ref.repository}/blobs/uploads/"
        )
        if answer.status != 202 or "location" not in answer.headers:
            raise self.transport.refusal(answer)
        # The Location may be absolute or relative, and carries a _state query to keep.
        return self.session(ref.registry).base_url.join(answer.headers["location"])

    def _expect_created(self, answer: Answer) -> None:
        if answer.status != 201:
            raise self.transport.refusal(answer)


def _manifest_path(ref: ImageReference) -> str:
    return f"/v2/{ref.repository}/manifests/{ref.reference}"


def _manifest_type(answer: Answer) -> str:
    media_type = answer.media_type
    if media_type not in MANIFEST_TYPES:
        raise answer.bad(f"unsupported manifest media type {media_type[:80]!r}")
    return media_type
