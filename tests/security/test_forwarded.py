"""X-Forwarded-For is believed only from GSF_TRUSTED_PROXIES (issue #19): a caller rotating the
header can neither leave its rate-limit bucket nor choose its address in the audit log. The API
and the matchmaker are served here as `gsf api` and `gsf matchmaker` serve them (api.server,
matchmaker.server), through a real uvicorn on 127.0.0.1, because uvicorn itself believes the
header from 127.0.0.1 unless told not to."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import given
from hypothesis import strategies as st

from api.main import create_app
from api.server import uvicorn_config
from core.asgi import TrustedProxies
from core.bootstrap import create_user_key
from core.settings import Settings
from matchmaker.server import build_server
from tests.matchmaker.conftest import FakeClock, make_settings
from tests.security.conftest import api_settings


def proxies(*networks: str) -> TrustedProxies:
    return TrustedProxies(ipaddress.ip_network(n) for n in networks)


# --- the algorithm ---------------------------------------------------------------------------------


def test_an_untrusted_peer_is_the_client_whatever_it_sends() -> None:
    assert proxies().client("127.0.0.1", [b"203.0.113.7"]) == "127.0.0.1"
    assert proxies("10.0.0.0/8").client("127.0.0.1", [b"203.0.113.7"]) == "127.0.0.1"
    assert proxies("10.0.0.0/8").client("testclient", [b"203.0.113.7"]) == "testclient"


def test_a_trusted_peer_gives_the_right_most_untrusted_address() -> None:
    p = proxies("127.0.0.1", "10.0.0.0/8")
    # What the client wrote itself (left) is ignored; trusted hops (right) are skipped.
    assert p.client("127.0.0.1", [b"1.1.1.1, 198.51.100.9, 203.0.113.7, 10.1.2.3"]) == "203.0.113.7"
    assert p.client("127.0.0.1", [b"1.1.1.1", b"203.0.113.7"]) == "203.0.113.7", "several headers are one list"
    assert p.client("127.0.0.1", [b"203.0.113.7:4711"]) == "203.0.113.7"
    assert p.client("127.0.0.1", [b"[2001:db8::7]:4711"]) == "2001:db8::7"
    assert p.client("127.0.0.1", [b"2001:db8::7"]) == "2001:db8::7"
    assert p.client("::ffff:127.0.0.1", [b"203.0.113.7"]) == "203.0.113.7", "an IPv4 peer on a dual-stack socket"
    # Every hop trusted: the left-most is as far as the chain goes.
    assert p.client("127.0.0.1", [b"10.0.0.5, 10.0.0.6"]) == "10.0.0.5"
    # Something that is no address stops the walk at the last hop that is trusted.
    assert p.client("127.0.0.1", [b"203.0.113.7, unknown"]) == "127.0.0.1"
    assert p.client("127.0.0.1", [b"203.0.113.7, garbage, 10.0.0.5"]) == "10.0.0.5"
    assert p.client("127.0.0.1", [b""]) == "127.0.0.1"


addresses = st.ip_addresses(v=4).map(str)


@given(written=st.lists(st.one_of(addresses, st.text(max_size=20)), max_size=5), client=addresses,
       hops=st.lists(st.integers(0, 255), max_size=3))
def test_what_the_client_writes_never_decides(written: list[str], client: str, hops: list[int]) -> None:
    """Whatever a client puts in its own header, the trusted proxies' appended entries decide."""
    p = proxies("127.0.0.0/8", "10.0.0.0/8")
    if p.trusts(ipaddress.ip_address(client)):
        return
    chain = ", ".join([*written, client, *(f"10.0.0.{h}" for h in hops)])
    assert p.client("127.0.0.1", [chain.encode("latin-1", "replace")]) == client


# --- the API, served as `gsf api` serves it ----------------------------------------------------------


@contextlib.asynccontextmanager
async def served(server: uvicorn.Server) -> AsyncIterator[str]:
    """`server` on a port of 127.0.0.1 the kernel picks; its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server.capture_signals = contextlib.nullcontext  # type: ignore[assignment,method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(250):
            if server.started or task.done():
                break
            await asyncio.sleep(0.02)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), 5)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sock.close()


@contextlib.asynccontextmanager
async def api(tmp_path: Path, **overrides: Any) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client of the API served by uvicorn as `gsf api` configures it, and an admin key."""
    settings = api_settings(tmp_path, **overrides)
    app = create_app(settings)
    app.state.rate_limits.clock = FakeClock(1000.0)  # no refill while the test runs
    async with served(uvicorn.Server(uvicorn_config(app, settings))) as url, httpx.AsyncClient(
            base_url=url, timeout=10) as client:
        _, admin = await create_user_key(app.state.sessions, "root@example.com", admin=True)
        yield client, admin


