"""Real code: the modern-JavaScript corpus and the sample games analyze clean."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from analysis import analyze, module_kind
from core.contracts import Severity

REPO = Path(__file__).resolve().parents[2]
CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.*js"))
# Game modules, not their unit tests (`*.test.js`, run by `node --test`).
GAMES = sorted(p for p in (REPO / "examples" / "games").glob("*.*js") if ".test." not in p.name)


def test_the_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_corpus_file_is_clean(path: Path) -> None:
    data = path.read_bytes()
    report = analyze(data, filename=path.name)
    assert report.findings == [], [(f.rule, f.line, f.message) for f in report.findings]
    assert report.ok
    assert report.exports["verified"] is True
    assert report.module_type == ("module" if path.suffix == ".mjs" else "commonjs")
    assert module_kind(data) == report.module_type


@pytest.mark.parametrize("path", GAMES, ids=lambda p: p.name)
def test_sample_game_has_no_blocking_finding(path: Path) -> None:
    report = analyze(path.read_bytes(), filename=path.name)
    assert not [f for f in report.findings if f.severity == Severity.BLOCK], report.findings
    assert report.ok
    assert report.exports["hooks"]


def test_node_accepts_the_corpus_too() -> None:
    """The corpus is valid for Node.js 20 itself, so 'parses clean' means what Node means."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node.js 20 (the game runtime needs it too)")
    for path in CORPUS:
        result = subprocess.run([node, "--check", str(path)], capture_output=True, text=True,
                                timeout=30, check=False)
        assert result.returncode == 0, (path.name, result.stderr)


def test_analysis_is_deterministic_on_the_corpus() -> None:
    for path in CORPUS[:10]:
        first = analyze(path.read_bytes(), filename=path.name).model_dump(exclude={"duration_ms"})
        second = analyze(path.read_bytes(), filename=path.name).model_dump(exclude={"duration_ms"})
        assert first == second
