"""bench.rooms with very small numbers, both sides, so the benchmark keeps working as the platform changes.

The Colyseus peer installs from npm into a scratch folder under /tmp in about 5 s here (kept for the
next run of the same package.json), so it is part of the smoke run."""

from __future__ import annotations

from pathlib import Path

import docker
import psutil
import pytest

from bench import rooms

pytestmark = pytest.mark.docker


def test_rooms_bench_measures_both_sides_and_leaves_nothing(docker_client: docker.DockerClient,
                                                            runtime_images: str, tmp_path: Path) -> None:
    before = {c.id for c in docker_client.containers.list(all=True)}
    children = {p.pid for p in psutil.Process().children(recursive=True)}  # the session's (Temporal's)
    opts = rooms.Options(rooms=12, joins=12, pings=60, fault_seconds=1.2, before_seconds=0.3, neighbours=3,
                         legacy_servers=2, settle_seconds=0.3)
    report = rooms.run(opts, tmp_path, docker_client)

    assert "colyseus_error" not in report
    peer = report["colyseus"]
    assert peer["versions"]["@colyseus/core"].startswith("0.17.")
    assert peer["idle"]["rooms"] == 12
    assert peer["idle"]["rss_after_mib"] > 0
    # 12 sequential joinOrCreate into 4-seat rooms: 3 new rooms, 9 joins into an existing one.
    assert peer["joins"]["new_room"]["n"] == 3
    assert peer["joins"]["existing_room"]["n"] == 9
    assert peer["rtt"]["n"] == 60
    assert peer["rtt"]["lost"] == 0

    ours = report["ours"]
    assert ours["mode"] in ("rooms", "legacy")
    assert ours["joins"]["errors"] == []
    assert ours["joins"]["existing_room"]["n"] >= 6
    assert ours["rtt"]["n"] == 60
    assert ours["rtt"]["lost"] == 0
    if ours["mode"] == "rooms":
        assert ours["idle"]["rooms"] == 12
        # The matchmaker's view too: the relay heartbeats the bench's servers (bench.rooms checks it
        # at each server's start), so the server and its rooms are still listed after the fill.
        assert ours["idle"]["server_listed_after"] is True
        assert ours["idle"]["listed_rooms"] == 12
        assert ours["joins"]["new_room"]["n"] == 3
        assert ours["joins"]["rooms"] == 3
        assert ours["idle"]["after_mib"]["cgroup"] > 0
    else:
        assert ours["idle"]["rooms"] == 2
        assert ours["joins"]["new_room"]["p50"] > ours["joins"]["existing_room"]["p50"]
    assert ours["idle"]["per_room_kib"] > 0

    for side in (peer, ours):
        for kind in ("spin", "balloon"):
            other = side["faults"][kind]["other"]
            assert other["before"]["n"] > 0
            assert other["during"]["n"] > 0

    rows = {row["figure"]: row for row in report["table"]}
    assert rows["memory per idle room"]["ours"] == ours["idle"]["per_room_kib"]
    assert rows["echo round trip p99"]["colyseus"] == peer["rtt"]["p99"]
    assert "| memory per idle room (KiB) |" in rooms.markdown(report)

    node_id = f"bench-rooms-{ours['run_id']}"
    leftovers = [c.name for c in docker_client.containers.list(all=True)
                 if c.id not in before and c.labels.get("gsf.node_id") == node_id]
    assert leftovers == []
    assert docker_client.networks.list(names=[f"gsf-bench-rooms-{ours['run_id']}"]) == []
    assert [p.name() for p in psutil.Process().children(recursive=True)
            if p.is_running() and p.pid not in children] == []
