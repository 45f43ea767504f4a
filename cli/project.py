"""The CLI's side of game projects (issue #24): what is a project, `gsf check` of one, and the
build `gsf dev` runs. A project is a folder, a .zip/.tar.gz, or a TypeScript file; anything else
is a single module file and takes the commands' old path unchanged. docs/projects.md."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.text import Text

from analysis import AnalysisLimits, display_line
from analysis.project_report import project_report
from analysis.source import SourceText
from core.archives import SKIPPED_DIRS, TYPESCRIPT_SUFFIXES, Project, is_archive, project_limits, read_project
from core.contracts import AnalysisReport, Finding, Severity
from core.errors import GsfError
from core.settings import Settings
from gameserver.project import BUNDLE_DIR, BuildError, BuildResult, settings_builder, transpile_typescript

_STYLE = {Severity.BLOCK: "bold red", Severity.WARN: "bold yellow", Severity.INFO: "bold cyan"}
_HEADING = {Severity.BLOCK: "Blocking", Severity.WARN: "Warnings", Severity.INFO: "Notes"}


def is_project(path: Path) -> bool:
    """A folder, an archive (by its first bytes) or a TypeScript file."""
    path = Path(path)
    if path.is_dir() or path.name.endswith(TYPESCRIPT_SUFFIXES):
        return True
    try:
        with path.open("rb") as fh:
            return is_archive(fh.read(4))
    except OSError:
        return False


def analyze_local(path: Path, project: Project, settings: Settings, allow: list[str]) -> AnalysisReport:
    """The platform's analysis of a project on this machine. The packages are judged from the
    folder's own `node_modules/` when the developer installed them, else from the lockfile."""
    root = Path(path) if Path(path).is_dir() and (Path(path) / "node_modules").is_dir() else None
    limits = AnalysisLimits(max_bytes=settings.project_max_file_bytes, max_depth=settings.analysis_max_depth,
                            time_budget_seconds=settings.analysis_time_budget_seconds)
    return project_report(project, transpile=transpile_typescript, node_modules_root=root,
                          allow_packages=settings.allowed_packages, allow_rules=allow, limits=limits)


def run_project_check(path: Path, settings: Settings, as_json: bool, allow: list[str],
                      console: Console | None = None) -> int:
    """`gsf check <project>`: exit 0 clean, 1 blocked, 2 warnings only, 3 unreadable."""
    from cli.check import EXIT_UNREADABLE, exit_code

    out = console or Console(highlight=False)
    err = Console(stderr=True, highlight=False) if console is None else console
    try:
        project = read_project(path, project_limits(settings))
        report = analyze_local(path, project, settings, allow)
    except GsfError as exc:
        err.print(Text(f"gsf check: {path}: {exc.detail} ({exc.slug})", style="red"))
        return EXIT_UNREADABLE
    except BuildError as exc:
        err.print(Text(f"gsf check: {exc}", style="red"))
        return EXIT_UNREADABLE
    code = exit_code(report)
    if as_json:
        payload = {"file": str(path), "exit_code": code, **report.model_dump(mode="json")}
        out.out(json.dumps(payload, indent=2, ensure_ascii=False), highlight=False)
        return code
    for severity in (Severity.BLOCK, Severity.WARN, Severity.INFO):
        group = [f for f in report.findings if f.severity == severity]
        if group:
            out.print(Text(f"{_HEADING[severity]} ({len(group)})", style=_STYLE[severity]))
            for finding in group:
                print_project_finding(out, project, finding)
            out.print()
    blocked = [d for d in report.dependencies if d.get("verdict") == "blocked"]
    counts = {s: sum(1 for f in report.findings if f.severity == s) for s in Severity}
    out.print(Text(f"{path}: entry {report.entry}, {len(report.files)} files, {len(report.dependencies)} "
                   f"packages ({len(blocked)} blocked) · {counts[Severity.BLOCK]} blocking, "
                   f"{counts[Severity.WARN]} warnings, {counts[Severity.INFO]} notes · {report.duration_ms:.0f} ms"))
    verdict = {1: ("✗ blocked: the platform would reject this project", "bold red"),
               2: ("! deployable, with warnings", "bold yellow"), 0: ("✓ clean", "bold green")}[code]
    out.print(Text(verdict[0], style=verdict[1]))
    return code


def print_project_finding(out: Console, project: Project, finding: Finding) -> None:
    head = Text()
    head.append(f"  {finding.file or project.entry}:{finding.line}:{finding.column}  ", style="bold")
    head.append(finding.rule, style=_STYLE[finding.severity])
    head.append(f"  {finding.message}")
    out.print(head)
    data = project.files.get(finding.file)
    if data is not None and finding.source_line:
        line = SourceText(data.decode("utf-8", errors="replace").removeprefix("\ufeff")).line_text(finding.line)
        shown, caret = display_line(line, max(0, finding.column - 1))
        out.print(Text(f"{finding.line:>6} │ ", style="dim") + Text(shown))
        out.print(Text(" " * 6 + " │ ", style="dim") + Text(" " * caret + "^", style=_STYLE[finding.severity]))
    if finding.hint:
        out.print(Text(f"         hint: {finding.hint}", style="dim"))


def build_local(project: Project, settings: Settings) -> BuildResult:
    """The platform's build of a project on this machine (dependency layer + bundle, both cached
    under the data dir), for `gsf dev`: run `result.entry_file` with `result.runtime_env()`."""
    return settings_builder(settings).build(project)


def project_signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    """(path, size, mtime) of every file of a project folder (not node_modules, .git, .gsf): a
    change in any of them is a save to reload on."""
    root = Path(root)
    if not root.is_dir():
        stat = root.stat()
        return ((root.name, stat.st_size, stat.st_mtime_ns),)
    out: list[tuple[str, int, int]] = []
    stack = [root]
    while stack and len(out) < 100_000:
        folder = stack.pop()
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink():
                continue
            if entry.is_dir():
                if entry.name not in SKIPPED_DIRS and entry.name != BUNDLE_DIR:
                    stack.append(entry)
            else:
                try:
                    stat = entry.stat()
                except OSError:
                    continue
                out.append((str(entry.relative_to(root)), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(out))
