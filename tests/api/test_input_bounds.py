"""Issue #19: what the API refuses before anything is stored or run: limits below the runtime's
floors, offsets and cursors past the database's integers, uploads that are not text, labels that
are not flat strings."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core.artifacts import LocalArtifactStore
from core.db.models import GameServer, User
from core.limits import MIN_CPUS, MIN_MEMORY_MB, MIN_PIDS
from core.settings import Settings
from tests.api.test_servers_api import upload
from tests.conftest import GAMES
from tests.harness import Harness, platform
from tests.problems import assert_problem

pytestmark = [pytest.mark.temporal]
HUGE = str(2**63)  # one past the largest 64-bit signed integer


@pytest.fixture
async def h(settings: Settings, temporal_env: Any) -> Any:
    # No agent: nothing gets placed, which is all these tests need.
    async with platform(settings.model_copy(update={"webhook_allow_private": True}), temporal_env.client,
                        agent=False) as harness:
        yield harness


# Form fields as `upload(**form)` takes them (Any: mypy cannot tell a field from `source`).
BELOW_FLOORS: list[dict[str, Any]] = [
    {"cpus": "1e-12"}, {"cpus": "1e-300"}, {"cpus": "0.001"}, {"cpus": "0"}, {"cpus": "-1"},
    {"cpus": "nan"}, {"cpus": "inf"}, {"memory_mb": "16"}, {"memory_mb": "0"}, {"memory_mb": str(MIN_MEMORY_MB - 1)},
    {"pids": "8"}, {"pids": "0"}, {"pids": str(MIN_PIDS - 1)}, {"memory_mb": "-" + "9" * 30},
]


async def test_limits_below_the_runtimes_floors_are_refused_everywhere(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        for form in BELOW_FLOORS:
            assert_problem(await api.post("/api/v1/servers", **upload(**form)), 422, "invalid-limits")
        assert (await api.get("/api/v1/servers")).json()["count"] == 0, "a refused upload leaves no record"
        # The routes that take limits as JSON share the check.
        version = await api.post("/api/v1/games", data={"name": "chat"},
                                 files={"file": ("chat.js", (GAMES / "chat.js").read_bytes())})
        assert version.status_code == 201, version.text
        assert_problem(await api.get(f"/api/v1/games/chat/versions/{HUGE}"), 422, "validation-error")
        for limits in ({"cpus": 1e-12}, {"memory_mb": 16}, {"pids": 8}):
            assert_problem(await api.post("/api/v1/games/chat/versions/1/servers", json={"name": "x", **limits}),
                           422, "invalid-limits")
            assert_problem(await api.post("/api/v1/fleets", json={"name": "f", "game": "chat", "replicas": 1,
                                                                 **limits}), 422, "invalid-limits")
        # Exactly at the floors is allowed (tests/workflows/test_limit_floors.py runs one such server).
        at_floor: dict[str, Any] = {"cpus": str(MIN_CPUS), "memory_mb": str(MIN_MEMORY_MB), "pids": str(MIN_PIDS)}
        assert (await api.post("/api/v1/servers", **upload(**at_floor))).status_code == 202
    async with httpx.AsyncClient(base_url=h.settings.public_api_url) as anon:
        spec = (await anon.get("/openapi.json")).json()
    form = spec["components"]["schemas"]["Body_create_server_api_v1_servers_post"]["properties"]
    assert (form["cpus"]["minimum"], form["memory_mb"]["minimum"], form["pids"]["minimum"]) == (
        MIN_CPUS, MIN_MEMORY_MB, MIN_PIDS)


async def test_offsets_and_cursors_past_the_databases_integers_are_refused(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        hook = await api.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["server.running"]})
        assert hook.status_code == 201, hook.text
        for path in ("/api/v1/servers", "/api/v1/pipelines", "/api/v1/webhooks",
                     f"/api/v1/webhooks/{hook.json()['id']}/deliveries", "/api/v1/models"):
            assert_problem(await api.get(path, params={"offset": HUGE}), 422, "validation-error")
            assert (await api.get(path, params={"offset": "1000000000"})).status_code == 200, path

        # A Last-Event-ID that names no row (too large, or digits Python's int() refuses) is ignored:
        # the stream starts from the tail, as for a new follower.
        async with h.sessions() as s:
            owner = await s.scalar(select(User).where(User.email == "dev@example.com"))
            assert owner is not None
            # A stopped server (no workflow to move it on): a follow of its logs ends by itself.
            server = GameServer(owner_id=owner.id, name="done", game="g", source_sha256="0" * 64, max_players=2,
                                workflow_id=f"w-{owner.id}", status="stopped")
            s.add(server)
            await s.commit()
            sid = server.id

        async def follow(last_event_id: bytes) -> httpx.Response:
            return await api.get(f"/api/v1/servers/{sid}/logs", params={"follow": "true"},
                                 headers={b"Last-Event-ID": last_event_id})

        for resp in await asyncio.gather(follow(HUGE.encode()), follow("\u00b2".encode("latin-1"))):
            assert resp.status_code == 200, resp.text
            assert "event: end" in resp.text


NOT_TEXT = [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",  # a binary
    b"module.exports = {};\x00\n",  # a NUL byte in otherwise good source
    "module.exports = { name: 'caf\u00e9' };\n".encode("latin-1"),  # not UTF-8
    "module.exports = {};\n".encode("utf-16"),  # UTF-16 with its BOM
]


async def test_uploads_that_are_not_text_are_refused_before_anything_is_stored(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        # Limits are checked before the upload is stored: a refused deploy leaves no file.
        source = b"module.exports = { onJoin() {} }; // issue 19, store last\n"
        store = LocalArtifactStore(h.settings.artifact_dir)
        for limits in ({"memory_mb": "999999"}, {"cpus": "1e-12"}):
            assert_problem(await api.post("/api/v1/servers", **upload(source=source, **limits)), 422, "invalid-limits")
            assert not store.exists("sources", hashlib.sha256(source).hexdigest())
        for data in NOT_TEXT:
            assert_problem(await api.post("/api/v1/servers", **upload(source=data)), 422, "not-text")
            assert_problem(await api.post("/api/v1/games", data={"name": "bin"},
                                          files={"file": ("bin.js", data)}), 422, "not-text")
            assert_problem(await api.post("/api/v1/analysis", files={"file": ("bin.js", data)}), 422, "not-text")
        assert (await api.get("/api/v1/servers")).json()["count"] == 0


async def test_labels_must_be_flat_strings(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        for labels in ('{"a": {"b": 1}}', '{"a": [1, 2]}', '{"a": 1}', '{"a": null}', '{"a": true}', "bad key=1",
                       "{" + ", ".join(f'"k{i}": "v"' for i in range(33)) + "}"):
            for field in ("labels", "node_selector"):
                fields: dict[str, Any] = {field: labels}
                assert_problem(await api.post("/api/v1/servers", **upload(**fields)),
                               422, "validation-error")
        assert (await api.get("/api/v1/servers")).json()["count"] == 0
        created = await api.post("/api/v1/servers", **upload(labels='{"mode": "casual", "region": "eu"}'))
        assert created.status_code == 202
        assert (await api.get(f"/api/v1/servers/{created.json()['id']}")).json()["labels"] == {
            "mode": "casual", "region": "eu"}
