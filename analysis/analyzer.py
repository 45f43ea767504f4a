"""`analyze()`: bytes in, an AnalysisReport out, whatever the bytes are.

Order of work: input limits (size, encoding, NUL) → bracket pre-scan (depth, module syntax)
→ one esprima parse → the code rules over its nodes → the module contract → the severity policy
with the admin's allow list. Every limit breach, syntax error and even an analyzer bug becomes a
finding; `analyze` itself never raises for bytes input.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from time import perf_counter

from analysis.checks import Hit, ModuleImport, check
from analysis.contract import check_contract
from analysis.parsing import (
    BudgetExceeded,
    NestingProblem,
    SyntaxProblem,
    parse,
    parsing_environment,
)
from analysis.rules import FIXED_RULES, RULES
from analysis.source import SourceText, decode_lenient, detect_module, prescan
from analysis.state import check_state
from analysis.taint import check_taint
from core.contracts import AnalysisReport, Finding, Severity

MAX_FINDINGS_PER_RULE = 50
_NEAR_ERROR = re.compile(r"\b(?:import|export|await)\b")
SOURCE_LINE_WIDTH = 300
ALLOWED_SUFFIX = " (allowed by admin)"


@dataclass(frozen=True, slots=True)
class AnalysisLimits:
    """Input limits: maximum size in bytes, bracket nesting depth, and wall-clock budget."""

    max_bytes: int = 1_048_576
    max_depth: int = 200
    time_budget_seconds: float = 5.0


def module_kind(source: bytes | str, filename: str | None = None) -> str:
    """"module" when the source is an ES module (top-level import/export, import.meta, or a
    .mjs name), else "commonjs". Cheap (no parse), never raises, and the same answer as
    `analyze(...).module_type` for the same bytes and filename."""
    try:
        return "module" if detect_module(decode_lenient(source), filename) else "commonjs"
    except Exception:  # noqa: BLE001 - a module kind is always answerable
        return "commonjs"


def display_line(line: str, column: int, width: int = SOURCE_LINE_WIDTH) -> tuple[str, int]:
    """A line cut to `width` characters around `column` (cuts marked with …), and the column
    within the cut text, so a caret can be drawn under it."""
    if len(line) <= width:
        return line, column
    start = max(0, min(column - width // 3, len(line) - width))
    text = line[start:start + width]
    caret = column - start
    if start > 0:
        text = "…" + text
        caret += 1
    if start + width < len(line):
        text += "…"
    return text, caret


_SEVERITY_RANK = {Severity.BLOCK: 0, Severity.WARN: 1, Severity.INFO: 2}
# Input problems, then security (what the code may reach), then everything else, the game
# contract last: the first finding, which the API and the CLI make the headline, is the one
# that matters most.
_CATEGORY_RANK = {"input": 0, "host": 1, "code-from-string": 1, "evasion": 1, "resources": 1,
                  "state": 2, "contract": 3}


def finding_order(finding: Finding) -> tuple[int, int, int, int, int, int, str, str]:
    """Sort key of findings: severity (block, warn, info), then security before contract, then
    position. The report's first finding is its headline."""
    rule = RULES.get(finding.rule)
    category = _CATEGORY_RANK.get(rule.category, 2) if rule is not None else 2
    return (_SEVERITY_RANK.get(finding.severity, 3), category, finding.line, finding.column,
            finding.end_line, finding.end_column, finding.rule, finding.message)


class _Report:
    """Findings under construction, positioned against one source text."""

    def __init__(self, text: SourceText | None) -> None:
        self.text = text
        self.findings: list[Finding] = []

    def add(self, rule: str, message: str, start: int = 0, end: int | None = None) -> None:
        spec = RULES[rule]
        if self.text is None:
            line, col, end_line, end_col, source_line = 1, 0, 1, 0, ""
        else:
            line, col = self.text.position(start)
            end_line, end_col = self.text.position(start if end is None or end < start else end)
            source_line = display_line(self.text.line_text(line), col)[0]
        # Reported 1-based, as editors show them (SourceText counts columns from 0).
        self.findings.append(Finding(rule=rule, severity=spec.severity, message=message, line=line,
                                     column=col + 1, end_line=end_line, end_column=end_col + 1,
                                     source_line=source_line, hint=spec.hint))


@dataclass(slots=True)
class ImportSite:
    """A module one file names by a literal, where (1-based line and column, as findings)."""

    specifier: str
    kind: str
    line: int
    column: int


