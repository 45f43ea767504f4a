"""bench.statesync with two 1-second rounds and 4 players, all four servers, so the benchmark keeps working
as the runtime changes. The Colyseus peer installs from npm into a scratch folder under /tmp (kept for
the next run of the same package.json), as bench.rooms does."""

from __future__ import annotations

from pathlib import Path

import psutil

from bench import statesync


def test_statesync_bench_measures_all_four_servers_and_leaves_nothing(tmp_path: Path) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}  # the session's (Temporal's)
    opts = statesync.Options(seconds=2.0, rounds=2, warmup=0.5, players=4, entities=100)
    report = statesync.run(opts, tmp_path)

    variants = report["variants"]
    assert set(variants) == set(statesync.VARIANTS)
    assert report["colyseus"]["versions"]["@colyseus/core"].startswith("0.17.")
    for name, v in variants.items():
        assert v["entities_seen"] == [100, 100], name  # every client decoded the whole state
        assert v["closed_early"] == 0, name
        assert 10 <= v["updates_per_client_s"] <= 25, name  # 20 Hz ticks / 50 ms patches
        assert v["wire_bytes_per_client_s"] > 0, name
        assert v["server_cpu_s"] > 0, name
        assert v["server_rss_mib"] > 10, name
        assert len(v["series_wire_bytes_per_client_s"]) == 2, name  # a second a round
        assert len(v["server_cpu_ms_per_patch_by_round"]) == 2, name
    # Everything moves every tick: each update carries all 100 entities in some form.
    assert variants["ours_broadcast"]["bytes_per_update"] > 100 * len('"e0":{"x":1.5,"y":2.5}')
    assert variants["ours_sync"]["bytes_per_update"] > 100 * 2 * len('{"op":"replace","path":"/entities/e0/x"}')
    # Deflate shrinks Colyseus's patches, and the client-side estimate used for ours matches the real thing.
    measured = variants["colyseus_deflate"]["wire_bytes_per_client_s"]
    assert measured < variants["colyseus"]["wire_bytes_per_client_s"]
    assert abs(variants["colyseus"]["deflate_estimate_bytes_per_client_s"] - measured) <= 0.1 * measured

    rows = {row["figure"]: row for row in report["table"]}
    wire = rows["bytes/s per client, wire (deflate off)"]
    assert wire["ours_sync"] == variants["ours_sync"]["wire_bytes_per_client_s"]
    assert wire["ratio"] == round(wire["ours_sync"] / wire["colyseus"], 2)
    assert wire["met"] is (wire["ratio"] <= statesync.GOAL_BYTES_RATIO)
    assert "| server CPU per patch (ms) |" in statesync.markdown(report)
    assert statesync.plot(report, tmp_path / "statesync.png")
    assert (tmp_path / "statesync.png").stat().st_size > 1000

    assert [p.name() for p in psutil.Process().children(recursive=True)
            if p.is_running() and p.pid not in before] == []
