"""The platform hands its per-connection message limit (GSF_SERVER_MESSAGE_*) to the game container."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.sandbox.conftest import GAMES, Sandbox

pytestmark = pytest.mark.docker


async def read_error_codes(ws: ClientConnection, codes: list[str], frames: int) -> None:
    """Collect the codes of the error frames among the next `frames` frames (the container closes the
    connection before the last: the caller expects ConnectionClosed)."""
    for _ in range(frames):
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if frame["type"] == "error":
            codes.append(frame["data"]["code"])


async def test_the_container_enforces_the_platform_message_limit(sandbox: Sandbox) -> None:
    limited = Sandbox(sandbox.client, sandbox.settings.model_copy(update={
        "server_message_rate": 5.0, "server_message_burst": 3, "server_message_drop_limit": 10,
        "server_message_drop_window_ms": 60_000}), sandbox.sources)
    box = limited.start(GAMES / "chat.js")
    try:
        env = dict(item.split("=", 1) for item in box.container.attrs["Config"]["Env"])
        assert (env["GSF_SERVER_MESSAGE_RATE"], env["GSF_SERVER_MESSAGE_BURST"]) == ("5.0", "3")
        assert (env["GSF_SERVER_MESSAGE_DROP_LIMIT"], env["GSF_SERVER_MESSAGE_DROP_WINDOW_MS"]) == ("10", "60000")

        ws = await box.join("flooder")
        for i in range(40):
            try:
                await ws.send(json.dumps({"type": "chat", "data": {"text": f"m{i}"}}))
            except ConnectionClosed:
                break
        codes: list[str] = []
        with pytest.raises(ConnectionClosed) as closed:
            await read_error_codes(ws, codes, frames=200)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008
        assert codes
        assert set(codes) == {"rate_limited"}
        assert len(codes) <= 10
        assert box.status()["messages_dropped"] >= len(codes)
    finally:
        box.remove()
