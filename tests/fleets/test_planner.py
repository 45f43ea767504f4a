"""The fleet planner as a state machine (hypothesis): it never retires an allocated server, keeps a
rollout within max_surge/max_unavailable, and always gets to the size and version it wants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.fleets import (
    FleetBuild,
    FleetPhase,
    FleetServer,
    FleetSpec,
    desired_size,
    plan_fleet,
    rollout_count,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def build(version: int) -> FleetBuild:
    return FleetBuild(version=version, version_id=f"v{version}", source_sha256="0" * 64)


def server(i: int, version: int, phase: FleetPhase) -> FleetServer:
    return FleetServer(server_id=f"s{i:03d}", version=version, phase=phase, created_at=T0 + timedelta(seconds=i))


specs = st.builds(
    lambda replicas, buffer, low, span, surge, unavailable: FleetSpec(
        build=build(1), replicas=replicas, buffer=buffer, min_size=low, max_size=low + span, max_surge=surge,
        max_unavailable=unavailable),
    st.none() | st.integers(0, 6), st.integers(0, 4), st.integers(0, 3), st.integers(0, 6),
    st.sampled_from(["0", "1", "2", "25%", "50%", "100%"]), st.sampled_from(["0", "1", "25%", "50%"]))


@pytest.mark.parametrize(("value", "total", "up", "expected"), [
    ("2", 10, True, 2), ("25%", 10, True, 3), ("25%", 10, False, 2), ("100%", 3, False, 3), ("0%", 5, True, 0)])
def test_rollout_counts(value: str, total: int, up: bool, expected: int) -> None:
    assert rollout_count(value, total, up) == expected


def test_a_malformed_rollout_count_is_refused() -> None:
    with pytest.raises(ValueError, match="neither a count nor a percentage"):
        rollout_count("-1", 4, True)


@settings(max_examples=300, deadline=None)
@given(spec=specs, allocations=st.lists(st.integers(0, 3), min_size=1, max_size=12),
       rollout_at=st.integers(0, 12), headroom=st.integers(0, 20))
def test_the_planner_keeps_its_promises(spec: FleetSpec, allocations: list[int], rollout_at: int,
                                        headroom: int) -> None:
    servers: dict[str, FleetServer] = {}
    counter = 0
    for step, allocate in enumerate([*allocations, *[0] * 20]):
        if step == rollout_at:
            spec = spec.model_copy(update={"build": build(2)})
        # The world moves: deploying servers come up, retiring ones are gone, some get allocated.
        for s in list(servers.values()):
            if s.phase == FleetPhase.RETIRING:
                del servers[s.server_id]
            elif s.phase == FleetPhase.DEPLOYING:
                s.phase = FleetPhase.READY
        for s in [s for s in servers.values() if s.phase == FleetPhase.READY][:allocate]:
            s.phase = FleetPhase.ALLOCATED
        allocated = {sid for sid, s in servers.items() if s.phase == FleetPhase.ALLOCATED}
        idle = {sid for sid, s in servers.items() if s.phase in (FleetPhase.READY, FleetPhase.DEPLOYING)}
        ready_before = sum(1 for s in servers.values() if s.phase == FleetPhase.READY)
        plan = plan_fleet(spec, list(servers.values()), headroom)

        assert not set(plan.retire) & allocated, "an allocated server is never retired"
        assert set(plan.retire) <= idle
        assert plan.start <= headroom
        target = max(0, desired_size(spec, len(allocated)) - len(allocated))
        old = [s for s in servers.values() if s.server_id in idle and s.version != spec.build.version]
        if old:
            surge = rollout_count(spec.max_surge, target, True)
            unavailable = rollout_count(spec.max_unavailable, target, False) or (0 if surge else 1)
            assert len(idle) - len(plan.retire) + plan.start <= max(len(idle), target + surge)
            ready_after = ready_before - sum(1 for sid in plan.retire if servers[sid].phase == FleetPhase.READY)
            assert ready_after >= min(ready_before, target - unavailable)
        for sid in plan.retire:
            servers[sid].phase = FleetPhase.RETIRING
        for _ in range(plan.start):
            counter += 1
            new = server(counter, spec.build.version, FleetPhase.DEPLOYING)
            servers[new.server_id] = new

    # Allocations stopped long ago: the fleet is at its size, on its version, if room allowed.
    allocated_count = sum(1 for s in servers.values() if s.phase == FleetPhase.ALLOCATED)
    idle_now = [s for s in servers.values() if s.phase in (FleetPhase.READY, FleetPhase.DEPLOYING)]
    target = max(0, desired_size(spec, allocated_count) - allocated_count)
    if headroom >= target:
        assert len(idle_now) == target
        assert {s.version for s in idle_now} <= {spec.build.version}


def test_deleting_retires_idle_servers_and_allocated_ones_only_when_forced() -> None:
    spec = FleetSpec(build=build(1), replicas=3)
    servers = [server(1, 1, FleetPhase.READY), server(2, 1, FleetPhase.ALLOCATED), server(3, 1, FleetPhase.DEPLOYING)]
    assert sorted(plan_fleet(spec, servers, 10, deleting=True).retire) == ["s001", "s003"]
    assert sorted(plan_fleet(spec, servers, 10, deleting=True, force=True).retire) == ["s001", "s002", "s003"]


def test_scale_down_takes_ready_servers_before_deploying_ones() -> None:
    spec = FleetSpec(build=build(1), replicas=1)
    servers = [server(1, 1, FleetPhase.DEPLOYING), server(2, 1, FleetPhase.READY), server(3, 1, FleetPhase.READY)]
    assert plan_fleet(spec, servers, 10).retire == ["s003", "s002"]


def test_a_buffer_sits_on_top_of_the_allocated_servers_within_min_and_max() -> None:
    spec = FleetSpec(build=build(1), buffer=2, min_size=3, max_size=5)
    assert desired_size(spec, 0) == 3
    assert desired_size(spec, 2) == 4
    assert desired_size(spec, 9) == 5
    servers = [server(i, 1, FleetPhase.ALLOCATED) for i in range(2)] + [server(5, 1, FleetPhase.READY)]
    plan = plan_fleet(spec, servers, 10)
    assert (plan.start, plan.retire, plan.desired) == (1, [], 4)
    limited = plan_fleet(spec, servers, 0)
    assert limited.start == 0
    assert limited.capacity_limited
