"""`gsf check game.js`: the platform's code analysis on a developer's machine.

Exit codes: 0 clean (notes only), 1 blocked, 2 warnings only, 3 the file could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from analysis import analyze, display_line, invalid_allow_rules
from analysis.source import SourceText
from core.contracts import AnalysisReport, Finding, Severity

EXIT_CLEAN, EXIT_BLOCKED, EXIT_WARNINGS, EXIT_UNREADABLE = 0, 1, 2, 3

_STYLE = {Severity.BLOCK: "bold red", Severity.WARN: "bold yellow", Severity.INFO: "bold cyan"}
_HEADING = {Severity.BLOCK: "Blocking", Severity.WARN: "Warnings", Severity.INFO: "Notes"}
_TAB = "    "


def exit_code(report: AnalysisReport) -> int:
    """1 when something blocks, 2 when there are warnings only, else 0."""
    severities = {f.severity for f in report.findings}
    if Severity.BLOCK in severities:
        return EXIT_BLOCKED
    if Severity.WARN in severities:
        return EXIT_WARNINGS
    return EXIT_CLEAN


def run_check(path: Path, as_json: bool, allow: list[str], console: Console | None = None) -> int:
    """Analyze `path`, print the report (Rich for people, JSON for tools), return the exit code."""
    out = console or Console(highlight=False)
    err = Console(stderr=True, highlight=False) if console is None else console
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        err.print(Text(f"gsf check: cannot read {path}: {exc.strerror or exc}", style="red"))
        return EXIT_UNREADABLE
    for rule in invalid_allow_rules(list(allow)):
        err.print(Text(f"gsf check: --allow {rule} is ignored (unknown rule, or one that cannot be "
                       "allowed)", style="yellow"))
    report = analyze(data, allow_rules=allow, filename=Path(path).name)
    code = exit_code(report)
    if as_json:
        payload = {"file": str(path), "exit_code": code, **report.model_dump(mode="json")}
        # Console.out neither wraps nor marks up: the JSON stays parseable at any width.
        out.out(json.dumps(payload, indent=2, ensure_ascii=False), highlight=False)
        return code
    _print_human(out, Path(path), data, report, code)
    return code


def _print_human(out: Console, path: Path, data: bytes, report: AnalysisReport, code: int) -> None:
    text = data.decode("utf-8", errors="replace")
    source = SourceText(text.removeprefix("\ufeff"))
    for severity in (Severity.BLOCK, Severity.WARN, Severity.INFO):
        group = [f for f in report.findings if f.severity == severity]
        if not group:
            continue
        out.print(Text(f"{_HEADING[severity]} ({len(group)})", style=_STYLE[severity]))
        for finding in group:
            _print_finding(out, path, source, finding)
        out.print()
    counts = {s: sum(1 for f in report.findings if f.severity == s) for s in Severity}
    summary = (f"{path}: {counts[Severity.BLOCK]} blocking, {counts[Severity.WARN]} warnings, "
               f"{counts[Severity.INFO]} notes · {report.module_type} · "
               f"{report.duration_ms:.0f} ms")
    verdict = {EXIT_BLOCKED: ("✗ blocked: the platform would reject this module", "bold red"),
               EXIT_WARNINGS: ("! deployable, with warnings", "bold yellow"),
               EXIT_CLEAN: ("✓ clean", "bold green")}[code]
    out.print(Text(summary))
    out.print(Text(verdict[0], style=verdict[1]))


def _print_finding(out: Console, path: Path, source: SourceText, finding: Finding) -> None:
    head = Text()
    head.append(f"  {path}:{finding.line}:{finding.column}  ", style="bold")
    head.append(finding.rule, style=_STYLE[finding.severity])
    head.append(f"  {finding.message}")
    out.print(head)
    if finding.source_line:
        line = source.line_text(finding.line)
        shown, caret = display_line(line, max(0, finding.column - 1))  # columns are 1-based
        width = 1
        if finding.end_line == finding.line and finding.end_column > finding.column:
            width = min(finding.end_column - finding.column, max(1, len(shown) - caret))
        gutter = f"{finding.line:>6} │ "
        out.print(Text(gutter, style="dim") + Text(shown.replace("\t", _TAB)))
        pad = cell_len(shown[:caret].replace("\t", _TAB))
        marks = max(1, cell_len(shown[caret:caret + width].replace("\t", _TAB)))
        out.print(Text(" " * 6 + " │ ", style="dim") + Text(" " * pad + "^" * marks,
                                                          style=_STYLE[finding.severity]))
    if finding.hint:
        out.print(Text(f"         hint: {finding.hint}", style="dim"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.check", description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--json", action="store_true", help="machine-readable report")
    parser.add_argument("--allow", action="append", default=[], help="rule id to allow")
    args = parser.parse_args(argv)
    return run_check(args.file, args.json, args.allow)


if __name__ == "__main__":
    sys.exit(main())
