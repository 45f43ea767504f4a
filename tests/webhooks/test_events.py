"""Signed deliveries for every event type, raised by real runs: deploy, reject, crash, stop, delete on real
Docker; a pipeline that pauses and one that succeeds; a node whose agent stops and comes back; 3D-model
jobs against the fake Tripo. Only the owner's resources reach the owner's webhooks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import docker
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from core.settings import Settings
from core.webhooks import platform_sweep_workflow_id
from tests.conftest import GAMES
from tests.harness import Harness, platform
from tests.models.conftest import FakeServer, fake_tripo, model_settings  # noqa: F401 - a fixture
from tests.webhooks.conftest import (
    Received,
    Receiver,
    create_webhook,
    load_sample,
    record_history,
    webhook_settings,
)

pytestmark = [pytest.mark.temporal]
sample = load_sample()
SERVER_EVENTS = ["server.running", "server.rejected", "server.failed", "server.stopped", "server.deleted"]


@pytest.fixture
async def h(settings: Settings, temporal_env: WorkflowEnvironment, runtime_images: str,
            cleanup_docker: None) -> AsyncIterator[Harness]:
    # No restarts: a crashed container fails the server at once (server.failed).
    async with platform(webhook_settings(settings, restart_limit=0), temporal_env.client) as harness:
        yield harness


def verified(got: Received, secret: str) -> dict[str, Any]:
    event: dict[str, Any] = sample.verify(secret, got.headers["x-gsf-signature"], got.body)
    assert event["type"] == got.headers["x-gsf-event"]
    assert event["id"] == got.headers["x-gsf-event-id"]
    return event


def of(resource_id: str) -> Any:
    return lambda r: json.loads(r.body)["resource"]["id"] == resource_id


async def deploy(api: httpx.AsyncClient, name: str, source: bytes) -> str:
    resp = await api.post("/api/v1/servers", data={"name": name},
                          files={"file": (f"{name}.js", source, "application/javascript")})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


@pytest.mark.docker
async def test_server_events_of_real_runs(h: Harness, receiver: Receiver,
                                          docker_client: docker.DockerClient) -> None:
    key = await h.user_key("dev@example.com")
    stranger = await h.user_key("stranger@example.com")
    async with h.api(key) as api, h.api(stranger) as them:
        hook = await create_webhook(api, receiver.url + "/dev", SERVER_EVENTS)
        await create_webhook(them, receiver.url + "/stranger", SERVER_EVENTS)
        secret = hook["secret"]

        # Deploy, stop, delete.
        chat = await deploy(api, "chat", (GAMES / "chat.js").read_bytes())
        running = verified(await receiver.wait_event("/dev", "server.running", where=of(chat), timeout=120),
                           secret)
        res = running["resource"]
        assert res["kind"] == "server"
        assert res["name"] == "chat"
        assert res["status"] == "running"
        assert res["node_id"] == h.settings.node_id
        assert res["ws_url"].startswith("ws://")
        assert running["links"]["resource"] == f"{h.settings.public_api_url}/api/v1/servers/{chat}"
        assert running["links"]["workflow"].endswith(f"/namespaces/default/workflows/gameserver-{chat}")
        assert (await api.post(f"/api/v1/servers/{chat}/stop")).json()["status"] == "stopped"
        stopped = verified(await receiver.wait_event("/dev", "server.stopped", where=of(chat)), secret)
        assert (await api.delete(f"/api/v1/servers/{chat}")).json()["status"] == "deleted"
        deleted = verified(await receiver.wait_event("/dev", "server.deleted", where=of(chat)), secret)
        assert res["seq"] < stopped["resource"]["seq"] < deleted["resource"]["seq"]

        # Rejected code.
        bad = await deploy(api, "broken", b"module.exports = {\n  onJoin(room, player) {\n    room.broadcast('x', ;\n")
        rejected = verified(await receiver.wait_event("/dev", "server.rejected", where=of(bad)), secret)
        assert "syntax" in rejected["resource"]["message"].lower()

        # A crash with no restarts left.
        ttt = await deploy(api, "ttt", (GAMES / "tictactoe.js").read_bytes())
        await receiver.wait_event("/dev", "server.running", where=of(ttt), timeout=120)
        (container,) = docker_client.containers.list(filters={"label": f"gsf.server_id={ttt}"})
        container.kill()
        failed = verified(await receiver.wait_event("/dev", "server.failed", where=of(ttt), timeout=60), secret)
        assert "restart limit" in failed["resource"]["message"]

        # Each fact arrived once (retried records raise the same event id), and nothing reached the stranger.
        ids = [r.headers["x-gsf-event-id"] for r in receiver.at("/dev")]
        assert len(ids) == len(set(ids)), ids
        assert receiver.at("/stranger") == []
        # The receiver has the last event a moment before its delivery is recorded as delivered.
        for _ in range(100):
            log = (await api.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()
            if all(d["status"] == "delivered" for d in log["items"]):
                break
            await asyncio.sleep(0.1)
        assert {d["event_type"] for d in log["items"]} == set(SERVER_EVENTS)
        assert all(d["status"] == "delivered" for d in log["items"]), log["items"]


PAUSES = """
name: pauses
steps:
  - {type: noop, name: first}
  - {type: pull_image, name: pull, params: {image: gsf-missing-image:none}, retry: {maximum_attempts: 1}}
