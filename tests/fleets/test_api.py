"""Games, fleets and allocations through the API, no containers: ownership (another user's is a
404, admins see all), validation, a rejected upload, no-ready-server at once, and 200 concurrent
allocations through the API against 50 ready servers registered as an agent would."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from api.routes.allocations import CALLER_TTL
from core.db.models import Allocation, Fleet, Game, GameServer, GameVersion, Node, User, new_id
from core.fleets import fleet_workflow_id
from core.settings import Settings
from matchmaker.allocator import HttpRegistry
from tests.conftest import GAMES
from tests.fleets.helpers import create_fleet, upload
from tests.harness import Harness, platform
from tests.node_tokens import issue_node_token
from tests.problems import assert_problem

pytestmark = [pytest.mark.temporal]
PROBLEM = "application/problem+json"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # 200 allocations from one key in one burst: above the default per-key burst. The fake rooms
    # of `_fleet_without_workflow` never heartbeat again: on a busy machine the burst alone can
    # outlast the default room TTL (6 s), and an expired room is not ready.
    return settings.model_copy(update={"api_burst_per_key": 1000, "api_burst_per_ip": 1000,
                                       "fleet_sync_seconds": 0.5, "room_ttl_seconds": 120.0})


@pytest.fixture
async def h(settings: Settings, temporal_env: Any) -> Any:
    async with platform(settings, temporal_env.client, agent=False) as harness:
        yield harness


async def test_versions_are_numbered_analyzed_and_refused_when_blocked(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        v1 = await upload(api, GAMES / "chat.js", "chat")
        v2 = await upload(api, GAMES / "tictactoe.js", "chat")
        assert (v1["version"], v2["version"]) == (1, 2)
        assert v1["max_players"] == 32, "the module's maxPlayers"
        assert v2["max_players"] == 2, "the module's maxPlayers"
        assert v1["image"].startswith("gsf-game:")
        assert v1["analysis"]["ok"] is True
        bad = await api.post("/api/v1/games", data={"name": "chat"},
                             files={"file": ("bad.js", b"module.exports = {\n  onJoin( {\n};\n", "text/javascript")})
        body = assert_problem(bad, 422, "code-rejected")
        assert body["findings"][0]["rule"] == "syntax-error"
        assert body["findings"][0]["line"] >= 2
        allow = {"name": "chat", "allow_rules": "no-eval"}
        file = {"file": ("chat.js", (GAMES / "chat.js").read_bytes(), "text/javascript")}
        assert_problem(await api.post("/api/v1/games", data=allow, files=file), 403, "forbidden")
        admin = await h.user_key("root@example.com", admin=True)
        async with h.api(admin) as root:
            assert_problem(await root.post("/api/v1/games", data={"name": "chat", "allow_rules": "no-such-rule"},
                                           files=file), 422, "invalid-allow-list")
        games = (await api.get("/api/v1/games")).json()
        assert [(g["name"], g["latest_version"], g["versions"]) for g in games["items"]] == [("chat", 2, 2)]
        versions = (await api.get("/api/v1/games/chat/versions")).json()["items"]
        assert [v["version"] for v in versions] == [2, 1]
        one = (await api.get("/api/v1/games/chat/versions/1")).json()
        assert one["source_sha256"] == v1["source_sha256"]
        assert one["analysis"]["sha256"] == v1["source_sha256"]
        assert_problem(await api.get("/api/v1/games/chat/versions/9"), 404, "not-found")
        # One server from a stored version: the deployment as before, without an upload.
        created = await api.post("/api/v1/games/chat/versions/1/servers", json={"name": "one-off"})
        assert created.status_code == 202, created.text
        server = (await api.get(f"/api/v1/servers/{created.json()['id']}")).json()
        assert (server["game"], server["source_sha256"], server["max_players"]) == ("chat", v1["source_sha256"], 32)


async def test_fleet_requests_are_validated(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        await upload(api, GAMES / "chat.js", "chat")
        for body in ({"name": "f", "game": "chat"},  # neither replicas nor buffer
                     {"name": "f", "game": "chat", "replicas": 1, "buffer": 1},
                     {"name": "f", "game": "chat", "buffer": 1},  # a buffer needs max_size
                     {"name": "f", "game": "chat", "buffer": 3, "min_size": 5, "max_size": 4},
                     {"name": "f", "game": "chat", "replicas": 1, "labels": {"gsf.fleet": "x"}},
                     {"name": "f", "game": "chat", "replicas": 1, "max_surge": "0", "max_unavailable": "0%"},
                     {"name": "f", "game": "chat", "replicas": 1, "max_surge": "lots"}):
            assert_problem(await api.post("/api/v1/fleets", json=body), 422, "validation-error")
        assert_problem(await api.post("/api/v1/fleets", json={"name": "f", "game": "chat", "replicas": 10_000}),
                       400, "bad-request")
        assert_problem(await api.post("/api/v1/fleets", json={"name": "f", "game": "nope", "replicas": 1}),
                       404, "not-found")
        assert_problem(await api.post("/api/v1/fleets", json={"name": "f", "game": "chat", "replicas": 1,
                                                              "plan": "huge"}), 422, "invalid-limits")
        await create_fleet(api, name="f", game="chat", replicas=0)
        assert_problem(await api.post("/api/v1/fleets", json={"name": "f", "game": "chat", "replicas": 0}),
                       409, "conflict")
        assert_problem(await api.patch("/api/v1/fleets/f", json={"version": 1}), 409, "conflict")  # runs it already
        assert_problem(await api.patch("/api/v1/fleets/f", json={"buffer": 2}), 400, "bad-request")
        assert_problem(await api.post("/api/v1/allocations", json={"fleet": "f", "game": "chat"}),
                       422, "validation-error")


async def test_no_ready_server_is_answered_at_once(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        await upload(api, GAMES / "chat.js", "chat")
        await create_fleet(api, name="empty", game="chat", replicas=0)
        started = time.perf_counter()
        resp = await api.post("/api/v1/allocations", json={"fleet": "empty"})
        assert time.perf_counter() - started < 1.0
        body = assert_problem(resp, 409, "no-ready-server")
        assert "empty" in body["detail"]
        waited = time.perf_counter()
        resp = await api.post("/api/v1/allocations", json={"game": "chat", "wait_seconds": 0.6})
        assert_problem(resp, 409, "no-ready-server")
        assert 0.5 < time.perf_counter() - waited < 3.0
        assert_problem(await api.post("/api/v1/allocations", json={"game": "other"}), 404, "not-found")


async def test_another_users_games_fleets_and_allocations_are_404s(h: Harness) -> None:
    alice, bob = await h.user_key("alice@example.com"), await h.user_key("bob@example.com")
    admin = await h.user_key("root@example.com", admin=True)
    async with h.api(alice) as a, h.api(bob) as b, h.api(admin) as root:
        await upload(a, GAMES / "chat.js", "chat")
        fleet = await create_fleet(a, name="mine", game="chat", replicas=0)
        fid = fleet["id"]
        allocation_id = await _fake_allocation(h, fid)
        for method, path, body in [
                ("GET", "/api/v1/games/chat/versions", None), ("GET", "/api/v1/games/chat/versions/1", None),
                ("POST", "/api/v1/games/chat/versions/1/servers", {"name": "x"}),
                ("GET", f"/api/v1/fleets/{fid}", None), ("GET", "/api/v1/fleets/mine", None),
                ("PATCH", f"/api/v1/fleets/{fid}", {"replicas": 2}), ("DELETE", f"/api/v1/fleets/{fid}", None),
                ("POST", "/api/v1/allocations", {"fleet": fid}), ("POST", "/api/v1/allocations", {"game": "chat"}),
                ("GET", f"/api/v1/allocations/{allocation_id}", None),
                ("DELETE", f"/api/v1/allocations/{allocation_id}", None)]:
            assert_problem(await b.request(method, path, json=body), 404, "not-found")
        assert (await b.get("/api/v1/games")).json()["items"] == []
        assert (await b.get("/api/v1/fleets")).json()["items"] == []
        assert (await b.get("/api/v1/allocations")).json()["items"] == []
        # Bob's own game of the same name is his, and does not shadow Alice's for her.
        await upload(b, GAMES / "tictactoe.js", "chat")
        assert (await a.get("/api/v1/games/chat/versions/1")).json()["max_players"] == 32
        # An admin sees everything.
        assert (await root.get(f"/api/v1/fleets/{fid}")).status_code == 200
        assert {f["id"] for f in (await root.get("/api/v1/fleets")).json()["items"]} == {fid}
        assert (await root.get(f"/api/v1/allocations/{allocation_id}")).json()["owner_id"] == fleet["owner_id"]
        assert len((await root.get("/api/v1/games")).json()["items"]) == 2
        deleted = await a.delete(f"/api/v1/fleets/{fid}")
        assert deleted.status_code == 202
        assert deleted.json()["status"] == "deleting"
        await asyncio.wait_for(h.client.get_workflow_handle(fleet_workflow_id(fid)).result(), 30)
        for _ in range(50):
            if (await a.get(f"/api/v1/fleets/{fid}")).json()["status"] == "deleted":
                break
            await asyncio.sleep(0.1)
        assert (await a.get(f"/api/v1/fleets/{fid}")).json()["status"] == "deleted"
        assert (await a.get("/api/v1/fleets")).json()["items"] == []


async def _fake_allocation(h: Harness, fleet_id: str) -> str:
    """An allocation row of the fleet's owner (its server is not needed for ownership checks)."""
    async with h.sessions() as session:
        fleet = await session.get(Fleet, fleet_id)
        assert fleet is not None
        row = Allocation(id=new_id(), owner_id=fleet.owner_id, fleet_id=fleet_id, server_id="s-1", player_ids=[],
                         ws_url="ws://127.0.0.1:1/ws")
        session.add(row)
        await session.commit()
        return row.id


