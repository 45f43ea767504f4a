"""Control activity: static analysis of an uploaded game module or game project.

A stored source that is an archive (core/archives.py `is_archive`) is a project (issue #24): its
dependency layer is made first (npm ci --ignore-scripts, cached by lockfile hash, the same cache
the node's image build reuses on this host), so each installed package is judged from its files,
then every file the entry reaches is analyzed (analysis/project_report.py). The esbuild run that
compiles its TypeScript for the analysis also bundles it (gameserver/project.py `Compilation`): an
accepted project's bundle is kept under the data dir, where the node's image build on this host
finds it instead of running esbuild again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from analysis import AnalysisLimits, analyze
from analysis.project_report import project_report
from core.archives import is_archive, project_limits, read_archive
from core.artifacts import LocalArtifactStore
from core.contracts import AnalysisReport, AnalyzeCodeInput, AnalyzeCodeResult, Finding, Severity
from core.errors import GsfError
from core.settings import Settings
from gameserver.project import BuildError, settings_builder

T = TypeVar("T")


class AnalysisActivities:
    def __init__(self, artifacts: LocalArtifactStore, settings: Settings) -> None:
        self.artifacts = artifacts
        self.settings = settings
        self.limits = AnalysisLimits(max_bytes=settings.max_upload_bytes,
                                     max_depth=settings.analysis_max_depth,
                                     time_budget_seconds=settings.analysis_time_budget_seconds)
        self.projects = settings_builder(settings)

    @activity.defn(name="analyze_code")
    async def analyze_code(self, input: AnalyzeCodeInput) -> AnalyzeCodeResult:
        """Parse and check the source; the workflow decides what a blocking finding means."""
        try:
            source = self.artifacts.get("sources", input.source_sha256)
        except KeyError:
            raise ApplicationError(f"source {input.source_sha256} is not in the artifact store",
                                   type="SourceMissing", non_retryable=True) from None
        if is_archive(source):
            return AnalyzeCodeResult(report=await _heartbeating(asyncio.to_thread(self._project, source, input)))
        report = await _heartbeating(asyncio.to_thread(analyze, source, limits=self.limits,
                                                       allow_rules=input.allow_rules, filename=input.filename))
        return AnalyzeCodeResult(report=report)

    def _project(self, archive: bytes, input: AnalyzeCodeInput) -> AnalysisReport:
        try:
            project = read_archive(archive, input.filename, project_limits(self.settings))
        except GsfError as exc:  # checked at upload; a limit lowered since is still a clear refusal
            return _refusal(input.source_sha256, len(archive), exc.slug, exc.detail)
        try:
            layer = self.projects.prepare(project)
        except BuildError as exc:
            return _refusal(project.sha256, len(archive), "dependencies-not-installed",
                            f"{exc}: {exc.output.strip()[-600:]}", file="package-lock.json")
        with self.projects.compilation(project, layer) as run:
            report = project_report(project, transpile=run.transpile,
                                    node_modules_root=layer.path if layer is not None else None,
                                    allow_packages=self.settings.allowed_packages, allow_rules=input.allow_rules,
                                    limits=self.limits)
            if report.ok:
                run.keep()  # a project that does not bundle is the image step's to report
        return report


def _refusal(sha: str, size: int, rule: str, message: str, file: str = "") -> AnalysisReport:
    finding = Finding(rule=rule, severity=Severity.BLOCK, message=message, line=1, column=1, end_line=1,
                      end_column=2, file=file)
    return AnalysisReport(ok=False, sha256=sha, size=size, findings=[finding])


HEARTBEAT_EVERY_SECONDS = 2.0


async def _heartbeating(work: Awaitable[T]) -> T:
    """`work`'s result, heartbeating while it runs: the workflow's heartbeat timeout then tells a
    worker that died mid-analysis (an npm ci can take minutes) from one that is still busy."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY_SECONDS)
        if done:
            return task.result()
        activity.heartbeat()
