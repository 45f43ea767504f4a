"""A fleet's rolling update migrates a durable match (issue #25): a fleet of one server hosting rooms
runs the durable tic-tac-toe v1 with `migrate_rooms`; two Python SDK players are mid-game in a room
it allocated. Rolling out v2 (whose `onMigrate` adds the version it came from) starts a v2 server,
moves the room into it, and deletes the v1 server: both players come back once with their ids, the
board as they both saw it, and finish the game on v2. Real Docker, Temporal, matchmaker and agent."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest
from gsf_client import Client

from core.settings import Settings
from tests.durable import game
from tests.fleets.helpers import allocate, create_fleet, delete_fleet, exactly, upload, wait_fleet
from tests.harness import Harness

pytestmark = [pytest.mark.docker, pytest.mark.temporal]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"fleet_sync_seconds": 0.5})  # a fast autoscaler


async def test_a_fleet_rollout_migrates_the_match_into_the_new_version(h: Harness, tmp_path: Path) -> None:
    key = await h.user_key("fleet-migrate@example.com")
    folders = {v: tmp_path / v for v in ("v1", "v2")}
    for folder in folders.values():
        folder.mkdir()
    v1 = game.write_game(folders["v1"], extra=game.RECONNECT)
    v2 = game.write_game(folders["v2"], extra=game.RECONNECT + game.MIGRATE_EXPORTS)
    async with h.api(key) as api:
        await upload(api, v1, "ttt-fleet")
        refused = await api.post("/api/v1/fleets", json={"name": "one-room", "game": "ttt-fleet", "replicas": 1,
                                                         "max_rooms": 1, "migrate_rooms": True})
        assert refused.status_code == 422, refused.text
        assert "free room slot" in refused.text
        fleet = await create_fleet(api, name="matches", game="ttt-fleet", replicas=1, max_rooms=4,
                                   migrate_rooms=True)
        fid = fleet["id"]
        assert fleet["migrate_rooms"] is True
        first = await wait_fleet(api, fid, lambda f: exactly(f, ready=1), "a ready v1 server")
        (old,) = [s["server_id"] for s in first["servers"]]
        got = await allocate(api, fleet=fid, players=2)
        assert got.status_code == 201, got.text
        match = got.json()
        assert match["server_id"] == old
        seats = [{"ws_url": seat["ws_url"], "room_id": match["room_id"], "server_id": old}
                 for seat in match["seats"]]
        async with Client(h.settings.matchmaker_url) as x_client, Client(h.settings.matchmaker_url) as o_client, \
                contextlib.AsyncExitStack() as players:
            x = await x_client.consume_seat(seats[0])
            players.push_async_callback(x.leave)
            o = await o_client.consume_seat(seats[1])
            players.push_async_callback(o.leave)
            ids = (x.player_id, o.player_id)
            counts = game.counting_reconnects([x, o])
            acknowledged = await game.play_opening(x, o, 2)
            seq = await game.wait_stored(h.sessions, match["room_id"], 2)

            began = time.monotonic()
            await upload(api, v2, "ttt-fleet")
            rolled = await api.patch(f"/api/v1/fleets/{fid}", json={"version": 2})
            assert rolled.status_code == 200, rolled.text
            try:
                await game.reconnected(counts, 1, api, old)
            except AssertionError as exc:
                fleet_now = (await api.get(f"/api/v1/fleets/{fid}")).json()
                others = [(await api.get(f"/api/v1/servers/{s['server_id']}")).json()
                          for s in fleet_now["servers"] if s["server_id"] != old]
                raise AssertionError(f"{exc}; the fleet: {fleet_now}; its other servers: "
                                     f"{[(o['id'], o['status'], o['events']) for o in others]}") from None
            back_s = time.monotonic() - began
            assert counts == [1, 1]
            restored, state = await game.back_as_acknowledged(x, o, ids, seq, "migrate", acknowledged)
            assert restored["fromVersion"] == "1"  # the fleet's version number, as `gsf.version` names it
            assert state["migratedFrom"] == "1"
            assert x.server_id != old
            await game.move(x, 8, 3)  # the opening's third move, on v2
            await game.state_after(o, 3)
            final = await game.finish(x, o)  # X wins down the right column (2, 5, 8)
            assert final["status"] == "won"
            assert final["winnerId"] == x.player_id

            rolled_out = await wait_fleet(api, fid, lambda f: [s["version"] for s in f["servers"]] == [2],
                                          "only the v2 server left")
            (new,) = rolled_out["servers"]
            assert new["server_id"] == x.server_id
            server = (await api.get(f"/api/v1/servers/{old}")).json()
            assert server["status"] == "deleted"
            (migrated,) = [e for e in server["events"] if (e.get("detail") or {}).get("event") == "migrated"]
            assert migrated["detail"]["from_version"] == "1"
            moved = {r["room_id"]: r for r in migrated["detail"]["rooms"]}
            assert (moved[match["room_id"]]["to"], sorted(moved[match["room_id"]]["players"])) == (
                new["server_id"], sorted(ids))
        print(f"fleet rollout -> both players back on v2: {back_s:.2f} s")
        await delete_fleet(h, api, fid)
