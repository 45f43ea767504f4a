"""The planner of a fleet in rooms (issue #22): its buffer is free room slots, servers are started
to keep them, a server with something going on is busy (never retired by a scale-down), and a
fleet of one-room servers plans exactly as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.fleets import (
    FleetBuild,
    FleetPhase,
    FleetServer,
    FleetSpec,
    ServerObservation,
    count,
    migration_homes,
    movable,
    phase_of,
    plan_fleet,
    rooms_per_server,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def spec(buffer: int = 15, max_rooms: int = 10, version_rooms: int = 0, **fields: object) -> FleetSpec:
    build = FleetBuild(version=1, version_id="v1", source_sha256="0" * 64, max_rooms=version_rooms)
    return FleetSpec(build=build, buffer=buffer, max_size=20, max_rooms=max_rooms, **fields)  # type: ignore[arg-type]


def server(i: int, phase: FleetPhase, rooms: int = 1, max_rooms: int = 10) -> FleetServer:
    return FleetServer(server_id=f"s{i:03d}", version=1, phase=phase, created_at=T0 + timedelta(seconds=i),
                       max_rooms=max_rooms, rooms=rooms)


def test_a_buffer_of_15_free_room_slots_in_servers_of_10_rooms_holds_2_servers() -> None:
    s = spec()
    first = plan_fleet(s, [], headroom=10, rooms=True)
    assert (first.start, first.desired) == (2, 2)
    ready = [server(0, FleetPhase.READY), server(1, FleetPhase.READY)]
    steady = plan_fleet(s, ready, headroom=10, rooms=True)
    assert (steady.start, steady.retire, steady.desired) == (0, [], 2)
    assert count(s, ready).free_slots == 18
    # 12 rooms allocated (9 in one server, 3 in the next): 6 slots left, one more server makes 15.
    busy = [server(0, FleetPhase.ALLOCATED, rooms=10), server(1, FleetPhase.ALLOCATED, rooms=4)]
    grown = plan_fleet(s, busy, headroom=10, rooms=True)
    assert (grown.start, grown.desired) == (1, 3)
    counts = count(s, [*busy, server(2, FleetPhase.READY)])
    assert (counts.free_slots, counts.rooms, counts.allocated, counts.desired) == (15, 15, 2, 3)


def test_released_rooms_let_the_fleet_shrink_but_never_stop_a_busy_server() -> None:
    s = spec()
    servers = [server(0, FleetPhase.ALLOCATED, rooms=2), server(1, FleetPhase.READY), server(2, FleetPhase.READY)]
    plan = plan_fleet(s, servers, headroom=10, rooms=True)  # 8 + 9 + 9 = 26 free: one idle server too many
    assert (plan.start, plan.retire, plan.desired) == (0, ["s002"], 2)
    deleting = plan_fleet(s, servers, headroom=10, deleting=True, rooms=True)
    assert sorted(deleting.retire) == ["s001", "s002"], "a busy server waits for its rooms"


def test_the_version_sets_the_rooms_unless_the_fleet_does_and_one_room_servers_count_servers() -> None:
    assert rooms_per_server(spec(max_rooms=0, version_rooms=6)) == 6
    assert rooms_per_server(spec(max_rooms=3, version_rooms=6)) == 3
    one = spec(buffer=2, max_rooms=0)
    assert rooms_per_server(one) == 1
    servers = [server(0, FleetPhase.ALLOCATED, max_rooms=1), server(1, FleetPhase.READY, max_rooms=1)]
    assert plan_fleet(one, servers, 10, rooms=True) == plan_fleet(one, servers, 10)
    assert plan_fleet(one, servers, 10).start == 1
    assert count(one, servers).free_slots == 0


def test_a_ready_server_hosting_rooms_is_busy_while_anything_goes_on_in_it() -> None:
    def obs(**fields: object) -> ServerObservation:
        base: dict[str, object] = {"server_id": "s", "status": "running", "state": "ready", "listed": True,
                                   "max_rooms": 10, "rooms": 1}
        return ServerObservation(**{**base, **fields})  # type: ignore[arg-type]

    assert phase_of(obs()) == FleetPhase.READY
    assert phase_of(obs(rooms=2)) == FleetPhase.ALLOCATED
    assert phase_of(obs(players=1)) == FleetPhase.ALLOCATED
    assert phase_of(obs(allocations=["a1"])) == FleetPhase.ALLOCATED
    assert phase_of(obs(max_rooms=1, players=1)) == FleetPhase.READY, "one room: as before rooms"
    assert phase_of(obs(state="retiring", rooms=3)) == FleetPhase.RETIRING


def test_a_migrating_rollout_starts_homes_for_the_old_versions_rooms_and_only_then() -> None:
    """Issue #25: a fixed-size fleet of one server, allocated with 3 rooms on version 1, rolls out
    version 2. Without `migrate_rooms` nothing starts (the match finishes on version 1); with it,
    one server of version 2 is started for the 3 rooms to move into, and none once they are moving
    or have a home with free slots."""
    v2 = spec(buffer=0, max_rooms=4).build.model_copy(update={"version": 2, "version_id": "v2"})
    fixed = spec(buffer=0, max_rooms=4, replicas=1).model_copy(update={"build": v2})
    old = server(0, FleetPhase.ALLOCATED, rooms=3, max_rooms=4)
    assert plan_fleet(fixed, [old], headroom=10, rooms=True).start == 0
    migrating = fixed.model_copy(update={"migrate_rooms": True})
    assert movable(migrating, [old]) == [old]
    assert migration_homes(migrating, [old]) == 1
    assert plan_fleet(migrating, [old], headroom=10, rooms=True).start == 1
    home = FleetServer(server_id="new", version=2, phase=FleetPhase.READY, created_at=T0, max_rooms=4, rooms=1)
    assert migration_homes(migrating, [old, home]) == 1, "the idle home is still wanted"
    assert (plan_fleet(migrating, [old, home], headroom=10, rooms=True).start,
            plan_fleet(migrating, [old, home], headroom=10, rooms=True).retire) == (0, [])
    busy_home = home.model_copy(update={"phase": FleetPhase.ALLOCATED})
    assert migration_homes(migrating, [old, busy_home]) == 0, "a busy home's 3 free slots take the 3 rooms"
    # Moving: the home is no longer wanted by the count, but it is kept until the move is done.
    moving = old.model_copy(update={"migration": "moving"})
    assert migration_homes(migrating, [moving]) == 0
    assert movable(migrating, [moving]) == [moving]
    assert plan_fleet(migrating, [moving, home], headroom=10, rooms=True).retire == ["new"]
    assert plan_fleet(migrating, [moving, home], headroom=10, rooms=True, keep=frozenset({"new"})).retire == []
    stays = old.model_copy(update={"migration": "stays"})
    assert movable(migrating, [stays]) == [], "rooms the new version refused are not tried again"
    one_room = migrating.model_copy(update={"max_rooms": 1})
    assert movable(one_room, [old]) == [], "servers of one room have no slot to move a room into"
