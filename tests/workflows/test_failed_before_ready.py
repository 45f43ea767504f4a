"""A server that dies before it is ready (issue #20, items 3 and 4): its last container's output is
kept as the server's logs, and the error, the status history and `gsf server` show it as lines, in
order, without Python class names or Node's debugger chatter."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli import client as cli_client
from core.settings import Settings
from tests.harness import Harness, platform
from tests.workflows.test_gameserver import deploy, wait_status

pytestmark = [pytest.mark.docker, pytest.mark.temporal]

# Passes the analysis; prints on both streams, then onCreate throws: exit 3 before it is ready.
THROWS = """
module.exports = {
  onCreate(room) {
    room.log('first line');
    console.error('second line');
    room.log('third line');
    throw new Error('the board could not be set up');
  },
  onJoin() {},
};
"""

# onCreate never returns: the runtime's watchdog ends it (exit 4), still before it is ready.
SPINS = """
module.exports = {
  onCreate(room) {
    room.log('spinning now');
    room.state.spins = 0;
    while (room.state.spins >= 0) room.state.spins += 1;  // an exit that never comes
  },
  onJoin() {},
};
"""

DEBUGGER = "Waiting for the debugger"


@pytest.fixture
async def h(settings: Settings, temporal_env: Any, runtime_images: str, cleanup_docker: None) -> Any:
    async with platform(settings, temporal_env.client) as harness:
        yield harness


async def logs_with(api: httpx.AsyncClient, server_id: str, text: str, timeout: float = 15) -> list[str]:
    lines: list[str] = []
    for _ in range(int(timeout / 0.2)):
        page = (await api.get(f"/api/v1/servers/{server_id}/logs", params={"tail": 200})).json()
        lines = [line["line"] for line in page["lines"]]
        if any(text in line for line in lines):
            return lines
        await asyncio.sleep(0.2)
    raise AssertionError(f"no log line with {text!r}: {lines}")


def in_order(lines: list[str], *parts: str) -> bool:
    at = [next((i for i, line in enumerate(lines) if part in line), -1) for part in parts]
    return -1 not in at and at == sorted(at)


async def test_output_of_a_server_that_died_before_ready(h: Harness, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    key = await h.user_key("early@example.com")
    (tmp_path / "throws.js").write_text(THROWS)
    (tmp_path / "spins.js").write_text(SPINS)
    async with h.api(key) as api:
        throws = await deploy(api, tmp_path / "throws.js", "throws")
        spins = await deploy(api, tmp_path / "spins.js", "spins")

        server = await wait_status(api, throws, {"failed", "running"})
        assert server["status"] == "failed", server
        error = server["error"]
        assert "ContainerExited" not in error, error
        assert " | " not in error, error
        head, *lines = error.split("\n")
        assert head == "game server exited with code 3 before it was ready", error
        assert in_order(lines, "first line", "second line", "third line", "the board could not be set up"), error
        failed = server["events"][-1]
        assert failed["status"] == "failed"
        assert failed["message"] == error
        assert failed["detail"]["exit_code"] == 3
        assert in_order(failed["detail"]["log_tail"], "first line", "second line", "third line",
                        "the board could not be set up"), failed["detail"]
        # The container is gone; what it printed is the server's logs.
        logged = await logs_with(api, throws, "the board could not be set up")
        assert in_order(logged, "listening", "first line", "second line", "third line",
                        "the board could not be set up"), logged

        # `gsf server` shows the error as lines and the last output.
        monkeypatch.setenv("GSF_API_URL", str(api.base_url).rstrip("/"))
        monkeypatch.setenv("GSF_API_KEY", key)
        capsys.readouterr()
        assert await asyncio.to_thread(cli_client.show, h.settings, throws) == 0
        shown = capsys.readouterr().out
        assert "ContainerExited" not in shown, shown
        assert " | " not in shown, shown
        assert "last output" in shown, shown
        shown_lines = shown.splitlines()
        assert "             [game] third line" in shown_lines, shown  # a line of the error, in its column
        assert in_order(shown_lines, "error", "first line", "second line", "third line", "last output"), shown
        after = shown_lines[shown_lines.index(next(x for x in shown_lines if "last output" in x)):]
        assert in_order(after, "listening", "first line", "second line", "third line",
                        "the board could not be set up"), shown

        # The watchdog's kill: exit 4, its reason and logs without Node's debugger message.
        server = await wait_status(api, spins, {"failed", "running"}, timeout=120)
        assert server["status"] == "failed", server
        assert server["error"].startswith("game server exited with code 4 before it was ready\n"), server["error"]
        assert "watchdog: event loop blocked for " in server["error"]
        assert DEBUGGER not in server["error"]
        assert "ContainerExited" not in server["error"]
        assert all(DEBUGGER not in line for line in server["events"][-1]["detail"]["log_tail"])
        logged = await logs_with(api, spins, "watchdog: event loop blocked")
        assert in_order(logged, "spinning now", "watchdog: event loop blocked")
        assert all(DEBUGGER not in line for line in logged), logged
        for server_id in (throws, spins):
            await api.delete(f"/api/v1/servers/{server_id}")
