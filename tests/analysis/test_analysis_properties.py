"""Property tests: any input gives a report (never an exception), positions lie inside the source,
and the analysis of a valid file is deterministic."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import AnalysisLimits, analyze, finding_order
from analysis.source import SourceText
from core.contracts import AnalysisReport

LIMITS = AnalysisLimits(max_bytes=64 * 1024, max_depth=200, time_budget_seconds=30)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOKENS = [
    "a", "b", "x1", "require", "eval", "process", "globalThis", "module", "exports", "this",
    "Function", "constructor", "__proto__", "prototype", "env", "onJoin", "maxPlayers", "async",
    "await", "yield", "function", "class", "static", "return", "while", "for", "if", "else",
    "break", "continue", "new", "with", "import", "export", "default", "const", "let", "var",
    "of", "in", "typeof", "delete", "true", "null", "0", "1e9", "42n", "'s'", "\"child_process\"",
    "`t${", "}`", "`", "/re/g", "(", ")", "[", "]", "{", "}", ";", ",", ".", "?.", "??", "??=",
    "=", "=>", "+", "-", "*", "**", "!", "...", ":", "?", "#p", "\n", " ", "//c\n", "/*c*/",
]


def assert_well_formed(report: AnalysisReport, data: bytes) -> None:
    assert isinstance(report, AnalysisReport)
    assert report.size == len(data)
    assert report.ok == (not report.blocking)
    assert "internal-error" not in {f.rule for f in report.findings}
    text = data.decode("utf-8", errors="replace")
    source = SourceText(text.removeprefix("\ufeff"))
    for f in report.findings:
        assert 1 <= f.line <= source.line_count, f
        assert 1 <= f.end_line <= source.line_count, f
        # 1-based columns; an end column is the one just after the last character.
        assert 1 <= f.column <= len(source.line_text(f.line)) + 1, f
        assert 1 <= f.end_column <= len(source.line_text(f.end_line)) + 1, f
        assert (f.end_line, f.end_column) >= (f.line, f.column), f
    assert report.findings == sorted(report.findings, key=finding_order)


@FAST
@given(st.binary(max_size=2048))
def test_any_bytes(data: bytes) -> None:
    assert_well_formed(analyze(data, limits=LIMITS), data)


@FAST
@given(st.text(max_size=1024))
def test_any_text(text: str) -> None:
    data = text.encode("utf-8", errors="surrogatepass")
    assert_well_formed(analyze(data, limits=LIMITS), data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=80).map(" ".join), st.booleans())
def test_javascript_like_token_soup(source: str, as_module: bool) -> None:
    data = source.encode()
    report = analyze(data, limits=LIMITS, filename="game.mjs" if as_module else "game.js")
    assert_well_formed(report, data)


IDENT = st.sampled_from(["alpha", "beta", "gamma", "score", "room", "state", "grid", "tick"])
NUMBER = st.integers(min_value=0, max_value=10**6).map(str)
STATEMENTS = st.one_of(
    st.builds("const {0}{2} = {1};".format, IDENT, NUMBER, NUMBER),
    st.builds("function {0}{2}(a, b = {1}) {{ return a ?? b; }}".format, IDENT, NUMBER, NUMBER),
    st.builds("for (let i = 0; i < {1}; i++) {{ globalThis.x{0} ??= i; }}".format, IDENT, NUMBER),
    st.builds("class C{1} {{ #v = {1}; static {{ this.s = 1; }} get {0}() {{ return this.#v; }} }}".format,
              IDENT, NUMBER),
    st.builds("while (true) {{ if ({0}.ready) break; }}".format, IDENT),
    st.builds("setTimeout(() => {0}?.({1}), {1});".format, IDENT, NUMBER),
    st.builds("eval('{0}');".format, IDENT),
    st.builds("require('{0}');".format, st.sampled_from(["fs", "node:os", "crypto", "./x", "events"])),
    st.builds("const {{ {0} }} = process;".format, st.sampled_from(["env", "exit", "argv", "pid"])),
    st.builds("this[{0} + 'x']();".format, IDENT),
)
MODULE_TAIL = st.sampled_from([
    "module.exports = { onJoin(room, player) {} };",
    "module.exports = { maxPlayers: 0, tickRate: 5, onMessage() {} };",
    "exports.onJoin = () => {};",
    "module.exports = make();",
    "",
])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STATEMENTS, min_size=1, max_size=12), MODULE_TAIL)
def test_valid_programs_are_analyzed_deterministically(statements: list[str], tail: str) -> None:
    # One block per statement, so repeated declarations do not collide.
    data = ("".join(f"{{\n{s}\n}}\n" for s in statements) + tail + "\n").encode()
    first = analyze(data, limits=LIMITS)
    assert_well_formed(first, data)
    assert "syntax-error" not in {f.rule for f in first.findings}, first.findings
    second = analyze(data, limits=LIMITS)
    assert first.model_dump(exclude={"duration_ms"}) == second.model_dump(exclude={"duration_ms"})


@FAST
@given(st.text(alphabet="()[]{}`$'\"/\\*\n x=;", max_size=600))
def test_bracket_soup_never_crashes_the_prescan(text: str) -> None:
    data = text.encode()
    assert_well_formed(analyze(data, limits=AnalysisLimits(max_depth=8)), data)
