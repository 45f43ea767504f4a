"""The API's edges: authentication, ownership, and problem+json for every bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from core.settings import Settings
from tests.conftest import GAMES
from tests.harness import Harness, platform
from tests.node_tokens import issue_node_token
from tests.problems import assert_problem

pytestmark = [pytest.mark.temporal]
PROBLEM = "application/problem+json"


@pytest.fixture
async def h(settings: Settings, temporal_env: Any) -> Any:
    # No agent: nothing gets placed, which is all these tests need.
    async with platform(settings, temporal_env.client, agent=False) as harness:
        yield harness


def upload(name: str = "demo", source: bytes | None = None, filename: str = "chat.js",
           **form: str) -> dict[str, Any]:
    data = (GAMES / "chat.js").read_bytes() if source is None else source
    return {"data": {"name": name, **form}, "files": {"file": (filename, data, "application/javascript")}}


async def test_health_needs_no_key_and_everything_else_does(h: Harness) -> None:
    async with httpx.AsyncClient(base_url=h.settings.public_api_url) as anon:
        assert (await anon.get("/health")).json() == {"status": "ok"}
        for method, path in [("GET", "/api/v1/servers"), ("POST", "/api/v1/servers"),
                             ("GET", "/api/v1/servers/x"), ("DELETE", "/api/v1/servers/x"),
                             ("GET", "/api/v1/nodes"), ("POST", "/api/v1/analysis")]:
            resp = await anon.request(method, path)
            assert_problem(resp, 401, "unauthorized")
            assert resp.headers["www-authenticate"] == "Bearer"
        resp = await anon.get("/api/v1/servers", headers={"Authorization": "Bearer gsf_not-a-key"})
        assert_problem(resp, 401, "unauthorized")


async def test_another_users_server_is_a_404(h: Harness) -> None:
    alice, bob, admin = (await h.user_key("alice@example.com"), await h.user_key("bob@example.com"),
                         await h.user_key("root@example.com", admin=True))
    async with h.api(alice) as a, h.api(bob) as b, h.api(admin) as root:
        created = await a.post("/api/v1/servers", **upload())
        assert created.status_code == 202
        body = created.json()
        assert body["status_url"].endswith(f"/api/v1/servers/{body['id']}")
        sid = body["id"]
        assert (await a.get(f"/api/v1/servers/{sid}")).status_code == 200
        for method, path in [("GET", ""), ("GET", "/logs"), ("GET", "/analysis"), ("POST", "/stop"), ("DELETE", "")]:
            assert_problem(await b.request(method, f"/api/v1/servers/{sid}{path}"), 404, "not-found")
        assert sid not in [s["id"] for s in (await b.get("/api/v1/servers")).json()["items"]]
        assert sid in [s["id"] for s in (await root.get("/api/v1/servers")).json()["items"]]
        assert (await root.get(f"/api/v1/servers/{sid}")).status_code == 200
        assert_problem(await b.get("/api/v1/nodes"), 403, "forbidden")
        assert (await root.get("/api/v1/nodes")).status_code == 200


@pytest.mark.parametrize(("kwargs", "status", "slug"), [
    ({"name": "bad/name"}, 400, "bad-request"),
    ({"name": ""}, 422, "validation-error"),
    ({"filename": "game.py"}, 400, "invalid-upload"),
    ({"source": b"   \n"}, 400, "invalid-upload"),
    ({"source": b"x" * (1024 * 1024 + 1)}, 413, "upload-too-large"),
    ({"labels": "{not json"}, 400, "bad-request"),
    ({"labels": "novalue"}, 400, "bad-request"),
    ({"labels": "bad key=1"}, 422, "validation-error"),
    ({"max_players": "0"}, 422, "validation-error"),
    ({"max_players": "many"}, 422, "validation-error"),
    ({"allow_rules": "eval"}, 403, "forbidden"),
    ({"plan": "gigantic"}, 422, "invalid-limits"),
    ({"memory_mb": "999999"}, 422, "invalid-limits"),
    ({"plan": "large", "cpus": "64"}, 422, "invalid-limits"),
    ({"pids": "2"}, 422, "invalid-limits"),
])
async def test_bad_uploads_are_explained(h: Harness, kwargs: dict[str, Any], status: int, slug: str) -> None:
    key = await h.user_key("dev@example.com")
    args = {k: v for k, v in kwargs.items() if k in ("source", "filename", "name")}
    form = {k: v for k, v in kwargs.items() if k not in args}
    async with h.api(key) as api:
        resp = await api.post("/api/v1/servers", **upload(**args, **form))
        assert_problem(resp, status, slug)
        assert (await api.get("/api/v1/servers")).json()["count"] == 0, "a refused upload leaves no record"


async def test_admin_allow_list_is_checked_and_recorded(h: Harness) -> None:
    admin = await h.user_key("root@example.com", admin=True)
    async with h.api(admin) as api:
        for bad in ("no-such-rule", "syntax-error"):
            assert_problem(await api.post("/api/v1/servers", **upload(allow_rules=bad)), 422, "invalid-allow-list")
        resp = await api.post("/api/v1/servers", **upload(allow_rules="eval, string-timer"))
        assert resp.status_code == 202
        sid = resp.json()["id"]
    from core.db.models import GameServer

    async with h.sessions() as s:
        server = await s.get(GameServer, sid)
        assert server is not None
        assert server.allow_rules == ["eval", "string-timer"]


async def test_missing_file_and_unknown_routes(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        assert_problem(await api.post("/api/v1/servers", data={"name": "x"}), 422, "validation-error")
        assert_problem(await api.get("/api/v1/nope"), 404, "not-found")
        assert_problem(await api.get("/api/v1/servers/" + "x" * 200), 404, "not-found")
        assert_problem(await api.get("/api/v1/servers", params={"limit": 0}), 422, "validation-error")


async def test_analysis_without_deploying(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        ok = await api.post("/api/v1/analysis", files={"file": ("chat.js", (GAMES / "chat.js").read_bytes())})
        assert ok.status_code == 200
        assert ok.json()["ok"] is True
        bad = await api.post("/api/v1/analysis", files={"file": ("x.js", b"require('child_process').exec('id')")})
        assert bad.status_code == 200
        assert bad.json()["ok"] is False
        assert any(f["rule"] == "host-module" for f in bad.json()["findings"])


async def test_agent_endpoints_take_only_node_tokens(h: Harness) -> None:
    user_key = await h.user_key("dev@example.com")
    token_a = await issue_node_token(h.sessions, "node-a")
    async with httpx.AsyncClient(base_url=h.settings.public_api_url) as c:
        resp = await c.put("/api/v1/agent/heartbeat", json={"metrics": {}},
                           headers={"Authorization": f"Bearer {user_key}"})
        assert_problem(resp, 401, "unauthorized")
        resp = await c.put("/api/v1/agent/heartbeat", json={"metrics": {}, "surprise": 1},
                           headers={"Authorization": f"Bearer {token_a}"})
        assert_problem(resp, 422, "validation-error")
        resp = await c.put("/api/v1/agent/heartbeat", json={"metrics": {"cpu_percent": 3}},
                           headers={"Authorization": f"Bearer {token_a}"})
        assert resp.status_code == 204
    async with h.api(user_key) as api:
        sid = (await api.post("/api/v1/servers", **upload())).json()["id"]
    from core.db.models import GameServer

    async with h.sessions() as s:
        server = await s.get(GameServer, sid)
        assert server is not None
        server.node_id = "node-b"
        await s.commit()
    async with httpx.AsyncClient(base_url=h.settings.public_api_url) as c:
        resp = await c.post("/api/v1/agent/logs", headers={"Authorization": f"Bearer {token_a}"},
                            json={"lines": [{"server_id": sid, "ts": "2026-01-01T00:00:00Z", "line": "forged"}]})
        assert_problem(resp, 403, "forbidden")


async def test_every_response_has_a_request_id_and_security_headers(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        ok = await api.get("/api/v1/servers", headers={"X-Request-ID": "trace-abc-123"})
        assert ok.headers["x-request-id"] == "trace-abc-123"
        for name in ("x-content-type-options", "referrer-policy", "x-frame-options", "content-security-policy"):
            assert name in ok.headers
        missing = await api.get("/api/v1/servers/nope")
        assert missing.json()["request_id"] == missing.headers["x-request-id"]
        big = await api.post("/api/v1/pipelines", content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                             headers={"content-type": "application/json"})
        assert_problem(big, 413, "request-too-large")

        # The same without a length (chunked): counted while the route reads it, still a 413.
        async def chunks() -> AsyncIterator[bytes]:
            yield b"{"
            for _ in range(21):
                yield b" " * 100_000
            yield b"}"

        streamed = await api.post("/api/v1/pipelines", content=chunks(), headers={"content-type": "application/json"})
        assert "content-length" not in streamed.request.headers
        assert_problem(streamed, 413, "request-too-large")


async def test_users_keys_scopes_and_audit(h: Harness) -> None:
    admin = await h.user_key("root@example.com", admin=True)
    async with h.api(admin) as root:
        created = await root.post("/api/v1/users", json={"email": "carol@example.com"})
        assert created.status_code == 201
        carol_key = created.json()["key"]["key"]
        assert (await root.post("/api/v1/users", json={"email": "carol@example.com"})).status_code == 409
        assert_problem(await root.post("/api/v1/users", json={"email": "nope"}), 422, "validation-error")
    async with h.api(carol_key) as carol:
        assert_problem(await carol.post("/api/v1/users", json={"email": "x@example.com"}), 403, "forbidden")
        assert_problem(await carol.post("/api/v1/keys", json={"scopes": ["admin"]}), 403, "forbidden")
        models_only = (await carol.post("/api/v1/keys", json={"name": "ci", "scopes": ["models"]})).json()
        listed = (await carol.get("/api/v1/keys")).json()
        assert {k["name"] for k in listed} == {"first", "ci"}
        assert all("key" not in k and "key_hash" not in k for k in listed)
    async with h.api(models_only["key"]) as narrow:
        assert_problem(await narrow.get("/api/v1/servers"), 403, "forbidden")
        assert (await narrow.get("/api/v1/models")).status_code == 200
    async with h.api(carol_key) as carol:
        servers_only = (await carol.post("/api/v1/keys", json={"scopes": ["servers"]})).json()
    async with h.api(servers_only["key"]) as narrow:
        assert_problem(await narrow.get("/api/v1/models"), 403, "forbidden")
        assert (await narrow.get("/api/v1/servers")).status_code == 200
    async with h.api(carol_key) as carol:
        assert (await carol.delete(f"/api/v1/keys/{models_only['id']}")).status_code == 204
    async with h.api(models_only["key"]) as revoked:
        assert_problem(await revoked.get("/api/v1/keys"), 401, "unauthorized")
    async with h.api(admin) as root:
        entries = (await root.get("/api/v1/audit")).json()
        assert any(e["method"] == "DELETE" and e["path"].startswith("/api/v1/keys/") and e["status"] == 204
                   for e in entries)
        assert any(e["method"] == "POST" and e["path"] == "/api/v1/users" and e["status"] == 201 for e in entries)
    async with h.api(carol_key) as carol:
        assert_problem(await carol.get("/api/v1/audit"), 403, "forbidden")


async def test_openapi_documents_every_route(h: Harness) -> None:
    async with httpx.AsyncClient(base_url=h.settings.public_api_url) as anon:
        spec = (await anon.get("/openapi.json")).json()
        assert (await anon.get("/docs")).status_code == 200
    ops = [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()]
    assert len(ops) > 40
    assert [(p, m) for p, m, op in ops if not op.get("summary")] == []
