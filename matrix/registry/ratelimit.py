"""A rate budget per registry: pace the requests a registry counts, and sit out its 429s.

Each registry gets one ``RateBudget``, shared by every thread of the client. It is
hooked into the registry's httpx session, so every request passes ``before`` (which
may hold it back) and every answer passes ``after`` (which learns from it):

- Pacing. A token bucket holds the pulls left; it refills at ``limit / window``
  per second. Only what Docker Hub counts as a pull takes a token: a manifest GET
  ("Using GET emulates a real pull and counts towards the limit. Using HEAD won't",
  docker/docs usage/pulls.md). Docker Hub counts a multi-arch pull once per
  architecture, so one token per manifest GET (index and children alike) is the
  upper bound. Every other request only waits out a pause (below).
- Headers. An answer carrying ``ratelimit-limit: N;w=SECONDS`` (and
  ``ratelimit-remaining: M;w=...``) sets the bucket to the registry's own numbers.
  Malformed headers are ignored.
- 429. Any 429 empties the bucket and pauses every request to that registry until
  ``Retry-After`` has passed (without one: 1 s, doubling while 429s keep coming),
  capped by ``max_wait``. Then one request goes first as a probe; the others wait
  for its answer instead of hammering a registry that still refuses. The first
  remaining count on an answer to a request sent after the 429 refills the bucket
  (remaining counts otherwise only lower it), so one 429 does not leave it empty.
- No request waits for a pull token once it has been held ``max_wait`` in all:
  it goes, and the registry's answer (and the retry policy) decides.

Token requests to a registry's token service go through the same session, so they
share its budget (they never take a pull token).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from matrix.registry.auth import retry_after_seconds


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``limit`` pulls per ``window`` seconds.

    A ``provisional`` limit is an assumption that holds until the registry's first
    manifest answer: headers on it replace the limit, and an answer without them
    lifts it. Docker Hub documents exactly that: "If you don't see any ratelimit
    header [...] Pulling that image won't count toward pull rate limits" (paid
    plans and partner images are unlimited).
    """

    limit: int
    window: float
    provisional: bool = False

    @property
    def rate(self) -> float:
        return self.limit / self.window


# Docker Hub's numbers changed several times. docker/docs usage/pulls.md gives, per
# 6 hours, 100 pulls for anonymous users, 200 for Personal accounts and no limit for
# paid plans; other versions of its pages gave 10 and 40, or 10 and 100, per hour.
# The anonymous 100 per 21600 s is the floor of that page and the figure of its own
# header example (`ratelimit-limit: 100;w=21600`), so it is the assumption until
# Docker Hub's first manifest answer says more (or, with no headers, that matrix's
# pulls are not limited). Other registries are unlimited unless their answers carry
# ratelimit headers.
DOCKER_HUB_LIMIT = RateLimit(100, 6 * 3600.0, provisional=True)
DEFAULT_RATE_LIMITS: Mapping[str, RateLimit] = {"docker.io": DOCKER_HUB_LIMIT}