@dataclass(slots=True)
class ModuleAnalysis:
    """One file of a project: its report and the modules it imports (`analyze_module`)."""

    report: AnalysisReport
    imports: list[ImportSite] = field(default_factory=list)


# Rules that judge a relative specifier as "not part of the upload": in a project, a specifier
# that resolves to one of the project's own files is part of it.
LOCAL_IMPORT_RULES = frozenset({"local-module", "capability-escape"})


def analyze(source: bytes, *, limits: AnalysisLimits | None = None,
            allow_rules: Iterable[str] = (), filename: str = "game.js") -> AnalysisReport:
    """Analyze one uploaded game module. Never raises for bytes input.

    `allow_rules` downgrades those rules' findings to info (message suffix "(allowed by admin)");
    syntax and input-limit rules cannot be allowed. Lines and columns are 1-based (as editors
    show them); `end_column` is the column just after the last character. Findings come most
    severe first, then security before contract, then by position (`finding_order`).
    """
    return analyze_module(source, limits=limits, allow_rules=allow_rules, filename=filename).report


def analyze_module(source: bytes, *, limits: AnalysisLimits | None = None, allow_rules: Iterable[str] = (),
                   filename: str = "game.js", is_local: Callable[[str], bool] | None = None,
                   module: bool | None = None) -> ModuleAnalysis:
    """`analyze`, for one file of a project: also lists the modules the file imports, and with
    `is_local` drops the local-module/capability-escape findings of imports it says resolve to
    the project's own files (the project analysis follows those instead). `module` forces the
    parse goal (a file compiled from TypeScript is an ES module whatever its text shows).
    Never raises for bytes input."""
    started = perf_counter()
    limits = limits or AnalysisLimits()
    data = bytes(source) if not isinstance(source, str) else source.encode("utf-8", "surrogatepass")
    allow = frozenset(r for r in allow_rules if isinstance(r, str)) - FIXED_RULES
    module_type = "commonjs"
    exports: dict[str, object] = {}
    imports: list[ImportSite] = []
    try:
        report, module_type, exports = _run(data, limits, filename, started, is_local, imports, module)
        findings = report.findings
    except Exception as exc:  # noqa: BLE001 - the contract is a report, never an exception
        fallback = _Report(None)
        fallback.add("internal-error", f"the analyzer failed ({type(exc).__name__}); the file "
                     "was not analyzed")
        findings = fallback.findings

    used: set[str] = set()
    for finding in findings:
        if finding.rule in allow:
            finding.severity = Severity.INFO
            finding.message += ALLOWED_SUFFIX
            used.add(finding.rule)
    findings.sort(key=finding_order)
    return ModuleAnalysis(report=AnalysisReport(
        ok=not any(f.severity == Severity.BLOCK for f in findings),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        module_type=module_type,
        findings=findings,
        exports=exports,
        allowed_rules=sorted(used),
        duration_ms=round((perf_counter() - started) * 1000, 3),
    ), imports=imports)


def _run(data: bytes, limits: AnalysisLimits, filename: str, started: float,
         is_local: Callable[[str], bool] | None = None, imports: list[ImportSite] | None = None,
         force_module: bool | None = None) -> tuple[_Report, str, dict[str, object]]:
    if len(data) > limits.max_bytes:
        report = _Report(None)
        report.add("input-too-large", f"the file is {len(data):,} bytes; the limit is "
                   f"{limits.max_bytes:,} bytes")
        return report, "commonjs", {}

    text = _decode(data)
    if isinstance(text, _Report):
        return text, "commonjs", {}
    source = SourceText(text)
    report = _Report(source)

    nul = text.find("\0")
    if nul >= 0:
        byte_offset = len(text[:nul].encode("utf-8", "surrogatepass")) + (
            3 if data.startswith(b"\xef\xbb\xbf") else 0)
        report.add("nul-byte", f"a NUL byte at byte offset {byte_offset}", nul, nul + 1)
        return report, "commonjs", {}

    scan = prescan(text, limits.max_depth)
    module = detect_module(text, filename, scan) if force_module is None else force_module
    module_type = "module" if module else "commonjs"
    if scan.too_deep_at is not None:
        report.add("too-deep", f"nesting goes deeper than {limits.max_depth} levels here",
                   scan.too_deep_at, scan.too_deep_at + 1)
        return report, module_type, {}

    deadline = started + limits.time_budget_seconds
    failure: Exception | None = None
    with parsing_environment():
        # Nothing that references the tree may outlive this block: the tree is freed here, by
        # reference counting, while the collector is paused. Left alive, the first collection
        # after the pause would traverse every one of its objects (0.4 s for a 1 MiB file).
        try:
            parsed = parse(text, module=module, deadline=deadline)
            sites: list[ModuleImport] = []
            hits = check(parsed.nodes, deadline, parsed.shift, sites)
            hits += check_taint(parsed.nodes, deadline, parsed.shift, hits)
            hits += check_state(parsed.nodes, deadline)
            contract = check_contract(parsed.body, module)
            shift = parsed.shift
            del parsed
        except (SyntaxProblem, NestingProblem, BudgetExceeded) as problem:
            failure = problem.with_traceback(None)
            failure.__context__ = None

    if isinstance(failure, SyntaxProblem):
        _syntax_error(report, failure, module, text)
        return report, module_type, {}
    if isinstance(failure, NestingProblem):
        report.add("too-deep", "expressions are nested too deeply for the parser here",
                   failure.index, failure.index + 1)
        return report, module_type, {}
    if failure is not None:
        report.add("time-budget", f"analysis took longer than its budget of "
                   f"{limits.time_budget_seconds:g} s")
        return report, module_type, {}

    hits = _local_imports(hits, sites, is_local)
    if imports is not None:
        for site in sites:
            line, col = source.position(site.start - shift)
            imports.append(ImportSite(site.specifier, site.kind, line, col + 1))
    for hit in _capped(_deduplicated(hits + contract.hits), report):
        report.add(hit.rule, hit.message, hit.start - shift, hit.end - shift)
    return report, module_type, contract.exports


