"""The web console end to end: sign in, upload and deploy, findings, server page and logs, two
players on tic-tac-toe, stop and delete, network trouble, a phone-sized screen."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Route, expect

from core.bootstrap import create_user_key
from core.db.session import make_engine, make_session_factory
from tests.conftest import GAMES
from tests.web.conftest import PHONE, Pages, Platform

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.temporal]

DEPLOY_TIMEOUT = 120_000
METRICS_TOKEN = "console-test-scrape"  # /metrics answers 404 while no token is set
BAD_GAME = b"module.exports = {\n  onJoin(room) { eval(room.state.code); },\n};\n"


@pytest.fixture(scope="module")
def platform_env() -> dict[str, str]:
    return {"GSF_METRICS_TOKEN": METRICS_TOKEN}


async def goto(page: Page, url: str) -> None:
    """page.goto, again when Chromium dropped it because Docker changed the network interfaces."""
    for attempt in range(3):
        try:
            await page.goto(url)
            return
        except PlaywrightError as exc:
            if "ERR_NETWORK_CHANGED" not in str(exc) or attempt == 2:
                raise
            await asyncio.sleep(0.5)


async def sign_in(page: Page, key: str) -> None:
    await goto(page, "/")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="My servers")).to_be_visible()


async def upload(page: Page, name: str, file: dict[str, object], labels: str = "", plan: str = "") -> None:
    await page.get_by_role("link", name="Upload", exact=True).click()
    await expect(page.get_by_role("heading", name="Upload a game")).to_be_visible()
    await page.get_by_label("Game module").set_input_files(file)  # type: ignore[arg-type]
    await page.get_by_label("Server name").fill(name)
    if labels:
        await page.get_by_label("Labels").fill(labels)
    if plan:
        await expect(page.get_by_label("Resource plan").locator("option")).to_have_count(3)
        await page.get_by_label("Resource plan").select_option(plan)
    await page.get_by_role("button", name="Deploy").click()
    await expect(page.locator("#upload-progress")).to_have_attribute("value", "100")


def game(name: str) -> dict[str, object]:
    return {"name": name, "mimeType": "text/javascript", "buffer": (GAMES / name).read_bytes()}


async def deploy_running(page: Page, name: str, file: str, plan: str = "") -> str:
    await upload(page, name, game(file), plan=plan)
    await expect(page.locator('.step[data-step="running"]')).to_have_attribute("data-state", "done",
                                                                              timeout=DEPLOY_TIMEOUT)
    href = await page.get_by_role("link", name="Server details").get_attribute("href")
    assert href is not None
    return href.rsplit("/", 1)[-1]


async def test_sign_in_refuses_a_bad_key_and_sign_out_forgets_the_key(page: Page, platform: Platform) -> None:
    await goto(page, "/#/servers")
    await expect(page).to_have_url(re.compile(r"#/signin$"))
    await page.get_by_label("API key").fill("gsf_not-a-real-key")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert").filter(has_text="not accepted")).to_be_visible()
    await page.get_by_label("API key").fill(platform.key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="My servers")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('gsf.apiKey')") == platform.key
    assert await page.evaluate("localStorage.length") == 0
    assert platform.key not in page.url
    await expect(page.get_by_role("status").filter(has_text="Live")).to_contain_text("update by themselves")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('gsf.apiKey')") is None


async def test_upload_reaches_running_and_the_server_page_shows_logs(page: Page, platform: Platform) -> None:
    await sign_in(page, platform.key)
    server_id = await deploy_running(page, "web-chat", "chat.js", plan="small")
    await expect(page.locator(".deploy-status")).to_contain_text("running")
    async with httpx.AsyncClient(base_url=platform.url,
                                 headers={"Authorization": f"Bearer {platform.key}"}) as api:
        assert (await api.get(f"/api/v1/servers/{server_id}")).json()["limits"]["plan"] == "small"

    await page.get_by_role("link", name="My servers").click()
    row = page.locator(f'tr[data-server-id="{server_id}"]')
    await expect(row.locator("[data-status]")).to_have_text("running")
    await expect(row).to_contain_text(platform.env["GSF_NODE_ID"])

    await row.get_by_role("link", name="web-chat", exact=True).click()
    await expect(page.get_by_role("heading", name="web-chat")).to_be_visible()
    history = page.get_by_role("list", name="Status history")
    for status in ("pending", "analyzing", "building", "starting", "running"):
        await expect(history.locator(f'[data-status="{status}"]').first).to_be_visible()
    link = page.get_by_role("link", name=re.compile("Temporal Web UI"))
    assert (await link.get_attribute("href") or "").startswith(
        f"{platform.ui_url}/namespaces/default/workflows/gameserver-{server_id}")
    logs = page.get_by_role("log", name="Container logs")
    await expect(logs).to_contain_text("listening", timeout=30_000)
    # The agent's samples arrive within a few heartbeats; memory is shown against the plan's limit.
    await expect(page.locator(".stats")).to_contain_text("CPU", timeout=30_000)
    await expect(page.locator(".stats")).to_contain_text(re.compile(r"of 64(\.0)? MiB"))
    await expect(page.locator(".stats svg").first).to_be_visible()

    # Search filters the lines; pause holds new lines back.
    await page.get_by_label("Search").fill("listening")
    await expect(page.get_by_text(re.compile(r"\d+ of \d+ lines match"))).to_be_visible()
    await expect(logs.locator("mark").first).to_have_text("listening")
    await page.get_by_role("button", name="Pause").click()
    await expect(page.get_by_role("button", name="Follow")).to_have_attribute("aria-pressed", "false")

    # A player joining shows up in the logs.
    await page.get_by_role("button", name="Follow").click()
    await page.get_by_label("Search").fill("")
    await page.get_by_role("link", name="Play").click()
    await page.get_by_label("Your name (optional)").fill("Ada")
    await page.get_by_role("button", name="Join").click()
    await expect(page.get_by_role("status").filter(has_text="Connected as Ada")).to_be_visible()
    await expect(page.get_by_test_id("occupancy")).to_contain_text("1/32 players", timeout=15_000)  # live
    await page.get_by_label("Message", exact=True).fill("hello from the console")
    await page.get_by_role("button", name="Send").click()
    await expect(page.get_by_role("log", name="Messages")).to_contain_text("Ada: hello from the console")
    await page.go_back()
    await expect(page.get_by_role("log", name="Container logs")).to_contain_text("join", timeout=30_000)


async def test_a_rejected_upload_shows_its_findings_on_the_source(page: Page, platform: Platform) -> None:
    await sign_in(page, platform.key)
    await upload(page, "web-bad", {"name": "bad.js", "mimeType": "text/javascript", "buffer": BAD_GAME})
    await expect(page.locator('.step[data-step="analyzing"]')).to_have_attribute("data-state", "failed",
                                                                                timeout=60_000)
    findings = page.locator('[data-testid="findings"]')
    await expect(findings).to_contain_text("1 blocking finding")
    line = findings.locator('tr[data-line="2"]')
    await expect(line.locator("th")).to_have_text("2")
    await expect(line.locator("mark")).to_have_text("eval")
    await expect(findings).to_contain_text("Line 2, column 18")
    await expect(findings).to_contain_text("eval() runs a string as code")
    # The whole source is shown with line numbers, the finding inline under its line.
    await expect(findings.locator('tr[data-line="1"] th')).to_have_text("1")
    await expect(findings.locator('tr[data-line="3"] th')).to_have_text("3")


async def test_check_code_only_says_nothing_was_deployed(page: Page, platform: Platform) -> None:
    await sign_in(page, platform.key)
    await page.get_by_role("link", name="Upload", exact=True).click()
    await page.get_by_label("Game module").set_input_files(
        {"name": "checked.js", "mimeType": "text/javascript", "buffer": BAD_GAME})
    await page.get_by_role("button", name="Check code only").click()
    findings = page.locator('[data-testid="findings"]')
    # What happened: an analysis only; nothing was uploaded for deployment, so nothing was refused.
    await expect(findings).to_contain_text("1 blocking finding: a deployment of this code would be refused.")
    await expect(findings).to_contain_text("Analysis only: nothing was deployed.")
    await expect(findings).not_to_contain_text("upload was refused")
    await expect(findings).to_have_attribute("data-verdict", "blocked")
    await expect(findings.locator('tr[data-line="2"] mark')).to_have_text("eval")
    await expect(page.locator(".deploy")).to_be_hidden()
    async with httpx.AsyncClient(base_url=platform.url,
                                 headers={"Authorization": f"Bearer {platform.key}"}) as api:
        servers = (await api.get("/api/v1/servers", params={"limit": 200})).json()["items"]
    assert "checked" not in [s["name"] for s in servers]


HEX_ID = re.compile(r"[0-9a-f]{32}")


async def no_sideways_overflow(page: Page, where: str) -> None:
    """Nothing widens the page, and every name stays inside the "Here now" column."""
    width = await page.evaluate("document.documentElement.scrollWidth")
    viewport = await page.evaluate("window.innerWidth")
    assert width <= viewport, f"{where}: the page is {width} px wide in a {viewport} px window"
    spill = await page.evaluate("""() => {
        const side = document.querySelector('.chat-side').getBoundingClientRect();
        return [...document.querySelectorAll('.chat-roster li')].map((li) => li.getBoundingClientRect())
          .filter((r) => r.right > side.right + 0.5 || r.left < side.left - 0.5).length;
    }""")
    assert spill == 0, f"{where}: {spill} names spill out of the Here now column"


async def test_chat_names_players_without_a_name_and_fits_desktop_and_phone(pages: Pages,
                                                                            platform: Platform) -> None:
    desktop, phone = await pages.new(), await pages.new(PHONE)
    await sign_in(desktop, platform.key)
    await sign_in(phone, platform.key)
    server_id = await deploy_running(desktop, "web-chat-names", "chat.js")

    # No name: a short friendly name instead of the 32-hex-digit player id, everywhere.
    await goto(desktop, f"/#/play/{server_id}")
    await expect(desktop.get_by_label("Game client")).to_have_value("chat")
    await desktop.get_by_role("button", name="Join").click()
    connected = desktop.get_by_role("status").filter(has_text="Connected as")
    await expect(connected).to_have_text(re.compile(r"^Connected as [A-Z][a-z]+ [A-Z][a-z]+\.$"))
    friendly = (await connected.text_content() or "")[len("Connected as "):-1]
    desktop_roster = desktop.get_by_role("list", name="People here")
    await expect(desktop_roster.locator("li")).to_have_text([f"{friendly} (you)"])
    await expect(desktop.get_by_role("log", name="Messages")).to_contain_text(f"You joined as {friendly}.")

    # A long name without spaces (32 characters, the most the room takes) on a phone.
    long_name = "W" * 32
    await goto(phone, f"/#/play/{server_id}")
    await phone.get_by_label("Your name (optional)").fill(long_name)
    await phone.get_by_role("button", name="Join").click()
    await expect(phone.get_by_role("status").filter(has_text=f"Connected as {long_name}")).to_be_visible()
    await expect(desktop_roster.locator("li")).to_have_text([f"{friendly} (you)", long_name])
    # The same id gets the same name in another browser.
    await expect(phone.get_by_role("list", name="People here").locator("li")).to_have_text(
        [friendly, f"{long_name} (you)"])
    await desktop.get_by_label("Message", exact=True).fill("hello")
    await desktop.get_by_role("button", name="Send").click()
    await expect(phone.get_by_role("log", name="Messages")).to_contain_text(f"{friendly}: hello")
    for player in (desktop, phone):
        shown = " ".join(await player.locator(".connection, .chat").all_inner_texts())
        assert not HEX_ID.search(shown), shown
    await no_sideways_overflow(desktop, "chat at 1280 px")
    await no_sideways_overflow(phone, "chat at 375 px")

    # The raw-frames client shows every frame, the `welcome` the room sends first included.
    await desktop.get_by_role("button", name="Leave").click()
    await expect(desktop.get_by_role("button", name="Join again")).to_be_visible()
    await desktop.get_by_label("Game client").select_option("raw")
    await desktop.get_by_role("button", name="Join again").click()
    frames = desktop.get_by_role("log", name="Frames received").locator("li")
    await expect(frames.filter(has_text=re.compile(r'^welcome \{"playerId":'))).to_have_count(1)
    await expect(frames.filter(has_text=re.compile(r"^history "))).to_have_count(1)
    await expect(frames.last).to_contain_text(re.compile(r"^welcome "))  # newest first: it came first


async def play_room(page: Page, server_id: str, name: str) -> None:
    await page.get_by_role("link", name="Rooms").click()
    room = page.locator(f'tr[data-server-id="{server_id}"]')
    await room.get_by_role("link", name=re.compile("^Join")).click()
    await expect(page.get_by_role("heading", name=re.compile("^Play"))).to_be_visible()
    await page.get_by_label("Your name (optional)").fill(name)
    await page.get_by_role("button", name="Join").click()
    await expect(page.get_by_role("status").filter(has_text=f"Connected as {name}")).to_be_visible()


async def test_two_browsers_play_tictactoe_to_a_win_then_stop_and_delete(pages: Pages,
                                                                        platform: Platform) -> None:
    alice, bob = await pages.new(), await pages.new()
    await sign_in(alice, platform.key)
    await sign_in(bob, platform.key)
    server_id = await deploy_running(alice, "web-ttt", "tictactoe.js")

    await bob.get_by_role("link", name="Rooms").click()
    room = bob.locator(f'tr[data-server-id="{server_id}"]')
    await expect(room).to_contain_text("0/2", timeout=30_000)
    await play_room(alice, server_id, "Alice")
    await expect(room.locator("[data-players]")).to_contain_text("1/2", timeout=20_000)  # live, no reload
    await play_room(bob, server_id, "Bob")

    boards = {}
    for player in (alice, bob):
        section = player.locator("section.ttt")
        await expect(section).to_have_attribute("data-status", "playing")
        boards[await section.get_attribute("data-mark")] = player
    assert set(boards) == {"X", "O"}
    x, o = boards["X"], boards["O"]
    # X takes the top row while O plays the middle row.
    for mark, cell in [("X", 0), ("O", 3), ("X", 1), ("O", 4), ("X", 2)]:
        player = boards[mark]
        await expect(player.get_by_test_id("ttt-status")).to_contain_text("Your turn")
        await player.locator(f'[data-cell="{cell}"]').click()
        for other in (x, o):
            await expect(other.locator(f'[data-cell="{cell}"]')).to_have_text(mark)
    await expect(x.get_by_test_id("ttt-status")).to_have_text("You won!")
    await expect(o.get_by_test_id("ttt-status")).to_have_text("X won.")
    for player in (x, o):
        await expect(player.locator(".ttt-win")).to_have_count(3)
        await expect(player.get_by_text("Score: X 1 · O 0 · draws 0")).to_be_visible()
    # Another round: the other player starts it.
    await o.get_by_role("button", name="Play again").click()
    await expect(o.get_by_test_id("ttt-status")).to_contain_text("Your turn")
    await expect(x.get_by_test_id("ttt-status")).to_contain_text("Waiting for O to move")
    await expect(x.locator('[data-cell="0"]')).to_have_text("")

    # Stop and delete from the server table, with confirmation.
    await x.get_by_role("link", name="My servers").click()
    row = x.locator(f'tr[data-server-id="{server_id}"]')
    await row.get_by_role("button", name="Stop web-ttt").click()
    dialog = x.get_by_role("dialog", name="Stop web-ttt?")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Stop server").click()
    await expect(row.locator("[data-status]")).to_have_text("stopped", timeout=60_000)
    await row.get_by_role("button", name="Delete web-ttt").click()
    await x.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    await expect(row).to_be_visible()
    await row.get_by_role("button", name="Delete web-ttt").click()
    await x.get_by_role("dialog").get_by_role("button", name="Delete server").click()
    await expect(row).to_have_count(0, timeout=60_000)
    # The other player's page says the connection ended.
    await expect(o.locator(".connection")).to_have_attribute("data-state", "closed", timeout=30_000)


async def test_arena_steers_with_the_keyboard(page: Page, platform: Platform) -> None:
    await sign_in(page, platform.key)
    server_id = await deploy_running(page, "web-arena", "arena.js")
    await goto(page, f"/#/play/{server_id}")
    await expect(page.get_by_label("Game client")).to_have_value("arena")
    await page.get_by_role("button", name="Join").click()
    field = page.get_by_role("img", name=re.compile("^Arena"))
    await expect(field).to_have_attribute("data-x", re.compile(r"\d"))
    await expect(page.get_by_role("list", name="Scores")).to_contain_text("You: 0")
    x = float(await field.get_attribute("data-x") or 0)
    key, sign = ("ArrowLeft", -1) if x > 400 else ("ArrowRight", 1)
    await field.focus()
    await page.keyboard.down(key)
    await page.wait_for_timeout(400)
    await page.keyboard.up(key)
    moved = 0.0
    for _ in range(50):  # positions arrive 20 times a second
        moved = sign * (float(await field.get_attribute("data-x") or 0) - x)
        if moved > 20:
            break
        await page.wait_for_timeout(100)
    assert moved > 20, f"the dot moved {moved} units"


async def test_network_errors_show_a_banner_and_retry(page: Page, platform: Platform) -> None:
    await sign_in(page, platform.key)
    await page.route(re.compile(r"/api/v1/(servers\?|events/)"), lambda route: route.abort())
    await page.get_by_role("link", name="Rooms").click()
    await page.get_by_role("link", name="My servers").click()
    alert = page.locator("#banner")
    await expect(alert).to_contain_text("Retrying in")
    await expect(alert.get_by_role("button", name="Retry now")).to_be_visible()
    await page.unroute(re.compile(r"/api/v1/(servers\?|events/)"))
    await alert.get_by_role("button", name="Retry now").click()
    await expect(alert).to_be_hidden(timeout=30_000)
    await expect(page.get_by_role("status").filter(has_text="Live")).to_contain_text("update by themselves",
                                                                                    timeout=30_000)


async def test_phone_width_layout_and_keyboard_use(pages: Pages, platform: Platform) -> None:
    page = await pages.new(PHONE)
    await goto(page, "/")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # Keyboard only: the key field has focus, Enter signs in.
    await page.keyboard.type(platform.key)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="My servers")).to_be_visible()
    for route, heading in [("#/servers", "My servers"), ("#/upload", "Upload a game"), ("#/rooms", "Rooms")]:
        await goto(page, f"/{route}")
        await expect(page.get_by_role("heading", name=heading)).to_be_visible()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{route} scrolls sideways at 375 px ({width} px wide)"
    # Every form control has a label.
    await goto(page, "/#/upload")
    unlabeled = await page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
        .map((el) => el.outerHTML)""")
    assert unlabeled == []
    # Focus is visible: the focused control gets an outline.
    await page.get_by_label("Server name").focus()
    await page.keyboard.press("Tab")
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"


