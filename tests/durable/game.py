"""The durable tic-tac-toe the durable-room tests and bench/durable.py play, and two SDK players of it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from gsf_client import Client, Room
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import RoomSnapshot
from tests.workflows.test_gameserver import deploy, wait_status

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
TICTACTOE = REPO / "examples" / "games" / "tictactoe.js"
# Added to the example's exports, the game's own code unchanged: durable, a snapshot at most every
# 100 ms, and onRestore telling both players the board (frames to a restored player wait for it).
DURABLE_EXPORTS = """
  durable: true,
  snapshotIntervalMs: 100,
  onRestore(room, info) {
    room.state.restores = (room.state.restores || 0) + 1;
    room.broadcast('restored', { seq: info.seq, ageMs: info.ageMs, from: info.from,
      fromVersion: info.fromVersion ?? null });
    room.broadcast('state', room.state);
  },
"""

# The players' seats kept a minute after a drop: long enough for any move of their room.
RECONNECT = "  reconnectSeconds: 60,\n"
# A new version's onMigrate (issue #25, rolling update): the old state kept, the version it came from added.
MIGRATE_EXPORTS = """
  onMigrate(room, oldState, fromVersion) {
    return { ...oldState, migratedFrom: fromVersion };
  },
"""
# A new version that cannot take the old one's rooms: they stay on the old version.
REFUSE_MIGRATE_EXPORTS = """
  onMigrate(room, oldState, fromVersion) {
    throw new Error(`this version cannot read a board of ${fromVersion}`);
  },
"""


def write_game(folder: Path, name: str = "durable_ttt", extra: str = "", durable: bool = True) -> Path:
    """The durable tic-tac-toe in `folder`; `extra`: more exports (`reconnectSeconds: 60,`).
    `durable=False`: the module does not export `durable`, only rooms opened with the room option
    `{durable: true}` are."""
    source = TICTACTOE.read_text()
    marker = "module.exports = {\n"
    exports = DURABLE_EXPORTS if durable else DURABLE_EXPORTS.replace("  durable: true,\n", "", 1)
    path = folder / f"{name}.js"
    path.write_text(source.replace(marker, marker + exports + extra, 1))
    return path


async def running_game(api: httpx.AsyncClient, path: Path, name: str, **form: str) -> str:
    """The id of a server of the game at `path` deployed through the API, once it runs."""
    server_id = await deploy(api, path, name, **form)
    assert (await wait_status(api, server_id, {"running", "failed"}))["status"] == "running"
    return server_id


async def join(client: Client, server_id: str, timeout: float = 30) -> Room:
    """A player in the server's first room, once the matchmaker lists it."""
    last: Exception | None = None
    for _ in range(int(timeout / 0.2)):
        try:
            return await client.join_by_id(server_id)
        except Exception as exc:  # noqa: BLE001 - not listed yet: any refusal means "ask again"
            last = exc
            await asyncio.sleep(0.2)
    raise AssertionError(f"no seat in {server_id}: {last}")


@contextlib.asynccontextmanager
async def two_players(matchmaker_url: str, server_id: str) -> AsyncIterator[tuple[Room, Room]]:
    """X, then O, seated in the server's first room; both leave (and their clients close) on exit."""
    async with Client(matchmaker_url) as x_client, Client(matchmaker_url) as o_client, \
            contextlib.AsyncExitStack() as players:
        x = await join(x_client, server_id)
        players.push_async_callback(x.leave)
        o = await join(o_client, server_id)
        players.push_async_callback(o.leave)
        yield x, o


