"""What the fleet tests share: uploading versions, creating and watching fleets, allocating."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from core.fleets import fleet_workflow_id
from tests.harness import Harness

HISTORIES = Path(__file__).parent / "histories"


async def upload(api: httpx.AsyncClient, path: Path, name: str, source: bytes | None = None) -> dict[str, Any]:
    resp = await api.post("/api/v1/games", data={"name": name},
                          files={"file": (path.name, source if source is not None else path.read_bytes(),
                                          "application/javascript")})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def create_fleet(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    resp = await api.post("/api/v1/fleets", json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def wait_fleet(api: httpx.AsyncClient, fleet_id: str, check: Callable[[dict[str, Any]], bool],
                     what: str, timeout: float = 90) -> dict[str, Any]:
    """Poll the fleet (its workflow's own view) until `check` holds."""
    fleet: dict[str, Any] = {}
    for _ in range(int(timeout / 0.25)):
        resp = await api.get(f"/api/v1/fleets/{fleet_id}")
        assert resp.status_code == 200, resp.text
        fleet = resp.json()
        if check(fleet):
            return fleet
        await asyncio.sleep(0.25)
    raise AssertionError(f"fleet never got to {what}: {json.dumps(fleet, indent=1)}")


def phases(fleet: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for s in fleet["servers"]:
        out.setdefault(s["phase"], []).append(s["server_id"])
    return out


def ready_ids(fleet: dict[str, Any], version: int | None = None) -> set[str]:
    return {s["server_id"] for s in fleet["servers"]
            if s["phase"] == "ready" and (version is None or s["version"] == version)}


def exactly(fleet: dict[str, Any], **counts: int) -> bool:
    """The fleet holds exactly these many servers per phase, and none in any other."""
    got = {phase: len(ids) for phase, ids in phases(fleet).items()}
    return got == {k: v for k, v in counts.items() if v}


async def allocate(api: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await api.post("/api/v1/allocations", json=body)


async def delete_fleet(h: Harness, api: httpx.AsyncClient, fleet_id: str, history: str | None = None) -> None:
    """Delete the fleet (forced) and wait for its workflow to end; keep its history if asked."""
    resp = await api.delete(f"/api/v1/fleets/{fleet_id}", params={"force": "true"})
    assert resp.status_code == 202, resp.text
    handle = h.client.get_workflow_handle(fleet_workflow_id(fleet_id))
    await asyncio.wait_for(handle.result(), 120)
    if history and os.environ.get("GSF_RECORD_HISTORIES") == "1":
        HISTORIES.mkdir(exist_ok=True)
        (HISTORIES / f"{history}.json").write_text((await handle.fetch_history()).to_json())
