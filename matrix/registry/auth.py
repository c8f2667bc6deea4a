"""Registry authentication as an ``httpx.Auth``: every request gets auth without asking.

The flow answers a 401 challenge the way the docker token spec describes it:
``Basic`` sends the user's credentials; ``Bearer`` asks the challenge's realm for a
token holding exactly the scopes the request needs (``repository:NAME:pull`` for
reads, ``pull,push`` for writes, plus ``pull`` on the source of a blob mount),
caches it until it expires, and retries once. Once a registry has said how it
authenticates, later requests carry auth from the start and cost no extra round trip.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import re
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

import httpx

from matrix.registry.answers import (
    ERROR_LIMIT,
    TOKEN_LIMIT,
    BadAnswer,
    TokenAnswer,
    parse_answer,
    read_response,
)
from matrix.registry.credentials import Credentials, excluded_by_hosts
from matrix.registry.errors import AuthenticationError, RegistryError, TransientError

# Tokens are dropped a little before they expire, so one is never sent dying.
_EXPIRY_MARGIN = 10.0
_DEFAULT_TOKEN_LIFETIME = 60.0  # what the token spec says when expires_in is missing
_CLIENT_ID = "matrix"
# Request extension marking a token request, so a failure to reach it names the service.
TOKEN_SERVICE = "matrix.token_service"

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PARAM_RE = re.compile(rf"\s*({_TOKEN})\s*=\s*({_QUOTED}|{_TOKEN})\s*(?:,|$)")
_SCHEME_RE = re.compile(rf"\s*({_TOKEN})(?:\s+|$)")
_REPOSITORY_PATH_RE = re.compile(
    r"^/v2/(?P<name>.+?)/(?:manifests/[^/]+|blobs/uploads/.*|blobs/[^/]+|tags/list)$"
)


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header; the scheme is lowercased."""

    scheme: str
    params: dict[str, str]


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Parse an RFC 7235 challenge list.

    Quoted values contain commas (``scope="repository:a:pull,push"``), so the header
    is read token by token rather than split on commas.
    """
    challenges: list[Challenge] = []
    position = 0
    while position < len(header):
        if header[position] in ", ":
            position += 1
            continue
        scheme = _SCHEME_RE.match(header, position)
        if scheme is None:
            break
        position = scheme.end()
        params: dict[str, str] = {}
        while (param := _PARAM_RE.match(header, position)) is not None:
            value = param[2]
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[param[1].lower()] = value
            position = param.end()
        challenges.append(Challenge(scheme[1].lower(), params))
    return challenges


def scopes_for(request: httpx.Request) -> tuple[str, ...]:
    """The token scopes a registry request needs."""
    path = request.url.path
    if path == "/v2/_catalog":
        return ("registry:catalog:*",)
    match = _REPOSITORY_PATH_RE.match(path)
    if match is None:
        return ()
    name = match["name"]
    if request.method in ("GET", "HEAD"):
        actions = "pull"
    elif request.method == "DELETE":
        actions = "delete"
    else:
        actions = "pull,push"
    scopes = [f"repository:{name}:{actions}"]
    source = request.url.params.get("from")
    if source and source != name:
        scopes.append(f"repository:{source}:pull")
    return tuple(scopes)


def merge_scopes(*groups: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Scopes with the actions on one resource joined (``pull`` + ``push`` -> ``pull,push``)."""
    actions: dict[str, set[str]] = {}
    for group in groups:
        for scope in group:
            resource, _, wanted = scope.rpartition(":")
            actions.setdefault(resource, set()).update(wanted.split(","))
    return tuple(
        f"{resource}:{','.join(sorted(wanted))}" for resource, wanted in sorted(actions.items())
    )


_TokenKey = tuple[str, str, tuple[str, ...]]  # realm, service, scopes


@dataclass(slots=True)
class _Token:
    value: str
    expires_at: float


