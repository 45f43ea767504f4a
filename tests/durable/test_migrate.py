"""A rolling update migrates a durable match (issue #25): two Python SDK players mid-game of
tic-tac-toe v1; `POST /servers/{v1}/stop?drain_to={v2}` moves the room into v2, whose `onMigrate`
adds the version it came from; both players come back (same ids, one reconnection) and play on.
Then `gsf deploy --replace v2` deploys v3, whose `onMigrate` throws: the room stays on v2 (its
container started again with it), the players come back there and finish the game, and the CLI
names the room that stayed and exits 1. Real Docker, Temporal, matchmaker and agent."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.durable import game
from tests.harness import Harness

pytestmark = [pytest.mark.docker, pytest.mark.temporal]

def version(tmp_path: Path, name: str, extra: str = "") -> Path:
    """One version of the game: the same file name (the same game) in a folder of its own."""
    folder = tmp_path / name
    folder.mkdir()
    return game.write_game(folder, extra=game.RECONNECT + extra)


def events(server: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in server["events"] if (e.get("detail") or {}).get("event") == kind]


async def test_a_new_version_migrates_the_match_and_one_whose_on_migrate_throws_leaves_it(
        h: Harness, tmp_path: Path) -> None:
    key = await h.user_key("migrate@example.com")
    async with h.api(key) as api:
        v1, v2 = await asyncio.gather(
            game.running_game(api, version(tmp_path, "v1"), "ttt-v1", labels="version=v1"),
            game.running_game(api, version(tmp_path, "v2", game.MIGRATE_EXPORTS), "ttt-v2", labels="version=v2",
                              max_rooms="4"))
        async with game.two_players(h.settings.matchmaker_url, v1) as (x, o):
            ids = (x.player_id, o.player_id)
            counts = game.counting_reconnects([x, o])
            acknowledged = await game.play_opening(x, o, 2)
            seq = await game.wait_stored(h.sessions, v1, 2)

            # Refused before anything moves: a server that is not running, or the server itself.
            refused = await api.post(f"/api/v1/servers/{v1}/stop", params={"drain_to": v1})
            assert refused.status_code == 422, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")

            # v1 -> v2: onMigrate of v2 runs; one reconnection each, same ids, the board as it was.
            began = time.monotonic()
            resp = await api.post(f"/api/v1/servers/{v1}/stop", params={"drain_to": v2}, timeout=180)
            assert resp.status_code == 200, resp.text
            assert resp.json()["status"] == "stopped"
            await game.reconnected(counts, 1, api, v1)
            back_s = time.monotonic() - began
            assert counts == [1, 1]
            restored, state = await game.back_as_acknowledged(x, o, ids, seq, "migrate", acknowledged)
            assert restored["fromVersion"] == "v1"
            assert state["migratedFrom"] == "v1"
            assert state["marks"] == acknowledged["marks"]
            await game.move(x, 8, 3)
            await game.state_after(o, 3)
            await game.wait_stored(h.sessions, v1, 3)  # the room's snapshots are v2's now
            (migrated,) = events((await api.get(f"/api/v1/servers/{v1}")).json(), "migrated")
            assert migrated["detail"]["from_version"] == "v1"
            assert [(r["room_id"], r["to"], sorted(r["players"])) for r in migrated["detail"]["rooms"]] == [
                (v1, v2, sorted(ids))]
            assert migrated["detail"]["failed"] == {}

            # `gsf deploy --replace v2` with v3, whose onMigrate throws: the room stays on v2.
            replaced = await h.cli(key, "deploy", str(version(tmp_path, "v3", game.REFUSE_MIGRATE_EXPORTS)),
                                   "--name", "ttt-v3", "--label", "version=v3", "--max-rooms", "4", "--replace", v2)
            assert replaced.exit_code == 1, replaced.output
            v3 = re.search(r"^server\s+(\S+)$", replaced.output, re.M)
            assert v3, replaced.output
            assert f"stay on {v2}" in replaced.output, replaced.output
            assert f"{v1}: onMigrate failed: this version cannot read a board of v2" in replaced.output
            await game.reconnected(counts, 2, api, v2)
            assert (x.player_id, o.player_id) == ids
            _, restored = await o.receive("restored", timeout=10)
            assert restored["from"] == "migrate-failed"
            state = await game.state_after(o, 3)
            assert state["migratedFrom"] == "v1"  # v2's state, as it was
            final = await game.finish(x, o)  # X: 2, 5, 8
            assert final["status"] == "won"
            assert final["winnerId"] == x.player_id

            server = (await api.get(f"/api/v1/servers/{v2}")).json()
            assert server["status"] == "running"
            (refusal,) = events(server, "migrated")
            assert refusal["detail"]["rooms"] == []
            assert refusal["detail"]["from_version"] == "v2"
            assert v1 in refusal["detail"]["failed"]
            (stay,) = events(server, "migrate_failed")
            assert "onMigrate failed" in stay["detail"]["rooms"][v1]
            print(f"stop v1 -> both players back on v2: {back_s:.2f} s")
            await asyncio.gather(*(api.delete(f"/api/v1/servers/{sid}") for sid in (v1, v2, v3.group(1))))
