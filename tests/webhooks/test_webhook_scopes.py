"""A webhook is read and changed only with a key holding the scopes of the events it subscribes to
(server.* and pipeline.* `servers`, model.* `models`, node.* `admin`), on SQLite and PostgreSQL:
a `models`-only key neither sees nor changes the same user's `server.*` webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from core.settings import Settings
from tests.harness import Harness, platform
from tests.webhooks.conftest import Receiver, create_webhook, webhook_settings

pytestmark = [pytest.mark.temporal]
V1 = "/api/v1/webhooks"


@pytest.fixture
async def hdb(settings: Settings, database_url: str, temporal_env: WorkflowEnvironment) -> AsyncIterator[Harness]:
    """API + control worker on each database (the list filters on the JSON events column)."""
    base = settings.model_copy(update={"database_url": database_url})
    async with platform(webhook_settings(base), temporal_env.client, agent=False) as harness:
        yield harness


async def mint(api: httpx.AsyncClient, scopes: list[str]) -> str:
    resp = await api.post("/api/v1/keys", json={"name": "-".join(scopes), "scopes": scopes})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["key"])


def forbidden(resp: httpx.Response) -> bool:
    return resp.status_code == 403 and resp.json()["type"].endswith("/forbidden")


async def every_route(api: httpx.AsyncClient, hook_id: str) -> dict[str, httpx.Response]:
    """Each route that names a webhook, the destructive one last."""
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"{V1}/{hook_id}", None),
        ("GET", f"{V1}/{hook_id}/deliveries", None),
        ("PATCH", f"{V1}/{hook_id}", {"description": "renamed"}),
        ("PATCH", f"{V1}/{hook_id}", {"enabled": False}),
        ("POST", f"{V1}/{hook_id}/test", None),
        ("DELETE", f"{V1}/{hook_id}", None),
    ]
    return {f"{m} {u} {b}": await api.request(m, u, json=b) for m, u, b in calls}


async def test_a_key_reaches_only_webhooks_within_its_scopes(hdb: Harness, receiver: Receiver) -> None:
    full = await hdb.user_key("dev@example.com")
    async with hdb.api(full) as api:
        servers_hook = await create_webhook(api, receiver.url + "/s", ["server.running"])
        pipeline_hook = await create_webhook(api, receiver.url + "/p", ["pipeline.failed"])
        model_hook = await create_webhook(api, receiver.url + "/m", ["model.succeeded"])
        mixed_hook = await create_webhook(api, receiver.url + "/x", ["model.failed", "server.failed"])
        models_only, servers_only = await mint(api, ["models"]), await mint(api, ["servers"])

    async with hdb.api(models_only) as models, hdb.api(servers_only) as servers:
        # Listing shows each key the webhooks within its scopes, and counts only those.
        listed = (await models.get(V1)).json()
        assert {h["id"] for h in listed["items"]} == {model_hook["id"]}
        assert listed["count"] == 1
        listed = (await servers.get(V1)).json()
        assert {h["id"] for h in listed["items"]} == {servers_hook["id"], pipeline_hook["id"]}
        assert listed["count"] == 2

        # A key may not widen a webhook it may change to events beyond its scopes.
        resp = await models.patch(f"{V1}/{model_hook['id']}", json={"events": ["server.running"]})
        assert forbidden(resp), resp.text
        assert (await models.get(f"{V1}/{model_hook['id']}")).json()["events"] == ["model.succeeded"]

        # Every route naming a webhook outside the key's scopes: 403, and nothing changed.
        for key, hooks in ((models, [servers_hook, pipeline_hook, mixed_hook]), (servers, [model_hook, mixed_hook])):
            for hook in hooks:
                answers = await every_route(key, hook["id"])
                wrong = {call: r.status_code for call, r in answers.items() if not forbidden(r)}
                assert not wrong, wrong

    async with hdb.api(full) as api:
        for hook in (servers_hook, pipeline_hook, model_hook, mixed_hook):
            got = (await api.get(f"{V1}/{hook['id']}")).json()
            assert got["description"] == "", got
            assert got["enabled"] is True, got
        # Within its scopes a key does everything, down to deleting.
    async with hdb.api(models_only) as models:
        answers = await every_route(models, model_hook["id"])
        assert [r.status_code for r in answers.values()] == [200, 200, 200, 200, 409, 204], \
            {call: r.text for call, r in answers.items()}


async def test_an_admin_users_narrow_key_is_no_admin_key(hdb: Harness, receiver: Receiver) -> None:
    """Node events need the `admin` scope, and so does reaching another user's webhook."""
    root = await hdb.user_key("root@example.com", admin=True)
    dev = await hdb.user_key("dev@example.com")
    async with hdb.api(root) as admin, hdb.api(dev) as api:
        node_hook = await create_webhook(admin, receiver.url + "/n", ["node.offline"])
        theirs = await create_webhook(api, receiver.url + "/t", ["server.running"])
        narrow = await mint(admin, ["servers", "models"])
        assert {node_hook["id"], theirs["id"]} <= {h["id"] for h in (await admin.get(V1)).json()["items"]}
    async with hdb.api(narrow) as key:
        assert forbidden(await key.get(f"{V1}/{node_hook['id']}"))
        assert forbidden(await key.post(V1, json={"url": receiver.url + "/n2", "events": ["node.online"]}))
        resp = await key.get(f"{V1}/{theirs['id']}")
        assert resp.status_code == 404, resp.text
        assert resp.json()["type"].endswith("/not-found"), resp.text
        assert (await key.get(V1)).json() == {"items": [], "count": 0}
