"""Control activity: static analysis of an uploaded game module."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from analysis import AnalysisLimits, analyze
from core.artifacts import LocalArtifactStore
from core.contracts import AnalyzeCodeInput, AnalyzeCodeResult
from core.settings import Settings


class AnalysisActivities:
    def __init__(self, artifacts: LocalArtifactStore, settings: Settings) -> None:
        self.artifacts = artifacts
        self.limits = AnalysisLimits(max_bytes=settings.max_upload_bytes,
                                     max_depth=settings.analysis_max_depth,
                                     time_budget_seconds=settings.analysis_time_budget_seconds)

    @activity.defn(name="analyze_code")
    async def analyze_code(self, input: AnalyzeCodeInput) -> AnalyzeCodeResult:
        """Parse and check the source; the workflow decides what a blocking finding means."""
        try:
            source = self.artifacts.get("sources", input.source_sha256)
        except KeyError:
            raise ApplicationError(f"source {input.source_sha256} is not in the artifact store",
                                   type="SourceMissing", non_retryable=True) from None
        report = await asyncio.to_thread(analyze, source, limits=self.limits, allow_rules=input.allow_rules,
                                         filename=input.filename)
        return AnalyzeCodeResult(report=report)
