"""The web console in Debian's Chromium (Playwright), against the platform started as `gsf up` does.

One platform per module (free ports, a temp data folder, its own node id and game network); one
browser per module; a fresh browser context per test. A failing test leaves a screenshot of each
of its pages in GSF_WEB_ARTIFACTS (default: <tmp>/gsf-web-artifacts).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright

from cli.up import launch_background, stop_background
from tests.conftest import REPO, local_url, unique, up_env

CHROMIUM = os.environ.get("GSF_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(os.environ.get("GSF_WEB_ARTIFACTS", Path(tempfile.gettempdir()) / "gsf-web-artifacts"))
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 375, "height": 740}


@dataclass
class Platform:
    proc: subprocess.Popen[str]
    env: dict[str, str]
    data: Path
    url: str
    mm_url: str
    ui_url: str
    key: str
    log: Path

    def api(self) -> httpx.AsyncClient:
        """A client of the platform's API with the admin key."""
        return httpx.AsyncClient(base_url=self.url, timeout=60, headers={"Authorization": f"Bearer {self.key}"})


async def running_server(api: httpx.AsyncClient, name: str, game: Path) -> str:
    """The id of a server of `game` deployed through the API (`POST /api/v1/servers`), once it runs."""
    resp = await api.post("/api/v1/servers", data={"name": name},
                          files={"file": (game.name, game.read_bytes(), "application/javascript")})
    assert resp.status_code == 202, resp.text
    server_id = str(resp.json()["id"])
    server: Any = None
    for _ in range(600):
        server = (await api.get(f"/api/v1/servers/{server_id}")).json()
        if server["status"] in ("running", "failed", "rejected"):
            break
        await asyncio.sleep(0.2)
    assert server["status"] == "running", server
    return server_id


@pytest.fixture(scope="module")
def platform_env() -> dict[str, str]:
    """GSF_* settings a test module wants for its platform (a module overrides this fixture)."""
    return {}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, docker_client: docker.DockerClient,
             platform_env: dict[str, str]) -> Iterator[Platform]:
    data = tmp_path_factory.mktemp("gsf-web") / "data"
    node = unique("web-node")
    env = {**up_env(data, node, unique("gsf-web-net")), **platform_env}
    data.mkdir(parents=True)
    log = data.parent / "up.log"
    try:
        proc = launch_background(env, log, REPO)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    key = (data / "admin.key").read_text().strip()
    try:
        yield Platform(proc, env, data, local_url(env, "GSF_API_PORT"), local_url(env, "GSF_MATCHMAKER_PORT"),
                       local_url(env, "GSF_TEMPORAL_UI_PORT"), key, log)
    finally:
        stop_background(proc)
        for c in docker_client.containers.list(all=True, filters={"label": f"gsf.node_id={node}"}):
            with contextlib.suppress(docker.errors.APIError):
                c.remove(force=True)
        for n in docker_client.networks.list(names=[env["GSF_GAME_NETWORK"]]):
            with contextlib.suppress(docker.errors.APIError):
                n.remove()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `bash scripts/ensure-chromium.sh` (installs Debian's "
                    "chromium), or point GSF_CHROMIUM at one", pytrace=False)
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@dataclass
class Pages:
    """Browser contexts of one test: each is a separate user session (its own session storage)."""

    browser: Browser
    base_url: str
    contexts: list[BrowserContext] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    async def new(self, viewport: ViewportSize | None = None) -> Page:
        context = await self.browser.new_context(base_url=self.base_url, viewport=viewport or DESKTOP)
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        index = len(self.pages)
        page.on("console", lambda msg: self._console(index, msg.type, msg.text))
        self.pages.append(page)
        return page

    def _console(self, page: int, kind: str, text: str) -> None:
        self.console.append(f"page {page} {kind}: {text}")
        if "Content Security Policy" in text:
            self.errors.append(f"CSP: {text}")


@pytest.fixture
async def pages(browser: Browser, platform: Platform, request: pytest.FixtureRequest) -> AsyncIterator[Pages]:
    held = Pages(browser, platform.url)
    try:
        yield held
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            stem = re.sub(r"[^\w.-]+", "_", request.node.name)
            for i, page in enumerate(held.pages):
                with contextlib.suppress(Exception):
                    path = ARTIFACTS / f"{stem}-{i}.png"
                    await page.screenshot(path=str(path), full_page=True)
                    print(f"screenshot of the failure: {path}")
            (ARTIFACTS / f"{stem}-console.txt").write_text("\n".join(held.console + held.errors) + "\n")
            # The platform's own logs: gsf up's, and each process's (api, control worker, agent, ...).
            for log in [platform.log, *sorted((platform.data / "logs").glob("*.log"))]:
                with contextlib.suppress(OSError):
                    shutil.copy(log, ARTIFACTS / f"{stem}-{log.name}")
        for context in held.contexts:
            with contextlib.suppress(Exception):
                await context.close()
    assert not held.errors, held.errors


@pytest.fixture
async def page(pages: Pages) -> Page:
    return await pages.new()
