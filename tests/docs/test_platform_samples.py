"""The guide's samples against the platform as a user starts it (`gsf up`): the Python and curl
clients, the browser client in two Chromium tabs, the sample pipeline, and the CI deploy step."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest
import yaml

from cli.up import launch_background, stop_background
from tests.conftest import REPO, local_url, unique, up_env

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.temporal]

SAMPLES = REPO / "docs" / "samples"
CHROMIUM = os.environ.get("GSF_CHROMIUM", "/usr/bin/chromium")


@dataclass
class Up:
    env: dict[str, str]
    api_url: str
    mm_url: str
    key: str
    node: str

    def client_env(self) -> dict[str, str]:
        """What a user exports before running a sample: where the platform is, and a key."""
        return {**self.env, "GSF_API_URL": self.api_url, "GSF_MATCHMAKER_URL": self.mm_url,
                "GSF_API_KEY": self.key, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, headers={"Authorization": f"Bearer {self.key}"}, timeout=60)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory, docker_client: docker.DockerClient) -> Iterator[Up]:
    data = tmp_path_factory.mktemp("gsf-docs") / "data"
    node = unique("docs-node")
    env = up_env(data, node, unique("gsf-docs-net"))
    data.mkdir(parents=True)
    try:
        proc = launch_background(env, data.parent / "up.log", REPO)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield Up(env, local_url(env, "GSF_API_PORT"), local_url(env, "GSF_MATCHMAKER_PORT"),
                 (data / "admin.key").read_text().strip(), node)
    finally:
        stop_background(proc)
        for c in docker_client.containers.list(all=True, filters={"label": f"gsf.node_id={node}"}):
            with contextlib.suppress(docker.errors.APIError):
                c.remove(force=True)
        for n in docker_client.networks.list(names=[env["GSF_GAME_NETWORK"]]):
            with contextlib.suppress(docker.errors.APIError):
                n.remove()


def run(argv: list[str], env: dict[str, str], cwd: Path = REPO, timeout: float = 240) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def wait_running(api: httpx.Client, server_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        server: dict[str, Any] = api.get(f"/api/v1/servers/{server_id}").json()
        if server["status"] in ("running", "failed", "rejected") or time.monotonic() > deadline:
            assert server["status"] == "running", server
            return server
        time.sleep(0.2)


def test_python_sample_deploys_and_plays_a_round(up: Up) -> None:
    out = run([sys.executable, str(SAMPLES / "play.py"), str(SAMPLES / "rps.js")], up.client_env())
    server_id = re.search(r"^server (\w+) running$", out, re.MULTILINE)
    assert server_id, out
    assert "round 1: ada rock, bob scissors: ada wins" in out
    assert f"server {server_id.group(1)} deleted" in out
    assert "error frame" not in out


def test_http_sample_deploys_lists_joins_and_deletes(up: Up) -> None:
    out = run(["bash", str(SAMPLES / "http.sh"), str(SAMPLES / "rps.js")], up.client_env())
    server_id = re.search(r"^server (\w+)$", out, re.MULTILINE)
    assert server_id, out
    sid = server_id.group(1)
    assert "status running" in out
    assert re.search(rf'^{{"server_id":"{sid}","players":0,"max_players":2,"locked":false,'
                     r'"metadata":\{"status":"waiting","round":0\}}$', out, re.MULTILINE), out
    assert re.search(r"^ws://127\.0\.0\.1:\d+/ws\?token=\S+$", out, re.MULTILINE), out
    assert "404 https://gsf.dev/problems/not-found" in out
    assert f"server {sid} deleted" in out


@contextlib.contextmanager
def same_origin(mm_url: str, page: str) -> Iterator[str]:
    """A reverse proxy as the guide asks for: it serves the page and passes POST /join to the
    matchmaker, so page and seats share one origin (the matchmaker sends no CORS headers)."""

    class Proxy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, status = (page.encode(), 200) if self.path == "/rps-client.html" else (b"not found", 404)
            self.send_response(status)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            upstream = httpx.post(f"{mm_url}{self.path}", content=self.rfile.read(length), timeout=10,
                                  headers={"content-type": self.headers.get("content-type", "")})
            self.send_response(upstream.status_code)
            self.send_header("content-type", upstream.headers.get("content-type", "application/json"))
            self.send_header("content-length", str(len(upstream.content)))
            self.end_headers()
            self.wfile.write(upstream.content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/rps-client.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_browser_client_plays_a_round_in_two_tabs(up: Up) -> None:
    from playwright.async_api import async_playwright, expect

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `bash scripts/ensure-chromium.sh`, or set GSF_CHROMIUM",
                    pytrace=False)
    with up.api() as api:
        resp = api.post("/api/v1/servers", data={"name": "rps-browser"},
                        files={"file": ("rps.js", (SAMPLES / "rps.js").read_bytes())})
        assert resp.status_code == 202, resp.text
        server_id = resp.json()["id"]
        await asyncio.to_thread(wait_running, api, server_id)
        try:
            with same_origin(up.mm_url, (SAMPLES / "rps-client.html").read_text()) as page_url:
                async with async_playwright() as pw:
                    browser = await pw.chromium.launch(executable_path=CHROMIUM,
                                                       args=["--headless", "--no-sandbox", "--disable-gpu"])
                    try:
                        tabs = []
                        errors: list[str] = []
                        for name in ("ada", "bob"):
                            page = await (await browser.new_context()).new_page()
                            page.on("pageerror", lambda exc: errors.append(str(exc)))
                            await page.goto(page_url)
                            await page.fill("#room", server_id)
                            await page.fill("#name", name)
                            await page.click("#join button")
                            await expect(page.locator("#frames")).to_contain_text(f'"name":"{name}"',
                                                                                  timeout=15_000)
                            tabs.append(page)
                        ada, bob = tabs
                        await expect(ada.locator("#frames li").last).to_contain_text("welcome")
                        for page in tabs:
                            await expect(page.locator("#status")).to_contain_text("Round 1", timeout=15_000)
                        await ada.click("[data-hand=rock]")
                        await expect(bob.locator("#status")).to_contain_text("Your opponent has chosen")
                        await bob.click("[data-hand=scissors]")
                        await expect(ada.locator("#result")).to_have_text("Round 1: You win (rock vs scissors).")
                        await expect(bob.locator("#result")).to_have_text("Round 1: You lose (rock vs scissors).")
                        await expect(ada.locator("#status")).to_contain_text("Round 2")
                        assert await ada.locator("#frames li").count() >= 6
                        assert errors == []
                    finally:
                        await browser.close()
        finally:
            api.delete(f"/api/v1/servers/{server_id}")


def test_sample_pipeline_runs_on_the_node(up: Up) -> None:
    env = up.client_env()
    out = run([sys.executable, "-m", "cli.main", "pipeline", "run", str(SAMPLES / "warm-node.yaml"),
               "--node", up.node, "--var", "note=docs"], {**env, "COLUMNS": "200"})
    run_id = re.search(r"^pipeline (\w+) ", out, re.MULTILINE)
    assert run_id, out
    logs = run([sys.executable, "-m", "cli.main", "pipeline", "logs", run_id.group(1)], {**env, "COLUMNS": "300"})
    assert f"docs: gsf-node-base:20 on {up.env['GSF_GAME_NETWORK']}" in logs, logs
    assert "slept 0.2 s" in logs


def test_ci_deploy_step_deploys_the_tagged_game(up: Up, tmp_path: Path) -> None:
    workflow = yaml.safe_load((REPO / "docs" / "ci" / "gsf-game.yml").read_text())
    step = workflow["jobs"]["deploy"]["steps"][-1]
    repo = tmp_path / "game-repo"
    repo.mkdir()
    (repo / "game.js").write_text((SAMPLES / "rps.js").read_text())
    # What GitHub provides: the workflow's env, the tag, and the step's env from vars and secrets.
    secrets = {"${{ vars.GSF_API_URL }}": up.api_url, "${{ secrets.GSF_API_KEY }}": up.key}
    env = {**up.client_env(), **{k: str(v) for k, v in workflow["env"].items()}, "GITHUB_REF_NAME": "v1.2.3",
           **{k: secrets[v] for k, v in step["env"].items()}, "GSF_DATA_DIR": str(tmp_path / "ci-data")}
    env.pop("GSF_API_PORT")  # the runner knows the platform only through GSF_API_URL
    out = run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], {**env, "COLUMNS": "200"},
              cwd=repo)
    assert "running on node" in out, out
    with up.api() as api:
        servers = [s for s in api.get("/api/v1/servers").json()["items"] if s["name"] == "my-game-v1.2.3"]
        assert len(servers) == 1, servers
        assert servers[0]["status"] == "running", servers
        assert servers[0]["labels"] == {"version": "v1.2.3"}
        assert servers[0]["game"] == "game"
        assert api.delete(f"/api/v1/servers/{servers[0]['id']}").json()["status"] == "deleted"
