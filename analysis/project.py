"""Analysis of a game project: every file the entry reaches, the import graph between them, and
a verdict per npm dependency.

Each file of the game's own code goes through the same analyzer as a single-file game
(`analyze_module`), so every rule holds per file; TypeScript is compiled first (by the
`transpile` the caller hands in: the build tooling lives in gameserver/, which this part may not
import) and findings are put back on the .ts lines through the source map. Imports between the
project's files are followed from the entry; a host module imported anywhere in that graph is
reported with the chain of files that reaches it. docs/projects.md explains the report.
"""

from __future__ import annotations

import posixpath
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from time import perf_counter
from typing import Any

from pydantic import BaseModel, Field

from analysis.analyzer import AnalysisLimits, analyze_module, display_line, finding_order
from analysis.dependencies import DependencyVerdict, judge_dependencies
from analysis.nodejs import HOST_MODULES
from analysis.rules import RULES
from analysis.source import SourceText
from analysis.sourcemap import SourceMap
from core.archives import TYPESCRIPT_SUFFIXES, Project
from core.contracts import Finding, Severity

# `transpile({path: typescript source})` -> {"files": {path: {"code", "map"}}, "errors": [{file,
# line, column, text, line_text}]}: gameserver.project.transpile_typescript is the real one.
Transpiler = Callable[[Mapping[str, str]], Mapping[str, Any]]

_RESOLVE_SUFFIXES = (".ts", ".js", ".mts", ".mjs", ".cts", ".cjs", ".json")
_TS_FOR_JS = {".js": ".ts", ".mjs": ".mts", ".cjs": ".cts"}
# The file name the analyzer sees for compiled TypeScript: it picks the parse goal by extension.
_AS_JS = {".ts": ".js", ".mts": ".mjs", ".cts": ".cjs"}


class ProjectFinding(Finding):
    """A finding in one file of the project (lines and columns in that file, .ts lines for TypeScript)."""

    file: str


class HostImport(BaseModel):
    """A host module imported somewhere in the graph: where, and the files that lead there from the entry."""

    module: str
    file: str
    line: int
    column: int
    chain: list[str]


class ProjectReport(BaseModel):
    """What `analyze_project` found: `ok` is False when a finding or a dependency blocks."""

    ok: bool
    sha256: str
    entry: str
    module_type: str
    files: list[str] = Field(default_factory=list)
    unreachable: list[str] = Field(default_factory=list)
    findings: list[ProjectFinding] = Field(default_factory=list)
    host_imports: list[HostImport] = Field(default_factory=list)
    dependencies: list[DependencyVerdict] = Field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def blocking(self) -> list[ProjectFinding]:
        return [f for f in self.findings if f.severity == Severity.BLOCK]

    @property
    def blocking_dependencies(self) -> list[DependencyVerdict]:
        return [d for d in self.dependencies if d.blocking]


def resolve_import(files: Mapping[str, bytes], importer: str, specifier: str) -> str | None:
    """The project file a relative specifier names from `importer`, Node's and TypeScript's way
    (as written, `./board.js` meaning `board.ts`, an extension added, a folder's index), or None."""
    if not (specifier in (".", "..") or specifier.startswith(("./", "../"))):
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(importer), specifier))
    if joined == ".." or joined.startswith("../"):
        return None
    stem, ext = posixpath.splitext(joined)
    candidates = [joined]
    if ext in _TS_FOR_JS:
        candidates.append(stem + _TS_FOR_JS[ext])
    candidates += [joined + suffix for suffix in _RESOLVE_SUFFIXES]
    folder = "" if joined == "." else joined + "/"
    candidates += [f"{folder}index{suffix}" for suffix in _RESOLVE_SUFFIXES]
    return next((c for c in candidates if c in files), None)


def analyze_project(project: Project, *, transpile: Transpiler | None = None,
                    node_modules_root: Path | None = None, allow_packages: Iterable[str] = (),
                    allow_rules: Iterable[str] = (), limits: AnalysisLimits | None = None) -> ProjectReport:
    """Analyze the files the entry reaches and the installed dependencies.

    `node_modules_root` holds `node_modules/` as `npm ci` laid it out (without it dependencies are
    judged from the lockfile alone); `allow_packages` is the admin's allow list of `name@version`.
    """
    started = perf_counter()
    allow_rules = list(allow_rules)
    findings: list[ProjectFinding] = []
    compiled = _compile(project, transpile, findings)
    visited: dict[str, str | None] = {project.entry: None}  # file -> the file that first imported it
    order: list[str] = []
    host_imports: list[HostImport] = []
    queue = deque([project.entry])
    while queue:
        path = queue.popleft()
        order.append(path)
        if path.endswith(".json") or (path.endswith(TYPESCRIPT_SUFFIXES) and path not in compiled):
            continue  # data, or TypeScript that did not compile (its syntax errors are findings)
        chain = _chain(visited, path)
        for site, target in _analyze_file(project, path, compiled.get(path), allow_rules, limits, chain, findings):
            if target is not None:
                if target not in visited:
                    visited[target] = path
                    queue.append(target)
                continue
            base = site.specifier.removeprefix("node:").split("/", 1)[0]
            if base in HOST_MODULES:
                host_imports.append(HostImport(module=base, file=path, line=site.line, column=site.column,
                                               chain=chain))
    dependencies = judge_dependencies(project.lockfile, node_modules_root, allow=allow_packages)
    findings.sort(key=lambda f: (*finding_order(f), f.file))
    ok = not any(f.severity == Severity.BLOCK for f in findings) and not any(d.blocking for d in dependencies)
    return ProjectReport(
        ok=ok, sha256=project.sha256, entry=project.entry, module_type=project.module_type, files=order,
        unreachable=[p for p in project.sources if p not in visited], findings=findings,
        host_imports=host_imports, dependencies=dependencies,
        duration_ms=round((perf_counter() - started) * 1000, 3))


