"""The esbuild service (gameserver/esbuild_service.py) and the one esbuild run a project's analysis
and build share (gameserver/project.py `Compilation`): one process for a burst of requests, a
one-line change recompiles one file, the process stops when idle or closed, and an analysis that
accepts a project leaves the bundle its build then reuses."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psutil

from analysis.project_report import project_report
from core.archives import build_project, read_project
from gameserver.esbuild_service import EsbuildService, kept_warm
from gameserver.project import BUNDLE_FILE, ProjectBuilder, typescript_sources
from tests.gameserver.gameserver_testkit import node_binary

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "projects" / "dice-duel"


def gone(pid: int, limit: float = 5) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


def test_one_process_serves_a_burst_and_a_one_line_change_recompiles_one_file() -> None:
    service = EsbuildService(idle_seconds=0.5)
    sources = typescript_sources(read_project(SAMPLE))
    try:
        first = service.request({"op": "transform", "files": sources})
        pid = service.pid
        assert pid is not None
        changed = dict(sources, **{"src/rules.ts": sources["src/rules.ts"] + "// one more line\n"})
        second = service.request({"op": "transform", "files": changed})
        assert (first["stats"], second["stats"]) == ({"transformed": 4, "cached": 0}, {"transformed": 1, "cached": 3})
        assert second["files"]["src/index.ts"] == first["files"]["src/index.ts"]
        assert service.pid == pid
        assert service.starts == 1
        # Idle: the process ends by itself; the next request starts a new one.
        assert gone(pid), "the idle service did not stop"
        assert service.pid is None
        again = service.request({"op": "transform", "files": {"a.ts": "let x: number = 1;\n"}})
        assert again["errors"] == []
        assert service.starts == 2
    finally:
        service.close()
    assert service.pid is None


def test_errors_come_back_by_file_and_a_broken_service_is_a_clear_error() -> None:
    service = EsbuildService(idle_seconds=5)
    try:
        answer = service.request({"op": "transform", "files": {"src/bad.ts": "const a = 1;\nlet b: = 2;\n"}})
        (error,) = answer["errors"]
        assert (error["file"], error["line"]) == ("src/bad.ts", 2)
        pid = service.pid
        assert pid is not None
        psutil.Process(pid).kill()
        assert gone(pid)
        # A service that died between requests is replaced by the next one.
        assert service.request({"op": "transform", "files": {}})["errors"] == []
        assert service.starts == 2
    finally:
        service.close()


def test_kept_warm_stops_the_service_when_the_block_ends() -> None:
    with kept_warm(idle_seconds=60) as service:
        service.request({"op": "transform", "files": {}})
        pid = service.pid
        assert pid is not None
        time.sleep(0.3)
        assert service.pid == pid
    assert gone(pid)


def test_a_held_service_outlasts_its_idle_stop_until_the_block_ends() -> None:
    """ProjectBuilder.prepare holds the service while npm installs: an install slower than the idle
    stop must not leave the first request to start node and esbuild again."""
    service = EsbuildService(idle_seconds=0.2)
    try:
        with service.held():
            pid = service.pid
            assert pid is not None
            time.sleep(0.5)
            assert service.pid == pid
        assert service.request({"op": "transform", "files": {"a.ts": "let x: number = 1;\n"}})["errors"] == []
        assert (service.pid, service.starts) == (pid, 1)
        assert gone(pid), "the service did not stop once idle after the block"
    finally:
        service.close()


def test_the_analysis_run_makes_the_bundle_the_build_reuses(tmp_path: Path) -> None:
    files = {
        "package.json": b'{"name": "g", "gsf": {"entry": "src/index.ts"}}',
        "src/index.ts": b"import { check } from './check.js';\nimport type { Room } from './types';\n"
                        b"export default { onJoin(room: Room): void { room.state = check([1, 2, 3]); } };\n",
        "src/types.ts": b"export interface Room { state: unknown }\n",
        "src/check.ts": b"// validation\nexport function check(dice: number[]): number[] {\n"
                        b"  if (dice.length > 2) throw new RangeError(`too many dice: ${dice.length}`);\n"
                        b"  return dice;\n}\n",
    }
    project = build_project(files)
    builder = ProjectBuilder(tmp_path / "projects")
    with builder.compilation(project, None) as run:
        report = project_report(project, transpile=run.transpile)
        assert report.ok, report.findings
        kept = run.keep()
    assert (kept.built, builder.builds) == (True, 1)
    assert kept.compiled["stats"]["transformed"] + kept.compiled["stats"]["cached"] == 3
    # The build finds the bundle the analysis made: no second esbuild run.
    again = builder.build(project)
    assert (again.built, again.entry_file, builder.builds) == (False, kept.entry_file, 1)
    assert not [p for p in (tmp_path / "projects" / "builds").iterdir() if p.name.startswith(".")]
    # The bundle, made of the compiled files, still names the .ts line of a throw.
    run_it = subprocess.run([node_binary(), "--enable-source-maps", "-e",
                             "require(process.argv[1]).default.onJoin({});", str(kept.path / BUNDLE_FILE)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert "RangeError: too many dice: 3" in run_it.stderr
    assert f"{kept.path}/src/check.ts:3:" in run_it.stderr, run_it.stderr

    # A project the analysis blocks is not kept: nothing of it stays on disk.
    shell = (b"import { execSync } from 'child_process';\n"
             b"export const check = (d: number[]) => { execSync('id'); return d; };\n")
    hostile = build_project({**files, "src/check.ts": shell})
    with builder.compilation(hostile, None) as run:
        assert not project_report(hostile, transpile=run.transpile).ok
    assert sorted(p.name for p in (tmp_path / "projects" / "builds").iterdir()) == [project.sha256]


def test_the_service_answers_in_a_process_with_more_than_1024_open_files() -> None:
    """A long-running API or test session holds many descriptors; the service's pipe then gets one
    past 1023, which select.select() refuses (a fresh clone's test run failed so, in analysis)."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1200, hard), hard))
    held: list[int] = []
    service = EsbuildService(idle_seconds=5)
    try:
        while not held or held[-1] < 1100:
            held.append(os.open(os.devnull, os.O_RDONLY))
        answer = service.request({"op": "transform", "files": {"a.ts": "let x: number = 1;\n"}})
        assert answer["errors"] == []
        assert service.starts == 1
    finally:
        service.close()
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
