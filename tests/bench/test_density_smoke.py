"""bench.density's measurement with two servers, so the benchmark keeps working as the platform changes."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from bench import density

pytestmark = pytest.mark.docker


def test_two_idle_servers_are_measured_and_removed(docker_client: docker.DockerClient, runtime_images: str,
                                                   tmp_path: Path) -> None:
    before = {c.id for c in docker_client.containers.list(all=True)}
    report = density.run(docker_client, density.Options(plan="small", max=2, raw_runs=1, settle_seconds=0.5,
                                                        cpu_seconds=1.0), tmp_path)

    assert report["started"] == 2
    assert report["stopped_because"] in ("--max", "capacity")
    assert set(report["placement_admits"]) >= {"small", "standard", "large"}
    assert report["placement_admits"]["small"] >= report["placement_admits"]["standard"] >= 1
    assert [s["n"] for s in report["series"]] == [1, 2]
    starts = report["start_ms"]
    assert starts["platform"]["min"] > 0
    assert starts["raw_empty_node"]["min"] > 0
    assert starts["bare_node"] > 0
    memory = report["memory_mib"]
    assert 0 < memory["cgroup_working_set"]["mean"] < report["limits"]["memory_mb"]
    assert memory["processes_rss"]["mean"] > 0
    assert memory["bare_node"]["rss"] > 0
    assert report["cpu_percent_of_one_core"]["fleet_total"] >= 0
    assert density.markdown({**report, "machine": {"when": "now", "load_before": 0, "load_after": 0}})

    run_id = report["run_id"]
    leftovers = [c.name for c in docker_client.containers.list(all=True) if c.id not in before
                 and (c.labels.get("gsf.node_id") == f"bench-density-{run_id}"
                      or c.labels.get("gsf.bench") == f"density-{run_id}")]
    assert leftovers == []
    assert docker_client.networks.list(names=[f"gsf-bench-density-{run_id}"]) == []
