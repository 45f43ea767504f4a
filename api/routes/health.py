"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {
    "description": "Some check failed; the body names it", "content": {"application/json": {"schema": {
        "type": "object", "properties": {"status": {"type": "string"}, "checks": {"type": "object"}}}}}}})
async def ready(request: Request) -> JSONResponse:
    """Ready when the DB, Temporal, the object store and Redis (if set) answer; states in the body."""
    state = request.app.state
    checks: dict[str, str] = {}
    try:
        async with state.sessions() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        if state.temporal is None:
            from core.temporal import connect
            state.temporal = await connect(state.settings)
        await state.temporal.service_client.check_health()
        checks["temporal"] = "ok"
    except Exception as exc:  # noqa: BLE001 - reported in the body
        checks["temporal"] = f"error: {type(exc).__name__}"
    store = getattr(state, "model_store", None)
    if store is not None:
        try:
            await asyncio.wait_for(store.check(), 5)
            checks["object_store"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported in the body
            checks["object_store"] = f"error: {type(exc).__name__}"
    if state.settings.redis_url:
        cache = getattr(state, "model_cache", None)
        try:
            if cache is None:
                raise RuntimeError("no status cache configured")
            await asyncio.wait_for(cache.ping(), 5)
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported in the body
            checks["redis"] = f"error: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)
