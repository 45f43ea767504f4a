"""The console's page of a server that failed before it was ready (issue #20, item 3): the output
its container printed, not "No log lines yet.", and the error as lines without class names."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from playwright.async_api import Page, expect

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
