"""CORS: no allow-list, no CORS headers at all; listed origins get them, others do not."""

from __future__ import annotations

import pytest

from core.settings import Settings
from tests.security.conftest import MakeApi

PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization,content-type"}


async def test_without_an_allow_list_there_are_no_cors_headers(make_api: MakeApi) -> None:
    api = await make_api()
    client = await api.client(key=api.admin_key)
    origin = {"Origin": "https://console.example.com"}
    preflight = await client.options("/api/v1/servers", headers={**origin, **PREFLIGHT})
    assert not [h for h in preflight.headers if h.startswith("access-control-")]
    resp = await client.get("/api/v1/servers", headers=origin)
    assert resp.status_code == 200
    assert not [h for h in resp.headers if h.startswith("access-control-")]


async def test_listed_origins_get_cors_headers_and_others_do_not(make_api: MakeApi) -> None:
    api = await make_api(cors_origins=["https://console.example.com"])
    client = await api.client(key=api.admin_key)
    allowed = {"Origin": "https://console.example.com"}
    preflight = await client.options("/api/v1/servers", headers={**allowed, **PREFLIGHT})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://console.example.com"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in preflight.headers
    resp = await client.get("/api/v1/servers", headers=allowed)
    assert resp.headers["access-control-allow-origin"] == "https://console.example.com"
    assert "x-request-id" in resp.headers["access-control-expose-headers"].lower()

    stranger = {"Origin": "https://evil.example"}
    refused = await client.options("/api/v1/servers", headers={**stranger, **PREFLIGHT})
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    resp = await client.get("/api/v1/servers", headers=stranger)
    assert "access-control-allow-origin" not in resp.headers


async def test_a_rate_limited_answer_still_carries_cors_headers(make_api: MakeApi) -> None:
    """A browser must be able to read the 429 (and its Retry-After) to back off."""
    api = await make_api(cors_origins=["https://console.example.com"], api_rate_per_ip=0.1, api_burst_per_ip=1)
    client = await api.client()
    allowed = {"Origin": "https://console.example.com"}
    await client.get("/api/v1/servers", headers=allowed)
    resp = await client.get("/api/v1/servers", headers=allowed)
    assert resp.status_code == 429
    assert resp.headers["access-control-allow-origin"] == "https://console.example.com"
    assert "retry-after" in resp.headers["access-control-expose-headers"].lower()


def test_origins_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GSF_CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    assert Settings(env="test", secret_key="x").cors_origins == ["https://a.example", "https://b.example"]
