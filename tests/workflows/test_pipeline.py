"""PipelineWorkflow end to end: YAML in, steps on a real agent, pause/resume, cancel with cleanup."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import docker
import httpx
import pytest

from core.settings import Settings
from tests.harness import Harness, platform
from tests.workflows.test_gameserver import record_history

pytestmark = [pytest.mark.docker, pytest.mark.temporal]


@pytest.fixture
async def h(settings: Settings, temporal_env: Any, runtime_images: str, cleanup_docker: None) -> Any:
    # A failing pull is one from a registry on the loopback that answers nobody (no traffic beyond
    # this machine); Docker Hub for the base image, which is present already. Users who are not
    # admins may pull only from these (GSF_PIPELINE_REGISTRIES is empty by default).
    registries = {"pipeline_registries": ["127.0.0.1:1", "docker.io"]}
    async with platform(settings.model_copy(update=registries), temporal_env.client) as harness:
        yield harness


async def wait_pipeline(api: httpx.AsyncClient, run_id: str, statuses: set[str], timeout: float = 60) -> Any:
    body: Any = None
    for _ in range(int(timeout / 0.1)):
        body = (await api.get(f"/api/v1/pipelines/{run_id}")).json()
        if body["status"] in statuses:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"pipeline never reached {statuses}: {body}")


async def test_platform_start_runs_every_step(h: Harness, docker_client: docker.DockerClient) -> None:
    key = await h.user_key("ops@example.com", admin=True)
    volume = f"gsf-test-config-{h.settings.node_id}"
    async with h.api(key) as api:
        resp = await api.post("/api/v1/pipelines", json={
            "definition": "platform-start", "node_id": h.settings.node_id,
            "variables": {"network": h.settings.game_network, "config_volume": volume, "region": "eu",
                          "base_image": h.settings.base_image}})
        assert resp.status_code == 202, resp.text
        run = await wait_pipeline(api, resp.json()["id"], {"succeeded", "paused", "failed"})
        assert run["status"] == "succeeded", run
        assert run["progress"] == 1.0
        steps = run["state"]["steps"]
        assert [s["status"] for s in steps] == ["succeeded"] * 4
        assert steps[1]["output"]["network"] == h.settings.game_network
        assert all(s["started_at"] and s["ended_at"] and s["attempts"] == 1 for s in steps)
        logs = (await api.get(f"/api/v1/pipelines/{run['id']}/logs")).json()["lines"]
        assert any(f"node ready on network {h.settings.game_network}" in line["line"] for line in logs)
        listed = (await api.get("/api/v1/pipelines")).json()
        assert listed["count"] == 1
        assert listed["items"][0]["status"] == "succeeded"
    reader = docker_client.containers.run(h.settings.base_image, ["node", "-e",
                                          "process.stdout.write(require('fs').readFileSync('/c/node.json'))"],
                                          volumes={volume: {"bind": "/c", "mode": "ro"}}, detach=True,
                                          network_mode="none")
    try:
        assert reader.wait(timeout=30)["StatusCode"] == 0
        written = reader.logs(stdout=True, stderr=False)
    finally:
        reader.remove(force=True)
    assert written == f'{{"region": "eu", "network": "{h.settings.game_network}"}}'.encode()
    docker_client.volumes.get(volume).remove()


FLAKY = """
name: flaky
variables: {image: "127.0.0.1:1/gsf-missing-image:none"}
steps:
  - {type: noop, name: first}
  - {type: pull_image, name: pull, params: {image: "${image}"}, retry: {maximum_attempts: 1}}
  - {type: noop, name: last, params: {message: "pulled ${steps.pull.image}"}}
"""


async def test_failed_step_pauses_and_resume_retries_it(h: Harness) -> None:
    key = await h.user_key("ops@example.com")
    async with h.api(key) as api:
        resp = await api.post("/api/v1/pipelines", json={"yaml": FLAKY, "node_id": h.settings.node_id})
        run_id = resp.json()["id"]
        paused = await wait_pipeline(api, run_id, {"paused", "succeeded"})
        assert paused["status"] == "paused"
        steps = paused["state"]["steps"]
        assert [s["status"] for s in steps] == ["succeeded", "failed", "pending"]
        assert "gsf-missing-image" in steps[1]["error"]
        refused = await api.post(f"/api/v1/pipelines/{run_id}/resume", json={"variables": {"nope": 1}})
        assert refused.status_code == 422
        resumed = await api.post(f"/api/v1/pipelines/{run_id}/resume",
                                 json={"variables": {"image": h.settings.base_image}})
        assert resumed.status_code == 200, resumed.text
        done = await wait_pipeline(api, run_id, {"succeeded", "paused"})
        assert done["status"] == "succeeded"
        assert done["state"]["steps"][1]["attempts"] == 2
        assert done["state"]["steps"][2]["logs"] == [f"pulled {h.settings.base_image}"]
        again = await api.post(f"/api/v1/pipelines/{run_id}/resume", json={})
        assert again.status_code == 409, "only a paused run can be resumed"
        await record_history(h, "", "pipeline_pause_resume", workflow_id=done["workflow_id"])


LONG = """
name: long
steps:
  - {type: noop, name: start}
  - {type: sleep, name: wait, params: {seconds: 120}}
  - {type: noop, name: never}
