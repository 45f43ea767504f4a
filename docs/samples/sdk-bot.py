"""A bot with the Python client SDK (gsf_client), for the counter sample (counter.js): join or
create a room, add to the counter, wait until the synced state shows it, leave.

    .venv/bin/python docs/samples/sdk-bot.py http://127.0.0.1:8100 3

tests/web/test_sdk_browser.py runs it against `gsf up`.
"""

from __future__ import annotations

import asyncio
import sys

from gsf_client import Client, NoRoomAvailableError


async def main(matchmaker: str, times: int) -> int:
    async with Client(matchmaker) as client:
        try:
            room = await client.join_or_create("counter", name="bot")
        except NoRoomAvailableError:
            print("no room has a free seat and none could be made", file=sys.stderr)
            return 1
        _, hello = await room.receive("hello")  # sent by onJoin, after the first $state
        goal = hello["count"] + times
        reached = asyncio.Event()
        room.listen("/count", lambda count, _before: reached.set() if count >= goal else None)
        room.on_drop(lambda code, _reason: print(f"connection lost ({code}): reconnecting"))
        for _ in range(times):
            await room.send("inc", {"by": 1})
        await asyncio.wait_for(reached.wait(), 10)
        print(f"{room.name} ({room.player_id}) counted to {room.state['count']}")
        await room.leave()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)))
