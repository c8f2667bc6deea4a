"""The HTTP plumbing under the registry API: sessions, auth, pacing, retries, answers.

One keep-alive connection pool per registry, authenticated by `RegistryAuth` and
paced by its `RateBudget`. Every request is one ``attempt`` under the retry policy,
which stamina runs: 429, 5xx and connection failures are tried again with exponential
backoff, and each retry is said (``notify``, stderr by default, through stamina's retry
hook) so a person sees why a command waits.
Every answer's body is read up to a limit (`matrix.registry.answers`) and comes back
as an `Answer`; a refusal becomes a `RegistryError` naming registry, repository and
reference. Where each registry answers, over which scheme, with whose credentials,
at what pace and with which timeouts is its record in `matrix.registry.hosts`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

import httpx
import stamina
from stamina.instrumentation import RetryDetails, set_on_retry_hooks

from matrix.reference import ImageReference
from matrix.registry.answers import (
    ERROR_LIMIT,
    SMALL_LIMIT,
    BadAnswer,
    ErrorBody,
    M,
    TooLarge,
    parse_answer,
    read_response,
)
from matrix.registry.auth import TOKEN_SERVICE, RegistryAuth, refusal_reason, retry_after_seconds
from matrix.registry.credentials import Credentials, excluded_by_hosts
from matrix.registry.errors import AuthenticationError, RegistryError, TransientError
from matrix.registry.hosts import (
    CONNECT_TIMEOUT_VARIABLE,
    READ_TIMEOUT_VARIABLE,
    RegistryHosts,
)
from matrix.registry.ratelimit import RateBudgets, RequestsSpent

T = TypeVar("T")

# Every answer of a distribution-based registry (Docker Hub, GHCR, ECR, Harbor...)
# carries it; an OCI registry may leave it out.
API_VERSION_HEADER = "docker-distribution-api-version"
# Blob stores redirect once or twice; more than this is a loop.
MAX_REDIRECTS = 10


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: the settings of the `stamina.retry_context` every request runs in.

    ``attempts`` tries in all, waiting ``wait_initial`` doubled after each failure plus
    up to ``wait_jitter`` (at most ``wait_max``), or what a 429's Retry-After says (at
    most ``max_retry_after``, and never past ``timeout``); no retry starts once
    ``timeout`` seconds have gone. A registry that took the connection and never
    answered already cost a whole read timeout, so such a request is tried only
    ``timeout_attempts`` times, each retry with a read timeout of at most
    ``matrix.registry.hosts.RETRY_READ_TIMEOUT``; after it failed, the registry is not asked again.
    """

    attempts: int = 5
    timeout: float = 120.0
    wait_initial: float = 0.25
    wait_max: float = 10.0
    wait_jitter: float = 0.25
    max_retry_after: float = 60.0
    timeout_attempts: int = 2

    def __post_init__(self) -> None:
        # stamina takes timeout=0 for "no retries" and warns on stderr; that is attempts=1.
        if self.attempts < 1 or self.timeout_attempts < 1 or not self.timeout > 0:
            raise ValueError(
                f"{self!r}: attempts and timeout_attempts must be at least 1, "
                "and timeout more than 0 seconds"
            )


