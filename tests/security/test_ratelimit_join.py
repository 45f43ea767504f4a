"""The matchmaker's join limit: per client IP and per X-Player-Id, 429 + Retry-After, recovery
on the app's clock, shared between replicas on Redis, and nothing else limited."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from matchmaker.app import create_app
from tests.matchmaker.conftest import FakeClock, Stores, make_settings

Client = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    import uuid

    s = Stores(str(request.param), f"gsf:mm:test:{uuid.uuid4().hex[:12]}:")
    try:
        yield s
    finally:
        await s.aclose()


@pytest.fixture
async def replicas(stores: Stores, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Started matchmaker apps on the test's store, all on one controllable clock."""
    clock = FakeClock()
    async with AsyncExitStack() as stack:

        async def make(**settings: Any) -> tuple[FastAPI, Client, FakeClock]:
            app = create_app(make_settings(tmp_path, **settings), await stores.new(), clock, sweep_seconds=0.05)
            await stack.enter_async_context(app.router.lifespan_context(app))

            async def client(ip: str = "10.0.0.1", player: str | None = None) -> httpx.AsyncClient:
                headers = {"X-Player-Id": player} if player else {}
                return await stack.enter_async_context(httpx.AsyncClient(
                    transport=httpx.ASGITransport(app, client=(ip, 40000)), base_url="http://mm",
                    headers=headers))

            return app, client, clock

        yield make


async def join(client: httpx.AsyncClient) -> int:
    # No room is listed: an admitted join is a 409 no-room-available, a refused one a 429.
    return (await client.post("/join", json={"game": "chess"})).status_code


def assert_limited(resp: httpx.Response, retry_after: int) -> None:
    assert resp.status_code == 429, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.headers["retry-after"] == str(retry_after)
    body = resp.json()
    assert body["type"].endswith("/rate-limited")
    assert body["retry_after"] == retry_after


async def test_per_ip_limit_refuses_recovers_and_ips_are_independent(replicas: Any) -> None:
    _, client, clock = await replicas(join_rate_per_ip=0.25, join_burst_per_ip=2)
    a, b = await client("10.0.0.1"), await client("10.0.0.2")
    assert [await join(a), await join(a)] == [409, 409]
    assert_limited(await a.post("/join", json={"game": "chess"}), retry_after=4)
    assert await join(b) == 409, "another IP has its own bucket"
    clock.advance(3.0)
    assert_limited(await a.post("/join", json={"server_id": "x"}), retry_after=1)
    clock.advance(1.0)
    assert await join(a) == 409
    # Only POST /join is limited.
    assert {(await a.get("/servers")).status_code for _ in range(5)} == {200}
    assert (await a.get("/health")).status_code == 200


async def test_per_player_limit_applies_when_the_caller_names_the_player(replicas: Any) -> None:
    _, client, clock = await replicas(join_rate_per_player=0.5, join_burst_per_player=1)
    p1, p1_elsewhere, p2 = await client(player="p1"), await client("10.0.0.9", player="p1"), await client(player="p2")
    assert await join(p1) == 409
    assert_limited(await p1_elsewhere.post("/join", json={"game": "chess"}), retry_after=2)
    assert await join(p2) == 409
    assert await join(await client()) == 409, "without the header only the IP bucket applies"
    clock.advance(2.0)
    assert await join(p1) == 409


async def test_refusals_are_counted_in_metrics(replicas: Any) -> None:
    _, client, _ = await replicas(join_rate_per_ip=0.1, join_burst_per_ip=1, metrics_token="scrape-secret")
    a = await client()
    assert [await join(a) for _ in range(3)] == [409, 429, 429]
    text = (await a.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})).text
    joins = {s.labels["result"]: s.value for f in text_string_to_metric_families(text)
             if f.name == "gsf_matchmaker_joins" for s in f.samples}
    assert joins == {"no-room-available": 1, "rate-limited": 2}


@pytest.mark.parametrize("stores", ["redis"], indirect=True)
async def test_replicas_on_redis_share_the_buckets(replicas: Any) -> None:
    _, client_1, _ = await replicas(join_rate_per_ip=0.1, join_burst_per_ip=2)
    _, client_2, _ = await replicas(join_rate_per_ip=0.1, join_burst_per_ip=2)
    one, two = await client_1(), await client_2()
    assert [await join(one), await join(two)] == [409, 409]
    assert await join(one) == 429
    assert await join(two) == 429


async def test_disabled_limits_let_every_join_through(replicas: Any) -> None:
    _, client, _ = await replicas(rate_limit_enabled=False, join_rate_per_ip=0.1, join_burst_per_ip=1)
    a = await client()
    assert {await join(a) for _ in range(4)} == {409}


def test_join_declares_429_with_retry_after(tmp_path: Path) -> None:
    spec = create_app(make_settings(tmp_path)).openapi()
    responses = spec["paths"]["/join"]["post"]["responses"]
    assert {"404", "409", "422", "429", "503"} <= set(responses)
    assert "Retry-After" in responses["429"]["headers"]
    assert "429" not in spec["paths"]["/servers"]["get"]["responses"]
    assert [p["name"] for p in spec["paths"]["/join"]["post"]["parameters"]] == ["X-Player-Id"]
