"""`gsf check`: human and JSON output, and the exit codes 0/1/2."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from cli.check import EXIT_BLOCKED, EXIT_CLEAN, EXIT_UNREADABLE, EXIT_WARNINGS, run_check

CLEAN = "module.exports = { onJoin(room, player) {} };\n"


def run(path: Path, as_json: bool = False, allow: list[str] | None = None) -> tuple[int, str]:
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, force_terminal=False, color_system=None)
    code = run_check(path, as_json, allow or [], console=console)
    return code, buffer.getvalue()


def test_clean_file(tmp_path: Path) -> None:
    path = tmp_path / "game.js"
    path.write_text(CLEAN)
    code, out = run(path)
    assert code == EXIT_CLEAN
    assert "0 blocking, 0 warnings" in out
    assert "clean" in out


def test_blocked_file_shows_line_and_caret(tmp_path: Path) -> None:
    path = tmp_path / "game.js"
    path.write_text("const x = 1;\nconst y = eval('x');\n" + CLEAN)
    code, out = run(path)
    assert code == EXIT_BLOCKED
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if "game.js:2:11" in line)
    assert "eval" in lines[head]
    assert lines[head + 1].endswith("const y = eval('x');")
    source_at = lines[head + 1].index("const y")
    assert lines[head + 2].index("^") == source_at + len("const y = ")
    assert lines[head + 2].count("^") == len("eval")
    assert "hint:" in lines[head + 3]
    assert "Blocking (1)" in out
    assert "blocked" in lines[-1]


def test_warnings_only(tmp_path: Path) -> None:
    path = tmp_path / "game.js"
    path.write_text("fetch('https://example.com/x');\n" + CLEAN)
    code, out = run(path)
    assert code == EXIT_WARNINGS
    assert "Warnings (1)" in out


def test_json_output_and_allow(tmp_path: Path) -> None:
    path = tmp_path / "game.mjs"
    path.write_text("\tconst s = process.env.X;\nexport default { onJoin() {} };\n")
    code, out = run(path, as_json=True)
    payload = json.loads(out)
    assert code == EXIT_BLOCKED
    assert payload["exit_code"] == 1
    assert payload["ok"] is False
    assert payload["module_type"] == "module"
    assert payload["file"] == str(path)
    (finding,) = payload["findings"]
    # 1-based, as editors show it: the tab is column 1, `process` starts at column 12.
    assert finding["rule"] == "process-env"
    assert (finding["line"], finding["column"]) == (1, 12)
    assert finding["end_column"] == 1 + len("\tconst s = process.env")
    code, out = run(path, as_json=True, allow=["process-env"])
    payload = json.loads(out)
    assert code == EXIT_CLEAN
    assert payload["allowed_rules"] == ["process-env"]


def test_human_and_json_output_give_the_same_column(tmp_path: Path) -> None:
    path = tmp_path / "game.js"
    path.write_text("const x = 1;\nconst y = eval('x');\n" + CLEAN)
    _, out = run(path)
    _, as_json = run(path, as_json=True)
    (finding,) = json.loads(as_json)["findings"]
    assert (finding["line"], finding["column"]) == (2, 11)
    assert f"game.js:{finding['line']}:{finding['column']}" in out


def test_unknown_allow_entries_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "game.js"
    path.write_text(CLEAN)
    code, out = run(path, allow=["no-such-rule", "syntax-error"])
    assert code == EXIT_CLEAN
    assert "--allow no-such-rule is ignored" in out
    assert "--allow syntax-error is ignored" in out


def test_unreadable_file(tmp_path: Path) -> None:
    code, out = run(tmp_path / "missing.js")
    assert code == EXIT_UNREADABLE
    assert "cannot read" in out


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "game.js"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    code, out = run(path)
    assert code == EXIT_BLOCKED
    assert "not-utf8" in out
