"""Source text for the analyzer: positions, source lines, and a bracket pre-scan.

Positions follow ESTree/esprima: lines are 1-based, columns 0-based. Columns count Unicode code
points of the decoded text (the same as esprima's UTF-16 columns except after characters beyond
U+FFFF), and a leading byte order mark is not counted.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

# JavaScript's line terminators (not Python's str.splitlines set).
_LINE_BREAK = re.compile(r"\r\n|[\r\n\u2028\u2029]")

# What the pre-scan stops at: comments, strings, template starts, brackets, slashes and the two
# keywords that make a file an ES module. Everything else (identifiers, numbers, operators) is
# skipped by the regex engine, which is what makes the scan cheap.
_SCAN = re.compile(
    r"""//[^\n\r\u2028\u2029]*"""
    r"""|/\*[\s\S]*?(?:\*/|\Z)"""
    r"""|'[^'\\\n\r]*(?:\\[\s\S][^'\\\n\r]*)*'?"""
    r"""|"[^"\\\n\r]*(?:\\[\s\S][^"\\\n\r]*)*"?"""
    r"""|[`()\[\]{}/]"""
    r"""|(?<![\w$.])(?:import|export)(?![\w$])"""
)
# The rest of a template literal up to its end or the next `${`.
_TEMPLATE = re.compile(r"[^`\\$]*(?:(?:\\[\s\S]|\$(?!\{))[^`\\$]*)*")
# A regular expression literal after its opening slash.
_REGEX_BODY = re.compile(r"(?:[^\\/\[\n\r\u2028\u2029]|\\[^\n\r\u2028\u2029]"
                         r"|\[(?:[^\]\\\n\r\u2028\u2029]|\\[^\n\r\u2028\u2029])*\])+/[\w$]*")
_WORD_BEFORE = re.compile(r"[\w$]+$")
_AFTER_IMPORT = re.compile(r"\s*(.)", re.DOTALL)
# After these words a slash starts a regular expression, not a division.
_REGEX_AFTER_WORDS = frozenset({
    "return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do",
    "else", "yield", "await",
})
_OPENERS = frozenset("([{")
_CLOSERS = frozenset(")]}")


class SourceText:
    """Decoded source with a line table: maps code point offsets to (line, column) and back."""

    __slots__ = ("line_starts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.line_starts = [0]
        self.line_starts.extend(m.end() for m in _LINE_BREAK.finditer(text))

    @property
    def line_count(self) -> int:
        return len(self.line_starts)

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column) of a code point offset, clamped into the text."""
        offset = min(max(offset, 0), len(self.text))
        line = bisect_right(self.line_starts, offset)
        return line, offset - self.line_starts[line - 1]

    def line_text(self, line: int) -> str:
        """The text of a 1-based line without its terminator ("" outside the text)."""
        if line < 1 or line > len(self.line_starts):
            return ""
        start = self.line_starts[line - 1]
        end = self.line_starts[line] if line < len(self.line_starts) else len(self.text)
        return self.text[start:end].rstrip("\r\n\u2028\u2029")


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What the bracket pre-scan learned before the parser runs.

    `too_deep_at` is the offset of the first bracket beyond the depth limit (None when within);
    `module_syntax` is True when `import`/`export` appear as statements at the top level or
    `import.meta` appears anywhere.
    """

    max_depth: int
    too_deep_at: int | None
    module_syntax: bool


def prescan(text: str, max_depth: int) -> ScanResult:
    """Measure bracket nesting ((), [], {}, and `${}` in templates) without parsing.

    Strings, comments, templates and regular expression literals are skipped so brackets in
    them do not count. Telling a regex from a division needs the previous token; a heuristic on
    the preceding character decides, which is exact for ordinary code. A file that is too deep
    is reported before the recursive parser ever sees it.
    """
    stack: list[str] = []
    deepest = 0
    module_syntax = False
    pos = 0
    n = len(text)
    while pos < n:
        # finditer runs in C until something (a template, a regex literal, a `}` that resumes a
        # template) needs a jump; then the scan restarts after it.
        resume = n
        for m in _SCAN.finditer(text, pos):
            start = m.start()
            ch = text[start]
            if ch in _OPENERS:
                stack.append(ch)
                if len(stack) > deepest:
                    deepest = len(stack)
                    if deepest > max_depth:
                        return ScanResult(deepest, start, module_syntax)
            elif ch in _CLOSERS:
                if stack and stack.pop() == "${":
                    resume = _template_rest(text, m.end(), stack)
                    break
            elif ch == "`":
                resume = _template_rest(text, m.end(), stack)
                break
            elif ch == "/" and m.end() - start == 1:
                if _slash_starts_regex(text, start):
                    body = _REGEX_BODY.match(text, m.end())
                    if body is not None:
                        resume = body.end()
                        break
            elif ch in "ie" and _is_module_keyword(text, start, m.end(), len(stack)):
                module_syntax = True
        if len(stack) > deepest:
            deepest = len(stack)
            if deepest > max_depth:
                return ScanResult(deepest, min(resume, n), module_syntax)
        pos = resume
    return ScanResult(deepest, None, module_syntax)


def _template_rest(text: str, pos: int, stack: list[str]) -> int:
    """Skip template characters from `pos`; at `${` push a frame and return after it."""
    m = _TEMPLATE.match(text, pos)
    end = m.end() if m is not None else pos
    if text.startswith("${", end):
        stack.append("${")
        return end + 2
    return end + 1  # past the closing backtick (or past the end of an unterminated template)


def _slash_starts_regex(text: str, slash: int) -> bool:
    j = slash - 1
    while j >= 0 and text[j] in " \t\r\n\u2028\u2029\v\f\ufeff\xa0":
        j -= 1
    if j < 0:
        return True
    c = text[j]
    if c in ")]}":
        return False
    if c.isalnum() or c in "_$":
        word = _WORD_BEFORE.search(text, max(0, j - 11), j + 1)
        return word is not None and word.group() in _REGEX_AFTER_WORDS
    return c not in "\"'`"


def _is_module_keyword(text: str, start: int, end: int, depth: int) -> bool:
    after = _AFTER_IMPORT.match(text, end)
    nxt = after.group(1) if after is not None else ""
    if text.startswith("import", start):
        if nxt == ".":
            return True  # import.meta, only legal in modules
        return depth == 0 and nxt != "("
    return depth == 0


def detect_module(text: str, filename: str | None = None, scan: ScanResult | None = None) -> bool:
    """True when the text is an ES module (by file extension first, then by syntax)."""
    if filename:
        lower = filename.lower()
        if lower.endswith(".mjs"):
            return True
        if lower.endswith(".cjs"):
            return False
    if scan is None:
        if "import" not in text and "export" not in text:
            return False
        scan = prescan(text, 1 << 30)
    return scan.module_syntax


def decode_lenient(source: bytes | str) -> str:
    """Best-effort text for callers that only need a module kind (never raises)."""
    text = source if isinstance(source, str) else bytes(source).decode("utf-8", errors="replace")
    return text.removeprefix("\ufeff")
