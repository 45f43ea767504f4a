"""The console's rooms (issue #22): a server hosting several rooms shows one row per room on the
Rooms page (server, game, players, free seats, metadata) and a Rooms card on its server page,
both kept current by the room stream; a player joins one room from its row."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import websockets
from playwright.async_api import expect

from tests.web.conftest import Pages, Platform, running_server
from tests.web.test_console import goto, sign_in
from tests.workflows.test_rooms_e2e import GAME_FILE, join_or_create

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.temporal]


async def test_rooms_page_and_server_page_list_a_servers_rooms_live(pages: Pages, platform: Platform) -> None:
    viewer, player = await pages.new(), await pages.new()
    await sign_in(viewer, platform.key)
    await sign_in(player, platform.key)
    async with contextlib.AsyncExitStack() as stack:
        api = await stack.enter_async_context(platform.api())
        server_id = await running_server(api, "web-rooms", GAME_FILE)
        # Three players joinOrCreate into 2-seat rooms: the first room fills, a second one is made.
        seats = [await join_or_create(api, path="/api/v1/rooms/join") for _ in range(3)]
        new_room = seats[2]["room_id"]
        assert new_room != server_id
        for seat in seats:
            ws = await stack.enter_async_context(websockets.connect(seat["ws_url"]))
            async with asyncio.timeout(10):
                while '"welcome"' not in str(await ws.recv()):
                    pass

        await goto(viewer, "/#/rooms")
        rows = viewer.locator(f'#rooms-table tr[data-server-id="{server_id}"]')
        await expect(rows).to_have_count(2, timeout=30_000)
        first, second = (viewer.locator(f'#rooms-table tr[data-room-id="{rid}"]') for rid in (server_id, new_room))
        await expect(first.locator("[data-players]")).to_have_text("2/2", timeout=20_000)
        await expect(first.locator("[data-free]")).to_have_text("0")
        await expect(second.locator("[data-players]")).to_have_text("1/2", timeout=20_000)
        await expect(second.locator("[data-free]")).to_have_text("1")
        await expect(second).to_contain_text("mode=duel")
        await expect(second.get_by_role("link", name="web-rooms")).to_have_attribute("href", f"#/servers/{server_id}")
        await expect(first.get_by_text("Full")).to_be_visible()
        await expect(viewer.get_by_test_id("rooms-summary")).to_have_text("2 rooms on 1 server, 1 free seat.")

        # The server's page: its rooms, then a fourth player joins the second room from its row.
        await second.get_by_role("link", name="web-rooms").click()
        await expect(viewer.get_by_role("heading", name="web-rooms")).to_be_visible()
        await expect(viewer.locator("dt:text-is('Max rooms') + dd")).to_have_text("50")
        card = viewer.locator("#server-rooms tbody tr")
        await expect(card).to_have_count(2)
        note = viewer.get_by_test_id("server-rooms-note")
        await expect(note).to_have_text("2 of at most 50 rooms, 3 players.")

        await goto(player, "/#/rooms")
        await player.locator(f'#rooms-table tr[data-room-id="{new_room}"]').get_by_role(
            "link", name=f"Join {new_room}").click()
        await expect(player.get_by_role("heading", name="Play web-rooms")).to_be_visible()
        await player.get_by_role("button", name="Join").click()
        await expect(player.get_by_role("status").filter(has_text="Connected as")).to_be_visible()
        # Live, no reload: the room filled up on the server's page.
        await expect(viewer.locator(f'#server-rooms tr[data-room-id="{new_room}"] [data-players]')).to_have_text(
            "2/2", timeout=20_000)
        await expect(note).to_have_text("2 of at most 50 rooms, 4 players.")
        await player.get_by_role("button", name="Leave").click()
        assert (await api.delete(f"/api/v1/servers/{server_id}")).status_code == 200
