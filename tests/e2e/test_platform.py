"""The whole platform as a user starts it (`gsf up`): deploy, play, logs, stop, delete, restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import InvalidStatus

from cli.up import launch_background, stop_background
from core import security
from tests.conftest import GAMES, REPO, local_url, unique, up_env

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.temporal]


@dataclass
class Up:
    proc: subprocess.Popen[str]
    env: dict[str, str]
    data: Path
    api_url: str
    mm_url: str
    key: str
    log: Path

    def pids(self) -> dict[str, int]:
        return {k: int(v) for k, v in json.loads((self.data / "pids.json").read_text()).items()}

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, headers={"Authorization": f"Bearer {self.key}"}, timeout=150)


def start_up(env: dict[str, str], data: Path, log: Path) -> subprocess.Popen[str]:
    try:
        return launch_background(env, log, REPO)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory, docker_client: docker.DockerClient) -> Iterator[Up]:
    data = tmp_path_factory.mktemp("gsf-up") / "data"
    node = unique("e2e-node")
    env = up_env(data, node, unique("gsf-e2e-net"))
    data.mkdir(parents=True)
    log = data.parent / "up.log"
    proc = start_up(env, data, log)
    key = (data / "admin.key").read_text().strip()
    assert key.startswith("gsf_"), "the first start prints the admin key"
    assert key in log.read_text(), "the first start prints the admin key"
    handle = Up(proc, env, data, local_url(env, "GSF_API_PORT"), local_url(env, "GSF_MATCHMAKER_PORT"), key, log)
    try:
        yield handle
    finally:
        stop_background(handle.proc)
        for c in docker_client.containers.list(all=True, filters={"label": f"gsf.node_id={node}"}):
            c.remove(force=True)
        for n in docker_client.networks.list(names=[env["GSF_GAME_NETWORK"]]):
            n.remove()


def wait_status(api: httpx.Client, server_id: str, statuses: set[str], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        server = api.get(f"/api/v1/servers/{server_id}").json()
        if server["status"] in statuses or time.monotonic() > deadline:
            return server
        time.sleep(0.2)


def seat(mm_url: str, server_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        resp = httpx.post(f"{mm_url}/join", json={"server_id": server_id})
        if resp.status_code == 200 or time.monotonic() > deadline:
            assert resp.status_code == 200, resp.text
            return dict(resp.json())
        time.sleep(0.2)


def recv(ws: Any, type_: str) -> Any:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        frame = json.loads(ws.recv(timeout=10))
        if frame["type"] == type_:
            return frame["data"]
    raise AssertionError(f"no {type_} frame")


def deploy(api: httpx.Client, path: Path, name: str, source: bytes | None = None) -> str:
    resp = api.post("/api/v1/servers", data={"name": name},
                    files={"file": (path.name, source if source is not None else path.read_bytes())})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def play_tictactoe(up: Up, server_id: str) -> None:
    a, b = seat(up.mm_url, server_id), seat(up.mm_url, server_id)
    with ws_client.connect(a["ws_url"]) as x, ws_client.connect(b["ws_url"]) as o:
        marks = {recv(x, "seat")["mark"]: x, recv(o, "seat")["mark"]: o}
        # X takes the top row while O plays the middle row.
        for mark, cell in [("X", 0), ("O", 3), ("X", 1), ("O", 4), ("X", 2)]:
            marks[mark].send(json.dumps({"type": "move", "data": {"cell": cell}}))
            state = recv(marks[mark], "state")
            while state["board"][cell] != mark:
                state = recv(marks[mark], "state")
        assert state["status"] == "won"
        assert state["winner"] == "X"
        assert state["line"] == [0, 1, 2]
        final = recv(marks["O"], "state")
        while final["status"] != "won":
            final = recv(marks["O"], "state")
        # The agent relays the player count; the room list shows it.
        deadline = time.monotonic() + 15
        while httpx.get(f"{up.mm_url}/servers/{server_id}").json().get("players") != 2:
            assert time.monotonic() < deadline, "the room list never showed 2 players"
            time.sleep(0.2)


def test_forged_or_expired_seat_tokens_are_refused(up: Up) -> None:
    with up.api() as api:
        server_id = deploy(api, GAMES / "chat.js", "tokens")
        assert wait_status(api, server_id, {"running", "failed"})["status"] == "running"
        good = seat(up.mm_url, server_id)
        base = good["ws_url"].split("?")[0]
        forged = security.sign_seat_token("not-the-secret", server_id, "mallory", 15).token
        secret = security.seat_secret((up.data / "secret.key").read_text().strip(), server_id)
        expired = security.sign_seat_token(secret, server_id, "late", 15, now=time.time() - 60).token
        for token in (forged, expired, ""):
            with pytest.raises(InvalidStatus) as refused:
                ws_client.connect(f"{base}?token={token}", open_timeout=5).close()
            assert refused.value.response.status_code == 401
        with ws_client.connect(good["ws_url"]) as ws:
            recv(ws, "welcome")
        with pytest.raises(InvalidStatus):  # single use
            ws_client.connect(good["ws_url"], open_timeout=5).close()
        assert api.post(f"/api/v1/servers/{server_id}/stop").json()["status"] == "stopped"
        assert httpx.get(f"{up.mm_url}/servers/{server_id}").status_code == 404, "a stopped room leaves the list"
        api.delete(f"/api/v1/servers/{server_id}")


def test_deploy_play_logs_stop_delete(up: Up, docker_client: docker.DockerClient) -> None:
    with up.api() as api:
        server_id = deploy(api, GAMES / "tictactoe.js", "ttt-e2e")
        server = wait_status(api, server_id, {"running", "failed", "rejected"})
        assert server["status"] == "running", server
        deadline = time.monotonic() + 20
        while not any(r["server_id"] == server_id for r in httpx.get(f"{up.mm_url}/servers").json()["items"]):
            assert time.monotonic() < deadline, "the running server never appeared in the room list"
            time.sleep(0.2)
        play_tictactoe(up, server_id)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            lines = [entry["line"] for entry in api.get(f"/api/v1/servers/{server_id}/logs").json()["lines"]]
            if sum("join" in line for line in lines) >= 2:
                break
            time.sleep(0.3)
        assert sum("join" in line for line in lines) >= 2, lines
        assert api.post(f"/api/v1/servers/{server_id}/stop").json()["status"] == "stopped"
        assert api.delete(f"/api/v1/servers/{server_id}").json()["status"] == "deleted"
        listed = [s["id"] for s in api.get("/api/v1/servers").json()["items"]]
        assert server_id not in listed
    assert docker_client.containers.list(all=True, filters={"label": f"gsf.server_id={server_id}"}) == []
    assert docker_client.networks.list(names=[up.env["GSF_GAME_NETWORK"]]) == []


def test_killed_workers_resume_the_deployment(up: Up) -> None:
    # A fresh source (never built) keeps the deployment in `building` long enough to kill it there.
    source = (GAMES / "arena.js").read_bytes() + f"\n// build {uuid.uuid4()}\n".encode()
    with up.api() as api:
        server_id = deploy(api, GAMES / "arena.js", "arena-restart", source)
        deadline = time.monotonic() + 30
        while api.get(f"/api/v1/servers/{server_id}").json()["status"] not in ("building", "starting", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        before = up.pids()
        for name in ("control-worker", "agent"):
            os.kill(before[name], signal.SIGKILL)
        server = wait_status(api, server_id, {"running", "failed"}, timeout=180)
        assert server["status"] == "running", server
        after = up.pids()
        assert after["control-worker"] != before["control-worker"]
        assert after["agent"] != before["agent"]
        seat(up.mm_url, server_id)
        api.delete(f"/api/v1/servers/{server_id}")


def test_second_start_keeps_what_was_deployed(up: Up) -> None:
    with up.api() as api:
        server_id = deploy(api, GAMES / "chat.js", "survivor")
        assert wait_status(api, server_id, {"running", "failed"})["status"] == "running"
    stop_background(up.proc)
    children = up.pids() if (up.data / "pids.json").exists() else {}
    assert not children, "pids.json is removed on a clean stop"
    up.proc = start_up(up.env, up.data, up.log)
    assert up.log.read_text().count(up.key) == 1, "the admin key is printed only on the first start"
    with up.api() as api:
        server = api.get(f"/api/v1/servers/{server_id}").json()
        assert server["status"] == "running"
        with ws_client.connect(seat(up.mm_url, server_id)["ws_url"]) as ws:
            recv(ws, "welcome")
        assert api.delete(f"/api/v1/servers/{server_id}").json()["status"] == "deleted"


def gsf(up: Up, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**up.env, "GSF_API_URL": up.api_url, "GSF_API_KEY": up.key, "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], check=False, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_deploy_list_logs_delete(up: Up, tmp_path: Path) -> None:
    done = gsf(up, "deploy", str(GAMES / "chat.js"), "--name", "cli-demo")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "running" in done.stdout
    assert "workflow http://" in done.stdout
    server_id = done.stdout.split()[1]
    listed = json.loads(gsf(up, "servers", "--json").stdout)
    assert any(s["id"] == server_id and s["status"] == "running" for s in listed["items"])
    shown = gsf(up, "server", server_id)
    assert shown.returncode == 0
    assert "analyzing" in shown.stdout
    assert "running" in shown.stdout
    assert gsf(up, "logs", server_id).returncode == 0
    deleted = gsf(up, "delete", server_id)
    assert deleted.returncode == 0
    assert "deleted" in deleted.stdout

    bad = tmp_path / "bad.js"
    bad.write_text("module.exports = {\n  onJoin(room) { eval(room.state.code); },\n};\n")
    rejected = gsf(up, "deploy", str(bad), "--name", "bad")
    assert rejected.returncode == 1
    assert "rejected" in rejected.stderr
    assert "eval" in rejected.stderr
    caret_line = next(line for line in rejected.stderr.splitlines() if line.strip() == "^")
    source_line = rejected.stderr.splitlines()[rejected.stderr.splitlines().index(caret_line) - 1]
    assert source_line[len(caret_line) - 1:].startswith("eval")


def test_cli_nodes_and_pipeline(up: Up, docker_client: docker.DockerClient) -> None:
    listed = json.loads(gsf(up, "nodes", "--json").stdout)
    assert [n["id"] for n in listed["items"] if n["online"]] == [up.env["GSF_NODE_ID"]]
    network, volume = unique("gsf-e2e-pipe-net"), unique("gsf-e2e-pipe-vol")
    try:
        done = gsf(up, "pipeline", "run", "platform-start", "--node", up.env["GSF_NODE_ID"],
                   "--var", f"network={network}", "--var", f"config_volume={volume}")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "succeeded" in done.stderr
        run_id = done.stdout.split()[1]
        logs = gsf(up, "pipeline", "logs", run_id)
        assert f"node ready on network {network}" in logs.stdout
        refused = gsf(up, "pipeline", "run", "platform-start", "--var", "nope=1")
        assert refused.returncode == 1
        assert "variables.nope" in refused.stderr
    finally:
        for n in docker_client.networks.list(names=[network]):
            n.remove()
        for v in docker_client.volumes.list(filters={"name": volume}):
            v.remove()
