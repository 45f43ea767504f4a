"""Issue #20's analyzer edges: room.state writes (1), constant maxPlayers/tickRate (2), 1-based
columns everywhere (6) and the headline finding (7)."""

from __future__ import annotations

import pytest

from analysis import DEFAULT_MAX_PLAYERS, RULES, analyze
from core.contracts import Severity
from workflows.gameserver import _rejection

HOOKS = "module.exports = { onJoin(room, player) {}, onMessage(room, player, type, data) {} };\n"


def rules_of(source: str, filename: str = "game.js") -> list[str]:
    return [f.rule for f in analyze(source.encode(), filename=filename).findings]


# --- 1: room.state starts as {} --------------------------------------------------------------

GAME = """module.exports = {{
  onCreate(room) {{ {create} }},
  onJoin(room, player) {{ {join} }},
  onMessage(room, player, type, data) {{}},
}};
"""


@pytest.mark.parametrize(("create", "join", "key"), [
    ("", "room.state.players[player.id] = player;", "players"),
    ("room.state.n = 0;", "room.state.board.x = 1;", "board"),
    ("room.state = { score: 0 };", "room.state.players[player.id] = player;", "players"),
    ("", "room.state.queue.push(player.id);", "queue"),
    ("", "room.state.seen[player.id]++;", "seen"),
])
def test_a_write_into_a_never_assigned_state_object_warns(create: str, join: str, key: str) -> None:
    report = analyze(GAME.format(create=create, join=join).encode())
    (finding,) = [f for f in report.findings if f.rule == "state-unassigned"]
    assert finding.severity == Severity.WARN
    assert report.ok
    assert f"room.state.{key}" in finding.message
    assert finding.hint == RULES["state-unassigned"].hint
    assert finding.line == 3  # at the write in onJoin


def test_a_hook_with_another_name_for_the_room_is_followed() -> None:
    report = analyze(b"export default { onJoin(r, p) { r.state.players[p.id] = p; } };", filename="game.mjs")
    assert [f.rule for f in report.findings] == ["state-unassigned"]


@pytest.mark.parametrize(("create", "join"), [
    ("room.state.n = 0;", "room.state.n += 1;"),  # state itself is {}
    ("room.state.players = {};", "room.state.players[player.id] = player;"),
    ("", "room.state.players ??= {}; room.state.players[player.id] = player;"),
    ("room.state = { players: {}, board: { x: 0 } };", "room.state.board.x = 1; room.state.players.a = 1;"),
    ("room.state = makeState();", "room.state.players[player.id] = player;"),  # unknown keys
    ("room.state = { ...DEFAULTS };", "room.state.players[player.id] = player;"),
    ("Object.assign(room.state, { players: {} });", "room.state.players[player.id] = player;"),
    ("setup(room.state);", "room.state.players[player.id] = player;"),
    ("const s = room.state; s.players = {};", "room.state.players[player.id] = player;"),
    ("const { state } = room; state.players = {};", "room.state.players[player.id] = player;"),
    ("", "room.state.players?.push(player);"),  # guarded
    ("", "const n = room.state.players.length;"),  # a read, not a write
])
def test_no_warning_when_the_object_is_assigned_or_unknowable(create: str, join: str) -> None:
    assert rules_of(GAME.format(create=create, join=join)) == []


def test_an_assignment_in_a_helper_counts() -> None:
    source = ("function reset(r) { r.state.players = {}; }\n"
              "module.exports = { onCreate(room) { reset(room); }, "
              "onJoin(room, p) { room.state.players[p.id] = p; } };")
    assert rules_of(source) == []


def test_one_warning_per_key_at_its_first_write() -> None:
    source = GAME.format(create="", join="room.state.players[player.id] = player; room.state.players.x = 1;")
    (finding,) = [f for f in analyze(source.encode()).findings if f.rule == "state-unassigned"]
    assert (finding.line, finding.column) == (3, 26)


# --- 2: maxPlayers and tickRate from constants --------------------------------------------------

@pytest.mark.parametrize(("source", "max_players", "tick_rate"), [
    ("const MAX = 16;\nmodule.exports = { maxPlayers: MAX, onJoin() {} };", 16, None),
    ("const BASE = 4, MAX = BASE * 4;\n"
     "module.exports = { maxPlayers: MAX, tickRate: BASE * 5, onJoin() {}, onTick() {} };", 16, 20),
    (("const MAX = 16;\nmodule.exports = { maxPlayers: Math.min(MAX, 100), tickRate: Math.max(1, 60 / 4), "
     "onJoin() {}, onTick() {} };"), 16, 15),
    (("const CONFIG = { seats: 16, room: { rate: 10 } };\n"
     "module.exports = { maxPlayers: CONFIG.seats, tickRate: CONFIG.room['rate'], "
     "onJoin() {}, onTick() {} };"), 16, 10),
    ("const MAX = 16;\nconst game = { maxPlayers: MAX - 0, onJoin() {} };\nmodule.exports = game;", 16, None),
    ("const HALF = 8;\nexport const maxPlayers = HALF * 2 | 0;\nexport function onJoin() {}", 16, None),
])
def test_constants_are_folded(source: str, max_players: int, tick_rate: int | None) -> None:
    filename = "game.mjs" if "export " in source else "game.js"
    report = analyze(source.encode(), filename=filename)
    assert report.ok, [(f.rule, f.message) for f in report.findings]
    assert report.findings == [], [(f.rule, f.message) for f in report.findings]
    assert report.exports["maxPlayers"] == max_players
    assert report.exports["tickRate"] == tick_rate
    assert report.exports["verified"] is True


