"""What the web console needs to know about this installation (no secrets)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from api.deps import CurrentUser, SettingsDep

router = APIRouter(prefix="/api/v1/config", tags=["config"])


class PlanPublic(BaseModel):
    """A resource plan a server can be deployed with."""

    name: str
    memory_mb: int
    cpus: float
    pids: int


class ConfigPublic(BaseModel):
    version: str
    temporal_ui_url: str
    temporal_namespace: str
    matchmaker_url: str
    max_upload_bytes: int
    plans: list[PlanPublic]
    default_plan: str
    is_admin: bool


@router.get("", response_model=ConfigPublic)
async def get_config(request: Request, user: CurrentUser, settings: SettingsDep) -> ConfigPublic:
    """Links, limits and the version the console shows; also tells whether the key is an admin's."""
    return ConfigPublic(
        version=request.app.version,
        temporal_ui_url=settings.temporal_ui_url,
        temporal_namespace=settings.temporal_namespace,
        matchmaker_url=settings.matchmaker_url,
        max_upload_bytes=settings.max_upload_bytes,
        plans=[PlanPublic(name=name, memory_mb=int(p["memory_mb"]), cpus=float(p["cpus"]), pids=int(p["pids"]))
               for name, p in settings.plans.items()],
        default_plan=settings.default_plan,
        is_admin=user.is_admin,
    )