cleanup:
  - {type: noop, name: tidy, params: {message: "cleaned up"}}
"""


async def test_cancel_stops_the_running_step_and_runs_cleanup(h: Harness) -> None:
    key = await h.user_key("ops@example.com")
    async with h.api(key) as api:
        run_id = (await api.post("/api/v1/pipelines", json={"yaml": LONG, "node_id": h.settings.node_id})).json()["id"]
        for _ in range(100):
            body = (await api.get(f"/api/v1/pipelines/{run_id}")).json()
            if body["state"]["steps"][1]["status"] == "running":
                break
            await asyncio.sleep(0.1)
        started = asyncio.get_running_loop().time()
        assert (await api.post(f"/api/v1/pipelines/{run_id}/cancel")).status_code == 200
        done = await wait_pipeline(api, run_id, {"cancelled"}, timeout=30)
        assert asyncio.get_running_loop().time() - started < 10, "cancellation reached the step within its heartbeat"
        steps = {s["name"]: s for s in done["state"]["steps"]}
        assert steps["start"]["status"] == "succeeded"
        assert steps["wait"]["status"] == "cancelled"
        assert steps["never"]["status"] == "skipped"
        assert steps["tidy"]["status"] == "succeeded", str(done["state"])
        assert steps["tidy"]["logs"] == ["cleaned up"], str(done["state"])


GIVES_UP = """
name: gives-up
pause_timeout_seconds: {timeout}
steps:
  - {{type: noop, name: first}}
  - type: pull_image
    name: pull
    params: {{image: "127.0.0.1:1/gsf-missing-image:none"}}
    retry: {{maximum_attempts: 1}}
  - {{type: noop, name: never}}
cleanup:
  - {{type: noop, name: tidy, params: {{message: "cleaned up"}}}}
"""


@pytest.mark.parametrize("timeout", [0, 1.5])
async def test_a_pause_past_its_timeout_fails_the_run_and_runs_cleanup(h: Harness, timeout: float) -> None:
    """0: a failed step fails the run at once; otherwise the run waits that long for resume."""
    key = await h.user_key("ops@example.com")
    async with h.api(key) as api:
        resp = await api.post("/api/v1/pipelines", json={"yaml": GIVES_UP.format(timeout=timeout),
                                                         "node_id": h.settings.node_id})
        assert resp.status_code == 202, resp.text
        run_id = resp.json()["id"]
        if timeout:
            assert (await wait_pipeline(api, run_id, {"paused", "failed"}))["status"] == "paused"
        done = await wait_pipeline(api, run_id, {"failed"}, timeout=30)
        steps = {s["name"]: s["status"] for s in done["state"]["steps"]}
        assert steps == {"first": "succeeded", "pull": "failed", "never": "skipped", "tidy": "succeeded"}
        assert "gsf-missing-image" in done["error"]
        if timeout:
            assert f"not resumed within {timeout:g} s" in done["error"]
        refused = await api.post(f"/api/v1/pipelines/{run_id}/resume", json={})
        assert refused.status_code == 409, "a failed run cannot be resumed"
        if timeout:
            await record_history(h, "", "pipeline_pause_timeout", workflow_id=done["workflow_id"])


CLEANS_SLOWLY = """
name: cleans-slowly
pause_timeout_seconds: 0
steps:
  - {type: pull_image, name: pull, params: {image: "127.0.0.1:1/gsf-missing-image:none"}, retry: {maximum_attempts: 1}}
cleanup:
  - {type: noop, name: first-tidy}
  - {type: sleep, name: slow-tidy, params: {seconds: 60}}
  - {type: noop, name: last-tidy}
