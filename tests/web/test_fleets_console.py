"""The console's fleet and game pages end to end, on a platform of their own (a 1 s autoscaler):
upload versions, create a fleet from one, watch it get ready, allocate and play on the seat,
see refusals as the API words them, scale, roll out another version, delete."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.web.conftest import PHONE, Pages, Platform
from tests.web.test_console import BAD_GAME, game, goto, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.temporal]

FLEET_TIMEOUT = 90_000


@pytest.fixture(scope="module")
def platform_env() -> dict[str, str]:
    # The autoscaler looks every second (default 5 s): the fleet moves within the test's patience.
    return {"GSF_FLEET_SYNC_SECONDS": "1"}


async def upload_version(page: Page, name: str, file: dict[str, object], notes: str) -> None:
    await page.get_by_label("Game module").set_input_files(file)  # type: ignore[arg-type]
    await page.get_by_label("Game name").fill(name)
    await page.get_by_label("Notes (optional)").fill(notes)
    await page.get_by_role("button", name="Upload version").click()


async def test_a_fleet_from_the_games_page_to_allocation_scaling_rollout_and_delete(page: Page,
                                                                                   platform: Platform) -> None:
    await sign_in(page, platform.key)
    await page.get_by_role("link", name="Games", exact=True).click()
    await expect(page.get_by_role("heading", name="Games", exact=True)).to_be_visible()

    # A refused upload says why, with the findings on the source; two good ones become v1 and v2.
    await upload_version(page, "webchat", {"name": "bad.js", "mimeType": "text/javascript", "buffer": BAD_GAME},
                         "bad")
    await expect(page.get_by_role("alert").filter(has_text="Code rejected")).to_contain_text("1 blocking finding")
    await expect(page.get_by_test_id("findings").locator("mark")).to_have_text("eval")
    await upload_version(page, "webchat", game("chat.js"), "first")
    await expect(page.get_by_role("status").filter(has_text="Uploaded webchat v1")).to_be_visible()
    await upload_version(page, "webchat", game("chat.js"), "second")
    await expect(page.get_by_role("status").filter(has_text="Uploaded webchat v2")).to_be_visible()
    card = page.locator('section[data-game="webchat"]')
    await expect(card.locator("tbody tr")).to_have_count(2)
    for version, notes in (("1", "first"), ("2", "second")):
        row = card.locator(f'tr[data-version="{version}"]')
        await expect(row.locator("[data-analysis]")).to_have_text(re.compile(r"^passed"))
        await expect(row).to_contain_text(notes)

    # Create a fleet of v1 from the version's row.
    await card.get_by_role("button", name="Create a fleet from webchat v1").click()
    await expect(page.get_by_role("heading", name="Create a fleet from webchat v1")).to_be_visible()
    await expect(page.get_by_label("Fleet name")).to_be_focused()
    await page.get_by_label("Fleet name").fill("web fleet")
    await page.get_by_role("button", name="Create fleet", exact=True).click()
    await expect(page.get_by_label("Fleet name")).to_have_attribute("aria-invalid", "true")
    await page.get_by_label("Fleet name").fill("web-fleet")
    await page.get_by_role("button", name="Create fleet", exact=True).click()
    await expect(page.get_by_role("heading", name="web-fleet")).to_be_visible()
    found = re.search(r"#/fleets/([\w.-]+)$", page.url)
    assert found is not None, page.url
    fleet_id = found[1]

    # The list: game version, policy, and the bar reaching ready by itself.
    await page.get_by_role("link", name="Fleets", exact=True).click()
    row = page.locator(f'tr[data-fleet-id="{fleet_id}"]')
    await expect(row).to_contain_text("webchat v1")
    await expect(row).to_contain_text("1 replica")
    await expect(row.locator('[data-status="active"]')).to_be_visible()
    await expect(row.locator(".phase-bar")).to_have_attribute("data-ready", "1", timeout=FLEET_TIMEOUT)
    await expect(row.get_by_role("img")).to_have_attribute("aria-label", "1 ready of 1 wanted")

    # The fleet's page: its server, linked to the server page, on this node.
    await row.get_by_role("link", name="web-fleet").click()
    servers = page.locator("#fleet-servers tbody tr")
    await expect(servers).to_have_count(1)
    await expect(servers.first).to_have_attribute("data-phase", "ready")
    await expect(servers.first).to_contain_text(platform.env["GSF_NODE_ID"])
    server_href = await servers.first.locator('a[href^="#/servers/"]').get_attribute("href")
    assert server_href is not None

    # Allocate: the seat's address and token, the allocation listed, the server allocated.
    await page.get_by_role("button", name="Allocate a server").click()
    await expect(page.get_by_test_id("seat-url")).to_contain_text(re.compile(r"^ws://127\.0\.0\.1:\d+.*token="))
    await expect(page.get_by_test_id("seat-token")).not_to_be_empty()
    allocation_id = (await page.get_by_test_id("allocation-id").text_content() or "").strip()
    allocation = page.locator(f'#fleet-allocations tr[data-allocation-id="{allocation_id}"]')
    await expect(allocation.locator("[data-status]")).to_have_text("allocated")
    assert await allocation.locator('a[href^="#/servers/"]').get_attribute("href") == server_href
    await expect(page.locator(".fleet-bar .phase-bar")).to_have_attribute("data-allocated", "1")
    # A second one finds nothing ready (1 replica, allocated): the problem's title and detail.
    await page.get_by_role("button", name="Allocate a server").click()
    await expect(page.get_by_role("alert").filter(has_text="No ready server")).to_contain_text("web-fleet")

    # Play on the allocated seat (the play page takes it over; no second reservation).
    await page.get_by_role("link", name="Play with this seat").click()
    await expect(page.get_by_test_id("held-seat")).to_contain_text("allocated seat")
    await page.get_by_label("Your name (optional)").fill("Ada")
    await page.get_by_role("button", name="Join").click()
    await expect(page.get_by_role("status").filter(has_text="Connected as Ada")).to_be_visible()
    await page.go_back()
    await expect(page.get_by_role("heading", name="web-fleet")).to_be_visible()
    # The match is over: release the allocation (the server is then replaced, on_empty=replace).
    await allocation.get_by_role("button", name=f"Release {allocation_id}").click()
    await page.get_by_role("dialog", name=f"Release {allocation_id}?").get_by_role("button", name="Release").click()
    await expect(allocation.locator("[data-status]")).to_have_text("released")
    await expect(allocation.locator('td[data-label="Released"] time')).to_be_visible()

    # Scale to 2: beside the used server's replacement, a second one starts.
    await page.get_by_label("Replicas").fill("2")
    await page.get_by_role("button", name="Scale").click()
    await expect(page.get_by_role("status").filter(has_text="Scaled: 2 replicas.")).to_be_visible()
    bar = page.locator(".fleet-bar .phase-bar")
    await expect(bar).to_have_attribute("data-desired", "2")
    await expect(bar).to_have_attribute("data-ready", "2", timeout=FLEET_TIMEOUT)

    # Roll out v2: the servers are replaced by v2 ones.
    await page.get_by_label("Version", exact=True).select_option("2")
    await page.get_by_role("button", name="Roll out").click()
    await expect(page.get_by_role("status").filter(has_text="Rolling out v2")).to_be_visible()
    await expect(page.locator(".facts")).to_contain_text("webchat v2")
    versions = page.locator('#fleet-servers td[data-label="Version"]')
    await expect(versions.filter(has_text="v1")).to_have_count(0, timeout=FLEET_TIMEOUT)
    await expect(bar).to_have_attribute("data-ready", "2", timeout=FLEET_TIMEOUT)

    # Delete, after a confirmation; the fleet leaves the list once its servers are gone.
    await page.get_by_role("button", name="Delete fleet").click()
    dialog = page.get_by_role("dialog", name="Delete web-fleet?")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(page.get_by_role("heading", name="web-fleet")).to_be_visible()
    await page.get_by_role("button", name="Delete fleet").click()
    await dialog.get_by_role("button", name="Delete fleet").click()
    await expect(page.get_by_role("heading", name="Fleets", exact=True)).to_be_visible()
    await expect(page.locator(f'tr[data-fleet-id="{fleet_id}"]')).to_have_count(0, timeout=FLEET_TIMEOUT)


async def test_fleet_and_game_pages_fit_a_phone_and_label_their_controls(pages: Pages, platform: Platform) -> None:
    page = await pages.new(PHONE)
    await sign_in(page, platform.key)
    for route, heading in [("#/fleets", "Fleets"), ("#/games", "Games")]:
        await goto(page, f"/{route}")
        await expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{route} scrolls sideways at 375 px ({width} px wide)"
        unlabeled = await page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            .map((el) => el.outerHTML)""")
        assert unlabeled == [], route
    await goto(page, "/#/fleets/no-such-fleet")
    await expect(page.get_by_role("alert")).to_contain_text("no fleet 'no-such-fleet'")
