"""Input limits, encodings, syntax errors and positions: every breach is a finding, never a crash."""

from __future__ import annotations

import gc
import hashlib
import sys
import threading

import pytest

from analysis import AnalysisLimits, analyze, module_kind
from analysis import analyzer as analyzer_module
from core.contracts import Severity

HOOKS = "\nmodule.exports = { onJoin() {} };\n"


def only(report_rules: list[str], rule: str) -> None:
    assert report_rules == [rule], report_rules


def test_report_basics() -> None:
    source = ("const a = 1;" + HOOKS).encode()
    report = analyze(source)
    assert report.ok
    assert report.findings == []
    assert report.sha256 == hashlib.sha256(source).hexdigest()
    assert report.size == len(source)
    assert report.module_type == "commonjs"
    assert report.duration_ms >= 0


def test_input_too_large() -> None:
    report = analyze(b"x" * 101, limits=AnalysisLimits(max_bytes=100))
    only([f.rule for f in report.findings], "input-too-large")
    assert "101 bytes" in report.findings[0].message
    assert not report.ok
    assert analyze(b"// x\n" * 20 + HOOKS.encode(), limits=AnalysisLimits(max_bytes=1000)).ok


def test_not_utf8_names_the_byte_offset() -> None:
    source = "const s = 'é';\nconst t = '".encode() + b"\xff\xfe'" + HOOKS.encode()
    report = analyze(source)
    (finding,) = report.findings
    assert finding.rule == "not-utf8"
    assert finding.severity == Severity.BLOCK
    offset = source.index(b"\xff")
    assert f"byte offset {offset}" in finding.message
    assert "0xff" in finding.message
    assert (finding.line, finding.column) == (2, 12)
    assert finding.source_line.startswith("const t = '")


@pytest.mark.parametrize("bom", [b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00"])
def test_utf16_and_utf32_are_refused_clearly(bom: bytes) -> None:
    report = analyze(bom + "module.exports = {}".encode("utf-16-le"))
    (finding,) = report.findings
    assert finding.rule == "not-utf8"
    assert "UTF-16" in finding.message


def test_latin1_file() -> None:
    report = analyze("// café\n".encode("latin-1") + HOOKS.encode())
    (finding,) = report.findings
    assert finding.rule == "not-utf8"
    assert "byte offset 6" in finding.message
    assert (finding.line, finding.column) == (1, 7)


def test_nul_byte() -> None:
    report = analyze(b"const a = 1;\nconst b = '\x00';" + HOOKS.encode())
    (finding,) = report.findings
    assert finding.rule == "nul-byte"
    assert (finding.line, finding.column) == (2, 12)
    assert "byte offset 24" in finding.message


def test_too_deep_is_found_before_parsing() -> None:
    deep = "x = " + "[" * 201 + "]" * 201 + ";"
    report = analyze((deep + HOOKS).encode())
    (finding,) = report.findings
    assert finding.rule == "too-deep"
    assert finding.line == 1
    assert finding.column == 4 + 200 + 1
    # Exactly at the limit parses, for every kind of bracket.
    for opener, closer in [("(", ")"), ("[", "]"), ("{a:", "}"), ("`${", "}`")]:
        source = "x = " + opener * 200 + "1" + closer * 200 + ";"
        if opener == "`${":
            source = "x = " + opener * 100 + "1" + closer * 100 + ";"
        assert analyze((source + HOOKS).encode()).ok, opener


def test_brackets_in_strings_comments_and_regexes_do_not_count() -> None:
    noise = "'((((' + \"[[[[\" + `{{{{` + /\\(\\(\\(/.source; // ((((\n/* [[[[ */\n"
    source = noise * 300 + HOOKS
    report = analyze(source.encode(), limits=AnalysisLimits(max_depth=5))
    assert report.ok, [f.rule for f in report.findings]


@pytest.mark.parametrize("source", [
    "x = " + "!" * 20000 + "y;",
    "x = " + "new " * 20000 + "X;",
    "x = a" + ".b" * 30000 + ";",
    "x = " + "+".join(["a"] * 30000) + ";",
])
def test_deep_expressions_without_brackets(source: str) -> None:
    report = analyze((source + HOOKS).encode(), limits=AnalysisLimits(time_budget_seconds=60))
    assert [f.rule for f in report.findings] in (["too-deep"], [])


def test_deep_file_in_a_thread_restores_the_interpreter() -> None:
    limit = sys.getrecursionlimit()
    results = []

    def work() -> None:
        source = "x = " + "{a:" * 200 + "1" + "}" * 200 + ";" + HOOKS
        results.append(analyze(source.encode()))
        results.append(analyze(("x = " + "!" * 30000 + "y;").encode()))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert results[0].ok
    assert [f.rule for f in results[1].findings] == ["too-deep"]
    assert gc.isenabled()
    assert sys.getrecursionlimit() == limit


def test_time_budget() -> None:
    report = analyze(("const a = 1;" + HOOKS).encode(), limits=AnalysisLimits(time_budget_seconds=0))
    (finding,) = report.findings
    assert finding.rule == "time-budget"
    assert not report.ok


def test_an_analyzer_bug_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(analyzer_module, "check", broken)
    report = analyze(HOOKS.encode())
    (finding,) = report.findings
    assert finding.rule == "internal-error"
    assert not report.ok
    assert analyze(HOOKS.encode(), allow_rules=["internal-error"]).ok is False


def test_findings_are_capped() -> None:
    source = "eval(x);\n" * 120 + HOOKS
    report = analyze(source.encode())
    rules = [f.rule for f in report.findings]
    assert rules.count("eval") == analyzer_module.MAX_FINDINGS_PER_RULE
    (note,) = [f for f in report.findings if f.rule == "findings-truncated"]
    assert "70 more eval findings" in note.message
    assert not report.ok


# --- syntax -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "line", "column"), [  # 1-based columns
    ("const a = ;", 1, 11),
    ("let x = 1;\nfunction f( {\n}", 4, 1),
    ("const s = 'unterminated;\n", 1, 11),
    ("let a; let a;", 1, 12),
    ("class A { #x; m() { return this.#y; } }", 1, 33),
    ("x = 1 +* 2;", 1, 8),
])
def test_syntax_errors_have_positions(source: str, line: int, column: int) -> None:
    report = analyze((source + HOOKS).encode())
    (finding,) = report.findings
    assert finding.rule == "syntax-error"
    assert finding.severity == Severity.BLOCK
    assert (finding.line, finding.column) == (line, column), finding
    assert finding.source_line == (source + HOOKS).splitlines()[line - 1]
    assert finding.message
    assert finding.hint