def test_a_folded_value_out_of_range_is_still_refused() -> None:
    report = analyze(b"const MAX = 17 / 2;\nmodule.exports = { maxPlayers: MAX, onJoin() {} };")
    assert [f.rule for f in report.findings] == ["contract-max-players"]
    assert "8.5" in report.findings[0].message


@pytest.mark.parametrize("source", [
    "module.exports = { maxPlayers: readSeats(), onJoin() {} };",
    "let max = 16;\nmax = Number(process.argv.length);\nmodule.exports = { maxPlayers: max, onJoin() {} };",
    "const CONFIG = { seats: 16 };\nCONFIG.seats = 4;\nmodule.exports = { maxPlayers: CONFIG.seats, onJoin() {} };",
    "const base = makeBase();\nmodule.exports = { ...base, onJoin() {} };",
])
def test_an_unknowable_max_players_warns_with_the_default(source: str) -> None:
    report = analyze(source.encode())
    assert report.ok
    assert report.exports["maxPlayers"] is None
    (finding,) = report.findings
    assert finding.rule == "contract-unverified"
    assert finding.severity == Severity.WARN
    assert f"{DEFAULT_MAX_PLAYERS} seats" in finding.message
    assert "maxPlayers" in finding.message


def test_an_unknowable_tick_rate_warns() -> None:
    report = analyze(b"module.exports = { tickRate: cfg.rate, onJoin() {}, onTick() {} };")
    (finding,) = report.findings
    assert finding.rule == "contract-unverified"
    assert "tickRate" in finding.message
    assert report.exports["tickRate"] is None


def test_absent_max_players_is_not_a_warning() -> None:
    assert rules_of("module.exports = { onJoin() {} };") == []


def test_the_workflow_falls_back_to_the_default_the_warning_names() -> None:
    # The warning promises DEFAULT_MAX_PLAYERS seats; the workflow is what hands them out.
    import workflows.gameserver as wf

    assert vars(wf)["DEFAULT_MAX_PLAYERS"] == DEFAULT_MAX_PLAYERS == 8


# --- 6: one column convention, 1-based ---------------------------------------------------------

def test_columns_are_one_based_everywhere() -> None:
    source = "const x = 1;\nconst y = eval('x');\n" + HOOKS
    report = analyze(source.encode())
    (finding,) = report.findings
    # `eval` is the 11th character of line 2, as an editor shows it; the end is just after it.
    assert (finding.line, finding.column, finding.end_line, finding.end_column) == (2, 11, 2, 15)
    assert finding.model_dump(mode="json")["column"] == 11
    assert "eval at 2:11:" in _rejection(report)


def test_a_finding_without_a_position_is_at_line_1_column_1() -> None:
    (finding,) = analyze(b"\xff\xfe").findings
    assert (finding.line, finding.column) == (1, 1)


# --- 7: the headline is the security finding -----------------------------------------------------

@pytest.mark.parametrize("source", [
    "module._load('child_process');",
    "process.binding('spawn_sync');",
    "process.getBuiltinModule('fs');",
])
def test_security_comes_before_the_contract(source: str) -> None:
    report = analyze(source.encode())
    rules = [f.rule for f in report.findings]
    assert rules[0] == "process-internals"
    assert "contract-exports" in rules
    assert _rejection(report).startswith("code rejected: process-internals at 1:")


def test_findings_are_ordered_by_severity_then_security_then_position() -> None:
    source = ("module.exports = { onJoin() {}, tickRate: 5, onmessage() {} };\n"  # contract warnings
              "fetch('https://example.com/x');\n"  # security warning
              "eval('1');\n")  # security block
    report = analyze(source.encode())
    assert [f.rule for f in report.findings] == [
        "eval", "network-egress", "contract-tick", "contract-unknown-hook"]
    allowed = analyze(source.encode(), allow_rules=["eval"])
    assert [f.rule for f in allowed.findings][-1] == "eval"  # allowed: a note, so last
    assert allowed.findings[-1].severity == Severity.INFO


def test_gsf_deploy_prints_the_reported_column_and_puts_the_caret_under_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    import cli.client

    buffer = io.StringIO()
    monkeypatch.setattr(cli.client, "err", Console(file=buffer, width=200, color_system=None))
    report = analyze(("const x = 1;\nconst y = eval('x');\n" + HOOKS).encode())
    cli.client.print_findings(report.model_dump(mode="json"))
    lines = buffer.getvalue().splitlines()
    assert "2:11 eval" in lines[0]
    assert lines[2].index("^") == lines[1].index("eval")