"""
GIVES_UP = """
name: gives-up
pause_timeout_seconds: 0
steps:
  - {type: pull_image, name: pull, params: {image: gsf-missing-image:none}, retry: {maximum_attempts: 1}}
"""
SUCCEEDS = """
name: succeeds
steps:
  - {type: noop, name: only, params: {message: hello}}
"""


@pytest.mark.docker
async def test_pipeline_events(h: Harness, receiver: Receiver) -> None:
    key = await h.user_key("ops@example.com", admin=True)  # an admin's pulls need no allowed registry
    async with h.api(key) as api:
        hook = await create_webhook(api, receiver.url + "/pipes", ["pipeline.paused", "pipeline.succeeded",
                                                                    "pipeline.failed"])
        paused_run = (await api.post("/api/v1/pipelines", json={"yaml": PAUSES, "node_id": h.settings.node_id})).json()
        ok_run = (await api.post("/api/v1/pipelines", json={"yaml": SUCCEEDS, "node_id": h.settings.node_id})).json()
        failed_run = (await api.post("/api/v1/pipelines", json={"yaml": GIVES_UP,
                                                                "node_id": h.settings.node_id})).json()
        paused = verified(await receiver.wait_event("/pipes", "pipeline.paused", where=of(paused_run["id"])),
                          hook["secret"])
        assert paused["resource"]["failed_step"] == "pull"
        assert "gsf-missing-image" in paused["resource"]["error"]
        assert paused["links"]["workflow"].endswith(f"/workflows/pipeline-{paused_run['id']}")
        done = verified(await receiver.wait_event("/pipes", "pipeline.succeeded", where=of(ok_run["id"])),
                        hook["secret"])
        assert done["resource"]["name"] == "succeeds"
        assert done["resource"]["error"] is None
        failed = verified(await receiver.wait_event("/pipes", "pipeline.failed", where=of(failed_run["id"])),
                          hook["secret"])
        assert failed["resource"]["failed_step"] == "pull"
        assert failed["resource"]["status"] == "failed"
        await api.post(f"/api/v1/pipelines/{paused_run['id']}/cancel")


@pytest.mark.docker
async def test_node_offline_and_online(settings: Settings, temporal_env: WorkflowEnvironment,
                                       receiver: Receiver) -> None:
    async with platform(webhook_settings(settings), temporal_env.client, agent=False) as h:
        admin = await h.user_key("ops@example.com", admin=True)
        async with h.api(admin) as ops:
            hook = await create_webhook(ops, receiver.url + "/ops", ["node.offline", "node.online"])
            node = h.settings.node_id
            h.start_agent()
            first = verified(await receiver.wait_event("/ops", "node.online", where=of(node)), hook["secret"])
            assert first["resource"]["online"] is True
            assert first["links"]["resource"].endswith(f"/api/v1/nodes/{node}")
            await h.stop(f"agent:{node}")  # heartbeats stop: offline after three missed intervals
            offline = verified(await receiver.wait_event("/ops", "node.offline", where=of(node)), hook["secret"])
            assert offline["resource"]["online"] is False
            assert (await ops.get(f"/api/v1/nodes/{node}")).json()["online"] is False
            h.start_agent()
            back = verified(await receiver.wait_event(
                "/ops", "node.online", where=lambda r: of(node)(r) and json.loads(r.body)["resource"]["seq"] == 3),
                hook["secret"])
            assert back["id"] not in (first["id"], offline["id"])
            await h.stop(f"agent:{node}")
        await record_history(h, platform_sweep_workflow_id(h.settings.control_queue), "platform_sweep")
        types = [r.headers["x-gsf-event"] for r in receiver.at("/ops")]
        assert types[:3] == ["node.online", "node.offline", "node.online"], types


async def test_model_events(settings: Settings, temporal_env: WorkflowEnvironment, receiver: Receiver,
                            fake_tripo: FakeServer) -> None:  # noqa: F811 - the fixture imported above
    s = model_settings(webhook_settings(settings), fake_tripo)
    async with platform(s, temporal_env.client, agent=False) as h:
        key = await h.user_key("dev@example.com")
        async with h.api(key) as api:
            hook = await create_webhook(api, receiver.url + "/models", ["model.succeeded", "model.failed"])
            ok = (await api.post("/api/v1/models", json={"prompt": "a wooden barrel"})).json()["job_id"]
            done = verified(await receiver.wait_event("/models", "model.succeeded", where=of(ok)), hook["secret"])
            assert done["resource"]["result_sha256"]
            assert done["links"]["result"].endswith(f"/models/{ok}/result")
            fake_tripo.fake.force("banned")
            bad = (await api.post("/api/v1/models", json={"prompt": "a forbidden barrel"})).json()["job_id"]
            failed = verified(await receiver.wait_event("/models", "model.failed", where=of(bad)), hook["secret"])
            assert failed["resource"]["error_code"] == "TripoTaskBanned"
