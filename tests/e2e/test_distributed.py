"""CI's second configuration: PostgreSQL + Redis + Temporal, every process on its own, two agents.

Deploy, play, logs, stop, delete, a pipeline and a model job across the whole topology; then each
process type is SIGKILLed and started again while a deployment, a pipeline and a model job are in
flight; then each is stopped with SIGTERM while it is serving, and must finish what it holds.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import docker
import httpx
import pytest

from tests.conftest import GAMES, unique
from tests.e2e.test_platform import Up, deploy, play_tictactoe, wait_status
from tests.e2e.topology import Proc, Topology

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
        with contextlib.suppress(httpx.HTTPError):
            missing = server_ids - listed_rooms(mm_url)
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
        assert result.status_code == 200
        assert result.content[:4] == b"glTF"


SLOW_PIPELINE = """
name: in-flight
steps:
  - {type: noop, name: start}
  - {type: sleep, name: wait, params: {seconds: %s}}
  - {type: noop, name: done, params: {message: "after the wait"}}
"""


def start_pipeline(api: httpx.Client, node: str, seconds: float) -> str:
    created = api.post("/api/v1/pipelines", json={"yaml": SLOW_PIPELINE % seconds, "node_id": node})
    assert created.status_code == 202, created.text
    return str(created.json()["id"])


def start_model_job(api: httpx.Client, prompt: str) -> str:
    created = api.post("/api/v1/models", json={"prompt": prompt})
    assert created.status_code == 202, created.text
    return str(created.json()["job_id"])


def finished_pipeline(api: httpx.Client, run_id: str, timeout: float = 90) -> dict[str, Any]:
    return cast(dict[str, Any], wait_for(
        f"pipeline {run_id} finished", lambda: api.get(f"/api/v1/pipelines/{run_id}").json(),
        lambda r: r["status"] in ("succeeded", "failed", "paused", "cancelled"), timeout=timeout))


def finished_model_job(api: httpx.Client, job_id: str, timeout: float = 90) -> dict[str, Any]:
    return cast(dict[str, Any], wait_for(
        f"model job {job_id} finished", lambda: api.get(f"/api/v1/models/{job_id}/status").json(),
        lambda j: j["status"] in ("success", "failed", "cancelled"), timeout=timeout))


def test_each_process_killed_and_restarted_mid_deployment(topo: Topology) -> None:
    """SIGKILL each process type in turn while a deployment, a pipeline and a model job are in flight."""
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
                run_id = start_pipeline(api, topo.nodes[0], 2)
                job_id = start_model_job(api, f"a crate that survives the {victim}")
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
                run = finished_pipeline(api, run_id)
                assert run["status"] == "succeeded", (victim, run)
                assert [s["status"] for s in run["state"]["steps"]] == ["succeeded"] * 3, (victim, run["state"])
                job = finished_model_job(api, job_id)
                assert job["status"] == "success", (victim, job)
            print("victim: seconds to running, seconds until the room list was whole",
                  {k: (round(a, 1), round(b, 1)) for k, (a, b) in report.items()})
            assert topo.procs[topo.nodes[0]].starts == 2
            assert topo.procs["temporal"].starts == 2
        finally:
            for sid in survivors:
                api.delete(f"/api/v1/servers/{sid}")


# --- Graceful shutdown (SIGTERM) ----------------------------------------------------------------


def trickled_request(url: str, method: str, path: str, headers: dict[str, str], body: bytes,
                     between: Callable[[], None]) -> tuple[int, bytes]:
    """Send the head and half the body, call `between` (which stops the server), then the rest;
    return the status and body of the answer. A raw socket: the request is provably in flight."""
    host, port = url.removeprefix("http://").split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in {**headers, "Content-Length": str(len(body)),
                                                 "Connection": "close", "Host": f"{host}:{port}"}.items())
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\n{head}\r\n".encode() + body[:len(body) // 2])
        time.sleep(1.0)  # the server has accepted the connection and is reading the body
        between()
        sock.sendall(body[len(body) // 2:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def sigterm(proc: Proc) -> Callable[[], None]:
    def stop() -> None:
        proc.stop_signal()
        time.sleep(0.5)  # the server is shutting down now, with this request still open
        assert proc.alive(), f"{proc.name} quit with a request in flight:\n{proc.tail()}"
    return stop


def exited(proc: Proc, within: float) -> float:
    """Seconds until the process ended by itself after its SIGTERM: status 0 (the workers), or the
    SIGTERM that uvicorn raises again once its graceful shutdown is done (api, matchmaker), so a
    supervisor sees how it ended. Not a SIGKILL, not an error status."""
    assert proc.popen is not None
    began = time.monotonic()
    code = proc.popen.wait(within)
    assert code in (0, -signal.SIGTERM), f"{proc.name} exited with {code}:\n{proc.tail()}"
    assert "Traceback" not in proc.log_since_signal(), proc.log_since_signal()
    return time.monotonic() - began


def test_sigterm_finishes_what_is_in_flight(topo: Topology, docker_client: docker.DockerClient) -> None:
    """api and matchmaker answer the request they are reading; the control worker and an agent stop
    polling but finish their running activities; an agent's game containers outlive it."""
    with topo.api() as api:
        # api: a deployment upload still arriving when SIGTERM comes is answered, and then carried out.
        source = (GAMES / "chat.js").read_bytes() + f"\n// graceful {uuid.uuid4()}\n".encode()
        boundary = uuid.uuid4().hex
        form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\ngraceful\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"node_selector\"\r\n\r\n"
                f"topology={topo.nodes[1]}\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"chat.js\"\r\n"
                f"Content-Type: application/javascript\r\n\r\n").encode() + source + f"\r\n--{boundary}--\r\n".encode()
        status, body = trickled_request(topo.api_url, "POST", "/api/v1/servers", {
            "Authorization": f"Bearer {topo.key}", "Content-Type": f"multipart/form-data; boundary={boundary}"},
            form, sigterm(topo.procs["api"]))
        assert status == 202, body
        server_id = json.loads(body)["id"]
        exited(topo.procs["api"], 10)
        topo.start_proc("api")
        server = wait_status(api, server_id, {"running", "failed", "rejected"}, timeout=90)
        assert server["status"] == "running", server
        wait_rooms(topo.mm_url, {server_id}, 20)

        # matchmaker: a join still arriving is answered with a seat.
        status, body = trickled_request(topo.mm_url, "POST", "/join", {"Content-Type": "application/json"},
                                        json.dumps({"server_id": server_id}).encode(),
                                        sigterm(topo.procs["matchmaker"]))
        assert status == 200, body
        assert json.loads(body)["server_id"] == server_id
        exited(topo.procs["matchmaker"], 10)
        topo.start_proc("matchmaker")
        wait_rooms(topo.mm_url, {server_id}, ROOM_TTL + 4)

        # control worker: a model job in flight when it stops is finished by the next one.
        job_id = start_model_job(api, "a lantern, gracefully")
        wait_for("model job started", lambda: api.get(f"/api/v1/models/{job_id}/status").json()["status"],
                 lambda s: s != "queued", timeout=30)
        topo.procs["control-worker"].stop_signal()
        exited(topo.procs["control-worker"], 15)
        topo.start_proc("control-worker")
        assert finished_model_job(api, job_id)["status"] == "success"

        # agent: the running step finishes before the agent exits; its game server keeps running.
        agent = topo.procs[topo.nodes[1]]
        container = docker_client.containers.list(filters={"label": f"gsf.server_id={server_id}"})[0]
        run_id = start_pipeline(api, topo.nodes[1], 4)
        wait_for("the wait step running", lambda: api.get(f"/api/v1/pipelines/{run_id}").json()["state"]["steps"],
                 lambda steps: steps[1]["status"] == "running", timeout=30)
        agent.stop_signal()
        took = exited(agent, 20)
        # Its result reached Temporal before the agent left (the control worker records it).
        steps = wait_for("the wait step recorded",
                         lambda: api.get(f"/api/v1/pipelines/{run_id}").json()["state"]["steps"],
                         lambda steps: steps[1]["status"] != "running", timeout=10)
        assert steps[1]["status"] == "succeeded", steps
        assert steps[1]["logs"] == ["slept 4 s"], steps
        assert steps[2]["status"] != "succeeded", "no agent polls the node's queue now"
        assert took >= 1.0, "the agent waited for its running step"
        container.reload()
        assert container.status == "running", "an agent's shutdown never stops its game containers"
        topo.start_proc(topo.nodes[1])
        run = finished_pipeline(api, run_id)
        assert run["status"] == "succeeded", run
        assert run["state"]["steps"][2]["logs"] == ["after the wait"], run
        assert wait_status(api, server_id, {"running"})["status"] == "running"
        assert api.delete(f"/api/v1/servers/{server_id}").json()["status"] == "deleted"