"""


async def test_a_cancel_during_a_failed_runs_cleanup_runs_no_cleanup_step_twice(h: Harness) -> None:
    key = await h.user_key("ops@example.com")
    async with h.api(key) as api:
        run_id = (await api.post("/api/v1/pipelines", json={"yaml": CLEANS_SLOWLY,
                                                            "node_id": h.settings.node_id})).json()["id"]
        for _ in range(300):
            body = (await api.get(f"/api/v1/pipelines/{run_id}")).json()
            if body["state"]["steps"] and body["state"]["steps"][2]["status"] == "running":
                break
            await asyncio.sleep(0.1)
        assert body["status"] == "running", "the run is cleaning up after it gave up"
        assert (await api.post(f"/api/v1/pipelines/{run_id}/cancel")).status_code == 200
        done = await wait_pipeline(api, run_id, {"cancelled"}, timeout=30)
        steps = {s["name"]: (s["status"], s["attempts"]) for s in done["state"]["steps"]}
        assert steps == {"pull": ("failed", 1), "first-tidy": ("succeeded", 1), "slow-tidy": ("cancelled", 1),
                         "last-tidy": ("succeeded", 1)}, steps


STOPS = """
name: stops
variables: {target: null, owner: null}
steps:
  - {type: pull_image, name: pull, params: {image: "127.0.0.1:1/gsf-missing-image:none"}, retry: {maximum_attempts: 1}}
  - {type: stop_container, name: stop, params: {server_id: "${target}"}}
cleanup:
  - {type: noop, name: tidy, params: {message: "for ${owner}"}}
"""
FROM_OUTPUT = """
name: from-output
steps:
  - {type: noop, name: first}
  - {type: stop_container, name: stop, params: {server_id: "${steps.first.message}"}}
"""
STARTS = """
name: starts
variables: {owner: null}
steps:
  - {type: start_container, name: start, params: {server_id: s-1, owner_id: "${owner}", name: n, game: g,
                                                  image: "gsf-missing-image:none", max_players: 2}}
"""
BUILDS = """
name: builds
variables: {sha: null}
steps:
  - {type: build_image, name: build, params: {server_id: own-build-1, source_sha256: "${sha}"}}
"""


async def test_a_pipeline_may_name_only_the_callers_servers_and_uploads(h: Harness) -> None:
    """Steps act on servers and uploads by id: another user's are refused, on run and on resume;
    an admin may name anyone's."""
    from core.bootstrap import create_user_key
    from core.db.models import Game, GameServer, GameVersion

    alice, _ = await create_user_key(h.sessions, "alice@example.com")
    async with h.sessions() as s:
        theirs = GameServer(owner_id=alice.id, name="alice-1", game="g", source_sha256="a" * 64, max_players=2,
                            workflow_id="w-alice-1", status="running", node_id=h.settings.node_id)
        game = Game(owner_id=alice.id, name="alices-game")
        s.add_all([theirs, game])
        await s.flush()
        s.add(GameVersion(game_id=game.id, version=1, source_sha256="b" * 64, max_players=2))
        await s.commit()
    bob_user, key = await create_user_key(h.sessions, "bob@example.com")
    key_owner = bob_user.id
    node = h.settings.node_id
    async with h.api(key) as bob, h.api(await h.user_key("ops@example.com", admin=True)) as admin:
        def run(api: httpx.AsyncClient, yaml: str, **variables: Any) -> Any:
            return api.post("/api/v1/pipelines", json={"yaml": yaml, "node_id": node, "variables": variables})

        refused = await run(bob, STOPS, target=theirs.id, owner="x")
        assert refused.status_code == 403
        assert f"server {theirs.id} is not one of yours" in refused.json()["detail"]
        refused = await run(bob, STARTS, owner=alice.id)
        assert refused.status_code == 403
        assert "owner_id names another user" in refused.json()["detail"]
        for sha in ("a" * 64, "b" * 64):  # a server's upload, a game version's upload
            refused = await run(bob, BUILDS, sha=sha)
            assert refused.status_code == 403, refused.text
            assert "is not one you uploaded" in refused.json()["detail"], refused.text
        late = await run(bob, FROM_OUTPUT)
        assert late.status_code == 422
        assert late.json()["errors"][0]["loc"] == "steps[1].params.server_id"
        unknown = await run(bob, STOPS, target="nobodys-container", owner="x")
        assert unknown.status_code == 403
        assert "is not one of yours" in unknown.json()["detail"]
        # YAML can type a value (`!!binary`) that pydantic would turn into the id: only text is taken.
        typed = await run(bob, STOPS.replace('"${target}"', "!!binary " + base64.b64encode(
            theirs.id.encode()).decode()), target="-", owner="x")
        assert typed.status_code == 422, typed.text
        assert typed.json()["errors"][0]["msg"] == "must be text", typed.text
        refused = await run(bob, STARTS, owner=key_owner)  # an image nobody built from bob's uploads
        assert refused.status_code == 403
        assert "is not one built from your uploads" in refused.json()["detail"]
        # Bob's own server; a paused run cannot be pointed at another's server.
        async with h.sessions() as s:
            bobs = GameServer(owner_id=key_owner, name="bob-1", game="g", source_sha256="c" * 64, max_players=2,
                              workflow_id="w-bob-1", status="running", node_id=h.settings.node_id)
            s.add(bobs)
            await s.commit()
        own = await run(bob, STOPS, target=bobs.id, owner="bob")
        assert own.status_code == 202, own.text
        run_id = own.json()["id"]
        assert (await wait_pipeline(bob, run_id, {"paused"}))["status"] == "paused"
        hijack = await bob.post(f"/api/v1/pipelines/{run_id}/resume", json={"variables": {"target": theirs.id}})
        assert hijack.status_code == 403, hijack.text
        assert (await bob.post(f"/api/v1/pipelines/{run_id}/cancel")).status_code == 200
        ops = await run(admin, STOPS, target=theirs.id, owner="ops")
        assert ops.status_code == 202, ops.text
        assert (await admin.post(f"/api/v1/pipelines/{ops.json()['id']}/cancel")).status_code == 200