def _local_imports(hits: list[Hit], sites: list[ModuleImport],
                   is_local: Callable[[str], bool] | None) -> list[Hit]:
    """The hits without those on an import of one of the project's own files."""
    if is_local is None:
        return hits
    local = {(s.start, s.end) for s in sites if is_local(s.specifier)}
    return [h for h in hits if not (h.rule in LOCAL_IMPORT_RULES and (h.start, h.end) in local)]


def _decode(data: bytes) -> str | _Report:
    """UTF-8 text without its byte order mark, or a report saying why the bytes are not."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        report = _Report(None)
        report.add("not-utf8", "the file starts with a UTF-16/UTF-32 byte order mark (byte "
                   "offset 0); it must be UTF-8")
        return report
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        lenient = data.decode("utf-8", errors="replace")
        offset = len(data[:err.start].decode("utf-8"))
        if lenient.startswith("\ufeff"):
            lenient, offset = lenient[1:], max(0, offset - 1)
        report = _Report(SourceText(lenient))
        report.add("not-utf8", f"byte 0x{data[err.start]:02x} at byte offset {err.start} is not "
                   f"valid UTF-8 ({err.reason})", offset, offset + 1)
        return report
    return text.removeprefix("\ufeff")


def _syntax_error(report: _Report, problem: SyntaxProblem, module: bool, text: str) -> None:
    index = min(max(problem.index, 0), len(text))
    message = problem.message
    if not module:
        # The words next to the error tell whether module syntax tripped a CommonJS parse.
        near = _NEAR_ERROR.findall(text, max(0, index - 16), index + 8)
        if "import" in near or "export" in near:
            message += (" (import/export statements make a file an ES module: put them at the "
                        "top level, or use require and module.exports)")
        elif "await" in near:
            message += (" (top-level await needs an ES module: export something, or wrap the "
                        "code in an async function)")
    end = index + 1 if index < len(text) and text[index] not in "\r\n" else index
    report.add("syntax-error", message, index, end)


def _deduplicated(hits: list[Hit]) -> list[Hit]:
    seen: set[tuple[str, int]] = set()
    out = []
    for hit in hits:
        key = (hit.rule, hit.start)
        if key not in seen:
            seen.add(key)
            out.append(hit)
    return out


def _capped(hits: list[Hit], report: _Report) -> list[Hit]:
    """At most MAX_FINDINGS_PER_RULE per rule (the first ones in the file), so a report stays
    small enough for the workflow history; the rest are summed up in one info finding."""
    hits.sort(key=lambda h: (h.start, h.end, h.rule))
    counts: dict[str, int] = {}
    kept = []
    for hit in hits:
        counts[hit.rule] = counts.get(hit.rule, 0) + 1
        if counts[hit.rule] <= MAX_FINDINGS_PER_RULE:
            kept.append(hit)
    for rule, count in sorted(counts.items()):
        if count > MAX_FINDINGS_PER_RULE:
            report.add("findings-truncated", f"{count - MAX_FINDINGS_PER_RULE} more {rule} "
                       "findings are not listed")
    return kept