def test_syntax_error_at_end_of_input() -> None:
    report = analyze(b"function f() {\n  return 1;\n")
    (finding,) = report.findings
    assert finding.rule == "syntax-error"
    assert finding.line == 3
    assert finding.column == 1


@pytest.mark.parametrize("source", [
    "const x = 1;\nawait x;\nmodule.exports = {};",
    "const x = 1;\nif (x) { import fs from 'fs'; }\nmodule.exports = {};",
])
def test_module_syntax_in_a_script_explains_modules(source: str) -> None:
    (finding,) = analyze(source.encode()).findings
    assert finding.rule == "syntax-error"
    assert "ES module" in finding.message


def test_commonjs_exports_in_an_es_module() -> None:
    report = analyze(b"import x from 'y';\nmodule.exports = { onJoin() {} };")
    (finding,) = report.findings
    assert finding.rule == "contract-exports"
    assert "export default" in finding.message


ES2024 = [
    "a?.b?.[c]?.(d);",
    "x = a ?? b; x ??= 1; x ||= 2; x &&= 3;",
    ("class A { #x = 1; static y = 2; static #z; static { A.y = 3; } #m() { return #x in this; } "
     "get v() { return this.#x; } }"),
    "const n = 123n ** 2n, h = 0xFF_FFn, m = 1_000_000.5, b = 0b1010_0101, o = 0o7_7;",
    "async function f(y) { for await (const x of y) {} }",
    "const r = /(?<year>\\d{4})/d, v = /[\\p{L}--[a-z]]/v, s = /a.b/s, u = /\\u{1F600}/u;",
    "try { f(); } catch { g(); }",
    "const { a = 1, ...rest } = obj; const [first, , third = 3, ...others] = list;",
    "const o = { ...a, [key]: 1, method() {}, get g() { return 1; }, async *gen() { yield 1; } };",
    "label: for (const x of y) { if (x) continue label; else break label; }",
    "const t = tag`a${b}c${`nested ${d}`}`;",
    "new.target; function F() { return new.target; }",
    "const f = async ({ a }, [b], ...c) => await a;",
    "class B extends A { constructor() { super(); super.m?.(); } static async *[Symbol.asyncIterator]() {} }",
    "x = a ** -b ** 2 === 1 ? c : d;" .replace("a ** -b ** 2", "a ** (-b) ** 2"),
    "queueMicrotask(() => {}); const w = new WeakRef({}); const z = structuredClone({ a: 1 });",
    "const big = Number.MAX_SAFE_INTEGER; const e = 1e21; const d = .5 + 5.;",
    "'use strict'; function g() { 'use strict'; return arguments.length; }",
    "<!-- html comment in a script\nx = 1;\n--> also a comment",
]


@pytest.mark.parametrize("snippet", ES2024)
def test_modern_syntax_parses(snippet: str) -> None:
    report = analyze((snippet + HOOKS).encode())
    assert "syntax-error" not in {f.rule for f in report.findings}, report.findings