@dataclass(frozen=True, slots=True)
class Where:
    """What an error message names: registry, repository, reference."""

    registry: str
    repository: str | None = None
    reference: str | None = None

    @classmethod
    def of(cls, ref: ImageReference, reference: str | None = None) -> Where:
        if reference is None:
            reference = ref.digest or ref.tag
        return cls(ref.registry, ref.repository, reference)

    def __str__(self) -> str:
        text = self.registry
        if self.repository:
            text += f"/{self.repository}"
        if self.reference:
            text += f"@{self.reference}" if ":" in self.reference else f":{self.reference}"
        return text

    def error(self, message: str, **details: object) -> RegistryError:
        return RegistryError(
            message,
            registry=self.registry,
            repository=self.repository,
            reference=self.reference,
            **details,  # type: ignore[arg-type]
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """A registry's answer to one request, its body read (within its limit)."""

    where: Where
    action: str
    method: str
    url: httpx.URL
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    def parse(self, model: type[M]) -> M:
        """The body as ``model``, or a RegistryError saying what does not fit."""
        try:
            return parse_answer(model, self.body, self.media_type)
        except BadAnswer as error:
            raise self.bad(str(error)) from None

    def bad(self, what: str) -> RegistryError:
        request = f"{self.method} {self.url.path}"
        return self.where.error(f"{self.action}: bad answer to {request}: {what}")

    def next_page(self) -> httpx.URL | None:
        """The ``Link: <...>; rel="next"`` page, resolved against this request's URL."""
        link = httpx.Response(self.status, headers=self.headers).links.get("next")
        if not link or not link.get("url"):
            return None
        return self.url.join(link["url"])


class NotARegistry(RegistryError):
    """A host whose answers are not a registry's: a web server, a portal, a wrong port.

    Its 404s would otherwise read as "no such repository" and the host as an empty
    registry, with every release missing from it.
    """


@dataclass(frozen=True, slots=True)
class RetryNotice:
    """A request that failed and is about to be tried again."""

    where: Where
    action: str
    reason: str
    retry: int  # 1 for the first retry
    retries: int  # how many retries there may be in all
    wait: float

    def __str__(self) -> str:
        return (
            f"{self.where}: {self.action}: {self.reason}, "
            f"retry {self.retry} of {self.retries} in {seconds_text(self.wait)}"
        )


def print_notice(notice: RetryNotice) -> None:
    """The default ``notify``: a ``matrix: `` line on stderr (errors say ``matrix: error:``)."""
    # One write per line: retries of requests running in parallel never share a line.
    sys.stderr.write(f"matrix: {notice}\n")
    sys.stderr.flush()


def seconds_text(seconds: float) -> str:
    if seconds >= 10 or seconds == int(seconds):
        return f"{seconds:.0f} s"
    return f"{seconds:.1f} s"


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


class Transport:
    """Sessions to any number of registries, and the one way requests are sent."""

    def __init__(
        self,
        hosts: RegistryHosts,
        *,
        retry: RetryPolicy = RetryPolicy(),
        max_connections: int = 16,
        transport: httpx.BaseTransport | None = None,
        notify: Callable[[RetryNotice], None] = print_notice,
    ) -> None:
        self.hosts = hosts
        self.retry = retry
        # Pacing per registry (matrix.registry.ratelimit); a 429 pauses no longer
        # than the retry policy would wait for it.
        self.budget = RateBudgets(hosts.rate_limits, max_wait=retry.max_retry_after)
        self.requests = RequestCounter(self.budget)
        self.notify = notify
        self._max_connections = max_connections
        self._transport = transport  # for callers that route requests themselves
        self._sessions: dict[str, httpx.Client] = {}
        self._lock = threading.Lock()
        # Registries whose answers were recognised as a registry's (see `recognise`),
        # and hosts found to be none, with what they answered.
        self._recognised: set[str] = set()
        self._not_registries: dict[str, NotARegistry] = {}
        self._recognising = threading.Lock()
        # Registry -> why it is not asked again: a request to it went unanswered.
        self._unanswered: dict[str, str] = {}

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()

    def base_url(self, registry: str) -> str:
        return self.hosts[registry].base_url

    def session(self, registry: str) -> httpx.Client:
        """The registry's connection pool, created on first use."""
        with self._lock:
            session = self._sessions.get(registry)
            if session is None:
                host = self.hosts[registry]
                budget = self.budget[registry]
                session = httpx.Client(
                    base_url=host.base_url,
                    auth=RegistryAuth(registry, host.find_credentials()),
                    timeout=host.timeouts.to_httpx(),
                    follow_redirects=True,
                    max_redirects=MAX_REDIRECTS,
                    limits=httpx.Limits(
                        max_connections=self._max_connections,
                        max_keepalive_connections=self._max_connections,
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

    # -- retries ---------------------------------------------------------------------

    def call(self, where: Where, action: str, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` under the retry policy; what still fails becomes a RegistryError.

        ``attempt`` must be safe to repeat from its start: it is the unit that is
        retried (a blob upload retries POST and PUT together, say).
        """
        policy = self.retry
        unanswered = self._unanswered.get(where.registry)
        if unanswered is not None:
            raise where.error(f"{action}: not sent; an earlier request had {unanswered}")
        tries = _Tries(self, where, action)
        token = _CALL.set(tries)
        try:
            for retrying in stamina.retry_context(
                on=tries.again,
                attempts=policy.attempts,
                timeout=policy.timeout,
                wait_initial=policy.wait_initial,
                wait_max=policy.wait_max,
                wait_jitter=policy.wait_jitter,
            ):
                with retrying:
                    return attempt()
        except RegistryError as error:
            # Raised inside the auth flow, which knows the registry alone.
            if error.repository or not where.repository:
                raise
            raise type(error)(
                f"{action}: {error.detail}",
                registry=where.registry,
                repository=where.repository,
                reference=where.reference,
                status=error.status,
                code=error.code,
            ) from None
        except TransientError as error:
            raise where.error(
                f"{action}: {error.description}{tries.summary()}", status=error.status
            ) from None
        except httpx.TooManyRedirects as error:
            raise where.error(
                f"{action}: more than {MAX_REDIRECTS} redirects (a redirect loop) "
                f"from {_request_url(error)}"
            ) from None
        except httpx.TransportError as error:
            reason, again = self._describe(where, error)
            reason += tries.summary() if again else ""
            if isinstance(error, httpx.TimeoutException) and not isinstance(
                error, httpx.PoolTimeout
            ):
                # A registry that took the connection and never answered would cost
                # every later request the same wait: one such wait is enough.
                self._unanswered.setdefault(where.registry, reason)
            raise where.error(f"{action}: {reason}") from None
        finally:
            _CALL.reset(token)
        raise AssertionError("stamina ended without a result or an error")

    def _netloc(self, registry: str) -> bytes:
        return httpx.URL(self.base_url(registry)).netloc

    def _describe(self, where: Where, error: httpx.TransportError) -> tuple[str, bool]:
        """What went wrong in a person's words, and whether trying again may help."""
        text = str(error) or type(error).__name__
        lower = text.lower()
        request = _request_of(error)
        origin = ""
        if request is not None and request.extensions.get(TOKEN_SERVICE):
            origin = f"the token service {request.url.copy_with(query=None)}: "
        elif request is not None and request.url.netloc != self._netloc(where.registry):
            origin = f"{request.url.scheme}://{request.url.netloc.decode()}: "
        again = True
        timeouts = self.hosts[where.registry].timeouts
        if isinstance(error, httpx.ConnectTimeout):
            reason = (
                f"no connection within {seconds_text(timeouts.connect)} "
                f"(connect timeout, {CONNECT_TIMEOUT_VARIABLE})"
            )
        elif isinstance(error, httpx.ReadTimeout | httpx.WriteTimeout):
            reason = (
                f"no answer within {seconds_text(timeouts.read)} "
                f"(read timeout, {READ_TIMEOUT_VARIABLE})"
            )
        elif isinstance(error, httpx.PoolTimeout):
            reason = f"no free connection within {seconds_text(timeouts.read)}"
        elif "refused" in lower:
            reason = "connection refused"
        elif "ssl" in lower or "certificate" in lower:
            reason, again = f"TLS failed ({text})", False
            if "wrong version number" in lower or "record layer" in lower:
                reason += "; if it speaks plain HTTP, name it with --insecure-registry"
        elif isinstance(error, httpx.RemoteProtocolError) and "disconnected" in lower:
            reason = "the connection closed without an answer"
        elif isinstance(error, httpx.UnsupportedProtocol):
            reason, again = text, False
        else:
            reason = text
        return origin + reason, again

    # -- sending ---------------------------------------------------------------------

    def send(
        self,
        where: Where,
        action: str,
        method: str,
        url: str | httpx.URL,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        limit: int = SMALL_LIMIT,
    ) -> Answer:
        """One attempt; 429 and 5xx raise to retry. A success's body may be ``limit``
        bytes (more is an error); a refusal's is read up to ERROR_LIMIT. A 404 counts
        only from a host recognised as a registry (`recognise`)."""
        answer = self._exchange(where, action, method, url, headers, content, limit)
        raise_if_transient(answer)
        if answer.status == 404:
            self.recognise(answer)
        return answer

    def _exchange(
        self,
        where: Where,
        action: str,
        method: str,
        url: str | httpx.URL,
        headers: Mapping[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        limit: int = SMALL_LIMIT,
    ) -> Answer:
        session = self.session(where.registry)
        request = session.build_request(
            method, url, headers=headers, content=content, timeout=self._timeout(where.registry)
        )
        response = session.send(request, stream=True)
        try:
            body = self._read(where, action, response, limit)
        finally:
            response.close()
        url, status = response.request.url, response.status_code
        return Answer(where, action, method, url, status, response.headers, body)

    def _timeout(self, registry: str) -> httpx.Timeout:
        timeouts = self.hosts[registry].timeouts
        tries = _CALL.get()
        if tries is not None and tries.transport is self and tries.no_answers:
            return timeouts.after_no_answer()
        return timeouts.to_httpx()

    # -- is it a registry? -----------------------------------------------------------

    def recognise(self, answer: Answer) -> None:
        """Raise NotARegistry unless ``answer`` (a 404) comes from a registry.

        An ordinary web server answers 404 to every path of the registry API, which
        would read as a registry without repositories. A registry's 404 names its
        API version or carries its JSON error codes; otherwise ``GET /v2/`` decides,
        once per registry: a registry answers it 200 or 401 (distribution-spec).
        """
        registry = answer.where.registry
        if registry in self._recognised or answer.url.netloc != self._netloc(registry):
            return
        if API_VERSION_HEADER in answer.headers or error_detail(answer)[0]:
            self._recognised.add(registry)
            return
        with self._recognising:
            if registry in self._recognised:
                return
            if registry in self._not_registries:
                raise self._not_registries[registry]
            where = Where(registry)

            def ping() -> Answer:
                reply = self._exchange(where, "check the registry", "GET", "/v2/")
                raise_if_transient(reply)
                return reply

            reply = self.call(where, "check the registry", ping)
            if not _speaks_registry_api(reply):
                media_type = reply.media_type or "no content type"
                self._not_registries[registry] = NotARegistry(
                    f"not a container registry: GET /v2/ answered HTTP {reply.status} "
                    f"({media_type}) without {_HEADER_NAME}, where a registry answers "
                    "200 or 401; check the registry's host and port",
                    registry=registry,
                    status=reply.status,
                )
                raise self._not_registries[registry]
            self._recognised.add(registry)

    def _read(self, where: Where, action: str, response: httpx.Response, limit: int) -> bytes:
        # A refusal's body is read for its error code alone: cut, never refused.
        success = response.is_success
        try:
            return read_response(response, limit if success else ERROR_LIMIT, cut=not success)
        except (TooLarge, httpx.DecodingError) as error:
            request = response.request
            raise where.error(
                f"{action}: bad answer to {request.method} {request.url.path}: {error}"
            ) from None

    def request(
        self,
        where: Where,
        action: str,
        method: str,
        url: str | httpx.URL,
        *,
        expect: tuple[int, ...] = (200,),
        missing_ok: bool = False,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        limit: int = SMALL_LIMIT,
    ) -> Answer | None:
        """Send with retries; None for a 404 when ``missing_ok``, else the expected answer."""
        answer = self.call(
            where,
            action,
            lambda: self.send(
                where, action, method, url, headers=headers, content=content, limit=limit
            ),
        )
        if answer.status in expect:
            return answer
        if missing_ok and answer.status == 404:
            return None
        raise self.refusal(answer)

    @contextmanager
    def stream(self, where: Where, action: str, url: str) -> Iterator[httpx.Response]:
        """A GET whose body the caller streams on (a blob); a refusal raises."""
        session = self.session(where.registry)
        with session.stream("GET", url, timeout=self._timeout(where.registry)) as response:
            if not response.is_success:
                answer = Answer(
                    where,
                    action,
                    "GET",
                    response.request.url,
                    response.status_code,
                    response.headers,
                    self._read(where, action, response, ERROR_LIMIT),
                )
                raise_if_transient(answer)
                raise self.refusal(answer)
            yield response

    def refusal(self, answer: Answer) -> RegistryError:
        """The error for an answer that will not change by asking again."""
        status = answer.status
        code, message = error_detail(answer)
        detail = f" ({code}: {message})" if code and message else f" ({code})" if code else ""
        action = answer.action
        if status == 401:
            auth = self.session(answer.where.registry).auth
            credentials = auth.credentials if isinstance(auth, RegistryAuth) else None
            text = _unauthorized_reason(
                answer.where.registry, credentials, refusal_reason(answer.headers), action
            )
        elif status == 403:
            text = f"access denied{detail}"
        elif status == 404:
            text = f"not found{detail}"
        else:
            text = f"HTTP {status}{detail}"
        kind = AuthenticationError if status in (401, 403) else RegistryError
        where = answer.where
        return kind(
            f"{action}: {text}",
            registry=where.registry,
            repository=where.repository,
            reference=where.reference,
            status=status,
            code=code,
        )


class _Tries:
    """One `Transport.call`'s failures so far, which stamina's predicate (``again``)
    counts and its retry hook (`_announce`) reads to say the retry."""

    def __init__(self, transport: Transport, where: Where, action: str) -> None:
        self.transport, self.where, self.action = transport, where, action
        self.policy = transport.retry
        self.started = time.monotonic()
        self.failures = self.no_answers = 0
        self.reason = ""
        self.retries = self.policy.attempts - 1

    def again(self, error: Exception) -> bool | float:
        """Whether stamina tries ``error``'s request again: False, True (its own
        backoff), or the seconds a 429's Retry-After asks for."""
        policy, wait = self.policy, None
        if isinstance(error, TransientError):
            reason, wait = error.description, error.retry_after
        elif isinstance(error, httpx.TransportError):
            reason, again = self.transport._describe(self.where, error)
            if not again:
                return False
        else:
            return False
        self.failures += 1
        self.reason, self.retries = reason, policy.attempts - 1
        if isinstance(error, httpx.TimeoutException):
            self.no_answers += 1
            if self.no_answers >= policy.timeout_attempts:
                return False
            # The most retries there can be if every further try goes unanswered too.
            others = self.failures - self.no_answers
            self.retries = min(self.retries, others + policy.timeout_attempts - 1)
        if wait is None:
            return True
        wait = min(wait, policy.max_retry_after)
        if time.monotonic() - self.started + wait > policy.timeout:
            return False
        return wait

    def summary(self) -> str:
        """`` (N tries in S s)`` once a request was tried more than once."""
        if self.failures <= 1:
            return ""
        spent = time.monotonic() - self.started
        return f" ({self.failures} tries in {seconds_text(spent)})"


# The call whose retry stamina's hook announces: hooks are process-wide, calls run in
# many threads, and each thread's call sets its own.
_CALL: ContextVar[_Tries | None] = ContextVar("matrix_registry_call", default=None)


def _announce(details: RetryDetails) -> None:
    tries = _CALL.get()
    if tries is None:  # a retry of someone else's stamina call
        return
    notice = RetryNotice(
        tries.where, tries.action, tries.reason, details.retry_num, tries.retries, details.wait_for
    )
    tries.transport.notify(notice)


# Ours alone: stamina's default hook logs each retry (or sends it to structlog or
# Prometheus), which would repeat every retry line in another format.
set_on_retry_hooks([_announce])


_HEADER_NAME = "Docker-Distribution-API-Version"


def _speaks_registry_api(answer: Answer) -> bool:
    """Whether ``GET /v2/`` was answered as a registry answers it."""
    if API_VERSION_HEADER in answer.headers:
        return True
    if answer.status == 200:
        return answer.media_type == "application/json"
    return answer.status == 401 and "www-authenticate" in answer.headers


def raise_if_transient(answer: Answer) -> None:
    status = answer.status
    if status == 429 or status >= 500:
        raise TransientError(
            f"HTTP {status} to {answer.method} {answer.url.path}",
            status,
            retry_after_seconds(answer.headers.get("retry-after")),
        )


def error_detail(answer: Answer) -> tuple[str | None, str | None]:
    """The first error code and message of a refusal's body, if it has a readable one."""
    try:
        errors = parse_answer(ErrorBody, answer.body).errors
    except BadAnswer:
        return None, None
    if not errors:
        return None, None
    return errors[0].code or None, errors[0].message or None


def _unauthorized_reason(
    registry: str, credentials: Credentials | None, reason: str | None, action: str
) -> str:
    if credentials is None:
        excluded = excluded_by_hosts(registry)
        if excluded:
            return f"authentication required, and {excluded}"
        return (
            "authentication required: run 'docker login' or set "
            "MATRIX_REGISTRY_USERNAME and MATRIX_REGISTRY_PASSWORD"
        )
    if reason == "insufficient_scope":
        return f"user {credentials.username!r} lacks the permission to {action}"
    if reason == "invalid_token":
        return "the registry refused the token it was given (expired or invalid)"
    return f"the registry refused the credentials of user {credentials.username!r}"


def _request_of(error: httpx.HTTPError) -> httpx.Request | None:
    try:
        return error.request
    except RuntimeError:
        return None


def _request_url(error: httpx.HTTPError) -> str:
    request = _request_of(error)
    return str(request.url) if request is not None else "the request"
