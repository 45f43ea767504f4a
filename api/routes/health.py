"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """Ready when the database and Temporal answer; each dependency's state in the body."""
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
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)
