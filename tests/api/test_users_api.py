"""Deleting a user (their keys, servers, fleets and pipeline runs go; the row and the audit log stay)
and an admin's view and revocation of any user's keys."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.db.models import User, Webhook
from core.settings import Settings
from tests.conftest import GAMES
from tests.harness import Harness, platform
from tests.problems import assert_problem

pytestmark = [pytest.mark.docker, pytest.mark.temporal]
V1 = "/api/v1"
PROBLEM = "application/problem+json"

SLEEPS = """
name: sleeps
steps:
  - {type: noop, name: start}
  - {type: sleep, name: wait, params: {seconds: 120}}
"""


@pytest.fixture
async def h(settings: Settings, temporal_env: Any, runtime_images: str, cleanup_docker: None) -> Any:
    async with platform(settings, temporal_env.client) as harness:
        yield harness


@pytest.fixture
async def light(settings: Settings, temporal_env: Any) -> Any:
    """No agent: for what needs no node."""
    async with platform(settings, temporal_env.client, agent=False) as harness:
        yield harness


async def until(check: Any, what: str, timeout: float = 60) -> Any:
    for _ in range(int(timeout / 0.2)):
        got = await check()
        if got:
            return got
        await asyncio.sleep(0.2)
    raise AssertionError(f"never: {what}")


async def test_deleting_a_user_takes_down_what_they_run_and_keeps_the_record(h: Harness) -> None:
    root_key = await h.user_key("root@example.com", admin=True)
    async with h.api(root_key) as root:
        created = (await root.post(f"{V1}/users", json={"email": "dora@example.com"})).json()
        dora_id, dora_key = created["id"], created["key"]["key"]
        async with h.api(dora_key) as dora:
            game = (GAMES / "chat.js").read_bytes()
            server = await dora.post(f"{V1}/servers", data={"name": "solo"},
                                     files={"file": ("chat.js", game, "application/javascript")})
            assert server.status_code == 202, server.text
            sid = server.json()["id"]
            run = await dora.post(f"{V1}/pipelines", json={"yaml": SLEEPS, "node_id": h.settings.node_id})
            assert run.status_code == 202, run.text
            run_id = run.json()["id"]
            upload = await dora.post(f"{V1}/games", data={"name": "chat"},
                                     files={"file": ("chat.js", game, "application/javascript")})
            assert upload.status_code == 201, upload.text
            fleet = await dora.post(f"{V1}/fleets", json={"name": "f", "game": "chat", "replicas": 0})
            assert fleet.status_code == 201, fleet.text
            fleet_id = fleet.json()["id"]
            extra = (await dora.post(f"{V1}/keys", json={"name": "ci"})).json()
            assert (await dora.get(f"{V1}/servers")).status_code == 200  # an audited call of hers

            async def running() -> bool:
                srv = (await dora.get(f"{V1}/servers/{sid}")).json()
                steps = (await dora.get(f"{V1}/pipelines/{run_id}")).json()["state"]["steps"]
                return bool(srv["status"] == "running" and steps[1]["status"] == "running")

            await until(running, "her server and her run are running", timeout=120)
        async with h.sessions() as s:
            s.add(Webhook(owner_id=dora_id, url="https://hooks.example.com/gsf", events=["server.running"],
                          secret="s" * 32, enabled=True))
            await s.commit()

        gone = await root.delete(f"{V1}/users/{dora_id}")
        assert gone.status_code == 200, gone.text
        body = gone.json()
        assert body["user"]["deleted_at"] is not None
        assert (body["keys_revoked"], body["servers"], body["fleets"], body["pipelines"],
                body["webhooks_disabled"]) == (2, 1, 1, 1, 1)
        for key in (dora_key, extra["key"]):
            async with h.api(key) as dora:
                assert_problem(await dora.get(f"{V1}/keys"), 401, "unauthorized")
        assert (await root.get(f"{V1}/servers/{sid}")).json()["status"] == "deleted"

        async def cancelled() -> bool:
            return bool((await root.get(f"{V1}/pipelines/{run_id}")).json()["status"] == "cancelled")

        async def fleet_gone() -> bool:
            return bool((await root.get(f"{V1}/fleets/{fleet_id}")).json()["status"] == "deleted")

        await until(cancelled, "her run is cancelled")
        await until(fleet_gone, "her fleet is deleted")
        keys = (await root.get(f"{V1}/users/{dora_id}/keys")).json()
        assert len(keys) == 2
        assert all(k["revoked_at"] for k in keys)
        async with h.sessions() as s:
            hook = (await s.execute(Webhook.__table__.select().where(Webhook.owner_id == dora_id))).one()
            assert hook.enabled is False
            assert (await s.get(User, dora_id)) is not None
        listed = {u["id"]: u for u in (await root.get(f"{V1}/users")).json()}
        assert listed[dora_id]["deleted_at"] is not None
        # The audit trail keeps her calls and names who deleted her.
        entries = (await root.get(f"{V1}/audit", params={"user_id": dora_id})).json()
        assert any(e["path"] == f"{V1}/keys" and e["method"] == "POST" for e in entries)
        mine = (await root.get(f"{V1}/audit")).json()
        assert any(e["method"] == "DELETE" and e["path"] == f"{V1}/users/{dora_id}" and e["status"] == 200
                   for e in mine)
        # Not re-created silently, and a second delete finds nothing left to do.
        assert_problem(await root.post(f"{V1}/users", json={"email": "dora@example.com"}), 409, "conflict")
        again = await root.delete(f"{V1}/users/{dora_id}")
        assert again.status_code == 200, again.text
        assert (again.json()["keys_revoked"], again.json()["servers"], again.json()["fleets"]) == (0, 0, 0)


async def test_a_deleted_users_new_key_is_refused(light: Harness) -> None:
    """Keys are refused for a deleted user whatever wrote them: bootstrap code adds keys by email."""
    root_key = await light.user_key("root@example.com", admin=True)
    await light.user_key("erin@example.com")
    async with light.api(root_key) as root:
        erin = next(u for u in (await root.get(f"{V1}/users")).json() if u["email"] == "erin@example.com")
        assert (await root.delete(f"{V1}/users/{erin['id']}")).status_code == 200
    late = await light.user_key("erin@example.com")  # core.bootstrap finds the user by email
    async with light.api(late) as erin_client:
        assert_problem(await erin_client.get(f"{V1}/config"), 401, "unauthorized")


async def test_admins_list_and_revoke_any_users_keys(light: Harness) -> None:
    root_key = await light.user_key("root@example.com", admin=True)
    frank_key = await light.user_key("frank@example.com")
    grace_key = await light.user_key("grace@example.com")
    async with light.api(root_key) as root, light.api(frank_key) as frank, light.api(grace_key) as grace:
        users = {u["email"]: u["id"] for u in (await root.get(f"{V1}/users")).json()}
        root_id, frank_id, grace_id = users["root@example.com"], users["frank@example.com"], users["grace@example.com"]
        spare = (await frank.post(f"{V1}/keys", json={"name": "spare"})).json()
        keys = (await root.get(f"{V1}/users/{frank_id}/keys")).json()
        assert {k["name"] for k in keys} == {"default", "spare"}
        assert all("key" not in k and "key_hash" not in k for k in keys)
        # Not through another user's path, not by a non-admin, not for a missing user.
        assert_problem(await root.delete(f"{V1}/users/{grace_id}/keys/{spare['id']}"), 404, "not-found")
        assert_problem(await grace.delete(f"{V1}/users/{frank_id}/keys/{spare['id']}"), 403, "forbidden")
        assert_problem(await grace.get(f"{V1}/users/{frank_id}/keys"), 403, "forbidden")
        assert_problem(await root.get(f"{V1}/users/no-such-user/keys"), 404, "not-found")
        assert (await root.delete(f"{V1}/users/{frank_id}/keys/{spare['id']}")).status_code == 204
        async with light.api(spare["key"]) as revoked:
            assert_problem(await revoked.get(f"{V1}/keys"), 401, "unauthorized")
        assert (await frank.get(f"{V1}/keys")).status_code == 200, "only the one key was revoked"
        # Deleting: admins only, never themselves, a missing user is a 404.
        assert_problem(await grace.delete(f"{V1}/users/{frank_id}"), 403, "forbidden")
        assert_problem(await root.delete(f"{V1}/users/{root_id}"), 409, "conflict")
        assert_problem(await root.delete(f"{V1}/users/no-such-user"), 404, "not-found")