async def test_the_api_routes_behind_the_console(platform: Platform) -> None:
    auth = {"Authorization": f"Bearer {platform.key}"}
    async with httpx.AsyncClient(base_url=platform.url, timeout=30) as client:
        for path in ("/api/v1/config", "/api/v1/rooms", "/api/v1/events/servers", "/api/v1/rooms/stream"):
            resp = await client.get(path)
            assert resp.status_code == 401, path
            assert resp.headers["content-type"].startswith("application/problem+json")
        config = (await client.get("/api/v1/config", headers=auth)).json()
        assert config["temporal_ui_url"] == platform.ui_url
        assert config["is_admin"] is True
        assert (await client.get("/api/v1/rooms", headers=auth, params={"sort": "nope"})).status_code == 422
        missing = await client.get("/api/v1/rooms/no-such-room", headers=auth)
        assert missing.status_code == 404
        assert missing.json()["type"].endswith("/room-not-found")
        joined = await client.post("/api/v1/rooms/join", headers=auth, json={"server_id": "no-such-room"})
        assert joined.status_code == 404

        # The room stream is the matchmaker's, passed through; closing it closes the upstream one.
        async def sse_clients() -> int:
            text = (await client.get(f"{platform.mm_url}/metrics",
                                     headers={"Authorization": f"Bearer {METRICS_TOKEN}"})).text
            found = re.search(r"^gsf_matchmaker_sse_clients (\S+)$", text, re.MULTILINE)
            assert found is not None, text
            return int(float(found[1]))

        before = await sse_clients()
        async with client.stream("GET", "/api/v1/rooms/stream", headers=auth) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert await anext(stream.aiter_lines()) == "retry: 2000"
            assert await sse_clients() == before + 1
        async with asyncio.timeout(10):
            while await sse_clients() != before:
                await asyncio.sleep(0.1)

        # The event stream reports a new server's moves until it is rejected.
        seen: list[str] = []
        async with client.stream("GET", "/api/v1/events/servers", headers=auth) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            assert await anext(lines) == "retry: 2000"
            assert await anext(lines) == "event: ready"
            created = await client.post("/api/v1/servers", headers=auth, data={"name": "sse-bad"},
                                        files={"file": ("bad.js", BAD_GAME)})
            server_id = created.json()["id"]
            async with asyncio.timeout(60):
                async for line in lines:
                    if line.startswith("data: ") and line != "data: {}":
                        server = json.loads(line[6:])
                        if server["id"] == server_id:
                            seen.append(server["status"])
                            if server["status"] == "rejected":
                                break
        assert seen[-1] == "rejected", seen


