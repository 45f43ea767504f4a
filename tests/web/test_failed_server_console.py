"""The console's page of a server: one that failed before it was ready (issue #20, item 3) shows the
output its container printed, not "No log lines yet.", and the error as lines without class names;
one whose durable rooms were restored, migrated and refused (issue #25) shows each room's line under
its history entry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from core.db.models import GameServer, ServerEvent, User
from core.settings import default_database_url
from tests.conftest import unique
from tests.web.conftest import Platform
from tests.web.test_console import goto, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.temporal]

THROWS = b"""module.exports = {
  onCreate(room) {
    room.log('setting up the board');
    throw new Error('the board could not be set up');
  },
  onJoin() {},
};
"""


async def test_a_server_that_failed_before_ready_shows_its_output(page: Page, platform: Platform) -> None:
    async with httpx.AsyncClient(base_url=platform.url, timeout=30,
                                 headers={"Authorization": f"Bearer {platform.key}"}) as api:
        resp = await api.post("/api/v1/servers", data={"name": "early-end"},
                              files={"file": ("early.js", THROWS, "application/javascript")})
        assert resp.status_code == 202, resp.text
        server_id = resp.json()["id"]
        server = {}
        for _ in range(600):  # bounded: about 2 minutes (the first build of a platform is slow)
            server = (await api.get(f"/api/v1/servers/{server_id}")).json()
            if server["status"] in ("failed", "running", "rejected"):
                break
            await asyncio.sleep(0.2)
        assert server["status"] == "failed", server

    await sign_in(page, platform.key)
    await goto(page, f"/#/servers/{server_id}")
    await expect(page.get_by_role("heading", name="early-end")).to_be_visible()
    logs = page.get_by_role("log", name="Container logs")
    await expect(logs).to_contain_text("[game] setting up the board", timeout=20_000)
    await expect(logs).to_contain_text("the board could not be set up")
    await expect(logs).not_to_contain_text("No log lines yet.")
    error = page.locator("dd .error")
    await expect(error).to_contain_text("game server exited with code 3 before it was ready")
    assert "ContainerExited" not in await error.inner_text()
    # One line per line of output, as the container wrote them.
    assert (await error.inner_text()).splitlines()[0] == "game server exited with code 3 before it was ready"
    history = page.get_by_role("list", name="Status history")
    await expect(history.locator('li[data-status="failed"]')).to_contain_text("the board could not be set up")


# The history of a durable server as its workflow records it (workflows/drain.py, gameserver.py):
# a crash restore, then a rolling update that moved one room and had another refused, which stays.
DURABLE_HISTORY = [
    ("running", "restored 1 durable room from its snapshots", {"event": "restored", "from": "crash", "rooms": [
        {"room_id": "rm-aaaa000000000001", "seq": 7, "age_ms": 120, "players": ["px", "po"]}]}),
    ("stopping", "moved 1 durable room(s) to server srv-new; 1 not moved", {
        "event": "migrated", "from_version": "v1",
        "rooms": [{"room_id": "rm-aaaa000000000001", "to": "srv-new", "seq": 9, "players": ["px", "po"]}],
        "failed": {"rm-bbbb000000000002": "onMigrate failed: no board"}, "not_moved": []}),
    ("starting", "1 durable room(s) stay on this version", {
        "event": "migrate_failed", "rooms": {"rm-bbbb000000000002": "onMigrate failed: no board"}}),
    ("stopped", "stopped", None),  # a stopped server: the page polls no stats or logs of a container
]


async def test_a_durable_servers_history_shows_its_restored_migrated_and_refused_rooms(
        page: Page, platform: Platform) -> None:
    """The records are written as the workflow writes them (its own tests check that it does); the
    subject here is how the console shows them."""
    engine = create_async_engine(default_database_url(platform.data))
    server_id = unique("durable")[:32]
    try:
        async with async_sessionmaker(engine)() as session:
            admin = await session.scalar(select(User).where(User.is_admin.is_(True)).limit(1))
            assert admin is not None
            at = datetime.now(UTC) - timedelta(minutes=1)
            session.add(GameServer(id=server_id, owner_id=admin.id, name="durable-history", game="ttt",
                                   source_sha256="0" * 64, max_players=2, status="stopped",
                                   status_seq=len(DURABLE_HISTORY), workflow_id=f"gameserver-{server_id}"))
            await session.flush()
            for seq, (status, message, detail) in enumerate(DURABLE_HISTORY, 1):
                session.add(ServerEvent(server_id=server_id, seq=seq, status=status, message=message,
                                        detail=detail, at=at + timedelta(seconds=seq)))
            await session.commit()
    finally:
        await engine.dispose()

    await sign_in(page, platform.key)
    await goto(page, f"/#/servers/{server_id}")
    await expect(page.get_by_role("heading", name="durable-history")).to_be_visible()
    history = page.get_by_role("list", name="Status history")
    restored = history.locator('li[data-event="restored"] .restored-rooms li')
    await expect(restored).to_have_text(["room rm-aaaa000000000001: snapshot 7, 120 ms old, from crash; "
                                         "players px, po"])
    migrated = history.locator('li[data-event="migrated"] .restored-rooms li')
    await expect(migrated).to_have_text([
        "room rm-aaaa000000000001: migrated from version v1 to server srv-new (snapshot 9); players px, po",
        "room rm-bbbb000000000002: not moved: onMigrate failed: no board"])
    stays = history.locator('li[data-event="migrate_failed"] .restored-rooms li')
    await expect(stays).to_have_text(["room rm-bbbb000000000002: stays on this version: onMigrate failed: no board"])