async def test_write_config_writes_only_into_config_volumes(h: Harness, docker_client: docker.DockerClient) -> None:
    """A volume the step did not make (a database's, say) is refused; one it made is written."""
    other = docker_client.volumes.create(f"gsf-test-foreign-{h.settings.node_id}")
    mine = f"gsf-test-cfg-{h.settings.node_id}"
    yaml = ("name: writes\nvariables: {volume: null}\nsteps:\n"
            "  - {type: write_config, name: write, params: {volume: '${volume}', files: {a.txt: hi}},"
            " retry: {maximum_attempts: 1}}\n")
    try:
        async with h.api(await h.user_key("ops@example.com", admin=True)) as api:
            refused = (await api.post("/api/v1/pipelines", json={"yaml": yaml, "node_id": h.settings.node_id,
                                                                 "variables": {"volume": other.name}})).json()
            paused = await wait_pipeline(api, refused["id"], {"paused", "succeeded"})
            assert paused["status"] == "paused"
            assert "is not a config volume" in paused["error"]
            await api.post(f"/api/v1/pipelines/{refused['id']}/cancel")
            for _ in range(2):  # made by the first run, written again by the second
                ok = (await api.post("/api/v1/pipelines", json={"yaml": yaml, "node_id": h.settings.node_id,
                                                                "variables": {"volume": mine}})).json()
                assert (await wait_pipeline(api, ok["id"], {"paused", "succeeded"}))["status"] == "succeeded"
    finally:
        other.remove(force=True)
        for volume in docker_client.volumes.list(filters={"name": mine}):
            volume.remove(force=True)


@pytest.mark.parametrize(("body", "loc"), [
    ({"yaml": "name: x\nsteps:\n  - {type: noop}\n  - {type: teleport}\n"}, "steps[1].type"),
    ({"yaml": "name: x\nsteps:\n  - {type: sleep, params: {seconds: -1}}\n"}, "steps[0].params.seconds"),
    ({"yaml": "name: x\nsteps:\n  - {type: noop, params: {surprise: 1}}\n"}, "steps[0].params.surprise"),
    ({"yaml": "name: x\nsteps: [\n"}, ""),
    ({"yaml": "name: x\nsteps: []\n"}, "steps"),
    ({"yaml": "name: x\npause_timeout_seconds: -1\nsteps:\n  - {type: noop}\n"}, "pause_timeout_seconds"),
    ({"definition": "no-such-pipeline"}, "definition"),
    ({"definition": "gameserver-start"}, "variables.node_id"),
])
async def test_invalid_pipelines_are_refused_with_their_place(h: Harness, body: dict[str, Any], loc: str) -> None:
    key = await h.user_key("ops@example.com")
    async with h.api(key) as api:
        resp = await api.post("/api/v1/pipelines", json={**body, "node_id": h.settings.node_id})
        assert resp.status_code == 422, resp.text
        problem = resp.json()
        assert problem["type"].endswith("/invalid-pipeline")
        assert any(e["loc"] == loc or (not loc and e["loc"] == []) for e in problem["errors"]), problem
        assert (await api.get("/api/v1/pipelines")).json()["count"] == 0