async def user_key(platform: Platform, email: str) -> str:
    """A key of a new, non-admin user, written straight into the platform's database."""
    engine = make_engine(f"sqlite+aiosqlite:///{platform.data / 'gsf.db'}")
    try:
        _, key = await create_user_key(make_session_factory(engine), email)
    finally:
        await engine.dispose()
    return key


async def test_the_event_stream_shows_only_the_callers_servers(platform: Platform) -> None:
    admin = {"Authorization": f"Bearer {platform.key}"}
    dev = {"Authorization": f"Bearer {await user_key(platform, 'dev@example.com')}"}
    seen: list[str] = []
    async with (httpx.AsyncClient(base_url=platform.url, timeout=30) as client,
                client.stream("GET", "/api/v1/events/servers", headers=dev) as stream):
        lines = stream.aiter_lines()
        while await anext(lines) != "event: ready":
            pass
        others = await client.post("/api/v1/servers", headers=admin, data={"name": "not-yours"},
                                   files={"file": ("bad.js", BAD_GAME)})
        mine = await client.post("/api/v1/servers", headers=dev, data={"name": "yours"},
                                 files={"file": ("bad.js", BAD_GAME)})
        async with asyncio.timeout(60):
            async for line in lines:
                if line.startswith("data: {\""):
                    server = json.loads(line[6:])
                    seen.append(server["id"])
                    if server["id"] == mine.json()["id"] and server["status"] == "rejected":
                        break
    assert mine.json()["id"] in seen
    assert others.json()["id"] not in seen


async def test_a_script_that_fails_to_load_is_fetched_again(pages: Pages, platform: Platform) -> None:
    page = await pages.new()
    failures = 0

    async def fail_once(route: Route) -> None:
        nonlocal failures
        if failures == 0:
            failures += 1
            await route.abort("internetdisconnected")
        else:
            await route.continue_()

    # A dependency of the entry module: the whole module graph fails the first time.
    await page.route("**/js/pages/rooms.js", fail_once)
    await goto(page, "/")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible(timeout=20_000)
    assert failures == 1
    assert await page.evaluate("sessionStorage.getItem('gsf.bootAttempts')") is None


def test_the_api_key_stays_out_of_logs(platform: Platform) -> None:
    logs = platform.data / "logs"
    for path in logs.glob("*.log"):
        assert platform.key not in path.read_text(errors="replace"), f"the API key is in {path}"
