"""Analyze a game module without deploying it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile

from api.analysis_pool import AnalysisPoolDep, caller_key
from api.deps import CurrentUser, SettingsDep
from api.uploads import read_source
from core.contracts import AnalysisReport
from core.problems import problems

router = APIRouter(prefix="/api/v1/analysis", tags=["analysis"])


@router.post("", response_model=AnalysisReport, responses=problems(503))
async def analyze_upload(request: Request, user: CurrentUser, settings: SettingsDep, pool: AnalysisPoolDep,
                         file: Annotated[UploadFile, File(description="the game module")]) -> AnalysisReport:
    """Run the analyzer on an upload and return its findings (429 past the key's concurrent analyses)."""
    source = await read_source(file, settings)
    return await pool.analyze(caller_key(request), source, filename=file.filename or "game.js")
