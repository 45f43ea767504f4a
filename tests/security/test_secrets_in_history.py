"""Secrets stay out of Temporal and out of the logs: a real deployment's workflow histories (inputs,
results, memos, search attributes) and every log line of the run carry no platform secret."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

import docker
import pytest

from agent_worker.credentials import read_token, token_path
from core import security
from core.queues import gameserver_workflow_id
from core.settings import Settings
from tests.conftest import GAMES
from tests.harness import Harness, platform
from tests.workflows.test_gameserver import deploy, join, wait_status

pytestmark = [pytest.mark.docker, pytest.mark.temporal]
OUR_LOGGERS = ("api", "core", "activities", "agent_worker", "matchmaker", "workflows", "gsf")


@pytest.fixture
async def h(settings: Settings, temporal_env: Any, runtime_images: str, cleanup_docker: None) -> Any:
    async with platform(settings, temporal_env.client) as harness:
        yield harness


def texts_of(value: Any) -> list[str]:
    """Every string in a history's JSON, plus each base64 field decoded (payloads are base64)."""
    out: list[str] = []
    if isinstance(value, dict):
        for item in value.values():
            out += texts_of(item)
    elif isinstance(value, list):
        for item in value:
            out += texts_of(item)
    elif isinstance(value, str):
        out.append(value)
        with contextlib.suppress(binascii.Error, ValueError):
            out.append(base64.b64decode(value, validate=True).decode("utf-8", errors="replace"))
    return out


async def test_no_secret_reaches_a_history_a_search_attribute_or_a_log(
        h: Harness, caplog: pytest.LogCaptureFixture, docker_client: docker.DockerClient) -> None:
    caplog.set_level(logging.INFO)
    for name in OUR_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    started = datetime.now(UTC)
    admin, user = await h.user_key("root@example.com", admin=True), await h.user_key("dev@example.com")
    async with h.api(user) as api:
        server_id = await deploy(api, GAMES / "chat.js", "secret-check")
        server = await wait_status(api, server_id, {"running", "failed", "rejected"})
        assert server["status"] == "running", server
        seat = await join(h.settings, server_id)
        assert (await api.delete(f"/api/v1/servers/{server_id}")).status_code == 200
    async with h.api(admin) as root:
        assert (await root.get("/api/v1/nodes")).status_code == 200

    key = h.settings.secret_key
    node_token = read_token(token_path(h.settings, h.settings.node_id))  # as the agent enrolled
    secrets = {"platform secret key": key, "seat secret": security.seat_secret(key, server_id),
               "agent key": security.agent_key(key, server_id), "node token": node_token,
               "join proof": security.join_proof(key, h.settings.node_id),
               "admin API key": admin, "user API key": user}
    assert all(len(s) >= 16 for s in secrets.values())
    assert seat["ws_url"], "a seat was handed out, so the seat secret was in use"

    # The server's own workflow, and every other one this run started (agent, webhooks, ...).
    workflow_ids = {gameserver_workflow_id(server_id)}
    async for execution in h.client.list_workflows(f"StartTime >= '{started.isoformat()}'"):
        workflow_ids.add(execution.id)
    seen: list[str] = []
    for workflow_id in sorted(workflow_ids):
        handle = h.client.get_workflow_handle(workflow_id)
        history = await handle.fetch_history()
        haystack = texts_of(json.loads(history.to_json()))
        described = await handle.describe()
        haystack += [repr(described.search_attributes), repr(described.typed_search_attributes),
                     repr(await described.memo())]
        for what, secret in secrets.items():
            assert not any(secret in text for text in haystack), f"the {what} is in the history of {workflow_id}"
        if workflow_id == gameserver_workflow_id(server_id):
            # The name travels only inside the input payload: proof the payloads were read decoded.
            assert any("secret-check" in text for text in haystack)
        seen.append(workflow_id)
    assert gameserver_workflow_id(server_id) in seen

    lines = [f"{record.getMessage()} {record.exc_text or ''} {record.__dict__}" for record in caplog.records]
    assert lines, "the run logged nothing: the check would prove nothing"
    for what, secret in secrets.items():
        leaks = [line for line in lines if secret in line]
        assert not leaks, f"the {what} is in the log: {leaks[:2]}"
