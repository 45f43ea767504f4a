"""What the web console needs to know about this installation (no secrets)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from api.deps import CurrentUser, SettingsDep

router = APIRouter(prefix="/api/v1/config", tags=["config"])


class PlanPublic(BaseModel):
    """The resources every game server gets (one plan until plans can be chosen per upload)."""

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
        plans=[PlanPublic(name="standard", memory_mb=settings.server_memory_mb, cpus=settings.server_cpus,
                          pids=settings.server_pids)],
        is_admin=user.is_admin,
    )
