"""Every endpoint and every error of the matchmaker, against the in-process and the Redis store."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from core.security import seat_secret, verify_seat_token
from matchmaker.app import create_app
from matchmaker.models import RoomQuery
from matchmaker.store import MemoryStore, RedisStore
from tests.problems import assert_problem

from .conftest import (
    FORGED,
    MM,
    SECRET,
    ApiNodes,
    FakeClock,
    MakeMM,
    headers,
    make_settings,
    unique,
)

PROBLEM = "https://gsf.dev/problems/"


# --- registration and auth ---------------------------------------------------------------------


async def test_register_returns_entry_with_generation_and_is_not_listed_before_ready(mm: MM) -> None:
    room = await mm.register(labels={"region": "eu"})
    assert isinstance(room["generation"], int)
    assert room["generation"] >= 1
    assert room["ready"] is False
    assert room["players"] == 0
    assert room["free_seats"] == 4
    assert room["labels"] == {"region": "eu"}
    assert await mm.listing() == []
    assert_problem(await mm.client.get(f"/servers/{room['server_id']}"), 404, "room-not-found")

    # A heartbeat that is not ready keeps it out of the list.
    resp = await mm.beat(room["server_id"], 0, ready=False)
    assert resp.status_code == 200
    assert resp.json()["listed"] is False
    assert await mm.listing() == []

    resp = await mm.beat(room["server_id"], 1, ready=True, metadata={"mode": "ranked"},
                         state={"board": [1, 2]})
    assert resp.status_code == 200
    assert resp.json() == {"server_id": room["server_id"], "generation": room["generation"],
                           "listed": True, "reserved": 0, "free_seats": 3}
    [item] = await mm.listing()
    assert item["server_id"] == room["server_id"]
    assert item["players"] == 1
    assert item["metadata"] == {"mode": "ranked"}
    assert "state" not in item
    detail = (await mm.client.get(f"/servers/{room['server_id']}")).json()
    assert detail["state"] == {"board": [1, 2]}
    assert detail["heartbeat_at"] == mm.clock.now


@pytest.mark.parametrize("auth", [None, "Bearer nonsense", "Bearer node-a.0000", "Basic abc"])
async def test_node_endpoints_need_a_valid_node_token(mm: MM, auth: str | None) -> None:
    hdrs = {"Authorization": auth} if auth else {}
    body = {"server_id": "s1", "name": "n", "game": "g", "owner_id": "u", "node_id": "node-a",
            "ws_url": "ws://h/ws", "max_players": 2}
    assert_problem(await mm.client.post("/servers", json=body, headers=hdrs), 401, "unauthorized")
    assert_problem(await mm.client.put("/servers/s1/heartbeat", json={"players": 0},
                                       headers=hdrs), 401, "unauthorized")
    assert_problem(await mm.client.delete("/servers/s1", headers=hdrs), 401, "unauthorized")
    assert_problem(await mm.client.post("/heartbeats", json={"heartbeats": []}, headers=hdrs),
                   401, "unauthorized")


async def test_a_node_may_only_touch_its_own_servers(mm: MM) -> None:
    body = {"server_id": "s-other", "name": "n", "game": "g", "owner_id": "u",
            "node_id": "node-b", "ws_url": "ws://h/ws", "max_players": 2}
    assert_problem(await mm.client.post("/servers", json=body, headers=headers("node-a")),
                   403, "forbidden")
    sid = await mm.ready_room(node="node-b")
    assert_problem(await mm.beat(sid, 1, node="node-a"), 403, "forbidden")
    assert_problem(await mm.client.delete(f"/servers/{sid}", headers=headers("node-a")),
                   403, "forbidden")
    assert [r["server_id"] for r in await mm.listing()] == [sid]
    # A token the API never issued is not a node token here.
    other = {"Authorization": f"Bearer {FORGED.replace('node-a', 'node-b')}"}
    assert_problem(await mm.client.delete(f"/servers/{sid}", headers=other), 401, "unauthorized")


@pytest.mark.parametrize("body", [
    {"server_id": "s1", "name": "n", "game": "g", "owner_id": "u", "node_id": "node-a",
     "ws_url": "ws://h/ws", "max_players": 2, "surprise": 1},
    {"server_id": "s1", "name": "n", "game": "g", "owner_id": "u", "node_id": "node-a",
     "ws_url": "http://h/ws", "max_players": 2},
    {"server_id": "s1", "name": "n", "game": "g", "owner_id": "u", "node_id": "node-a",
     "ws_url": "ws://h/ws", "max_players": 0},
    {"server_id": "bad id!", "name": "n", "game": "g", "owner_id": "u", "node_id": "node-a",
     "ws_url": "ws://h/ws", "max_players": 2},
    {"server_id": "s1", "name": "n", "game": "g", "owner_id": "u", "node_id": "node-a",
     "ws_url": "ws://h/ws", "max_players": 2, "labels": {"bad key": "x"}},
])
async def test_invalid_registrations_are_validation_problems(mm: MM, body: dict[str, Any]) -> None:
    problem = assert_problem(await mm.client.post("/servers", json=body, headers=headers()),
                             422, "validation-error")
    assert problem["errors"]
    assert all("loc" in e and "msg" in e for e in problem["errors"])


async def test_invalid_heartbeats_are_validation_problems(mm: MM) -> None:
    sid = await mm.ready_room()
    for body in ({"players": -1}, {"players": 1, "extra": True}, {"max_players": 4},
                 {"players": 1, "metadata": {"blob": "x" * 40_000}}, {"players": 1, "generation": 0},
                 {"players": 1, "state": {"board": "x" * 140_000}}):
        resp = await mm.client.put(f"/servers/{sid}/heartbeat", json=body, headers=headers())
        assert_problem(resp, 422, "validation-error")


async def test_reregistering_bumps_the_generation_and_hides_the_room(mm: MM) -> None:
    sid = await mm.ready_room()
    first = (await mm.client.get(f"/servers/{sid}")).json()["generation"]
    again = await mm.register(sid)
    assert again["generation"] > first
    assert again["ready"] is False
    assert await mm.listing() == []

    stale = assert_problem(await mm.beat(sid, 1, generation=first), 409, "stale-heartbeat")
    assert stale["current_generation"] == again["generation"]
    # A generation this registry never handed out: the agent must register again.
    assert_problem(await mm.beat(sid, 1, generation=again["generation"] + 1000), 404,
                   "room-not-found")
    assert (await mm.beat(sid, 1, generation=again["generation"])).status_code == 200
    assert [r["generation"] for r in await mm.listing()] == [again["generation"]]


async def test_heartbeat_for_unknown_room_is_room_not_found(mm: MM) -> None:
    assert_problem(await mm.beat("never-registered", 0), 404, "room-not-found")


async def test_max_players_zero_in_a_heartbeat_keeps_the_registered_value(mm: MM) -> None:
    sid = await mm.ready_room(max_players=6)
    await mm.beat(sid, 2, max_players=0)
    [room] = await mm.listing()
    assert room["max_players"] == 6
    assert room["free_seats"] == 4
    await mm.beat(sid, 2, max_players=3)
    [room] = await mm.listing()
    assert room["max_players"] == 3
    assert room["free_seats"] == 1


# --- deregistration ----------------------------------------------------------------------------


async def test_deregister_is_idempotent_and_a_late_heartbeat_does_not_bring_it_back(mm: MM) -> None:
    sid = await mm.ready_room()
    assert (await mm.client.delete(f"/servers/{sid}", headers=headers())).status_code == 204
    assert (await mm.client.delete(f"/servers/{sid}", headers=headers())).status_code == 204
    assert await mm.listing() == []
    assert_problem(await mm.client.get(f"/servers/{sid}"), 404, "room-not-found")
    assert_problem(await mm.beat(sid, 3, ready=True), 404, "room-not-found")
    assert await mm.listing() == []
    assert_problem(await mm.client.post("/join", json={"server_id": sid}), 404, "room-not-found")


# --- the room list -------------------------------------------------------------------------------


async def test_list_filters(mm: MM) -> None:
    eu_ranked = await mm.ready_room(labels={"region": "eu"}, metadata={"mode": "ranked", "lvl": 3})
    eu_casual = await mm.ready_room(labels={"region": "eu"}, metadata={"mode": "casual"},
                                    players=4)
    us_ranked = await mm.ready_room(labels={"region": "us"}, metadata={"mode": "ranked"})
    go = await mm.ready_room(game="go", labels={"region": "eu"})
    locked = await mm.ready_room(labels={"region": "eu"}, locked=True)

    def ids(items: list[dict[str, Any]]) -> set[str]:
        return {i["server_id"] for i in items}

    assert ids(await mm.listing()) == {eu_ranked, eu_casual, us_ranked, go, locked}
    assert ids(await mm.listing(game="go")) == {go}
    assert ids(await mm.listing(game="chess", **{"label.region": "eu"})) == {
        eu_ranked, eu_casual, locked}
    assert ids(await mm.listing(**{"metadata.mode": "ranked"})) == {eu_ranked, us_ranked}
    assert ids(await mm.listing(**{"metadata.lvl": "3"})) == {eu_ranked}
    assert ids(await mm.listing(**{"label.region": "eu", "metadata.mode": "ranked"})) == {eu_ranked}
    # free=true: joinable (not full, not locked); free=false: the rest.
    assert ids(await mm.listing(free="true")) == {eu_ranked, us_ranked, go}
    assert ids(await mm.listing(free="false")) == {eu_casual, locked}
    assert ids(await mm.listing(game="nope")) == set()
    assert ids(await mm.listing(**{"label.missing": "x"})) == set()


async def test_metadata_changes_are_reflected_in_filters(mm: MM) -> None:
    sid = await mm.ready_room(metadata={"mode": "ranked", "map": "a"})
    await mm.beat(sid, 1, metadata={"mode": "casual"})
    assert await mm.listing(**{"metadata.mode": "ranked"}) == []
    assert await mm.listing(**{"metadata.map": "a"}) == []
    [room] = await mm.listing(**{"metadata.mode": "casual"})
    assert room["metadata"] == {"mode": "casual"}


@pytest.mark.parametrize("params", [
    {"sort": "name"}, {"limit": "0"}, {"limit": "201"}, {"cursor": "garbage!"},
    {"labels.region": "eu"}, {"unknown": "1"}, {"free": "maybe"}, {"label.": "x"},
])
async def test_bad_list_queries_are_validation_problems(mm: MM, params: dict[str, str]) -> None:
    assert_problem(await mm.client.get("/servers", params=params), 422, "validation-error")


@pytest.mark.parametrize("sort", ["players", "-players", "created", "-created"])
async def test_sorting_and_cursor_pagination_visit_every_room_once(mm: MM, sort: str) -> None:
    expected: list[tuple[int, float, str]] = []
    for i in range(23):
        sid = await mm.ready_room(f"room-{i:02d}", players=i % 5, max_players=8)
        expected.append((i % 5, mm.clock.now, sid))
        mm.clock.advance(0.01 * (i % 3))  # some rooms share a creation time
    desc = sort.startswith("-")
    if sort.endswith("players"):
        expected.sort(key=lambda r: ((-r[0] if desc else r[0]), r[2]))
    else:
        expected.sort(key=lambda r: ((-r[1] if desc else r[1]), r[2]))

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"sort": sort, "limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = (await mm.client.get("/servers", params=params)).json()
        assert len(page["items"]) <= 5
        seen += [i["server_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [r[2] for r in expected]


async def test_a_cursor_is_bound_to_its_sort(mm: MM) -> None:
    for _ in range(3):
        await mm.ready_room()
    page = (await mm.client.get("/servers", params={"sort": "players", "limit": 1})).json()
    assert page["next_cursor"]
    resp = await mm.client.get("/servers", params={"sort": "created", "cursor": page["next_cursor"]})
    assert_problem(resp, 422, "validation-error")


async def test_get_server_and_unknown_routes(mm: MM) -> None:
    assert_problem(await mm.client.get("/servers/nope"), 404, "room-not-found")
    assert_problem(await mm.client.get("/no/such/route"), 404, "not-found")
    assert_problem(await mm.client.patch("/servers"), 405, "method-not-allowed")


# --- joining -------------------------------------------------------------------------------------


async def test_join_by_id_returns_a_signed_seat(mm: MM, api_nodes: ApiNodes) -> None:
    api_nodes.hosts["node-a"] = "games.example"  # the node's address, as its admin set it
    sid = await mm.ready_room(players=1, ws_url="wss://games.example:7001/ws")
    resp = await mm.client.post("/join", json={"server_id": sid, "player_name": "ada"})
    assert resp.status_code == 200, resp.text
    seat = resp.json()
    assert set(seat) == {"room_id", "server_id", "ws_url", "token", "player_id", "expires_at"}
    assert seat["server_id"] == seat["room_id"] == sid  # the server's first room
    assert seat["expires_at"] == pytest.approx(mm.clock.now + 15)
    url = urlsplit(seat["ws_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == "wss://games.example:7001/ws"
    assert parse_qs(url.query)["token"] == [seat["token"]]
    claims = verify_seat_token(seat_secret(SECRET, sid), seat["token"], sid, now=mm.clock.now)
    assert claims is not None
    assert claims["pid"] == seat["player_id"]
    # Signed for this server only, and it expires with the reservation.
    assert verify_seat_token(seat_secret(SECRET, "other"), seat["token"], sid,
                             now=mm.clock.now) is None
    assert verify_seat_token(seat_secret(SECRET, sid), seat["token"], sid,
                             now=mm.clock.now + 15.01) is None
    [room] = await mm.listing()
    assert (room["players"], room["reserved"], room["free_seats"]) == (1, 1, 2)


async def test_join_appends_the_token_to_an_existing_query(mm: MM) -> None:
    sid = await mm.ready_room(ws_url="ws://127.0.0.1:9000/ws?room=a")
    seat = (await mm.client.post("/join", json={"server_id": sid})).json()
    assert seat["ws_url"].startswith("ws://127.0.0.1:9000/ws?room=a&token=")
    assert parse_qs(urlsplit(seat["ws_url"]).query) == {"room": ["a"], "token": [seat["token"]]}


async def test_join_carries_the_player_name_to_the_runtime(mm: MM) -> None:
    """The runtime names a player from the address's `name`: a join's player_name goes there."""
    sid = await mm.ready_room()
    seat = (await mm.client.post("/join", json={"server_id": sid, "player_name": "Ada & Bob?"})).json()
    assert parse_qs(urlsplit(seat["ws_url"]).query) == {"token": [seat["token"]], "name": ["Ada & Bob?"]}
    quick = (await mm.client.post("/join", json={"game": "chess", "player_name": "Cy"})).json()
    assert parse_qs(urlsplit(quick["ws_url"]).query)["name"] == ["Cy"]


async def test_join_errors(mm: MM) -> None:
    full = await mm.ready_room(players=2, max_players=2)
    locked = await mm.ready_room(locked=True)
    not_ready = (await mm.register())["server_id"]
    assert_problem(await mm.client.post("/join", json={"server_id": full}), 409, "room-full")
    assert_problem(await mm.client.post("/join", json={"server_id": locked}), 409, "room-locked")
    assert_problem(await mm.client.post("/join", json={"server_id": not_ready}), 404,
                   "room-not-found")
    assert_problem(await mm.client.post("/join", json={"server_id": "ghost"}), 404,
                   "room-not-found")
    assert_problem(await mm.client.post("/join", json={"game": "chess"}), 409, "no-room-available")
    assert_problem(await mm.client.post("/join", json={"game": "nothing-here"}), 409,
                   "no-room-available")
    for body in ({}, {"server_id": "x", "game": "chess"}, {"game": "chess", "filters": {"x": "1"}},
                 {"game": ""}, {"server_id": "x", "extra": 1}):
        assert_problem(await mm.client.post("/join", json=body), 422, "validation-error")


async def test_seats_run_out_exactly_and_reservations_expire(mm: MM) -> None:
    sid = await mm.ready_room(players=1, max_players=3)
    for _ in range(2):
        assert (await mm.client.post("/join", json={"server_id": sid})).status_code == 200
    assert_problem(await mm.client.post("/join", json={"server_id": sid}), 409, "room-full")
    [room] = await mm.listing()
    assert (room["players"], room["reserved"], room["free_seats"]) == (1, 2, 0)
    assert await mm.listing(free="true") == []

    # Nobody showed up: the reservations lapse after seat_reservation_seconds.
    for _ in range(3):  # heartbeats keep the room alive; 14.7 s pass
        mm.clock.advance(4.9)
        assert (await mm.beat(sid, 1)).status_code == 200
    assert_problem(await mm.client.post("/join", json={"server_id": sid}), 409, "room-full")
    mm.clock.advance(0.3)
    assert (await mm.beat(sid, 1)).status_code == 200
    [room] = await mm.listing()
    assert (room["players"], room["reserved"], room["free_seats"]) == (1, 0, 2)
    assert (await mm.client.post("/join", json={"server_id": sid})).status_code == 200


async def test_arriving_players_release_their_reservations(mm: MM) -> None:
    sid = await mm.ready_room(players=0, max_players=4)
    seats = []
    for _ in range(3):
        seats.append((await mm.client.post("/join", json={"server_id": sid})).json())
        mm.clock.advance(0.1)
    [room] = await mm.listing()
    assert (room["players"], room["reserved"], room["free_seats"]) == (0, 3, 1)

    # Count-based: two more players reported -> the two oldest reservations are released.
    ack = (await mm.beat(sid, 2)).json()
    assert (ack["reserved"], ack["free_seats"]) == (1, 1)
    # Exact: the runtime reports who is connected.
    ack = (await mm.beat(sid, 3, player_ids=["x", "y", seats[2]["player_id"]])).json()
    assert (ack["reserved"], ack["free_seats"]) == (0, 1)
    [room] = await mm.listing()
    assert (room["players"], room["reserved"], room["free_seats"]) == (3, 0, 1)


async def test_listing_never_shows_negative_or_overfull_seats(mm: MM) -> None:
    sid = await mm.ready_room(players=1, max_players=4)
    for _ in range(3):
        await mm.client.post("/join", json={"server_id": sid})
    # The game reports more players than it allows (and players left while seats were held).
    await mm.beat(sid, 6, player_ids=[])
    [room] = await mm.listing()
    assert room["players"] == 4
    assert room["reserved"] == 0
    assert room["free_seats"] == 0
    await mm.beat(sid, 3, max_players=2, player_ids=[])
    [room] = await mm.listing()
    assert (room["players"], room["reserved"], room["free_seats"]) == (2, 0, 0)
    assert_problem(await mm.client.post("/join", json={"server_id": sid}), 409, "room-full")


async def test_quick_join_packs_players_into_the_fullest_room(mm: MM) -> None:
    emptyish = await mm.ready_room("a-empty", players=0, max_players=4)
    fuller = await mm.ready_room("b-fuller", players=2, max_players=4)
    await mm.ready_room("c-full", players=4, max_players=4)
    await mm.ready_room("d-locked", players=3, max_players=4, locked=True)
    await mm.ready_room("e-other-game", players=3, max_players=4, game="go")
    await mm.ready_room("f-us", players=3, max_players=4, labels={"region": "us"})

    got = []
    for _ in range(2):
        resp = await mm.client.post("/join", json={"game": "chess",
                                                   "filters": {"label.region": "eu"}})
        got.append(resp.json()["server_id"]) if resp.status_code == 200 else got.append(resp.text)
    # Nothing matches label.region=eu: every chess room lacks it.
    assert all("no-room-available" in g for g in got)

    order = [(await mm.client.post("/join", json={"game": "chess"})).json()["server_id"]
             for _ in range(3)]
    # f-us (1 free) first, then b-fuller twice (2 free -> 1 free), never the full or locked room.
    assert order == ["f-us", fuller, fuller]
    order = [(await mm.client.post("/join", json={"game": "chess"})).json()["server_id"]
             for _ in range(4)]
    assert order == [emptyish] * 4
    assert_problem(await mm.client.post("/join", json={"game": "chess"}), 409, "no-room-available")


async def test_quick_join_filters_on_labels_and_metadata(mm: MM) -> None:
    await mm.ready_room("casual", labels={"region": "eu"}, metadata={"mode": "casual"}, players=3)
    ranked = await mm.ready_room("ranked", labels={"region": "eu"}, metadata={"mode": "ranked"})
    resp = await mm.client.post("/join", json={
        "game": "chess", "filters": {"label.region": "eu", "metadata.mode": "ranked"}})
    assert resp.status_code == 200
    assert resp.json()["server_id"] == ranked


# --- batch heartbeats, health, metrics, failures ------------------------------------------------


async def test_batch_heartbeats_answer_each_server(mm: MM) -> None:
    ok = (await mm.register())["server_id"]
    other = (await mm.register(node="node-b"))["server_id"]
    resp = await mm.client.post("/heartbeats", headers=headers(), json={"heartbeats": [
        {"server_id": ok, "players": 2, "ready": True},
        {"server_id": other, "players": 1},
        {"server_id": "ghost", "players": 1},
        {"server_id": ok, "players": 2, "generation": 0 + 1_000_000},
    ]})
    assert resp.status_code == 200
    results = resp.json()["results"]
    assert [(r["server_id"], r["status"], r["problem"]) for r in results] == [
        (ok, 200, None), (other, 403, "forbidden"), ("ghost", 404, "room-not-found"),
        (ok, 404, "room-not-found")]
    assert results[0]["listed"] is True
    [room] = await mm.listing()
    assert room["server_id"] == ok
    assert room["players"] == 2


async def test_health(mm: MM) -> None:
    resp = await mm.client.get("/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "store": mm.store.kind}


async def test_metrics(make_mm: MakeMM) -> None:
    mm = await make_mm(metrics_token="scrape-secret")  # without one, /metrics answers 404
    sid = await mm.ready_room(players=1)
    mm.clock.advance(2.0)
    await mm.beat(sid, 2)
    await mm.client.post("/join", json={"server_id": sid})
    await mm.client.post("/join", json={"server_id": "ghost"})
    await mm.beat("ghost", 1)
    gone = await mm.ready_room()
    mm.clock.advance(1.0)
    await mm.beat(sid, 2)
    mm.clock.advance(5.5)  # `gone` last beat 6.5 s ago: expired; `sid` 5.5 s ago: alive
    await mm.listing()
    await mm.client.get(f"/servers/{gone}")
    resp = await mm.client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = set(resp.text.splitlines())
    for expected in [
        'gsf_matchmaker_rooms{state="listed"} 1', 'gsf_matchmaker_rooms{state="registered"} 1',
        "gsf_matchmaker_players 2", 'gsf_matchmaker_seats{state="reserved"} 1',
        'gsf_matchmaker_seats{state="free"} 1',
        'gsf_matchmaker_joins_total{result="ok"} 1',
        'gsf_matchmaker_joins_total{result="room-not-found"} 1',
        'gsf_matchmaker_heartbeats_total{result="room-not-found"} 1',
        "gsf_matchmaker_expiries_total 1", "gsf_matchmaker_registrations_total 2",
        'gsf_matchmaker_heartbeat_lag_seconds_bucket{le="0.5"} 0',
        'gsf_matchmaker_heartbeat_lag_seconds_bucket{le="1"} 1',
        'gsf_matchmaker_heartbeat_lag_seconds_bucket{le="2"} 2',
        "gsf_matchmaker_heartbeat_lag_seconds_count 2",
        "gsf_matchmaker_heartbeat_lag_seconds_sum 3",
        "# TYPE gsf_matchmaker_expiries_total counter",
    ]:
        assert expected in lines, expected
    assert any(line.startswith('gsf_matchmaker_heartbeats_total{result="ok"} ') for line in lines)


class _BrokenStore(MemoryStore):
    async def list(self, query: RoomQuery, now: float) -> Any:
        raise RuntimeError("secret internal detail")


async def test_unexpected_errors_are_a_500_problem_without_internals(tmp_path: Any) -> None:
    app = create_app(make_settings(tmp_path), _BrokenStore(), FakeClock())
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://mm") as client:
        resp = await client.get("/servers")
    body = assert_problem(resp, 500, "internal-error")
    assert "secret internal detail" not in resp.text
    assert "RuntimeError" not in resp.text
    assert body["detail"]


async def test_an_unreachable_redis_is_a_503_problem(tmp_path: Any) -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    store = RedisStore.from_url("redis://127.0.0.1:1/0", prefix=unique("gsf:mm:dead") + ":")
    app = create_app(make_settings(tmp_path), store, FakeClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                 base_url="http://mm") as client:
        # No lifespan: it would refuse to start, which is right; routes still answer cleanly.
        assert_problem(await client.get("/health"), 503, "store-unavailable")
        assert_problem(await client.get("/servers"), 503, "store-unavailable")
        assert_problem(await client.post("/join", json={"game": "x"}), 503, "store-unavailable")
    await store.redis.aclose()


def test_openapi_documents_every_route() -> None:
    from core.settings import Settings
    from matchmaker.app import create_app

    spec = create_app(Settings(env="test")).openapi()
    ops = [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()]
    assert len(ops) >= 8
    assert [(p, m) for p, m, op in ops if not op.get("summary")] == []
