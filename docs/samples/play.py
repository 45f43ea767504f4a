"""Deploy a game, reserve two seats, play one round of rps.js over WebSocket, delete the server.

    GSF_API_KEY=$(cat .gsf-data/admin.key) .venv/bin/python docs/samples/play.py docs/samples/rps.js

GSF_API_URL and GSF_MATCHMAKER_URL default to the addresses `gsf up` serves on this machine.
Needs httpx and websockets (gsf's own dependencies).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import ClientConnection, connect

API = os.environ.get("GSF_API_URL", "http://127.0.0.1:8000")
MATCHMAKER = os.environ.get("GSF_MATCHMAKER_URL", "http://127.0.0.1:8100")
KEY = os.environ["GSF_API_KEY"]


def deploy(api: httpx.Client, game: Path) -> str:
    """Upload the module (202 at once), then follow its status until the deployment ends."""
    resp = api.post("/api/v1/servers", data={"name": "rps-sample"}, files={"file": (game.name, game.read_bytes())})
    resp.raise_for_status()
    server_id: str = resp.json()["id"]
    status, deadline = "", time.monotonic() + 180
    while status not in ("running", "rejected", "failed"):
        if time.monotonic() > deadline:
            raise SystemExit(f"server {server_id} is still {status}")
        server = api.get(f"/api/v1/servers/{server_id}").json()
        if server["status"] != status:
            status = server["status"]
            print(f"server {server_id} {status}")
        time.sleep(0.25)
    if status != "running":
        raise SystemExit(f"the deployment ended {status}: {server['error']}")
    return server_id


def seat(server_id: str, name: str) -> str:
    """Reserve a seat at the matchmaker; the answer's ws_url carries a single-use seat token."""
    resp = httpx.post(f"{MATCHMAKER}/join", json={"server_id": server_id})
    if resp.status_code != 200:
        problem = resp.json()  # application/problem+json: type, title, status, detail
        raise SystemExit(f"no seat: {problem['type']}: {problem['detail']}")
    return f"{resp.json()['ws_url']}&{urlencode({'name': name})}"


async def frame_of(ws: ClientConnection, kind: str) -> Any:
    """The data of the next frame of this type; error frames on the way are printed."""
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 15))
        if frame["type"] == "error":
            print(f"error frame: {frame['data']}")
        if frame["type"] == kind:
            return frame["data"]


async def play_round(ada_url: str, bob_url: str) -> None:
    async with connect(ada_url) as ada, connect(bob_url) as bob:
        ids = {(await frame_of(ada, "welcome"))["playerId"]: "ada",
               (await frame_of(bob, "welcome"))["playerId"]: "bob"}
        round_ = await frame_of(bob, "round")  # the second player in starts round 1
        await frame_of(ada, "round")
        await ada.send(json.dumps({"type": "throw", "data": {"hand": "rock"}}))
        await bob.send(json.dumps({"type": "throw", "data": {"hand": "scissors"}}))
        result = await frame_of(ada, "result")
        hands = {ids[pid]: hand for pid, hand in result["hands"].items()}
        print(f"round {round_['round']}: ada {hands['ada']}, bob {hands['bob']}: "
              f"{ids[result['winner']] if result['winner'] else 'nobody'} wins")


def main() -> None:
    game = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/samples/rps.js")
    with httpx.Client(base_url=API, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as api:
        server_id = deploy(api, game)
        try:
            asyncio.run(play_round(seat(server_id, "ada"), seat(server_id, "bob")))
        finally:
            print(f"server {server_id} {api.delete(f'/api/v1/servers/{server_id}').json()['status']}")


if __name__ == "__main__":
    main()