async def state_after(room: Room, moves: int, timeout: float = 10) -> dict[str, Any]:
    """The first `state` frame that counts `moves` moves (earlier ones are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            _, state = await room.receive("state", timeout=timeout)
            if isinstance(state, dict) and state.get("moves") == moves and state.get("status") != "waiting":
                return state


async def move(room: Room, cell: int, moves: int) -> dict[str, Any]:
    await room.send("move", {"cell": cell})
    return await state_after(room, moves)


OPENING = (4, 0, 8)  # X in the centre, O in a corner, X in the opposite corner


async def play_opening(x: Room, o: Room, moves: int) -> dict[str, Any]:
    """The first `moves` moves of OPENING; the state once the player who did not make the last one
    saw it (both players saw it: the moves are acknowledged)."""
    players = (x, o)
    for n in range(moves):
        await move(players[n % 2], OPENING[n], n + 1)
    return await state_after(players[moves % 2], moves)


async def finish(x: Room, o: Room) -> dict[str, Any]:
    """From the opening's three moves to X's win down the right column (2, 5, 8): the final state."""
    await move(o, 1, 4)
    await move(x, 2, 5)
    await move(o, 6, 6)
    return await move(x, 5, 7)


async def back_as_acknowledged(x: Room, o: Room, ids: tuple[str, str], seq: int, source: str,
                               acknowledged: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both players back with their ids, X told of the restore of snapshot `seq` from `source`, the
    board as both saw it last: the `restored` frame and the state."""
    assert (x.player_id, o.player_id) == ids
    _, restored = await x.receive("restored", timeout=10)
    assert restored["seq"] == seq
    assert restored["from"] == source
    state = await state_after(x, acknowledged["moves"])
    assert state["board"] == acknowledged["board"]
    return restored, state


async def events_on_timeout(api: httpx.AsyncClient, server_id: str, waiting: Awaitable[T], width: int = 300) -> T:
    """What `waiting` gives; when it times out, a failure that lists the server's events instead."""
    try:
        return await waiting
    except TimeoutError:
        server = (await api.get(f"/api/v1/servers/{server_id}")).json()
        raise AssertionError([(e["status"], e["message"][:width]) for e in server["events"]]) from None


async def stored_snapshot(sessions: async_sessionmaker[AsyncSession], room_id: str) -> dict[str, Any] | None:
    """The room's stored snapshot in the platform database, or None."""
    async with sessions() as s:
        text = await s.scalar(select(RoomSnapshot.snapshot).where(RoomSnapshot.room_id == room_id))
    return None if text is None else dict(json.loads(text))


async def stored_moves(sessions: async_sessionmaker[AsyncSession], room_id: str) -> tuple[int, int]:
    """(seq, moves) of the room's stored snapshot in the platform database; (-1, -1) when none."""
    snap = await stored_snapshot(sessions, room_id)
    if snap is None:
        return -1, -1
    return int(snap["seq"]), int(snap["body"]["state"]["moves"])


async def wait_stored(sessions: async_sessionmaker[AsyncSession], room_id: str, moves: int,
                      timeout: float = 10) -> int:
    """The seq of the stored snapshot once it holds `moves` moves."""
    async with asyncio.timeout(timeout):
        while True:
            seq, stored = await stored_moves(sessions, room_id)
            if stored == moves:
                return seq
            await asyncio.sleep(0.05)


async def both_back(rooms: list[Room], timeout: float = 30) -> None:
    """Both players reconnected (a `welcome` with `reconnected`) after a drop."""
    async with asyncio.timeout(timeout):
        while not all(r.connected and r.welcome.get("reconnected") for r in rooms):
            await asyncio.sleep(0.01)


class Reconnects(list[int]):
    """Reconnections counted per room, the rooms beside them (for a failure's message)."""

    def __init__(self, rooms: list[Room]) -> None:
        super().__init__([0] * len(rooms))
        self.rooms = rooms

    def why_not(self) -> list[tuple[bool, int | None, str, int | None]]:
        """Each room: connected, its close code, the error it ended with and that error's status."""
        return [(r.connected, r.close_code, repr(r.close_error), getattr(r.close_error, "status", None))
                for r in self.rooms]


def counting_reconnects(rooms: list[Room]) -> Reconnects:
    counts = Reconnects(rooms)

    def counter(n: int) -> Any:
        def count() -> None:
            counts[n] += 1
        return count

    for n, room in enumerate(rooms):
        room.on_reconnect(counter(n))
    return counts


async def reconnected(counts: Reconnects, times: int, api: Any, server_id: str, timeout: float = 90) -> None:
    async def counted() -> None:
        async with asyncio.timeout(timeout):
            while min(counts) < times:
                await asyncio.sleep(0.01)

    try:
        await events_on_timeout(api, server_id, counted())
    except AssertionError as err:
        raise AssertionError(f"rooms {counts.why_not()}; server events {err}") from None
