"""A project's analysis as the one report every deployment path already reads (`AnalysisReport`).

The deployment workflow, the game-version upload and the server records know the report of a
single-file game: `ok`, findings with line/column, the entry's `exports` (maxPlayers, maxRooms).
A project answers the same report, so none of them needs a second shape: each finding carries its
`file`, a blocked npm package is a blocking finding on the lockfile naming the package, and the
entry's exports come from the entry file (compiled first when it is TypeScript).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from analysis.analyzer import AnalysisLimits, analyze_module
from analysis.dependencies import DependencyVerdict
from analysis.project import Transpiler, analyze_project, resolve_import
from core.archives import TYPESCRIPT_SUFFIXES, Project
from core.contracts import AnalysisReport, Finding, Severity

BLOCKED_DEPENDENCY = "blocked-dependency"
_AS_JS = {".ts": ".js", ".mts": ".mjs", ".cts": ".cjs"}


def project_report(project: Project, *, transpile: Transpiler | None, node_modules_root: Path | None = None,
                   allow_packages: Iterable[str] = (), allow_rules: Iterable[str] = (),
                   limits: AnalysisLimits | None = None) -> AnalysisReport:
    """analyze_project(...) as an AnalysisReport (see the module's docstring)."""
    allow_rules = list(allow_rules)
    answers: dict[str, Mapping[str, Any]] = {}

    def remembering(sources: Mapping[str, str]) -> Mapping[str, Any]:
        assert transpile is not None
        answer = transpile(sources)
        answers.update(dict(answer.get("files", {})))
        return answer

    report = analyze_project(project, transpile=remembering if transpile is not None else None,
                             node_modules_root=node_modules_root, allow_packages=allow_packages,
                             allow_rules=allow_rules, limits=limits)
    findings = [Finding.model_validate(f.model_dump()) for f in report.findings]
    findings += [_dependency_finding(project, d) for d in report.blocking_dependencies]
    return AnalysisReport(
        ok=report.ok, sha256=project.sha256, size=sum(len(b) for b in project.files.values()),
        module_type=project.module_type, findings=findings,
        exports=_entry_exports(project, answers, limits), allowed_rules=allow_rules,
        duration_ms=report.duration_ms, entry=project.entry, files=report.files,
        dependencies=[d.model_dump() for d in report.dependencies])


def _entry_exports(project: Project, compiled: Mapping[str, Mapping[str, Any]],
                   limits: AnalysisLimits | None) -> dict[str, object]:
    """What the entry exports (hooks, maxPlayers, maxRooms), read from its (compiled) code."""
    entry = project.entry
    if entry.endswith(TYPESCRIPT_SUFFIXES):
        answer = compiled.get(entry)
        if answer is None:
            return {}  # it did not compile: its syntax errors are the findings
        data = str(answer["code"]).encode()
    else:
        data = project.files[entry]
    stem, ext = posixpath.splitext(entry)
    result = analyze_module(data, filename=stem + _AS_JS.get(ext, ext), limits=limits,
                            is_local=lambda spec: resolve_import(project.files, entry, spec) is not None)
    return dict(result.report.exports)


def _dependency_finding(project: Project, verdict: DependencyVerdict) -> Finding:
    """A blocked package as a blocking finding on its line of package-lock.json."""
    lock = project.files.get("package-lock.json", b"").decode("utf-8", errors="replace").splitlines()
    needle = f'"node_modules/{verdict.name}"'
    line = next((n for n, text in enumerate(lock, 1) if needle in text), 1)
    text = lock[line - 1].strip() if lock else ""
    return Finding(
        rule=BLOCKED_DEPENDENCY, severity=Severity.BLOCK, file="package-lock.json", line=line, column=1,
        end_line=line, end_column=2, source_line=text[:200],
        message=f"the npm package {verdict.package} is blocked: " + "; ".join(verdict.reasons),
        hint=f"drop or replace the package, or ask an admin to allow-list {verdict.package} (GSF_ALLOWED_PACKAGES)")
