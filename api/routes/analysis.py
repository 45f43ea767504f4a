"""Analyze a game module without deploying it."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, File, UploadFile

from api.deps import CurrentUser, SettingsDep
from core.analysis import AnalysisLimits, analyze
from core.contracts import AnalysisReport
from core.errors import UploadTooLarge

router = APIRouter(prefix="/api/v1/analysis", tags=["analysis"])


@router.post("", response_model=AnalysisReport)
async def analyze_upload(user: CurrentUser, settings: SettingsDep,
                         file: Annotated[UploadFile, File(description="the game module")]) -> AnalysisReport:
    """Run the analyzer on an upload and return its findings."""
    source = await file.read(settings.max_upload_bytes + 1)
    if len(source) > settings.max_upload_bytes:
        raise UploadTooLarge(f"the game module is larger than {settings.max_upload_bytes} bytes")
    limits = AnalysisLimits(max_bytes=settings.max_upload_bytes, max_depth=settings.analysis_max_depth,
                            time_budget_seconds=settings.analysis_time_budget_seconds)
    return await asyncio.to_thread(analyze, source, limits=limits, filename=file.filename or "game.js")