async def _fleet_without_workflow(h: Harness, email: str, count: int) -> tuple[str, list[str]]:
    """A fleet record whose servers are `count` fake rooms listed in the matchmaker, as an agent
    lists them; no workflow, so nothing prunes or replaces them."""
    async with h.sessions() as session:
        user = await session.scalar(select(User).where(User.email == email))
        assert user is not None
        game = Game(id=new_id(), owner_id=user.id, name="chess")
        version = GameVersion(id=new_id(), game_id=game.id, version=1, source_sha256="0" * 64)
        fleet = Fleet(id=new_id(), owner_id=user.id, name="arena", game_id=game.id, game="chess",
                      version_id=version.id, version=1, replicas=count, workflow_id="fleet-none", on_empty="ready")
        session.add_all([game, version])
        await session.flush()
        session.add(fleet)
        await session.commit()
    ids = [f"fake-{i:02d}" for i in range(count)]
    async with h.sessions() as session:  # placed on node-fake, at its address: what the matchmaker admits
        session.add(Node(id="node-fake", network={"public_host": "127.0.0.1"}))
        session.add_all(GameServer(id=sid, owner_id=fleet.owner_id, name=sid, game="chess", source_sha256="0" * 64,
                                   max_players=2, workflow_id=f"w-{sid}", status="running", node_id="node-fake")
                        for sid in ids)
        await session.commit()
    token = await issue_node_token(h.sessions, "node-fake")
    async with httpx.AsyncClient(base_url=h.settings.matchmaker_url) as mm:
        await HttpRegistry(mm, h.settings.secret_key).add(fleet.id, ids)
        node = {"Authorization": f"Bearer {token}"}
        for sid in ids:
            reg = await mm.post("/servers", headers=node, json={
                "server_id": sid, "name": sid, "game": "chess", "owner_id": fleet.owner_id, "node_id": "node-fake",
                "ws_url": f"ws://127.0.0.1:9/{sid}", "max_players": 2})
            assert reg.status_code == 201, reg.text
            beat = await mm.put(f"/servers/{sid}/heartbeat", headers=node, json={"players": 0, "ready": True})
            assert beat.status_code == 200, beat.text
    return fleet.id, ids