async def audited_client(client: httpx.AsyncClient, admin: str, forwarded_for: str) -> str:
    """The client address the audit log records for an admin's POST sent with this header (the
    POST and the audit read take a token each from that client's bucket)."""
    headers = {"Authorization": f"Bearer {admin}", "X-Forwarded-For": forwarded_for}
    made = await client.post("/api/v1/keys", json={"name": "probe"}, headers=headers)
    assert made.status_code == 201, made.text
    audit = await client.get("/api/v1/audit", headers=headers)
    assert audit.status_code == 200, audit.text
    entry = next(e for e in audit.json() if e["method"] == "POST" and e["path"] == "/api/v1/keys")
    return str(entry["client"])


async def test_api_ignores_forwarded_for_from_an_untrusted_peer(tmp_path: Path) -> None:
    async with api(tmp_path, api_rate_per_ip=0.01, api_burst_per_ip=4) as (client, admin):
        assert await audited_client(client, admin, "203.0.113.7") == "127.0.0.1"  # two tokens
        rotated = [await client.get("/api/v1/servers", headers={"X-Forwarded-For": f"198.51.100.{i}"})
                   for i in range(3)]
        assert [r.status_code for r in rotated] == [401, 401, 429], "a new header is not a new client"
        assert rotated[-1].json()["type"].endswith("/rate-limited")


async def test_api_believes_a_trusted_proxy(tmp_path: Path) -> None:
    async with api(tmp_path, api_rate_per_ip=0.01, api_burst_per_ip=3,
                   trusted_proxies=["127.0.0.1"]) as (client, admin):
        # The proxy appended the address it saw; the client's own entry (left) does not count.
        assert await audited_client(client, admin, "198.51.100.1, 203.0.113.7") == "203.0.113.7"
        spoofed = [await client.get("/api/v1/servers", headers={"X-Forwarded-For": f"198.51.100.{i}, 203.0.113.7"})
                   for i in range(2)]
        assert [r.status_code for r in spoofed] == [401, 429], "203.0.113.7 has spent its three tokens"
        other = await client.get("/api/v1/servers", headers={"X-Forwarded-For": "203.0.113.8"})
        assert other.status_code == 401, "another client behind the proxy has its own bucket"
        # The proxy's own calls (no header) are the proxy's.
        assert (await client.get("/api/v1/servers")).status_code == 401


def test_trusted_proxies_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GSF_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")
    listed = Settings(env="test", data_dir=tmp_path, secret_key="x").trusted_proxies
    assert [str(n) for n in listed] == ["127.0.0.1/32", "10.0.0.0/8"]
    monkeypatch.setenv("GSF_TRUSTED_PROXIES", '["::1"]')
    assert [str(n) for n in Settings(env="test", data_dir=tmp_path, secret_key="x").trusted_proxies] == ["::1/128"]
    monkeypatch.delenv("GSF_TRUSTED_PROXIES")
    assert Settings(env="test", data_dir=tmp_path, secret_key="x").trusted_proxies == []


# --- the matchmaker, served as `gsf matchmaker` serves it ----------------------------------------------


async def joins(url: str, forwarded: list[str]) -> list[int]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return [(await client.post("/join", json={"server_id": "no-such-room"},
                                   headers={"X-Forwarded-For": value} if value else {})).status_code
                for value in forwarded]


async def test_matchmaker_ignores_forwarded_for_from_an_untrusted_peer(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, join_rate_per_ip=0.01, join_burst_per_ip=3)
    async with served(build_server(settings, log_level="warning")) as url:
        # Each admitted join of an unknown room is a 404; the fourth from this peer is refused.
        assert await joins(url, [f"198.51.100.{i}" for i in range(4)]) == [404, 404, 404, 429]


async def test_matchmaker_believes_a_trusted_proxy(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, join_rate_per_ip=0.01, join_burst_per_ip=2, trusted_proxies=["127.0.0.1"])
    async with served(build_server(settings, log_level="warning")) as url:
        assert await joins(url, [f"198.51.100.{i}, 203.0.113.7" for i in range(3)]) == [404, 404, 429]
        assert await joins(url, ["203.0.113.8", "", ""]) == [404, 404, 404], "other clients, and the proxy itself"
