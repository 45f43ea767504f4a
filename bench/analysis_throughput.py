"""Analysis throughput: KB/s of `analysis.analyze` end to end, next to acorn in Node.js.

Two inputs: a 1 MiB game file generated from the corpus's CommonJS games (each in its own block,
one real export at the end), and the modern-JavaScript corpus file by file. Python figures are
the best of a few rounds of the full analysis (limits, pre-scan, parse, every rule, contract);
acorn's are the best of warm rounds in one Node.js process started by this run, parsing with
locations, as a reference for what a JIT-compiled parser does with the same bytes.

Run: .venv/bin/python -m bench.analysis_throughput   (installs acorn with `npm ci` when needed)
Results: bench/results/analysis_throughput.json and .md
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from analysis import AnalysisLimits, analyze
from analysis.parsing import parse, parsing_environment

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "analysis" / "corpus"
ACORN = ROOT / "bench" / "acorn"
RESULTS = ROOT / "bench" / "results"
TARGET_KBS = 500.0
ONE_MIB = 1024 * 1024
PY_ROUNDS = 3
ACORN_ROUNDS = 30
# Generous: the benchmark measures speed, it must not be cut short by the default 5 s budget.
LIMITS = AnalysisLimits(time_budget_seconds=120)


def generated_game(size: int = ONE_MIB) -> bytes:
    """About `size` bytes of game code: the corpus's CommonJS games, each in a block, repeated."""
    parts = []
    for path in sorted(CORPUS.glob("*.js")):
        text = path.read_text(encoding="utf-8").lstrip("\ufeff")
        if re.search(r"^(?:if\b.*)?\breturn\b", text, re.MULTILINE):
            continue  # a top-level return would end the file early
        text = re.sub(r"^#!.*\n", "", text)
        parts.append(text.replace("module.exports =", "const game ="))
    tail = "module.exports = { maxPlayers: 4, onJoin(room, player) {}, onMessage() {} };\n"
    out: list[str] = []
    used = len(tail)
    index = 0
    while True:
        block = "{\n" + parts[index % len(parts)] + "\n}\n"
        if used + len(block.encode()) > size:
            break
        out.append(block)
        used += len(block.encode())
        index += 1
    return ("".join(out) + tail).encode()


def best_of(rounds: int, work: Any) -> tuple[float, float]:
    """(best, first) wall time in seconds of `work()`."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times), times[0]


def python_figures(files: list[tuple[str, bytes]]) -> dict[str, Any]:
    size = sum(len(data) for _, data in files)
    reports = [analyze(data, limits=LIMITS, filename=name) for name, data in files]
    blocking = sum(len(r.blocking) for r in reports)

    def analyze_all() -> None:
        for name, data in files:
            analyze(data, limits=LIMITS, filename=name)

    def parse_all() -> None:
        with parsing_environment():
            for name, data in files:
                parse(data.decode("utf-8").lstrip("\ufeff"), module=name.endswith(".mjs"),
                      deadline=float("inf"))

    best, first = best_of(PY_ROUNDS, analyze_all)
    parse_best, _ = best_of(PY_ROUNDS, parse_all)
    return {
        "bytes": size,
        "files": len(files),
        "best_s": round(best, 4),
        "first_s": round(first, 4),
        "kb_per_s": round(size / 1024 / best, 1),
        "parse_only_kb_per_s": round(size / 1024 / parse_best, 1),
        "blocking_findings": blocking,
    }


def ensure_acorn() -> str | None:
    """Path of `node` with acorn installed next to this file, or None when Node.js is missing."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None:
        return None
    if not (ACORN / "node_modules" / "acorn").is_dir():
        if npm is None:
            return None
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=ACORN, check=True,
                       capture_output=True, timeout=300)
    return node


def acorn_figures(node: str, paths: list[Path]) -> dict[str, Any]:
    result = subprocess.run([node, str(ACORN / "parse.mjs"), str(ACORN_ROUNDS), *map(str, paths)],
                            cwd=ACORN, check=True, capture_output=True, text=True, timeout=600)
    raw = json.loads(result.stdout)
    return {
        "bytes": raw["bytes"],
        "best_s": round(raw["best_ms"] / 1000, 5),
        "first_s": round(raw["first_ms"] / 1000, 5),
        "kb_per_s": round(raw["bytes"] / 1024 / (raw["best_ms"] / 1000), 1),
        "first_kb_per_s": round(raw["bytes"] / 1024 / (raw["first_ms"] / 1000), 1),
        "acorn": raw["acorn"],
        "node": raw["node"],
    }


def main() -> int:
    corpus = sorted(CORPUS.glob("*.*js"))
    game = generated_game()
    with tempfile.TemporaryDirectory() as tmp:
        game_path = Path(tmp) / "generated_game.js"
        game_path.write_bytes(game)
        inputs = {
            "generated_1mib": ([("generated_game.js", game)], [game_path]),
            "corpus": ([(p.name, p.read_bytes()) for p in corpus], corpus),
        }
        node = ensure_acorn()
        results: dict[str, Any] = {}
        for name, (files, paths) in inputs.items():
            py = python_figures(files)
            ref = acorn_figures(node, paths) if node else None
            results[name] = {
                "python": py,
                "acorn": ref,
                "acorn_to_python": round(ref["kb_per_s"] / py["kb_per_s"], 1) if ref else None,
                "meets_target": py["kb_per_s"] >= TARGET_KBS,
            }
    payload = {
        "benchmark": "analysis_throughput",
        "target_kb_per_s": TARGET_KBS,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.processor() or platform.system()}",
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "analysis_throughput.json").write_text(json.dumps(payload, indent=2) + "\n")
    table = render(payload)
    (RESULTS / "analysis_throughput.md").write_text(table)
    print(table)
    return 0 if all(r["meets_target"] for r in results.values()) else 1


def render(payload: dict[str, Any]) -> str:
    lines = [
        "# Analysis throughput",
        "",
        (f"Run {payload['when']}, Python {payload['python']}, {payload['machine']}. "
         f"Target: {payload['target_kb_per_s']:.0f} KB/s end to end."),
        "",
        ("| input | size | Python analyze (end to end) | Python parse only | acorn (warm) "
         "| acorn (first run) | acorn / Python |"),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in payload["results"].items():
        py, ref = r["python"], r["acorn"]
        acorn_warm = f"{ref['kb_per_s']:,.0f} KB/s" if ref else "n/a (no Node.js)"
        acorn_first = f"{ref['first_kb_per_s']:,.0f} KB/s" if ref else "n/a"
        ratio = f"{r['acorn_to_python']:.1f}×" if r["acorn_to_python"] else "n/a"
        lines.append(
            f"| {name} ({py['files']} file{'s' if py['files'] > 1 else ''}) "
            f"| {py['bytes'] / 1024:,.0f} KiB | **{py['kb_per_s']:,.0f} KB/s** "
            f"| {py['parse_only_kb_per_s']:,.0f} KB/s | {acorn_warm} | {acorn_first} | {ratio} |")
    first = next(iter(payload["results"].values()))["acorn"]
    if first:
        lines += ["", (f"acorn {first['acorn']} on Node.js {first['node']}, parsing with "
                       "locations and ranges. Python: esprima-fork through analysis, all rules.")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