def _chain(visited: Mapping[str, str | None], path: str) -> list[str]:
    chain = [path]
    parent = visited.get(path)
    while parent is not None and len(chain) <= len(visited):
        chain.append(parent)
        parent = visited.get(parent)
    return chain[::-1]


def _compile(project: Project, transpile: Transpiler | None,
             findings: list[ProjectFinding]) -> dict[str, tuple[str, SourceMap]]:
    """The project's TypeScript as JavaScript with source maps; syntax errors become findings."""
    sources = {p: project.files[p].decode("utf-8", errors="replace").removeprefix("\ufeff")
               for p in project.sources if p.endswith(TYPESCRIPT_SUFFIXES)}
    if not sources:
        return {}
    if transpile is None:
        for path in sources:
            findings.append(_finding(path, "internal-error", "TypeScript needs the build tooling (esbuild) to "
                                     "be analyzed; the file was not analyzed", 1, 1, ""))
        return {}
    answer = transpile(sources)
    for error in answer.get("errors", []):
        path = str(error.get("file") or "")
        line, column = int(error.get("line") or 1), int(error.get("column") or 1)
        findings.append(_finding(path, "syntax-error", str(error.get("text") or "syntax error"), line, column,
                                 str(error.get("line_text") or "")))
    out: dict[str, tuple[str, SourceMap]] = {}
    for path, result in dict(answer.get("files", {})).items():
        out[str(path)] = (str(result["code"]), SourceMap(str(result["map"])))
    return out


def _finding(path: str, rule: str, message: str, line: int, column: int, source_line: str) -> ProjectFinding:
    spec = RULES[rule]
    return ProjectFinding(file=path, rule=rule, severity=spec.severity, message=message, line=line,
                          column=column, end_line=line, end_column=column + 1,
                          source_line=display_line(source_line, column - 1)[0], hint=spec.hint)


class _Site:
    __slots__ = ("column", "line", "specifier")

    def __init__(self, specifier: str, line: int, column: int) -> None:
        self.specifier, self.line, self.column = specifier, line, column


def _analyze_file(project: Project, path: str, compiled: tuple[str, SourceMap] | None, allow_rules: list[str],
                  limits: AnalysisLimits | None, chain: list[str],
                  findings: list[ProjectFinding]) -> list[tuple[_Site, str | None]]:
    """Analyze one file; its findings go to `findings`, its imports come back with their targets."""
    files = project.files
    source_map = compiled[1] if compiled is not None else None
    data = compiled[0].encode() if compiled is not None else files[path]
    stem, ext = posixpath.splitext(path)
    filename = stem + _AS_JS.get(ext, ext)
    result = analyze_module(data, filename=filename, allow_rules=allow_rules, limits=limits,
                            is_local=lambda spec: resolve_import(files, path, spec) is not None)
    original = SourceText(files[path].decode("utf-8", errors="replace").removeprefix("\ufeff"))
    via = f" (reached from the entry through {' → '.join(chain)})" if len(chain) > 1 else ""
    for finding in result.report.findings:
        rule = RULES.get(finding.rule)
        if path != project.entry and rule is not None and rule.category == "contract":
            continue  # the module contract binds the entry; the other files are its helpers
        line, column, end_line, end_column = finding.line, finding.column, finding.end_line, finding.end_column
        if source_map is not None:
            start = source_map.original(line, column)
            end = source_map.original(end_line, end_column) if start is not None else None
            if start is not None:
                line, column = start.line, start.column
                end_line, end_column = (end.line, end.column) if end is not None else (line, column + 1)
        message = finding.message + (via if finding.rule == "host-module" else "")
        findings.append(ProjectFinding(
            file=path, rule=finding.rule, severity=finding.severity, message=message, line=line, column=column,
            end_line=end_line, end_column=end_column, hint=finding.hint,
            source_line=display_line(original.line_text(line), column - 1)[0] if source_map else finding.source_line))
    sites = []
    for site in result.imports:
        line, column = site.line, site.column
        if source_map is not None and (at := source_map.original(line, column)) is not None:
            line, column = at.line, at.column
        sites.append((_Site(site.specifier, line, column), resolve_import(files, path, site.specifier)))
    return sites