class RegistryAuth(httpx.Auth):
    """Anonymous, basic or bearer-token auth for one registry."""

    def __init__(
        self,
        registry: str,
        credentials: Credentials | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.credentials = credentials
        self._clock = clock
        self._lock = threading.Lock()
        self._fetch_locks: dict[_TokenKey, threading.Lock] = {}
        self._tokens: dict[_TokenKey, _Token] = {}
        # What the registry answered with last time: the auth later requests use upfront.
        self._challenge: Challenge | None = None

    def __repr__(self) -> str:
        user = self.credentials.username if self.credentials else None
        return f"RegistryAuth(registry={self.registry!r}, username={user!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        scopes = scopes_for(request)
        known = self._challenge
        sent = False
        if known is not None:
            sent = yield from self._authorize(request, known, scopes, refresh=False)
        response = yield request
        if response.status_code != 401:
            return
        read_response(response, ERROR_LIMIT, cut=True)
        answered = _pick_challenge(response.headers)
        if answered is None:
            return
        if answered.scheme == "basic":
            if sent:
                return  # the credentials themselves were refused
            self._challenge = answered
            if (yield from self._authorize(request, answered, scopes, refresh=False)):
                yield request
            return
        self._challenge = Challenge("bearer", _without_scope(answered.params))
        wanted = merge_scopes(scopes, answered.params.get("scope", "").split())
        # A token the registry refused (expired early, revoked, too narrow) is fetched
        # again once; a second refusal is the answer.
        if (yield from self._authorize(request, self._challenge, wanted, refresh=sent)):
            yield request

    def _authorize(
        self,
        request: httpx.Request,
        challenge: Challenge,
        scopes: tuple[str, ...],
        *,
        refresh: bool,
    ) -> Generator[httpx.Request, httpx.Response, bool]:
        """Put an Authorization header on ``request``; False when there is none to give."""
        credentials = self.credentials
        if challenge.scheme == "basic":
            if credentials is None or not credentials.username:
                return False
            pair = f"{credentials.username}:{credentials.password}".encode()
            request.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
            return True
        if credentials is not None and credentials.registry_token:
            request.headers["Authorization"] = f"Bearer {credentials.registry_token}"
            return True
        if not scopes and request.url.path != "/v2/":
            return False
        key = (challenge.params.get("realm", ""), challenge.params.get("service", ""), scopes)
        # Concurrent requests needing the same token wait for one fetch, not one each.
        with self._fetching(key):
            token = self._tokens.get(key)
            if refresh or token is None or token.expires_at <= self._clock():
                token = yield from self._fetch_token(challenge, scopes)
                self._tokens[key] = token
        request.headers["Authorization"] = f"Bearer {token.value}"
        return True

    def _fetching(self, key: _TokenKey) -> threading.Lock:
        with self._lock:
            return self._fetch_locks.setdefault(key, threading.Lock())

    def _fetch_token(
        self, challenge: Challenge, scopes: tuple[str, ...]
    ) -> Generator[httpx.Request, httpx.Response, _Token]:
        realm = challenge.params.get("realm")
        if not realm:
            raise RegistryError(
                "the registry asked for a bearer token but named no realm", registry=self.registry
            )
        service = challenge.params.get("service")
        credentials = self.credentials
        started = self._clock()
        if credentials is not None and credentials.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": credentials.identity_token,
                "client_id": _CLIENT_ID,
                "scope": " ".join(scopes),
            }
            if service:
                form["service"] = service
            token_request = httpx.Request(
                "POST", realm, data=form, extensions={TOKEN_SERVICE: True}
            )
        else:
            params = [("service", service)] if service else []
            params += [("scope", scope) for scope in scopes]
            token_request = httpx.Request(
                "GET",
                httpx.URL(realm).copy_merge_params(params),
                extensions={TOKEN_SERVICE: True},
            )
            if credentials is not None and credentials.username:
                pair = f"{credentials.username}:{credentials.password}".encode()
                token_request.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        response = yield token_request
        status = response.status_code
        try:
            body = read_response(response, TOKEN_LIMIT, cut=status != 200)
            if status in (401, 403):
                who = f"user {credentials.username!r}" if credentials else "anonymous access"
                excluded = None if credentials else excluded_by_hosts(self.registry)
                raise AuthenticationError(
                    f"the token service {realm} refused {who} (HTTP {status})"
                    + (f", and {excluded}" if excluded else ""),
                    registry=self.registry,
                    status=status,
                )
            if status == 429 or status >= 500:
                raise TransientError(
                    f"the token service {realm} answered HTTP {status}",
                    status,
                    retry_after_seconds(response.headers.get("retry-after")),
                )
            if status != 200:
                raise RegistryError(
                    f"the token service {realm} answered HTTP {status}",
                    registry=self.registry,
                    status=status,
                )
            content_type = response.headers.get("content-type", "").split(";")[0]
            answer = parse_answer(TokenAnswer, body, content_type)
        except BadAnswer as error:
            raise RegistryError(
                f"the token service {realm} gave a bad answer: {error}", registry=self.registry
            ) from None
        value = answer.value
        lifetime = answer.expires_in or _DEFAULT_TOKEN_LIFETIME
        margin = min(_EXPIRY_MARGIN, lifetime / 10)
        return _Token(value, started + lifetime - margin)


def _pick_challenge(headers: httpx.Headers) -> Challenge | None:
    challenges = [
        challenge
        for header in headers.get_list("www-authenticate")
        for challenge in parse_www_authenticate(header)
    ]
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None


def _without_scope(params: dict[str, str]) -> dict[str, str]:
    # The scope belongs to one request; realm and service describe the registry.
    return {k: v for k, v in params.items() if k in ("realm", "service")}


def refusal_reason(headers: httpx.Headers) -> str | None:
    """The ``error`` a bearer challenge names: ``insufficient_scope``, ``invalid_token``..."""
    challenge = _pick_challenge(headers)
    return challenge.params.get("error") if challenge else None


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: delay-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
