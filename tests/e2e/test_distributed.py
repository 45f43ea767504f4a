"""CI's second configuration: PostgreSQL + Redis + Temporal, every process on its own, two agents.

Deploy, play, logs, stop, delete, a pipeline and a model job across the whole topology; then each
process type is SIGKILLed and started again while a deployment is in flight.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any, cast

import docker
import httpx
import pytest

from tests.conftest import GAMES, unique
from tests.e2e.test_platform import Up, deploy, play_tictactoe, wait_status
from tests.e2e.topology import Topology

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.temporal]

ROOM_TTL = 6.0  # Settings.room_ttl_seconds: a room whose heartbeats stop leaves the list after this


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory, docker_client: docker.DockerClient,
         runtime_images: str) -> Iterator[Topology]:
    topology = Topology(tmp_path_factory.mktemp("gsf-dist"))
    try:
        topology.start()
        yield topology
    finally:
        topology.close(docker_client)


def listed_rooms(mm_url: str) -> set[str]:
    return {r["server_id"] for r in httpx.get(f"{mm_url}/servers", timeout=5).json()["items"]}


def wait_rooms(mm_url: str, server_ids: set[str], timeout: float) -> float:
    began = time.monotonic()
    missing: set[str] = set(server_ids)
    while time.monotonic() - began < timeout:
        try:
            missing = server_ids - listed_rooms(mm_url)
        except httpx.HTTPError:
            pass
        if not missing:
            return time.monotonic() - began
        time.sleep(0.2)
    raise AssertionError(f"rooms {missing} not in the matchmaker's list after {timeout:.0f} s")


def wait_for(what: str, get: Any, done: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what}: {value}"
        time.sleep(0.2)


def test_deploy_play_pipeline_and_model_across_processes(topo: Topology, docker_client: docker.DockerClient) -> None:
    with topo.api() as api:
        nodes = wait_for("both agents online", lambda: api.get("/api/v1/nodes").json()["items"],
                         lambda items: {n["id"] for n in items if n["online"]} >= set(topo.nodes), timeout=30)
        assert {n["id"] for n in nodes} >= set(topo.nodes)

        server_id = deploy(api, GAMES / "tictactoe.js", "ttt-dist")
        server = wait_status(api, server_id, {"running", "failed", "rejected"}, timeout=90)
        assert server["status"] == "running", server
        assert server["node_id"] in topo.nodes
        wait_rooms(topo.mm_url, {server_id}, 20)
        play_tictactoe(cast(Up, topo), server_id)  # it reads only `mm_url`
        lines = wait_for("two joins in the logs",
                         lambda: [e["line"] for e in api.get(f"/api/v1/servers/{server_id}/logs").json()["lines"]],
                         lambda ls: sum("join" in line for line in ls) >= 2, timeout=20)
        assert sum("join" in line for line in lines) >= 2
        assert api.post(f"/api/v1/servers/{server_id}/stop").json()["status"] == "stopped"
        assert httpx.get(f"{topo.mm_url}/servers/{server_id}").status_code == 404
        assert api.delete(f"/api/v1/servers/{server_id}").json()["status"] == "deleted"
        assert docker_client.containers.list(all=True, filters={"label": f"gsf.server_id={server_id}"}) == []

        network, volume = unique("gsf-dist-pipe-net"), unique("gsf-dist-pipe-vol")
        try:
            created = api.post("/api/v1/pipelines", json={
                "definition": "platform-start", "node_id": topo.nodes[1],
                "variables": {"network": network, "config_volume": volume}})
            assert created.status_code == 202, created.text
            run_id = created.json()["id"]
            run = wait_for("pipeline finished", lambda: api.get(f"/api/v1/pipelines/{run_id}").json(),
                           lambda r: r["status"] in ("succeeded", "failed", "paused", "cancelled"), timeout=60)
            assert run["status"] == "succeeded", run
            logs = api.get(f"/api/v1/pipelines/{run_id}/logs").json()["lines"]
            assert any(f"node ready on network {network}" in str(entry) for entry in logs), logs
            assert docker_client.networks.list(names=[network]), "the pipeline made its network on the node"
        finally:
            for n in docker_client.networks.list(names=[network]):
                n.remove()
            for v in docker_client.volumes.list(filters={"name": volume}):
                v.remove()

        created = api.post("/api/v1/models", json={"prompt": "a wooden barrel"})
        assert created.status_code == 202, created.text
        job_id = created.json()["job_id"]
        job = wait_for("model job done", lambda: api.get(f"/api/v1/models/{job_id}/status").json(),
                       lambda j: j["status"] in ("success", "failed", "cancelled"), timeout=60)
        assert job["status"] == "success", job
        result = api.get(f"/api/v1/models/{job_id}/result", follow_redirects=True)
        assert result.status_code == 200 and result.content[:4] == b"glTF"


def test_each_process_killed_and_restarted_mid_deployment(topo: Topology) -> None:
    victims = ["api", "matchmaker", "control-worker", topo.nodes[0], "temporal"]
    survivors: list[str] = []
    report: dict[str, tuple[float, float]] = {}
    with topo.api() as api:
        try:
            for victim in victims:
                # A source never built before keeps the deployment in flight while its process dies.
                source = (GAMES / "chat.js").read_bytes() + f"\n// {victim} {uuid.uuid4()}\n".encode()
                resp = api.post("/api/v1/servers", data={"name": f"kill-{victim}"[:40],
                                                        "node_selector": f"topology={topo.nodes[0]}"},
                                files={"file": ("chat.js", source)})
                assert resp.status_code == 202, resp.text
                server_id = str(resp.json()["id"])
                began = time.monotonic()
                topo.restart(victim)
                server = wait_status(api, server_id, {"running", "failed", "rejected"}, timeout=90)
                assert server["status"] == "running", (victim, server.get("error"), server.get("events"))
                survivors.append(server_id)
                deployed = time.monotonic() - began
                # Every room deployed so far is listed again within the heartbeat TTL (plus one beat).
                recovered = wait_rooms(topo.mm_url, set(survivors), ROOM_TTL + 4)
                report[victim] = (deployed, recovered)
                for sid in survivors:
                    assert api.get(f"/api/v1/servers/{sid}").json()["status"] == "running", (victim, sid)
            print("victim: seconds to running, seconds until the room list was whole",
                  {k: (round(a, 1), round(b, 1)) for k, (a, b) in report.items()})
            assert topo.procs[topo.nodes[0]].starts == 2 and topo.procs["temporal"].starts == 2
        finally:
            for sid in survivors:
                api.delete(f"/api/v1/servers/{sid}")
