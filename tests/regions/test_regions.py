"""Latency-aware region choice (issue #23): the agent's ping endpoint, the matchmaker's GET /regions,
and both SDKs' joinOrCreate({region: "auto"}) with two regions on this machine: "eu" on 127.0.0.1
and "us" on a host in a network namespace whose packets wait 80 ms (tests/regions/netdelay.py)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from gsf_client import Client, NoRoomAvailableError, Room

from agent_worker.ping import PingServer
from core import listen
from core.settings import Settings
from tests.clients.platform import GameServer
from tests.clients.test_js_sdk import JS, build_if_stale, node
from tests.conftest import reserve_port
from tests.regions.netdelay import DelayedHost, delayed_host
from tests.regions.platform import RegionPlatform

COUNTER = Path(__file__).resolve().parents[1] / "clients" / "games" / "counter.js"  # 4 seats, one room a server
DELAY_MS = 80
HERE = Path(__file__).resolve().parent


# --- the ping endpoint ----------------------------------------------------------------------------


async def exchange(port: int, raw: bytes, answers: int = 1) -> list[bytes]:
    """Send raw request bytes over one connection; the heads (and bodies) of `answers` responses."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        out: list[bytes] = []
        for _ in range(answers):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            out.append(head + (await reader.readexactly(length) if length else b""))
        return out
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.fixture
async def ping_server(tmp_path: Path) -> AsyncIterator[PingServer]:
    settings = Settings(env="test", data_dir=tmp_path / "data", agent_ping_port=reserve_port(), agent_ping_rate=1.0,
                        agent_ping_burst=3)
    server = PingServer(settings)
    task = asyncio.create_task(server.serve())
    try:
        await asyncio.wait_for(server.started.wait(), 5)
        yield server
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_ping_answers_204_to_any_origin_keeps_the_connection_and_limits_the_rate(
        ping_server: PingServer) -> None:
    assert ping_server.host == "127.0.0.1", "the agent's publish_host when agent_ping_host is empty"
    two = b"GET /ping HTTP/1.1\r\nHost: x\r\nOrigin: https://game.example\r\n\r\n" * 2
    first, second = await exchange(ping_server.port, two, answers=2)  # one connection, two answers
    for head in (first, second):
        assert head.startswith(b"HTTP/1.1 204 No Content\r\n"), head
        assert b"Access-Control-Allow-Origin: *\r\n" in head
        assert b"Timing-Allow-Origin: *\r\n" in head
        assert b"Cache-Control: no-store\r\n" in head
        assert b"Connection: keep-alive\r\n" in head
    [preflight] = await exchange(ping_server.port, b"OPTIONS /ping HTTP/1.1\r\nHost: x\r\n"
                                 b"Access-Control-Request-Method: GET\r\n\r\n")
    assert preflight.startswith(b"HTTP/1.1 204")
    assert b"Access-Control-Allow-Methods: GET, HEAD, OPTIONS" in preflight
    [other] = await exchange(ping_server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert other.startswith(b"HTTP/1.1 404")
    [post] = await exchange(ping_server.port, b"POST /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    assert post.startswith(b"HTTP/1.1 405")
    [bad] = await exchange(ping_server.port, b"nonsense\r\n\r\n")
    assert bad.startswith(b"HTTP/1.1 400")
    # Burst 3, one a second: the two pings above and one more pass, the next is refused.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ping_server.port}") as http:
        assert (await http.head("/ping")).status_code == 204
        refused = await http.get("/ping")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
    assert ping_server.answered == 3


async def test_no_ping_endpoint_on_port_zero(tmp_path: Path) -> None:
    server = PingServer(Settings(env="test", data_dir=tmp_path / "data", agent_ping_port=0))
    await asyncio.wait_for(server.serve(), 1)  # returns at once, serves nothing
    assert not server.started.is_set()


# --- two regions ------------------------------------------------------------------------------------


@dataclass
class Regions:
    platform: RegionPlatform
    us_host: DelayedHost
    ping_port: int
    eu: GameServer
    us: GameServer


@pytest.fixture
async def regions(tmp_path: Path) -> AsyncIterator[Regions]:
    with delayed_host(DELAY_MS) as us_host:
        # One ping port for every node (the matchmaker lists it with each node's host): bound here
        # on 127.0.0.1, then the same port on the far host, which nothing else can hold.
        eu_ping = listen.bind("127.0.0.1", 0)
        port = listen.port_of(eu_ping)
        us_ping = us_host.listen(port)
        platform = RegionPlatform(tmp_path, settings_overrides={"agent_ping_port": port})
        async with platform:
            await platform.add_ping(eu_ping)
            await platform.add_ping(us_ping)
            eu = await platform.add_region_server(COUNTER, "eu", listen.bind("127.0.0.1", 0), "127.0.0.1")
            us = await platform.add_region_server(COUNTER, "us", us_host.listen(0), us_host.address)
            yield Regions(platform, us_host, port, eu, us)


async def test_regions_list_ping_urls_and_seats(regions: Regions) -> None:
    async with httpx.AsyncClient(base_url=regions.platform.url) as http:
        listed = (await http.get("/regions", params={"game": "counter"})).json()
        assert listed == {"game": "counter", "regions": [
            {"region": "eu", "ping_urls": [f"http://127.0.0.1:{regions.ping_port}/ping"], "servers": 1, "rooms": 1,
             "free_seats": 4, "capacity": True},
            {"region": "us", "ping_urls": [f"http://{regions.us_host.address}:{regions.ping_port}/ping"],
             "servers": 1, "rooms": 1, "free_seats": 4, "capacity": True}]}
        # Another game: the regions are there (with their ping URLs), nothing of that game in them.
        other = (await http.get("/regions", params={"game": "chess"})).json()["regions"]
        assert [(r["region"], r["servers"], r["capacity"], len(r["ping_urls"])) for r in other] == [
            ("eu", 0, False, 1), ("us", 0, False, 1)]
        bad = await http.get("/regions", params={"game": ""})
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")


async def test_python_sdk_joins_the_nearest_region_then_the_next_with_capacity(regions: Regions) -> None:
    rooms: list[Room] = []
    async with Client(regions.platform.url, reconnect=False) as client:
        try:
            measured = await client.measure_regions("counter")
            assert [r.region for r in measured] == ["eu", "us"], measured
            eu, us = measured
            assert eu.latency_ms is not None
            assert us.latency_ms is not None
            # The far host's answers wait 80 ms: its median round trip is at least that; ours is loopback.
            assert us.latency_ms >= DELAY_MS * 0.95, us
            assert eu.latency_ms < DELAY_MS / 2, eu
            assert len(eu.samples_ms) == len(us.samples_ms) == 4
            assert client.latencies == {"eu": eu.latency_ms, "us": us.latency_ms}

            for _ in range(4):  # eu takes its four seats first
                rooms.append(await client.join_or_create("counter", region="auto"))
                assert (client.last_region, rooms[-1].server_id) == ("eu", regions.eu.server_id)
            # eu is full (its server hosts one room): the nearest region with capacity is us.
            rooms.append(await client.join_or_create("counter", region="auto"))
            assert (client.last_region, rooms[-1].server_id) == ("us", regions.us.server_id)
            assert (await rooms[-1].receive("hello"))[1]["id"] == rooms[-1].player_id
            regions_now = {r["region"]: r for r in await client.get_regions("counter")}
            assert (regions_now["eu"]["capacity"], regions_now["us"]["free_seats"]) == (False, 3)

            # A named region is that region or an error, never another one.
            with pytest.raises(NoRoomAvailableError):
                await client.join_or_create("counter", region="eu")
            for _ in range(3):
                rooms.append(await client.join_or_create("counter", region="us"))
            # Every region full: "auto" falls back to any server of the game, which has no seat either.
            with pytest.raises(NoRoomAvailableError):
                await client.join_or_create("counter", region="auto")
            assert client.last_region is None
        finally:
            for room in rooms:
                await room.leave()


async def test_js_sdk_measures_and_joins_by_latency(regions: Regions) -> None:
    await build_if_stale()

    async def run(joins: int) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
        env = {**os.environ, "GSF_REGIONS_MATCHMAKER": regions.platform.url, "GSF_REGIONS_JOINS": str(joins)}
        proc = await asyncio.create_subprocess_exec(node(), str(HERE / "sdk_regions.mjs"), cwd=JS, env=env,
                                                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        try:
            return proc, json.loads(line)
        except ValueError:
            rest = await asyncio.wait_for(proc.stdout.read(), 10)
            raise AssertionError((line + rest).decode(errors="replace")) from None

    async def stop(proc: asyncio.subprocess.Process) -> None:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    first, seen = await run(4)
    second = None
    try:
        latencies = seen["latencies"]
        assert isinstance(latencies, dict)
        assert latencies["us"] >= DELAY_MS * 0.95, seen
        assert latencies["eu"] < DELAY_MS / 2, seen
        assert [r["region"] for r in seen["measured"]] == ["eu", "us"]
        assert seen["landed"] == [{"region": "eu", "server_id": regions.eu.server_id}] * 4
        second, then = await run(1)  # eu is full now
        assert then["landed"] == [{"region": "us", "server_id": regions.us.server_id}]
    finally:
        await stop(first)
        if second is not None:
            await stop(second)
