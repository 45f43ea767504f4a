"""The runtime's event-loop watchdog and environment scrubbing, on local `node server.js` processes.

The container version of the endless-loop case is in test_hostile.py; these run in a second each.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from core.security import sign_seat_token
from tests.sandbox.conftest import HOSTILE

RUNTIME = HOSTILE.parents[2] / "gameserver" / "runtime" / "server.js"


class Local:
    def __init__(self, proc: subprocess.Popen[bytes], out: Path, err: Path, secret: str) -> None:
        self.proc, self.out, self.err, self.secret = proc, out, err, secret
        self.port = 0

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.err.read_text()
            for line in self.out.read_text().splitlines():
                if line.startswith("ready "):
                    return
                if line.startswith("listening "):
                    self.port = int(line.split("port=")[1].split()[0])
            time.sleep(0.02)
        raise AssertionError(f"not ready: {self.out.read_text()} {self.err.read_text()}")

    async def send(self, frame_type: str, data: object = None) -> None:
        token = sign_seat_token(self.secret, "local-wd", "p1", 30).token
        async with connect(f"ws://127.0.0.1:{self.port}/ws?token={token}", open_timeout=5) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
            await ws.send(json.dumps({"type": frame_type, "data": data}))
            if frame_type != "forever":
                assert json.loads(await ws.recv())["type"] == "done"


Run = Callable[[str, "str | None"], Local]


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    node = shutil.which("node")
    assert node, "node is needed"
    started: list[subprocess.Popen[bytes]] = []

    def start(game: str, watchdog_ms: str | None) -> Local:
        name = uuid.uuid4().hex[:8]
        secret = uuid.uuid4().hex
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": "0", "GSF_BIND_HOST": "127.0.0.1",
               "GSF_GAME_FILE": str(HOSTILE / game), "GSF_SERVER_ID": "local-wd",
               "GSF_SEAT_SECRET": secret, "GSF_AGENT_KEY": uuid.uuid4().hex}
        if watchdog_ms is not None:
            env["GSF_WATCHDOG_MS"] = watchdog_ms
        out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with out.open("wb") as fout, err.open("wb") as ferr:
            proc = subprocess.Popen([node, str(RUNTIME)], env=env, stdout=fout, stderr=ferr,
                                    stdin=subprocess.DEVNULL)
        started.append(proc)
        return Local(proc, out, err, secret)

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


async def test_endless_loop_in_a_hook_exits_with_code_4(run: Run) -> None:
    rt = run("blocker.js", "500")
    rt.wait_ready()
    started = time.monotonic()
    await rt.send("forever")
    assert rt.proc.wait(timeout=10) == 4
    assert 0.4 < time.monotonic() - started < 3.0
    assert "watchdog: event loop blocked for " in rt.err.read_text()


def test_endless_loop_at_load_time_exits_with_code_4(run: Run) -> None:
    rt = run("load_forever.js", "500")
    assert rt.proc.wait(timeout=10) == 4
    assert "watchdog: event loop blocked for " in rt.err.read_text()


async def test_a_long_but_finite_block_is_tolerated(run: Run) -> None:
    rt = run("blocker.js", "1500")
    rt.wait_ready()
    await rt.send("block", {"ms": 700})
    await asyncio.sleep(0.3)
    assert rt.proc.poll() is None
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"http://127.0.0.1:{rt.port}/health", timeout=5)).status_code == 200
    assert "watchdog" not in rt.err.read_text()


async def test_watchdog_can_be_turned_off(run: Run) -> None:
    rt = run("blocker.js", "0")
    rt.wait_ready()
    await rt.send("block", {"ms": 1200})
    assert rt.proc.poll() is None
    assert "watchdog" not in rt.err.read_text()


def test_bad_watchdog_setting_is_a_configuration_error(run: Run) -> None:
    rt = run("blocker.js", "soon")
    assert rt.proc.wait(timeout=10) == 2
    assert "GSF_WATCHDOG_MS" in rt.err.read_text()


def test_secrets_are_scrubbed_from_proc_environ(run: Run) -> None:
    rt = run("secrets.js", None)
    rt.wait_ready()
    environ = Path(f"/proc/{rt.proc.pid}/environ").read_bytes().decode("latin1")
    values = dict(item.split("=", 1) for item in environ.split("\0") if "=" in item)
    assert set(values["GSF_SEAT_SECRET"]) == {"x"}
    assert set(values["GSF_AGENT_KEY"]) == {"x"}
    assert rt.secret not in environ
