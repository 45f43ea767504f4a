"""The platform hands its per-connection message limit (GSF_SERVER_MESSAGE_*) to the game container."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed

from tests.sandbox.conftest import GAMES, Sandbox

pytestmark = pytest.mark.docker


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
            for _ in range(200):
                frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if frame["type"] == "error":
                    codes.append(frame["data"]["code"])
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert codes and set(codes) == {"rate_limited"} and len(codes) <= 10
        assert box.status()["messages_dropped"] >= len(codes)
    finally:
        box.remove()
