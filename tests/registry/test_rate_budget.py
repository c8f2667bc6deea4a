"""The rate budget: pacing, Docker Hub's ratelimit headers, and riding out 429 storms."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from matrix.reference import ImageReference
from matrix.registry import RateBudget, RateLimit, RetryPolicy, parse_quota, retag
from matrix.registry.ratelimit import DOCKER_HUB_LIMIT, Quota, counts_as_pull
from tests.support.configs import release_config
from tests.support.images import push_index

# Real backoff shape, test-sized waits; enough attempts to outlast a 2 s storm of
# 429s whatever thread ends up probing it.
PATIENT = RetryPolicy(attempts=10, timeout=60, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)


def _headers(**values: str) -> httpx.Headers:
    return httpx.Headers({name.replace("_", "-"): value for name, value in values.items()})


# -- headers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "remaining", "expected"),
    [
        # docker/docs usage/pulls.md, verbatim
        ("100;w=21600", "20;w=21600", Quota(RateLimit(100, 21600.0), 20)),
        ("200;w=21600", None, Quota(RateLimit(200, 21600.0), None)),
        (" 10 ; w=3600 ", "0", Quota(RateLimit(10, 3600.0), 0)),
        ("5;W=1.5;comment=x", "3;w=1.5", Quota(RateLimit(5, 1.5), 3)),
        # a list of policies: the most restrictive one with a window
        ("100, 100;w=21600, 5000;w=86400", "7", Quota(RateLimit(100, 21600.0), 7)),
        ("garbage, 40;w=3600", "39;w=3600", Quota(RateLimit(40, 3600.0), 39)),
        # an unreadable remaining count leaves only the limit
        ("100;w=21600", "lots", Quota(RateLimit(100, 21600.0), None)),
        ("100;w=21600", "-1", Quota(RateLimit(100, 21600.0), None)),
        # unreadable parameters are skipped
        ("100;w=1;w=x;w", "3;x", Quota(RateLimit(100, 1.0), 3)),
    ],
)
def test_docker_hub_headers_are_read(limit, remaining, expected):
    values = {"ratelimit-limit": limit}
    if remaining is not None:
        values["ratelimit-remaining"] = remaining
    assert parse_quota(httpx.Headers(values)) == expected


@pytest.mark.parametrize(
    "limit",
    [
        None,
        "",
        "100",  # no window: nothing to pace by
        "0;w=60",  # no pulls at all cannot be paced; the 429s will say it
        "100;w=0",
        "100;w=-5",
        "100;w=abc",
        "-3;w=60",
        "1e3;w=60",
        "abc;w=60",
        ";;;,,,",
        "100;w=",
        "\u0661\u0660\u0660;w=60",  # Arabic-Indic digits are not HTTP's digits
        "100;w=\u0666\u0660",
    ],
)
def test_malformed_headers_are_ignored(limit):
    values = {} if limit is None else {"ratelimit-limit": limit}
    assert parse_quota({**values, "ratelimit-remaining": "5"}) is None


def test_only_manifest_gets_count_as_pulls():
    def request(method: str, path: str) -> httpx.Request:
        return httpx.Request(method, f"http://r{path}")

    assert counts_as_pull(request("GET", "/v2/prefecthq/prefect/manifests/2-latest"))
    assert counts_as_pull(request("GET", "/v2/a/manifests/sha256:" + "0" * 64))
    assert not counts_as_pull(request("HEAD", "/v2/a/manifests/1"))  # "HEAD won't"
    assert not counts_as_pull(request("PUT", "/v2/a/manifests/1"))
    assert not counts_as_pull(request("GET", "/v2/a/blobs/sha256:" + "0" * 64))
    assert not counts_as_pull(request("GET", "/v2/a/tags/list"))
    assert not counts_as_pull(request("GET", "/v2/"))


# -- the budget on its own ------------------------------------------------------------


def _pull(path: str = "/v2/a/manifests/1", method: str = "GET") -> httpx.Request:
    return httpx.Request(method, f"http://r{path}")


def _answer(request: httpx.Request, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=_headers(**headers), request=request)


def test_a_burst_of_pulls_is_paced_and_heads_are_not():
    budget = RateBudget("r", RateLimit(2, 0.2))  # 10 pulls a second, 2 at once
    started = time.monotonic()
    for _ in range(7):
        budget.before(_pull())
    paced = time.monotonic() - started
    assert 0.45 <= paced < 5  # the 5 beyond the first 2 wait 0.1 s each
    assert budget.waited == pytest.approx(paced, abs=0.1)

    started = time.monotonic()
    for _ in range(20):
        budget.before(_pull(method="HEAD"))
    assert time.monotonic() - started < 0.4  # a HEAD is not a pull


def test_docker_hubs_default_gives_way_to_its_answers():
    lifted = RateBudget("docker.io", DOCKER_HUB_LIMIT)
    request = _pull()
    lifted.before(request)
    lifted.after(_answer(_pull("/v2/a/tags/list")))  # not a manifest answer: still assumed
    assert lifted.limit == DOCKER_HUB_LIMIT
    lifted.after(_answer(request))  # a manifest without headers: pulls are not counted
    assert lifted.limit is None

    told = RateBudget("docker.io", DOCKER_HUB_LIMIT, max_wait=0.3)
    request = _pull()
    told.before(request)
    told.after(_answer(request, ratelimit_limit="200;w=21600", ratelimit_remaining="0;w=21600"))
    assert told.limit == RateLimit(200, 21600.0)
    started = time.monotonic()
    told.before(_pull(method="HEAD"))
    assert time.monotonic() - started < 0.2
    told.before(_pull())  # none left: held, but never longer than max_wait
    assert 0.25 <= time.monotonic() - started < 2

    configured = RateBudget("r", RateLimit(5, 1.0))
    request = _pull()
    configured.before(request)
    configured.after(_answer(request))  # a limit matrix was given is not lifted by silence
    assert configured.limit == RateLimit(5, 1.0)
    configured.after(_answer(request, ratelimit_limit="nonsense", ratelimit_remaining="x"))
    assert configured.limit == RateLimit(5, 1.0)


def test_a_429_pauses_everyone_then_one_probe_goes_first():
    budget = RateBudget("r", None)
    first = _pull()
    budget.before(first)
    budget.after(_answer(first, 429, retry_after="1"))
    assert budget.throttled == 1

    released: dict[str, float] = {}
    probes: list[httpx.Request] = []

    def send(name: str, method: str) -> None:
        request = _pull(method=method)
        budget.before(request)
        released[name] = time.monotonic()
        probes.append(request)

    started = time.monotonic()
    threads = [
        threading.Thread(target=send, args=(name, method))
        for name, method in [("a", "GET"), ("b", "HEAD"), ("c", "PUT")]
    ]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    # one went when Retry-After had passed; the others wait for its answer
    assert len(released) == 1
    assert 0.9 <= min(released.values()) - started < 1.5
    budget.after(_answer(probes[0]))
    for thread in threads:
        thread.join(5)
    assert len(released) == 3
    assert max(released.values()) - started >= 1.5
    assert budget.waited >= 1.45


def test_after_a_429_the_registrys_count_refills_the_bucket():
    # Docker Hub's numbers: a 429 empties the bucket, and only the registry's own count
    # (on an answer to a request sent after the 429) fills it again, up as well as down.
    budget = RateBudget("docker.io", DOCKER_HUB_LIMIT, max_wait=1.0)
    limit = {"ratelimit_limit": "100;w=21600"}

    def get(remaining: int) -> float:
        request = _pull()
        started = time.monotonic()
        budget.before(request)
        took = time.monotonic() - started
        budget.after(_answer(request, ratelimit_remaining=f"{remaining};w=21600", **limit))
        return took

    early, throttled = _pull(), _pull()
    budget.before(early)
    budget.before(throttled)
    budget.after(_answer(throttled, 429, retry_after="0", ratelimit_remaining="94", **limit))
    # an answer to a request sent before the 429 does not refill the bucket
    budget.after(_answer(early, ratelimit_remaining="95;w=21600", **limit))
    # nor does an answer without a count, though it tells that the 429s are over
    probe = _pull("/v2/a/tags/list")
    budget.before(probe)
    budget.after(_answer(probe))
    assert 0.8 <= get(93) < 5  # no pull left: held max_wait, then the registry decides

    waited = budget.waited
    took = [get(remaining) for remaining in range(92, 87, -1)]
    assert sum(took) < 2.5  # held max_wait each, they would take 5 s
    assert budget.waited == waited
    assert budget.limit == RateLimit(100, 21600.0)

    # pacing as before: a lower count still lowers the bucket
    get(0)
    assert 0.8 <= get(50) < 5


# -- through a fault proxy in front of the real registry --------------------------------


def _pushed(client, repo, proxy):
    source = repo(proxy.host)
    pushed = push_index(client, source)
    proxy.clear()
    client.requests.reset()
    return source, pushed


def test_pacing_slows_a_burst_of_manifest_gets(fault_proxy, make_client, repo):
    client = make_client(rate_limits={fault_proxy.host: RateLimit(2, 0.5)})  # 4 a second
    source, pushed = _pushed(client, repo, fault_proxy)
    digests = list(pushed.platforms.values()) * 6

    started = time.monotonic()
    got = client.map(lambda digest: client.get_manifest(source.with_digest(digest)), digests)
    paced = time.monotonic() - started
    assert [manifest.digest for manifest in got] == digests
    assert 2.4 <= paced < 20  # 12 pulls: 2 at once, then one every 0.25 s
    spent = client.requests.by_method
    assert spent == {"GET": 12}
    assert spent.waited >= 2.0
    assert spent.throttled == 0

    started = time.monotonic()
    heads = client.map(lambda d: client.head_manifest(source.with_digest(d)), digests)
    assert [head.digest for head in heads] == digests
    assert time.monotonic() - started < 2.0  # HEADs are not pulls


def test_the_registry_headers_set_the_pace(fault_proxy, make_client, repo):
    client = make_client()
    source, pushed = _pushed(client, repo, fault_proxy)
    fault_proxy.rate_limit(3, window=1.0)
    budget = client.budget[fault_proxy.host]
    assert budget.limit is None  # not Docker Hub: unlimited until told

    client.get_manifest(source)
    assert budget.limit == RateLimit(3, 1.0)
    digests = list(pushed.platforms.values()) * 4
    started = time.monotonic()
    got = client.map(lambda digest: client.get_manifest(source.with_digest(digest)), digests)
    paced = time.monotonic() - started
    assert [manifest.digest for manifest in got] == digests
    assert 1.9 <= paced < 20  # 8 pulls, 2 left: one every 1/3 s for the other 6
    # the budget never runs ahead of the registry's own count
    assert [s.outcome for s in fault_proxy.seen].count("429 over the rate limit") == 0
    assert client.requests.total == len(fault_proxy.seen) == 9


def test_a_storm_of_429s_is_ridden_out_and_the_requests_reported(fault_proxy, make_client, repo):
    client = make_client(retry=PATIENT)
    source, pushed = _pushed(client, repo, fault_proxy)
    digests = list(pushed.platforms.values()) * 4
    targets = [
        ImageReference(source.registry, source.repository + "-storm", f"t{i}") for i in range(8)
    ]

    fault_proxy.fail(429, retry_after="1", for_seconds=2.0)
    started = time.monotonic()
    got = client.map(lambda digest: client.get_manifest(source.with_digest(digest)), digests)
    changes = retag(client, source, targets)
    elapsed = time.monotonic() - started

    assert [manifest.digest for manifest in got] == digests
    assert [change.action for change in changes] == ["created"] * 8
    assert 1.9 <= elapsed < 30  # slowed down by the storm, not failed by it
    outcomes = [seen.outcome for seen in fault_proxy.seen]
    throttled = outcomes.count("429 injected")
    # at most the first wave of 8 concurrent GETs, then about one probe a second:
    # the other requests wait for the probe instead of each retrying into the storm
    assert 1 <= throttled <= 12
    spent = client.requests.by_method
    assert client.requests.total == sum(spent.values()) == len(outcomes)
    assert spent.throttled == client.budget.throttled == throttled
    assert spent.waited >= 0.5

    fault_proxy.clear()
    for target in targets:
        assert client.head_manifest(target).digest == pushed.digest


# -- the command line -------------------------------------------------------------------

COMMIT = "3333333cccc"


@pytest.fixture
def published(tmp_path, registry, make_client, repo, monkeypatch):
    """versions.toml of a one-image release, published as 2.11.5 to the registry."""
    from matrix.config import load_config
    from matrix.plan import plan_release
    from matrix.publish.annotations import annotations_for
    from matrix.publish.run import publish
    from matrix.publish.state import reference

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    for name in ("MATRIX_REGISTRY_USERNAME", "MATRIX_REGISTRY_PASSWORD", "DOCKER_AUTH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "versions.toml"
    path.write_text(release_config(repo(registry.host).repository))
    plan = plan_release(load_config(path), "2.11.5", commit=COMMIT, latest=True)
    client = make_client()

    def build(spec, replacing=None):
        assert replacing is None, "a first publish replaces nothing"
        target = reference(registry.host, spec.full_target)
        push_index(client, target, spec.platforms, annotations=annotations_for(plan, spec))

    publish(client, plan, registry.host, build)
    return path


def test_commands_report_the_requests_and_the_wait(published, fault_proxy, capsys):
    from matrix.cli import main

    common = ["--version", "2.11.5", "--sha", COMMIT, "--latest", "--config", str(published)]
    common += ["--registry", fault_proxy.host]

    fault_proxy.fail(429, retry_after="1", for_seconds=1.5)
    started = time.monotonic()
    assert main(["promote", "--dry-run", *common]) == 0
    assert time.monotonic() - started >= 1.4
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    sent = len(fault_proxy.seen)
    throttled = [s.outcome for s in fault_proxy.seen].count("429 injected")
    assert throttled >= 1
    answers = f"{throttled} answer{'' if throttled == 1 else 's'} 429"
    assert f"with {sent} registry requests; waited " in err
    assert f"s for the rate limit ({answers})" in err

    fault_proxy.clear()
    assert main(["verify", *common]) == 0
    out = capsys.readouterr().out
    assert f"1 images and 5 tags as planned ({len(fault_proxy.seen)} requests)" in out
