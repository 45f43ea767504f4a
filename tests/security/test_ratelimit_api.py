"""API rate limits: token buckets per client IP and per API key, 429 problem + Retry-After,
independent buckets, recovery as the clock moves on, and what is never limited."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.ratelimit import TokenBuckets, take_all
from tests.node_tokens import issue_node_token
from tests.security.conftest import MakeApi

PROBLEM = "application/problem+json"


def assert_limited(resp: httpx.Response, retry_after: int, which: str) -> None:
    assert resp.status_code == 429, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    assert resp.headers["retry-after"] == str(retry_after)
    body = resp.json()
    assert body["type"].endswith("/rate-limited")
    assert body["status"] == 429
    assert body["retry_after"] == retry_after
    assert which in body["detail"]
    # The same request id in the header and the body, and the usual security headers.
    assert body["request_id"] == resp.headers["x-request-id"]
    assert resp.headers["x-content-type-options"] == "nosniff"


async def test_per_ip_limit_refuses_then_recovers_and_ips_are_independent(make_api: MakeApi) -> None:
    api = await make_api(api_rate_per_ip=0.5, api_burst_per_ip=3)
    a, b = await api.client("10.0.0.1"), await api.client("10.0.0.2")
    for _ in range(3):  # unauthenticated calls count too: they are what a flood looks like
        assert (await a.get("/api/v1/servers")).status_code == 401
    assert_limited(await a.get("/api/v1/servers"), retry_after=2, which="client IP")
    assert (await b.get("/api/v1/servers")).status_code == 401, "another IP has its own bucket"
    api.clock.advance(1.0)  # half a token: still refused, and the wait shrinks
    assert_limited(await a.get("/api/v1/servers"), retry_after=1, which="client IP")
    api.clock.advance(1.0)
    assert (await a.get("/api/v1/servers")).status_code == 401
    assert_limited(await a.get("/api/v1/servers"), retry_after=2, which="client IP")


async def test_per_key_limit_is_per_key_and_recovers(make_api: MakeApi) -> None:
    api = await make_api(api_rate_per_key=1.0, api_burst_per_key=2)
    other = await api.key("other@example.com")
    root, second = await api.client(key=api.admin_key), await api.client(key=other)
    for _ in range(2):
        assert (await root.get("/api/v1/servers")).status_code == 200
    assert_limited(await root.get("/api/v1/servers"), retry_after=1, which="API key")
    assert (await second.get("/api/v1/servers")).status_code == 200, "another key, same IP: not limited"
    # The same key from another IP is still the same key.
    elsewhere = await api.client("10.9.9.9", key=api.admin_key)
    assert (await elsewhere.get("/api/v1/servers")).status_code == 429
    api.clock.advance(1.0)
    assert (await root.get("/api/v1/servers")).status_code == 200


async def test_a_refused_request_is_neither_audited_nor_read(make_api: MakeApi) -> None:
    api = await make_api(api_rate_per_key=0.1, api_burst_per_key=1)
    root = await api.client(key=api.admin_key)
    assert (await root.post("/api/v1/keys", json={"name": "one"})).status_code == 201
    refused = await root.post("/api/v1/keys", json={"name": "two"})
    assert_limited(refused, retry_after=10, which="API key")
    api.clock.advance(10)
    audit = (await root.get("/api/v1/audit")).json()
    assert [(e["method"], e["status"]) for e in audit] == [("POST", 201)]


async def test_health_metrics_docs_and_console_are_never_limited(make_api: MakeApi) -> None:
    api = await make_api(api_rate_per_ip=0.1, api_burst_per_ip=1)
    client = await api.client()
    for _ in range(5):
        for path in ("/health", "/metrics", "/openapi.json", "/"):
            resp = await client.get(path)
            assert resp.status_code in (200, 404), path
            assert resp.status_code != 429, path


async def test_agents_with_a_valid_node_token_are_not_limited(make_api: MakeApi) -> None:
    api = await make_api(api_rate_per_ip=0.1, api_burst_per_ip=2, api_rate_per_key=0.1, api_burst_per_key=2)
    agent = await api.client(key=await issue_node_token(api.app.state.sessions, "node-1"))
    for _ in range(10):
        assert (await agent.get("/api/v1/agent/sources/" + "0" * 64)).status_code == 404
    # A forged token is only a bearer string: limited like any caller from that IP.
    forger = await api.client("10.0.0.1", key="forged-token")
    codes = [(await forger.get("/api/v1/agent/sources/" + "0" * 64)).status_code for _ in range(3)]
    assert codes == [401, 401, 429]


async def test_limits_can_be_switched_off(make_api: MakeApi) -> None:
    api = await make_api(rate_limit_enabled=False, api_rate_per_ip=0.1, api_burst_per_ip=1)
    client = await api.client()
    assert {(await client.get("/api/v1/servers")).status_code for _ in range(5)} == {401}


def test_429_and_retry_after_are_in_the_openapi_document(tmp_path: object) -> None:
    from api.main import create_app
    from tests.security.conftest import api_settings

    spec = create_app(api_settings(tmp_path)).openapi()  # type: ignore[arg-type]
    limited = spec["paths"]["/api/v1/servers"]["get"]["responses"]["429"]
    assert "Retry-After" in limited["headers"]
    assert "application/problem+json" in limited["content"]
    assert "429" not in spec["paths"]["/health"]["get"]["responses"]


# --- the bucket itself ---------------------------------------------------------------------------


def test_a_bucket_refuses_nothing_it_cannot_pay_for_and_takes_nothing_when_refusing() -> None:
    ip, key = TokenBuckets(rate=1.0, burst=2), TokenBuckets(rate=1.0, burst=1)
    assert take_all([(ip, "a"), (key, "k")], 0.0) == 0
    assert take_all([(ip, "a"), (key, "k")], 0.0) == pytest.approx(1.0)  # the key bucket is empty
    assert ip.level("a", 0.0) == pytest.approx(1.0), "the refused request took no IP token"
    assert take_all([(ip, "a"), (key, "k")], 1.0) == 0


def test_buckets_are_bounded_and_the_idlest_go_first() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, max_buckets=100)
    for i in range(250):
        buckets.take(f"k{i}", 0.0)
    assert len(buckets) == 100
    assert buckets.level("k249", 0.0) == 0
    assert buckets.level("k0", 0.0) == 1


@settings(max_examples=200, deadline=None)
@given(rate=st.floats(0.1, 50), burst=st.integers(1, 20),
       gaps=st.lists(st.floats(0, 2), min_size=1, max_size=120))
def test_no_window_lets_more_through_than_burst_plus_rate_times_its_length(
        rate: float, burst: int, gaps: list[float]) -> None:
    buckets = TokenBuckets(rate, burst)
    now, admitted = 0.0, []
    for gap in gaps:
        now += gap
        if take_all([(buckets, "x")], now) == 0:
            admitted.append(now)
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= burst + rate * (admitted[j] - start) + 1e-6
