"""An admin user's key without the `admin` scope has an ordinary user's reach (issue #19 item 2)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from core.settings import Settings
from tests.conftest import GAMES
from tests.harness import Harness, platform


@pytest.fixture
async def h(settings: Settings, temporal_env: WorkflowEnvironment) -> AsyncIterator[Harness]:
    async with platform(settings, temporal_env.client, agent=False) as harness:
        yield harness


async def test_a_narrow_admin_key_sees_only_its_users_own_resources(h: Harness) -> None:
    alice = await h.user_key("alice@example.com")
    root = await h.user_key("root@example.com", admin=True)
    async with h.api(alice) as api:
        resp = await api.post("/api/v1/servers", data={"name": "alices"},
                              files={"file": ("chat.js", (GAMES / "chat.js").read_bytes(), "text/javascript")})
        assert resp.status_code == 202, resp.text
        server_id = resp.json()["id"]
    async with h.api(root) as api:
        created = await api.post("/api/v1/keys", json={"name": "ci", "scopes": ["servers"]})
        assert created.status_code == 201, created.text
        narrow = created.json()["key"]
        # The full admin key reaches every tenant's servers.
        assert (await api.get(f"/api/v1/servers/{server_id}")).status_code == 200
        assert server_id in {s["id"] for s in (await api.get("/api/v1/servers")).json()["items"]}
    async with h.api(narrow) as api:
        resp = await api.get(f"/api/v1/servers/{server_id}")
        assert resp.status_code == 404, resp.text
        assert resp.json()["type"].endswith("/not-found"), resp.text
        assert server_id not in {s["id"] for s in (await api.get("/api/v1/servers")).json()["items"]}
        assert (await api.post(f"/api/v1/servers/{server_id}/stop")).status_code == 404
        assert (await api.get("/api/v1/users")).status_code == 403
    async with h.api(root) as api:  # the narrow key changed nothing of the user's own row
        assert (await api.get("/api/v1/users")).status_code == 200
