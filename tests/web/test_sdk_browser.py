"""The client SDK in a browser (issue #23): Debian's Chromium loads the built ESM bundle the API
serves at /sdk/, joins a room of a real game server through the real matchmaker, exchanges
frames and synced state, loses its TCP connection (reset, not a clean close) while the network
stays down for a while, and comes back into the same seat with the same player id. The console's
play page does the same through the SDK and says "reconnecting…" meanwhile.

The drop is real and deterministic: the browser reaches the game server through a TCP relay this
module runs (the page's WebSocket is pointed at it); `cut()` resets both sides of every relayed
connection, and while `blocked` new connections are reset as soon as they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import struct
import sys
from collections.abc import AsyncIterator
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Page, expect

from core import listen
from tests.conftest import REPO
from tests.processes import run_to_end
from tests.web.conftest import Pages, Platform, running_server
from tests.web.test_console import goto, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.temporal]

SAMPLES = REPO / "docs" / "samples"  # the client guide's samples (docs/clients.md)
COUNTER = SAMPLES / "counter.js"  # stateSync, reconnectSeconds 15, `inc` and `echo`
PAGE_FILES = {"/": SAMPLES / "sdk-player.html", "/sdk-player.js": SAMPLES / "sdk-player.js"}


class Served:
    """Something this module serves on a port of its own: started on entering `async with`, closed on leaving."""

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class GamePage(Served):
    """A game's own web site on its own origin (loopback, so Chromium lets it reach the loopback
    matchmaker): the sample page and its module, and /sdk/ passed through from the API, which
    serves the built bundle."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url
        self.url = ""
        self.sdk_files: list[str] = []
        self._server: asyncio.Server | None = None
        self._http = httpx.AsyncClient(base_url=api_url, timeout=10)

    async def start(self) -> None:
        sock = listen.bind()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._server = await asyncio.start_server(self._answer, sock=sock)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self._http.aclose()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            path = head.split(b" ", 2)[1].decode().split("?", 1)[0]
            if path.startswith("/sdk/"):
                upstream = await self._http.get(path)
                self.sdk_files.append(path)
                status, kind, body = upstream.status_code, upstream.headers.get("content-type", ""), upstream.content
            elif path in PAGE_FILES:
                kind = "text/html" if path == "/" else "text/javascript"
                status, body = 200, PAGE_FILES[path].read_bytes()
            else:
                status, kind, body = 404, "text/plain", b"not here"
            writer.write(f"HTTP/1.1 {status} X\r\ncontent-type: {kind}\r\ncontent-length: {len(body)}\r\n"
                         "cache-control: no-store\r\nconnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, httpx.HTTPError):  # TimeoutError is an OSError
            pass
        finally:
            writer.close()


class CuttableRelay(Served):
    """A TCP relay to one game server whose connections the test can reset at will."""

    def __init__(self) -> None:
        self.target: tuple[str, int] | None = None
        self.blocked = False
        self.relayed = 0  # connections relayed to the target
        self.refused = 0  # connections reset on arrival while blocked
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        sock = listen.bind()
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._accept, sock=sock)

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @staticmethod
    def _reset(writer: asyncio.StreamWriter) -> None:
        """Close with RST (SO_LINGER 0): the peer sees a broken connection, no close frame, no FIN."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    def cut(self) -> int:
        """Reset every relayed connection, both sides; how many there were."""
        pairs = list(self._pairs)
        for down, up in pairs:
            self._reset(down)
            self._reset(up)
        self._pairs.clear()
        return len(pairs)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._relay(reader, writer)
        finally:
            self._tasks.discard(task)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.blocked or self.target is None:
            self.refused += 1
            self._reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self._reset(writer)
            return
        self.relayed += 1
        pair = (writer, up_writer)
        self._pairs.add(pair)
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            self._pairs.discard(pair)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()  # after cut() the transport is aborted already: then a no-op


@pytest.fixture(scope="module")
async def relay() -> AsyncIterator[CuttableRelay]:
    async with CuttableRelay() as held:
        yield held


@pytest.fixture(scope="module")
async def game_page(platform: Platform) -> AsyncIterator[GamePage]:
    async with GamePage(platform.url) as held:
        yield held


@pytest.fixture(scope="module")
async def counter_room(platform: Platform, relay: CuttableRelay) -> dict[str, Any]:
    """A running counter server, deployed through the API and listed by the matchmaker; the relay points at it."""
    async with platform.api() as api:
        server_id = await running_server(api, "web-sdk", COUNTER)
    async with httpx.AsyncClient(base_url=platform.mm_url, timeout=10) as mm:
        listed: dict[str, Any] = {}
        for _ in range(150):
            resp = await mm.get(f"/rooms/{server_id}")
            if resp.status_code == 200 and resp.json().get("ready"):
                listed = resp.json()
                break
            await asyncio.sleep(0.2)
    assert listed, f"{server_id} never showed in the matchmaker's room list"
    where = urlsplit(listed["ws_url"])
    assert where.hostname is not None, listed
    assert where.port is not None, listed
    relay.target = (where.hostname, where.port)
    return {"server_id": server_id, "ws_host": f"{where.hostname}:{where.port}"}


async def point_websockets_at(page: Page, target: str, relay: CuttableRelay) -> None:
    """Every WebSocket the page opens to `target` (host:port) goes through the relay instead."""
    await page.add_init_script(f"""(() => {{
      const Native = window.WebSocket;
      class ViaRelay extends Native {{
        constructor(url, protocols) {{
          const u = new URL(url, location.href);
          if (u.host === {json.dumps(target)}) u.host = '127.0.0.1:{relay.port}';
          super(u.href, protocols);
        }}
      }}
      window.WebSocket = ViaRelay;
    }})();""")


async def wait_true(page: Page, expression: str, timeout: float = 15_000) -> None:
    await page.wait_for_function(expression, timeout=timeout)


async def test_a_page_with_the_esm_sdk_joins_exchanges_and_reconnects_with_the_same_id(
        page: Page, platform: Platform, relay: CuttableRelay, game_page: GamePage,
        counter_room: dict[str, Any]) -> None:
    await point_websockets_at(page, counter_room["ws_host"], relay)
    await goto(page, f"{game_page.url}/?matchmaker={platform.mm_url}")
    log = page.locator("#log li")
    await expect(log.first).to_have_text(re.compile(r"^joined \S+ as Ada$"))
    assert {"/sdk/index.js", "/sdk/client.js", "/sdk/room.js"} <= set(game_page.sdk_files)  # from the API
    joined = await page.evaluate("""() => {
      const room = window.room;
      const seen = window.seen = { echo: [], drops: [], reconnects: 0, leaves: [], errors: [] };
      room.onMessage('echo', (data) => seen.echo.push(data));
      room.onDrop((code) => seen.drops.push(code));
      room.onReconnect(() => { seen.reconnects += 1; });
      room.onLeave((code, error) => seen.leaves.push([code, error ? error.name : null]));
      room.onError((error) => seen.errors.push(String(error && error.name)));
      return { playerId: room.playerId, roomId: room.id, name: room.name, welcome: room.welcome };
    }""")
    player_id = joined["playerId"]
    assert re.fullmatch(r"[0-9a-f]{32}", player_id), joined
    assert joined["name"] == "Ada"
    welcome = joined["welcome"]
    assert welcome["protocol"] == 1, welcome
    assert welcome["reconnect"], welcome
    assert welcome["reconnectSeconds"] == 15, welcome
    assert welcome["stateSync"] is True, welcome
    assert relay.relayed == 1  # the page's one connection went through the relay

    # A message each way, and synced state ($state, then $patch) with a path listener.
    await page.evaluate("() => window.room.send('echo', { n: 1 })")
    for count in (1, 2):  # one at a time: two within one patch round would come as one change
        await page.get_by_role("button", name="+1").click()
        await wait_true(page, f"window.room.state && window.room.state.count === {count}")
    await wait_true(page, "window.seen.echo.length === 1 && window.room.state && window.room.state.count === 2")
    assert await page.evaluate("() => window.seen.echo[0]") == {"n": 1}
    assert await page.evaluate(f"() => window.room.state.players[{json.dumps(player_id)}].joins") == 1
    await expect(log.filter(has_text=re.compile(r"^(echo|count) "))).to_have_text(
        ["count 0", 'echo {"n":1}', "count 1", "count 2"])  # the first $state says 0

    # The network goes down: the connection is reset (no close frame) and stays down a while.
    relay.blocked = True
    assert relay.cut() == 1
    await wait_true(page, "window.seen.drops.length === 1")
    assert await page.evaluate("() => window.seen.drops") == [1006]
    # The SDK keeps trying (with backoff) while the network is down; a frame sent meanwhile waits.
    await page.evaluate("() => window.room.send('echo', { n: 2 })")
    for _ in range(100):
        if relay.refused >= 2:
            break
        await asyncio.sleep(0.05)
    assert relay.refused >= 2, relay.refused
    assert await page.evaluate("() => [window.seen.reconnects, window.room.connected]") == [0, False]

    relay.blocked = False
    await wait_true(page, "window.seen.reconnects === 1")
    back = await page.evaluate("() => ({ id: window.room.playerId, welcome: window.room.welcome })")
    assert back["id"] == player_id
    assert back["welcome"]["reconnected"] is True
    assert back["welcome"]["playerId"] == player_id
    assert back["welcome"]["reconnect"] != welcome["reconnect"]  # a fresh token each time
    # The frame sent while away arrives, the room's state says the same player came back
    # (the game's onReconnect counted it), and the room goes on.
    await wait_true(page, "window.seen.echo.length === 2")
    assert await page.evaluate("() => window.seen.echo[1]") == {"n": 2}
    await wait_true(page, f"window.room.state.players[{json.dumps(player_id)}].joins === 2")
    await page.evaluate("() => window.room.send('inc', { by: 3 })")
    await wait_true(page, "window.room.state.count === 5")
    await expect(log.filter(has_text="connection lost")).to_have_text(["connection lost (1006): reconnecting…"])
    await expect(log.filter(has_text="back in")).to_have_text([f"back in {joined['roomId']} as Ada"])
    assert await page.evaluate("() => Object.keys(window.room.state.players)") == [player_id]
    assert relay.relayed == 2

    await page.evaluate("() => window.room.leave()")
    assert await page.evaluate("() => window.seen.leaves") == [[1000, None]]
    await expect(log.last).to_have_text("left (1000)")
    assert await page.evaluate("() => window.seen.errors") == []


async def test_the_console_play_page_says_reconnecting_and_comes_back_as_the_same_player(
        pages: Pages, platform: Platform, relay: CuttableRelay, counter_room: dict[str, Any]) -> None:
    page = await pages.new()
    await point_websockets_at(page, counter_room["ws_host"], relay)
    await sign_in(page, platform.key)
    before = relay.relayed
    await goto(page, f"/#/play/{counter_room['server_id']}")
    await page.get_by_label("Game client").select_option("raw")
    await page.get_by_label("Your name (optional)").fill("Grace")
    await page.get_by_role("button", name="Join").click()
    connection = page.locator(".connection")
    await expect(connection).to_have_text("Connected as Grace.")
    await expect(connection).to_have_attribute("data-state", "open")
    assert relay.relayed == before + 1

    frames = page.get_by_role("log", name="Frames received").locator("li")
    welcome_text = await frames.filter(has_text=re.compile(r"^welcome ")).inner_text()
    player_id = json.loads(welcome_text.removeprefix("welcome "))["playerId"]

    async def send(kind: str, data: str) -> None:
        await page.get_by_label("Type").fill(kind)
        await page.get_by_label("Data (JSON, optional)").fill(data)
        await page.get_by_role("button", name="Send").click()

    async def synced() -> dict[str, Any]:
        return dict(json.loads(await page.get_by_test_id("synced-state").inner_text()))

    await send("echo", '{"n": 1}')
    await expect(frames.first).to_have_text('echo {"n":1}')
    await expect(page.get_by_test_id("synced-state")).to_contain_text(f'"{player_id}"')
    assert (await synced())["players"][player_id]["joins"] == 1

    relay.blocked = True
    assert relay.cut() == 1
    await expect(connection).to_have_attribute("data-state", "reconnecting")
    await expect(connection).to_contain_text("reconnecting…")
    await expect(page.get_by_role("button", name="Leave")).to_be_visible()
    await send("echo", '{"n": 2}')  # kept by the SDK until the connection is back

    relay.blocked = False
    await expect(connection).to_have_text("Reconnected as Grace.")
    await expect(connection).to_have_attribute("data-state", "open")
    await expect(frames.first).to_have_text('echo {"n":2}')
    await expect(page.get_by_test_id("synced-state")).to_contain_text('"joins": 2')
    state = await synced()
    assert list(state["players"]) == [player_id]
    assert state["players"][player_id]["name"] == "Grace"
    await expect(page.locator(".game-error")).to_be_hidden()

    await page.get_by_role("button", name="Leave").click()
    await expect(connection).to_have_attribute("data-state", "closed")
    await expect(page.get_by_role("button", name="Join again")).to_be_visible()


async def test_the_python_sdk_sample_bot_counts_in_a_room(platform: Platform, counter_room: dict[str, Any]) -> None:
    code, text = await run_to_end(sys.executable, str(SAMPLES / "sdk-bot.py"), platform.mm_url, "3", timeout=60)
    assert code == 0, text
    assert re.fullmatch(r"bot \([0-9a-f]{32}\) counted to \d+\n", text), text