async def test_200_concurrent_allocations_through_the_api_get_50_distinct_servers(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    fleet_id, servers = await _fleet_without_workflow(h, "dev@example.com", 50)
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(base_url=h.settings.public_api_url, timeout=60, limits=limits,
                                 headers={"Authorization": f"Bearer {key}"}) as api:
        responses = await asyncio.gather(*(api.post("/api/v1/allocations", json={"fleet": "arena"})
                                           for _ in range(200)))
        assert Counter(r.status_code for r in responses) == {201: 50, 409: 150}, Counter(
            (r.status_code, r.text[:80]) for r in responses)
        assert {r.json()["type"].rsplit("/", 1)[1] for r in responses if r.status_code == 409} == {"no-ready-server"}
        won = [r.json() for r in responses if r.status_code == 201]
        assert sorted(a["server_id"] for a in won) == servers, "each server exactly once"
        for a in won:
            assert a["fleet_id"] == fleet_id
            assert a["seats"][0]["ws_url"].startswith(f"ws://127.0.0.1:9/{a['server_id']}?token=")
        listed = (await api.get("/api/v1/allocations", params={"fleet": "arena", "limit": 500})).json()
        assert listed["count"] == 50
        # Released (this fleet reuses servers): the server can be allocated again, and only it.
        first = won[0]
        assert (await api.delete(f"/api/v1/allocations/{first['id']}")).json()["status"] == "released"
        again = await api.post("/api/v1/allocations", json={"fleet": fleet_id})
        assert again.status_code == 201, again.text
        assert again.json()["server_id"] == first["server_id"], again.text
        assert_problem(await api.post("/api/v1/allocations", json={"fleet": fleet_id}), 409, "no-ready-server")


async def test_allocations_are_audited_and_a_revoked_key_stops_allocating(h: Harness) -> None:
    """The allocation route writes its audit entries with its records (not through the generic
    audit), and remembers a checked key for CALLER_TTL: both must keep what they replace."""
    admin = await h.user_key("root@example.com", admin=True)
    key = await h.user_key("dev@example.com")
    await _fleet_without_workflow(h, "dev@example.com", 5)
    async with h.sessions() as session:
        user_id = await session.scalar(select(User.id).where(User.email == "dev@example.com"))
    async with h.api(key) as api, h.api(admin) as root:
        made = [await api.post("/api/v1/allocations", json={"fleet": "arena"}) for _ in range(3)]
        assert [r.status_code for r in made] == [201, 201, 201]
        assert_problem(await api.post("/api/v1/allocations", json={"fleet": "nowhere"}), 404, "not-found")

        async def audited() -> list[dict[str, Any]]:
            entries = (await root.get("/api/v1/audit", params={"user_id": user_id})).json()
            return [e for e in entries if e["method"] == "POST" and e["path"] == "/api/v1/allocations"]

        # The allocations' entries are there as soon as they are answered ...
        posts = await audited()
        assert {e["request_id"] for e in posts if e["status"] == 201} == {r.headers["x-request-id"] for r in made}
        # ... a refused call's once EdgeMiddleware has written it, after its answer went out.
        for _ in range(50):
            if sorted(e["status"] for e in posts) == [201, 201, 201, 404]:
                break
            await asyncio.sleep(0.1)
            posts = await audited()
        assert sorted(e["status"] for e in posts) == [201, 201, 201, 404]

        second = (await api.post("/api/v1/keys", json={"name": "revoked soon"})).json()
        async with h.api(second["key"]) as doomed:
            assert (await doomed.post("/api/v1/allocations", json={"fleet": "arena"})).status_code == 201
            assert (await api.delete(f"/api/v1/keys/{second['id']}")).status_code == 204
            assert_problem(await doomed.get("/api/v1/keys"), 401, "unauthorized")  # every other route: at once
            revoked = time.monotonic()
            while (resp := await doomed.post("/api/v1/allocations", json={"fleet": "arena"})).status_code != 401:
                assert resp.status_code in (201, 409), resp.text
                assert time.monotonic() - revoked < CALLER_TTL + 1.0, "a revoked key kept allocating"
                await asyncio.sleep(0.1)
            assert_problem(resp, 401, "unauthorized")


async def gsf(h: Harness, key: str, *args: str) -> tuple[int, str]:
    """The `gsf` command against this platform (a subprocess: the API runs in this event loop)."""
    env = {**os.environ, "GSF_API_URL": h.settings.public_api_url, "GSF_API_KEY": key,
           "GSF_DATA_DIR": str(h.settings.data_dir), "COLUMNS": "200"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli.main", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_the_cli_creates_scales_updates_allocates_and_deletes(h: Harness, tmp_path: Path) -> None:
    key = await h.user_key("dev@example.com")
    game = tmp_path / "chat.js"
    game.write_bytes((GAMES / "chat.js").read_bytes())
    code, out = await gsf(h, key, "fleet", "create", "demo", "--game", "chat", "--file", str(game),
                          "--replicas", "0", "--label", "region=eu")
    assert code == 0, out
    assert "game chat version 1" in out, out
    assert "fleet demo" in out, out
    code, out = await gsf(h, key, "fleets", "--json")
    (fleet,) = json.loads(out)["items"]
    assert (fleet["name"], fleet["replicas"], fleet["labels"]) == ("demo", 0, {"region": "eu"})
    code, out = await gsf(h, key, "fleet", "scale", "demo", "--buffer", "0", "--max", "2")
    assert code == 0, out
    assert "buffer 0 (0-2)" in out, out
    code, out = await gsf(h, key, "allocate", "--fleet", "demo", "--json")
    assert code == 1, out
    assert json.loads(out)["type"].endswith("/no-ready-server"), out
    game.write_bytes(game.read_bytes() + b"\n// two\n")
    code, out = await gsf(h, key, "fleet", "update", "demo", "--file", str(game), "--max-surge", "1")
    assert code == 0, out
    assert "version 2" in out, out
    assert "v2" in out, out
    code, out = await gsf(h, key, "fleets")
    assert "demo" in out, out
    assert "buffer 0 (0-2)" in out, out
    code, out = await gsf(h, key, "fleet", "delete", "demo")
    assert code == 0, out
    assert "deleting" in out, out
    code, out = await gsf(h, key, "fleet", "delete", "nope")
    assert code == 1
    assert "404" in out