_FIRST_PAUSE = 1.0  # after a 429 without Retry-After; doubles while 429s keep coming
_PROBE_LEASE = 5.0  # how long the others wait for a probe's answer before sending another
_EPOCH = "matrix.rate_budget_epoch"  # request extension: the 429s seen when it was sent
_MANIFEST_PATH = re.compile(r"^/v2/.+/manifests/[^/]+$")
# ASCII digits only: \d would take any Unicode digit, and int() would read it.
_ITEM = re.compile(r"^[ \t]*([0-9]+)[ \t]*((?:;[^;]*)*)$")
_WINDOW = re.compile(r"^[ \t]*w[ \t]*=[ \t]*([0-9]+(?:\.[0-9]+)?)[ \t]*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Quota:
    """What a registry's headers said: a limit and, if given, the pulls remaining."""

    limit: RateLimit
    remaining: int | None


def parse_quota(headers: Mapping[str, str]) -> Quota | None:
    """``ratelimit-limit`` / ``ratelimit-remaining`` as Docker Hub sends them; None when
    absent or unreadable.

    ``ratelimit-limit: 100;w=21600`` is 100 per 21600 s. A list of policies
    (``100, 100;w=21600, 5000;w=86400``) gives the most restrictive one with a window;
    a limit with no window, or a zero limit or window, cannot be paced and is ignored.
    """
    policies = []
    for item in _items(headers.get("ratelimit-limit")):
        count, window = item
        if count > 0 and window is not None and window > 0:
            policies.append(RateLimit(count, window))
    if not policies:
        return None
    limit = min(policies, key=lambda policy: policy.rate)
    remaining = next(iter(_items(headers.get("ratelimit-remaining"))), None)
    return Quota(limit, None if remaining is None else remaining[0])


def _items(value: str | None) -> list[tuple[int, float | None]]:
    """``N;w=S`` items of a comma-separated header; unreadable items are skipped."""
    if not value:
        return []
    items = []
    for text in value.split(","):
        match = _ITEM.match(text)
        if match is None:
            continue
        window = None
        for parameter in match[2].split(";")[1:]:
            found = _WINDOW.match(parameter)
            if found is not None:
                window = float(found[1])
        items.append((int(match[1]), window))
    return items


def counts_as_pull(request: httpx.Request) -> bool:
    """A manifest GET: what Docker Hub counts against its pull limit."""
    return request.method == "GET" and _MANIFEST_PATH.match(request.url.path) is not None


class RateBudget:
    """One registry's budget; ``before`` and ``after`` are its httpx event hooks."""

    def __init__(
        self,
        registry: str,
        limit: RateLimit | None = None,
        *,
        max_wait: float = 60.0,
    ) -> None:
        self.registry = registry
        self.max_wait = max_wait
        self._clock = time.monotonic  # what Condition.wait measures
        self._changed = threading.Condition(threading.Lock())
        self._limit = limit
        self._tokens = float(limit.limit) if limit else 0.0
        self._stamp = self._clock()
        self._paused_until = 0.0
        self._suspect = False  # a 429 came, and no answer to a request sent since
        self._emptied = False  # a 429 emptied the bucket, and no remaining count since
        self._epoch = 0  # 429s so far; each request is stamped with it
        self._probe_until = 0.0
        self._streak = 0
        # The report: time during which a request was held or the registry had asked
        # for a pause (a retry sleeping out its Retry-After waits for the rate limit too).
        self._holding = 0  # requests held right now
        self._blocked_since: float | None = None
        self._last_release = 0.0
        self._waited = 0.0
        self._throttled = 0

    @property
    def limit(self) -> RateLimit | None:
        with self._changed:
            return self._limit

    @property
    def waited(self) -> float:
        """Seconds during which requests to this registry were held back or paused."""
        with self._changed:
            now = self._clock()
            self._account(now)
            ongoing = 0.0 if self._blocked_since is None else now - self._blocked_since
            return self._waited + ongoing

    @property
    def throttled(self) -> int:
        """429 answers seen."""
        with self._changed:
            return self._throttled

    def reset_counts(self) -> None:
        """Forget what was spent (not what was learned about the registry)."""
        with self._changed:
            self._waited = 0.0
            if self._blocked_since is not None:
                self._blocked_since = self._clock()
            self._throttled = 0

    def before(self, request: httpx.Request) -> None:
        """Hold ``request`` until the budget allows it: after any pause, behind a probe,
        and (a manifest GET) until a pull is left or it was held ``max_wait``."""
        pull = counts_as_pull(request)
        with self._changed:
            held_since = None
            while True:
                now = self._clock()
                delay, capped = self._delay(now, pull)
                if delay <= 0:
                    break
                if held_since is None:
                    held_since = now
                    self._hold(now)
                if capped:
                    delay = min(delay, held_since + self.max_wait - now)
                    if delay <= 0:
                        break  # out of patience: the registry's answer decides
                self._changed.wait(delay)
            if held_since is not None:
                self._release(now)
            if pull and self._limit is not None:
                self._tokens = max(0.0, self._tokens - 1)
            if self._suspect:
                self._probe_until = now + _PROBE_LEASE
            request.extensions[_EPOCH] = self._epoch

    def after(self, response: httpx.Response) -> None:
        """Learn from an answer: ratelimit headers, a 429, or that the 429s are over."""
        quota = parse_quota(response.headers)
        with self._changed:
            now = self._clock()
            self._refill(now)
            # an answer to a request sent after the last 429 (or with none so far)
            fresh = response.request.extensions.get(_EPOCH) == self._epoch
            if quota is not None:
                self._learn(quota, recount=fresh and response.status_code != 429)
            elif (
                self._limit is not None
                and self._limit.provisional
                and 200 <= response.status_code < 300
                and _MANIFEST_PATH.match(response.request.url.path)
            ):
                self._limit = None  # the registry does not count our pulls
            if response.status_code == 429:
                self._throttled += 1
                if fresh:  # not one more answer to a request sent before the last 429
                    self._epoch += 1
                    self._streak += 1
                pause = retry_after_seconds(response.headers.get("retry-after"))
                if pause is None:
                    pause = _FIRST_PAUSE * 2 ** min(max(self._streak, 1) - 1, 16)
                self._block(now)
                self._paused_until = max(self._paused_until, now + min(pause, self.max_wait))
                self._tokens = 0.0
                self._emptied = True
                self._suspect = True
                self._probe_until = 0.0
            elif self._suspect and fresh:
                # Only a request sent after the last 429 tells that the 429s are over.
                self._suspect = False
                self._streak = 0
            self._changed.notify_all()

    # -- under the lock ------------------------------------------------------------

    def _delay(self, now: float, pull: bool) -> tuple[float, bool]:
        """How long a request must still wait (0 or less: it may go), and whether that
        wait counts against ``max_wait``: pauses are capped already, and a probe's
        lease is short, but waiting for a pull may take hours."""
        if now < self._paused_until:
            return self._paused_until - now, False
        if self._suspect and now < self._probe_until:
            return self._probe_until - now, False  # a probe is out; its answer wakes us
        if pull and self._limit is not None:
            self._refill(now)
            if self._tokens < 1:
                return (1 - self._tokens) / self._limit.rate, True
        return 0.0, False

    def _refill(self, now: float) -> None:
        if self._limit is not None:
            earned = (now - self._stamp) * self._limit.rate
            self._tokens = min(float(self._limit.limit), self._tokens + earned)
        self._stamp = now

    def _learn(self, quota: Quota, *, recount: bool) -> None:
        """Take the registry's numbers. Remaining pulls can only lower an estimate of
        the same limit: answers to concurrent requests arrive out of order, and the
        bucket already took a token for every request still in flight. Except after a
        429 emptied the bucket: the first count on an answer that may ``recount`` (its
        request was sent after the last 429, and it is no 429) is the truth, up as
        well as down; without it the bucket would stay empty for good."""
        same = self._limit == quota.limit
        self._limit = quota.limit
        if quota.remaining is None:
            self._tokens = min(self._tokens, float(quota.limit.limit))
        elif same and not (recount and self._emptied):
            self._tokens = min(self._tokens, float(quota.remaining))
        else:
            self._tokens = float(min(quota.remaining, quota.limit.limit))
            self._emptied = False

    def _hold(self, now: float) -> None:
        self._block(now)
        self._holding += 1

    def _release(self, now: float) -> None:
        self._holding -= 1
        self._last_release = now
        self._account(now)

    def _block(self, now: float) -> None:
        """Something starts holding requests back at ``now``."""
        self._account(now)
        if self._blocked_since is None:
            self._blocked_since = now

    def _account(self, now: float) -> None:
        """Close the blocked period if nothing holds requests back any more."""
        if self._blocked_since is None or self._holding or self._paused_until > now:
            return
        ended = max(self._last_release, self._paused_until)
        self._waited += max(0.0, ended - self._blocked_since)
        self._blocked_since = None


class RateBudgets:
    """The budgets of every registry a client talks to, created on first use."""

    def __init__(
        self,
        limits: Mapping[str, RateLimit | None] = DEFAULT_RATE_LIMITS,
        *,
        max_wait: float = 60.0,
    ) -> None:
        self.limits = dict(limits)
        self.max_wait = max_wait
        self._budgets: dict[str, RateBudget] = {}
        self._lock = threading.Lock()

    def __getitem__(self, registry: str) -> RateBudget:
        with self._lock:
            budget = self._budgets.get(registry)
            if budget is None:
                budget = RateBudget(registry, self.limits.get(registry), max_wait=self.max_wait)
                self._budgets[registry] = budget
            return budget

    def _all(self) -> list[RateBudget]:
        with self._lock:
            return list(self._budgets.values())

    @property
    def waited(self) -> float:
        """Seconds requests were held back, summed over registries."""
        return sum(budget.waited for budget in self._all())

    @property
    def throttled(self) -> int:
        """429 answers, over all registries."""
        return sum(budget.throttled for budget in self._all())

    def reset_counts(self) -> None:
        for budget in self._all():
            budget.reset_counts()


class RequestsSpent(dict[str, int]):
    """Requests sent by method (JSON sees a plain dict), and what the budget did:
    ``waited`` seconds held back and ``throttled`` 429 answers."""

    def __init__(self, by_method: Mapping[str, int], budgets: RateBudgets | None = None) -> None:
        super().__init__(by_method)
        self.waited = budgets.waited if budgets is not None else 0.0
        self.throttled = budgets.throttled if budgets is not None else 0