@pytest.mark.parametrize("snippet", [
    "const data = await load();\nexport default { onJoin() {} };",
    "import fs from './x.json' with { type: 'json' };\nexport function onJoin() {}",
    "console.log(import.meta.url);\nexport default { onJoin() {} };",
    "export * as helpers from './helpers.mjs';\nexport const onJoin = () => {};",
])
def test_module_syntax(snippet: str) -> None:
    report = analyze(snippet.encode())
    assert report.module_type == "module"
    assert "syntax-error" not in {f.rule for f in report.findings}
    assert module_kind(snippet.encode()) == "module"


def test_module_kind() -> None:
    assert module_kind(b"module.exports = {};") == "commonjs"
    assert module_kind(b"const x = `\nimport y from 'z'\n`; module.exports = {};") == "commonjs"
    assert module_kind(b"// import x from 'y'\nmodule.exports = {};") == "commonjs"
    assert module_kind(b"const m = import('x');") == "commonjs"
    assert module_kind(b"obj.export = 1; obj.import = 2;") == "commonjs"
    assert module_kind(b"\xef\xbb\xbfexport default {};") == "module"
    assert module_kind(b"\xff\xfe not utf8 export default {}") in ("module", "commonjs")
    assert module_kind(b"module.exports = {};", "game.mjs") == "module"
    assert analyze(b"export default { onJoin() {} };", filename="game.cjs").module_type == "commonjs"


@pytest.mark.parametrize("source", [
    "}/{",
    "});\nmodule.parent.require('fs');\nmodule.exports = { onJoin() {} };\n(function(){",
])
def test_source_that_closes_the_commonjs_wrapper_is_a_syntax_error(source: str) -> None:
    # Retried inside the CommonJS wrapper, these parsed as code around the wrapper function
    # (the first one crashed the analyzer); Node rejects them as a function body.
    report = analyze(source.encode())
    assert [f.rule for f in report.findings] == ["syntax-error"], report.findings


def test_top_level_return_in_commonjs() -> None:
    source = "if (typeof module !== 'object') return;\nmodule.exports = { onJoin() { eval('1'); } };"
    report = analyze(source.encode())
    (finding,) = report.findings
    assert finding.rule == "eval"
    assert (finding.line, finding.column) == (2, 31)
    assert report.exports["hooks"] == ["onJoin"]
    report = analyze(b"#!/usr/bin/env node\nreturn;\nmodule.exports = {}; const = 1;")
    (finding,) = report.findings
    assert finding.rule == "syntax-error"
    assert finding.line == 3


# --- positions ----------------------------------------------------------------------------------

def test_positions_with_bom_shebang_crlf_and_astral_characters() -> None:
    source = "\ufeff#!/usr/bin/env node\r\nconst s = '😀😀'; eval(s);\r\n" + HOOKS
    report = analyze(source.encode())
    (finding,) = report.findings
    assert finding.rule == "eval"
    assert (finding.line, finding.column, finding.end_line, finding.end_column) == (2, 17, 2, 21)
    assert finding.source_line == "const s = '😀😀'; eval(s);"
    bom_line_one = analyze(("\ufeffeval(1);" + HOOKS).encode()).findings[0]
    assert (bom_line_one.line, bom_line_one.column) == (1, 1)


def test_unicode_line_separators_count_as_lines() -> None:
    source = "const a = 1;\u2028eval(a);" + HOOKS
    finding = analyze(source.encode()).findings[0]
    assert (finding.line, finding.column) == (2, 1)


def test_long_lines_are_cut_around_the_finding() -> None:
    source = "const pad = " + "1 + " * 400 + "1; eval(pad);" + HOOKS
    finding = analyze(source.encode()).findings[0]
    assert finding.rule == "eval"
    assert len(finding.source_line) <= 302
    assert "eval(pad)" in finding.source_line
    assert finding.source_line.startswith("…")


def test_findings_are_sorted() -> None:
    source = "eval(1);\nprocess.exit();\nwith (a) {}\neval(2); process.env;" + HOOKS
    report = analyze(source.encode())
    positions = [(f.line, f.column) for f in report.findings]
    assert positions == sorted(positions)
    assert len(positions) == 5


def test_concurrent_analyses_agree_with_sequential_ones() -> None:
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    corpus = sorted((Path(__file__).parent / "corpus").glob("*.*js"))[:12]
    sources = [(p.name, p.read_bytes()) for p in corpus]
    expected = [analyze(data, filename=name).model_dump(exclude={"duration_ms"})
                for name, data in sources]
    deep = ("x = " + "!" * 30000 + "y;").encode()  # runs out of recursion while others parse
    limit = sys.getrecursionlimit()
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(2):
            deep_report = pool.submit(analyze, deep)
            got = list(pool.map(lambda item: analyze(item[1], filename=item[0]).model_dump(
                exclude={"duration_ms"}), sources))
            assert got == expected
            assert [f.rule for f in deep_report.result().findings] == ["too-deep"]
    assert gc.isenabled()
    assert sys.getrecursionlimit() == limit
