"""Every rule fires on a positive example and stays quiet on a close negative one."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis import RULES, analyze
from core.contracts import Severity

HOOKS = "\nmodule.exports = { onJoin(room, player) {}, onMessage(room, player, type, data) {} };\n"

# rule -> (positive, negative). Code examples get the hooks appended so the contract holds;
# contract examples are whole modules.
CODE_CASES: dict[str, tuple[str, str]] = {
    "host-module": ("const cp = require('child_process');", "const crypto = require('node:crypto');"),
    "process-internals": ("process.binding('fs');", "process.nextTick(() => {});"),
    "process-env": ("const port = process.env.PORT;", "const up = process.uptime();"),
    "process-control": ("function quit() { process.exit(1); }", "function quit() { throw new Error('x'); }"),
    "process-alias": ("const p = process; p.nextTick(() => {});", "process.nextTick(() => {});"),
    "capability-escape": ("const parent = module.parent;", "module.exports.extra = module.id;"),
    "network-egress": ("fetch('https://example.com/x');", "fetch('/api/scores');"),
    "eval": ("eval('1 + 1');", "JSON.parse('1');"),
    "function-constructor": ("const f = new Function('a', 'return a');", "const ok = f instanceof Function;"),
    "string-timer": ("setTimeout('tick()', 100);", "setTimeout(() => tick(), 100);"),
    "constructor-chain": ("const F = (() => {}).constructor;", "const name = this.constructor.name;"),
    "dynamic-require": ("const m = require(moduleName);", "const m = require('node:events');"),
    "require-alias": ("const load = require;", "const resolved = typeof require;"),
    "computed-global-access": ("const v = globalThis[name];", "const v = globalThis.structuredClone;"),
    # In a class: outside strict mode `this` may be the global object (capability-escape).
    "computed-this-access": ("class A { f(t) { return this['on' + t](); } }",
                             "class A { f(t) { return this[t](); } }"),
    "global-alias": ("const g = globalThis;", "const has = typeof globalThis !== 'undefined';"),
    "decoded-string-exec": ("obj[String.fromCharCode(101, 118)]();", "const s = String.fromCharCode(72, 105);"),
    "encoded-blob": ("const blob = '" + "QUJDRA" * 60 + "';", "const text = '" + "Hello there, " * 30 + "';"),
    "with-statement": ("with (Math) { max(1, 2); }", "Math.max(1, 2);"),
    "prototype-pollution": ("Array.prototype.shuffle = function () {};",
                            "function Deck() {}\nDeck.prototype.shuffle = function () {};"),
    "local-module": ("const helpers = require('./helpers');", "const events = require('events');"),
    "infinite-loop": ("function spin() { while (true) { step(); } }",
                      "function spin() { while (true) { if (step()) break; } }"),
    "large-allocation": ("const grid = new Array(1e9);", "const grid = new Array(1e4);"),
    "state-unassigned": ("function seat(room, p) { room.state.players[p.id] = p; }",
                         "function seat(room, p) { room.state.players ??= {}; room.state.players[p.id] = p; }"),
}

CONTRACT_CASES: dict[str, tuple[str, str]] = {
    "contract-exports": ("module.exports = { onLeave() {} };", "module.exports = { onMessage() {} };"),
    "contract-hook-type": ("module.exports = { onJoin: 42, onMessage() {} };",
                           "module.exports = { onJoin: () => {}, onMessage() {} };"),
    "contract-max-players": ("module.exports = { maxPlayers: 0, onJoin() {} };",
                             "module.exports = { maxPlayers: 4, onJoin() {} };"),
    "contract-max-rooms": ("module.exports = { maxRooms: 0, onJoin() {} };",
                           "module.exports = { maxRooms: 8, onJoin() {} };"),
    "contract-empty-room-seconds": ("module.exports = { emptyRoomSeconds: -1, onJoin() {} };",
                                    "module.exports = { emptyRoomSeconds: 30, onJoin() {} };"),
    "contract-tick-rate": ("module.exports = { tickRate: 2.5, onTick() {}, onJoin() {} };",
                           "module.exports = { tickRate: 20, onTick() {}, onJoin() {} };"),
    "contract-tick": ("module.exports = { tickRate: 10, onJoin() {} };",
                      "module.exports = { tickRate: 10, onTick() {}, onJoin() {} };"),
    "contract-unknown-hook": ("module.exports = { onJoin() {}, onmessage() {} };",
                              "module.exports = { onJoin() {}, onPowerUp() {} };"),
    "contract-unverified": ("module.exports = createGame();", "module.exports = { onJoin() {} };"),
}

# Rules about the input itself; they have their own tests in test_analysis_input.py.
INPUT_RULES = {"syntax-error", "input-too-large", "not-utf8", "nul-byte", "too-deep", "time-budget",
               "internal-error", "findings-truncated"}


def rules_of(source: str) -> set[str]:
    return {f.rule for f in analyze(source.encode()).findings}


def test_every_rule_has_examples() -> None:
    covered = set(CODE_CASES) | set(CONTRACT_CASES) | INPUT_RULES
    assert covered == set(RULES)


@pytest.mark.parametrize("rule", sorted(CODE_CASES))
def test_code_rule_positive(rule: str) -> None:
    report = analyze((CODE_CASES[rule][0] + HOOKS).encode())
    fired = [f for f in report.findings if f.rule == rule]
    assert fired, f"{rule} did not fire; findings: {[f.rule for f in report.findings]}"
    assert all(f.severity == RULES[rule].severity for f in fired)
    assert all(f.hint == RULES[rule].hint and f.message for f in fired)
    assert report.ok is (RULES[rule].severity != Severity.BLOCK)


@pytest.mark.parametrize("rule", sorted(CODE_CASES))
def test_code_rule_negative(rule: str) -> None:
    report = analyze((CODE_CASES[rule][1] + HOOKS).encode())
    assert rule not in {f.rule for f in report.findings}
    assert report.ok, [f.rule for f in report.findings]


@pytest.mark.parametrize("rule", sorted(CONTRACT_CASES))
def test_contract_rule_positive(rule: str) -> None:
    assert rule in rules_of(CONTRACT_CASES[rule][0])


@pytest.mark.parametrize("rule", sorted(CONTRACT_CASES))
def test_contract_rule_negative(rule: str) -> None:
    report = analyze(CONTRACT_CASES[rule][1].encode())
    assert report.findings == [], [f.rule for f in report.findings]


# --- evasions the analyzer must see through -----------------------------------------------------

BYPASSES = [
    "this.constructor.constructor('return process')().exit();",
    "globalThis['ev' + 'al']('process.exit()');",
    "const r = require; r('child' + '_process');",
    "require('child' + '_process').execSync('id');",
    "require(`child_process`);",
    "require(['child', 'process'].join('_'));",
    "import('node:' + 'fs');",
    "const { exec } = require('node:child_process');",
    "global.process.mainModule.require('fs');",
    "globalThis.process.binding('spawn_sync');",
    "const { env } = process;",
    "const { env: e } = globalThis.process;",
    "process['e' + 'nv'];",
    "process[key];",
    "(0, eval)('1');",
    "const e = eval; e('1');",
    "window.eval('1'); globalThis.eval('1');",
    "[].map.constructor('return this')();",
    "Object.getPrototypeOf(async function () {}).constructor('await 1')();",
    "Object.getPrototypeOf(function* () {}).constructor('yield 1');",
    "Reflect.construct(Function, ['return process'])();",
    "Function.prototype.constructor('return 1')();",
    "const F = Function; F('return 1')();",
    "module.constructor._load('child_process');",
    "module.require('fs');",
    "require.cache[key] = fake;",
    "globalThis[String.fromCharCode(101, 118, 97, 108)]('1');",
    "const name = atob('ZXZhbA=='); globalThis[name]('1');",
    "this[Buffer.from('ZXZhbA==', 'base64').toString()]('1');",
    "setTimeout('process.exit()', 0);",
    "setInterval(`tick()`, 10);",
    "const code = 'process.exit()'; setTimeout(code, 1);",
    "({}).constructor.prototype.polluted = 1;",
    "Object.prototype.__proto__ = null;",
    "obj.__proto__.isAdmin = true;",
    "Object.defineProperty(Array.prototype, 'x', { value: 1 });",
    "with (process) { env; }",
    "const { createRequire } = require('module'); createRequire(__filename)('fs');",
    "const p = globalThis.process; p.exit();",
    "import('data:text/javascript,process.exit()');",
    "require.call(null, 'fs');",
    "new (Function.bind(null, 'return 1'))();",
    "process.getBuiltinModule('fs');",
    "Reflect.get(globalThis, 'ev' + 'al')('1');",
    "Reflect.get(process, 'env');",
    "Reflect.get(globalThis, name);",
    "Object.constructor('return process')();",
    "const F = Math.max.constructor; F('return 1')();",
    "const F = require.constructor;",
    "new require('child_process');",
    "require`fs`;",
]


@pytest.mark.parametrize("source", BYPASSES)
def test_known_bypasses_are_blocked(source: str) -> None:
    report = analyze((source + HOOKS).encode())
    assert not report.ok, f"not blocked: {source}"


def test_esm_imports_are_checked() -> None:
    report = analyze(b"import { execSync } from 'node:child_process';\nexport default { onJoin() {} };\n")
    assert report.module_type == "module"
    assert [f.rule for f in report.findings] == ["host-module"]
    report = analyze(b"export * from 'fs';\nexport function onJoin() {}\n")
    assert "host-module" in {f.rule for f in report.findings}


def test_every_host_module_with_and_without_prefix() -> None:
    names = ["child_process", "cluster", "worker_threads", "vm", "v8", "inspector", "fs",
             "fs/promises", "net", "dgram", "http", "https", "http2", "tls", "dns", "os", "module",
             "process"]
    for name in names:
        for spec in (name, "node:" + name):
            for form in (f"require('{spec}');", f"import('{spec}');"):
                assert "host-module" in rules_of(form + HOOKS), form


def test_process_members() -> None:
    for member, rule in [("binding", "process-internals"), ("dlopen", "process-internals"),
                         ("getBuiltinModule", "process-internals"), ("mainModule", "process-internals"),
                         ("env", "process-env"), ("exit", "process-control"), ("abort", "process-control"),
                         ("kill", "process-control"), ("chdir", "process-control"),
                         ("setuid", "process-control")]:
        assert rule in rules_of(f"process.{member};" + HOOKS), member
        assert rule in rules_of(f"process['{member}'];" + HOOKS), member
        assert rule in rules_of(f"const {{ {member} }} = process;" + HOOKS), member


def test_loops_that_end_or_suspend_are_fine() -> None:
    fine = [
        "function f() { for (;;) { if (x()) return 1; } }",
        "function f() { while (1) { throw new Error('x'); } }",
        "async function f() { while (true) { await tick(); } }",
        "function* f() { while (true) { yield 1; } }",
        "function f() { outer: while (true) { for (const x of y) { if (x) break outer; } } }",
        "function f() { do { if (x()) break; } while (true); }",
        "function f() { while (true) { switch (x()) { case 1: return; default: } } }",
    ]
    for source in fine:
        assert "infinite-loop" not in rules_of(source + HOOKS), source
    stuck = [
        "function f() { while (true) { for (const x of y) { if (x) break; } } }",
        "function f() { while (true) { switch (x) { case 1: break; } } }",
        "function f() { while (!0) { const g = () => { return 1; }; } }",
        "module.exports = { onTick(room) { for (;;) { room.x++; } }, onJoin() {} };",
    ]
    for source in stuck:
        assert "infinite-loop" in rules_of(source + ("" if "onJoin" in source else HOOKS)), source


def test_infinite_loop_message_names_the_hook() -> None:
    report = analyze(b"module.exports = { onTick(room) { while (true) { room.n++; } }, onJoin() {} };")
    (finding,) = [f for f in report.findings if f.rule == "infinite-loop"]
    assert "onTick" in finding.message
    # Also when the module is parsed inside the CommonJS wrapper (a top-level return).
    report = analyze(b"if (!module) return;\nfor (;;) {}\nmodule.exports = { onJoin() {} };")
    (finding,) = [f for f in report.findings if f.rule == "infinite-loop"]
    assert "top level" in finding.message
    assert (finding.line, finding.column) == (2, 1)


def test_contract_forms() -> None:
    good = [
        "exports.onJoin = function (room, player) {};",
        "module.exports.onMessage = (room) => {};",
        "const game = { onJoin() {} };\nmodule.exports = game;",
        "function onJoin() {}\nmodule.exports = { onJoin, maxPlayers: 3 };",
        "const base = { onJoin() {} };\nmodule.exports = { ...base, tickRate: 0 };",
        "const game = {};\ngame.onJoin = () => {};\nmodule.exports = game;",
        "Object.assign(module.exports, { onJoin() {} });",
        "class Game { static onJoin() {} }\nmodule.exports = Game;",
        "module.exports = exports = { onMessage() {} };",
    ]
    for source in good:
        report = analyze(source.encode())
        assert report.ok, (source, [f.rule for f in report.findings])
        assert report.findings == [], (source, [f.rule for f in report.findings])
        assert report.exports["verified"] is True


def test_contract_of_es_modules() -> None:
    report = analyze(b"export default { maxPlayers: 4, onJoin() {} };")
    assert report.exports == {"form": "export default", "hooks": ["onJoin"], "maxPlayers": 4,
                              "tickRate": None, "verified": True}
    report = analyze(b"export const maxPlayers = 2;\nexport function onMessage() {}\n")
    assert report.ok
    assert report.exports["form"] == "named"
    assert report.exports["maxPlayers"] == 2
    report = analyze(b"export const maxPlayers = 2;\n")
    assert [f.rule for f in report.findings] == ["contract-exports"]


def test_contract_violations_say_what_to_export() -> None:
    for source in ["const x = 1;", "exports = { onJoin() {} };", "module.exports = 42;"]:
        report = analyze(source.encode())
        (finding,) = [f for f in report.findings if f.rule == "contract-exports"]
        assert finding.severity == Severity.BLOCK
        assert "module.exports = { onJoin" in finding.message


def test_exports_summary_for_the_workflow() -> None:
    report = analyze(b"module.exports = { maxPlayers: 2, tickRate: 0, onCreate() {}, onJoin() {} };")
    assert report.exports == {"form": "module.exports", "hooks": ["onCreate", "onJoin"],
                              "maxPlayers": 2, "tickRate": 0, "verified": True}


def test_allow_list_downgrades_and_is_recorded() -> None:
    source = ("process.env.X; eval('1');" + HOOKS).encode()
    report = analyze(source, allow_rules=["process-env", "nonexistent", "syntax-error"])
    env = [f for f in report.findings if f.rule == "process-env"]
    assert env
    assert all(f.severity == Severity.INFO and f.message.endswith("(allowed by admin)")
                       for f in env)
    assert report.allowed_rules == ["process-env"]
    assert not report.ok  # eval still blocks
    report = analyze(source, allow_rules=["process-env", "eval"])
    assert report.ok
    assert report.allowed_rules == ["eval", "process-env"]
    # Allowing a rule that did not fire records nothing.
    assert analyze(HOOKS.encode(), allow_rules=["eval"]).allowed_rules == []


def test_input_rules_cannot_be_allowed() -> None:
    report = analyze(b"const = ;", allow_rules=list(RULES))
    assert not report.ok
    assert [f.rule for f in report.findings] == ["syntax-error"]
    assert report.allowed_rules == []


def test_docs_list_every_rule_with_its_severity() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "analysis.md").read_text()
    for rule in RULES.values():
        row = f"| `{rule.id}` | {rule.severity.value}"
        assert row in docs, f"docs/analysis.md has no row for {rule.id}"
        assert (f"| `{rule.id}` | {rule.severity.value}, fixed" in docs) is (not rule.allowable)


def test_undefined_hooks_count_as_absent_like_in_the_runtime() -> None:
    report = analyze(b"module.exports = { onJoin() {}, onTick: undefined };")
    assert report.ok
    assert report.findings == []
    assert report.exports["hooks"] == ["onJoin"]
    assert [f.rule for f in analyze(b"module.exports = { onJoin: void 0 };").findings] == [
        "contract-exports"]
    assert [f.rule for f in analyze(b"module.exports = { onJoin() {}, onLeave: null };").findings] == [
        "contract-hook-type"]
