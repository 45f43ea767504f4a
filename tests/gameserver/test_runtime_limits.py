"""The runtime's per-connection message rate limit and its bounded logging of failing game code."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

from gameserver_testkit import GAMES, StartRuntime, recv, recv_type, send
from websockets.exceptions import ConnectionClosed

CHAT = GAMES / "chat.js"
RATE, BURST = 20, 10


async def test_a_flood_is_rate_limited_and_then_closed_with_1008(start_runtime: StartRuntime) -> None:
    rt = start_runtime(CHAT, GSF_SERVER_MESSAGE_RATE=str(RATE), GSF_SERVER_MESSAGE_BURST=str(BURST),
                       GSF_SERVER_MESSAGE_DROP_LIMIT="50", GSF_SERVER_MESSAGE_DROP_WINDOW_MS="10000")
    flooder, _ = await rt.join("flooder")
    other, _ = await rt.join("other")
    await recv_type(flooder, "joined")  # `other` arrived; from here on every chat is a flood frame

    started = time.monotonic()
    sent = 0
    try:
        for _ in range(2000):  # what the review sent: 2,000 frames as fast as the socket takes them
            await send(flooder, "chat", {"text": "spam"})
            sent += 1
    except ConnectionClosed:
        pass
    limited = 0
    close_code = None
    try:
        for _ in range(5000):
            frame = await recv(flooder)
            if frame["type"] == "error":
                assert frame["data"]["code"] == "rate_limited", frame
                limited += 1
    except ConnectionClosed as closed:  # the flood ends with this close; its code is the point
        close_code = closed.rcvd.code if closed.rcvd is not None else None
    assert close_code == 1008
    elapsed = time.monotonic() - started
    # Over the limit, frames are answered (never silently lost) up to the drop limit, then the close.
    assert 1 <= limited <= 50
    assert sent > BURST

    chats = 0
    frame = await recv(other)
    while frame["type"] != "left":  # onLeave of the closed flooder comes after its last chat
        chats += frame["type"] == "chat"
        frame = await recv(other)
    assert frame["data"]["id"] == "flooder"
    # The other player got what the bucket let through, no more: the burst plus the refill.
    assert BURST <= chats <= BURST + RATE * elapsed + 1, (chats, elapsed)

    status = rt.status()
    assert status["messages_dropped"] >= limited
    assert status["players"] == 1
    assert "drop player=flooder reason=rate_limited code=1008" in rt.stdout()
    # The room is fine, and the other player is not limited by the flooder's bucket.
    await send(other, "chat", {"text": "still here"})
    assert (await recv_type(other, "chat"))["data"]["text"] == "still here"
    await rt.close_players()


async def test_over_the_limit_frames_are_dropped_but_the_connection_stays_below_the_drop_limit(
        start_runtime: StartRuntime) -> None:
    rate = 4  # slow refill: even a loaded machine sends the 60 frames well before many tokens come back
    rt = start_runtime(CHAT, GSF_SERVER_MESSAGE_RATE=str(rate), GSF_SERVER_MESSAGE_BURST=str(BURST))
    ws, _ = await rt.join("p1")
    await recv(ws)  # history
    started = time.monotonic()
    for i in range(60):
        await send(ws, "chat", {"text": f"m{i}"})
    kinds: dict[str, int] = {}
    for _ in range(60):  # every frame is answered: its broadcast, or the error
        frame = await recv(ws)
        key = frame["data"]["code"] if frame["type"] == "error" else frame["type"]
        kinds[key] = kinds.get(key, 0) + 1
    allowed = BURST + rate * (time.monotonic() - started) + 1
    assert BURST <= kinds.get("chat", 0) <= allowed, kinds
    assert kinds["rate_limited"] == 60 - kinds["chat"], kinds
    await asyncio.sleep(2 / rate)  # the bucket refills: the next frame goes through
    await send(ws, "chat", {"text": "after"})
    assert (await recv_type(ws, "chat"))["data"]["text"] == "after"
    await rt.close_players()


def test_bad_rate_settings_are_a_configuration_error(start_runtime: StartRuntime) -> None:
    for env in ({"GSF_SERVER_MESSAGE_RATE": "-1"}, {"GSF_SERVER_MESSAGE_BURST": "0"},
                {"GSF_SERVER_MESSAGE_RATE": "lots"}):
        rt = start_runtime(CHAT, wait=False, **env)
        assert rt.wait_exit() == 2
        assert next(iter(env)) in rt.stderr()


FLOODING_TIMERS = """
module.exports = {
  onCreate(room) {
    // Failures outside any hook, as fast as the event loop turns.
    setInterval(() => { for (let i = 0; i < 20; i++) Promise.reject(new Error('rejected in a loop')); }, 1);
    setInterval(() => { throw new Error('thrown in a timer'); }, 1);
  },
};
"""


async def test_failing_timers_write_a_bounded_number_of_log_lines(start_runtime: StartRuntime,
                                                                 tmp_path: Path) -> None:
    game = tmp_path / "flood.js"
    game.write_text(FLOODING_TIMERS)
    started = time.monotonic()  # before the game's first failure
    rt = start_runtime(game)
    await asyncio.sleep(2.2)  # two full one-second windows and part of a third
    assert rt.health().status_code == 200
    stderr = rt.stderr()
    seconds = time.monotonic() - started + 1  # windows are >= 1 s: at most floor(span) + 1 of them
    rejections = stderr.count("unhandled rejection (game code?)")
    exceptions = stderr.count("uncaught exception (game code?)")
    # Unlimited, this is tens of thousands of stacks; limited, five of each kind per second.
    assert 1 <= rejections <= 5 * seconds, (rejections, exceptions)
    assert 1 <= exceptions <= 5 * seconds, (rejections, exceptions)
    suppressed = [int(n) for n in re.findall(r"^unhandled rejection: (\d+) similar lines suppressed$",
                                             stderr, re.MULTILINE)]
    assert suppressed, stderr[-2000:]
    assert sum(suppressed) > 100, stderr[-2000:]
    assert re.search(r"^uncaught exception: \d+ similar lines suppressed$", stderr, re.MULTILINE), stderr[-2000:]
    assert len(stderr.splitlines()) < 60 * seconds
    assert json.loads(rt.health().text) == {"ok": True}
