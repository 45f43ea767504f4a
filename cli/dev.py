"""`gsf dev`: the game module in the platform's Node.js runtime, with no Docker or Temporal.

It analyzes the module on every save, restarts the runtime with the new code, prints a local
join URL, and with `--script` plays scripted clients against it and prints every frame.

A module the analysis blocks (what the platform would refuse to deploy) is not run: at the start
`gsf dev` exits with 1; on a save it keeps the last good version running. `--allow-blocked` runs
it anyway (the runtime on this machine is not the platform's container sandbox: mind what it does).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from cli.check import EXIT_BLOCKED, run_check
from core import listen

RUNTIME = Path(__file__).resolve().parent.parent / "gameserver" / "runtime" / "server.js"
POLL_SECONDS = 0.1  # how often the module's mtime is checked
console = Console(highlight=False)


class DevRuntime:
    """The runtime on `game`, on a socket bound here once (port 0: a free one) and passed to every
    start: a reload never frees the port, and a client connecting during one waits in the backlog."""

    def __init__(self, game: Path, port: int) -> None:
        self.game = game.resolve()
        self.extra_env: dict[str, str] = {}  # a project's build: NODE_OPTIONS=--enable-source-maps
        self.listener = listen.bind("127.0.0.1", port)
        self.port = listen.port_of(self.listener)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        node = shutil.which("node")
        if node is None:
            raise SystemExit("gsf dev: Node.js is required (apt-get install nodejs)")
        if not (RUNTIME.parent / "node_modules").is_dir():
            raise SystemExit("gsf dev: run `npm ci` in gameserver/runtime first (make up does)")
        env = {**os.environ, "GSF_GAME_FILE": str(self.game), "PORT": str(self.port), "GSF_BIND_HOST": "127.0.0.1",
               "GSF_LISTEN_FD": str(self.listener.fileno()),
               "GSF_SERVER_ID": "dev", "GSF_REQUIRE_TOKEN": "0", "GSF_AGENT_KEY": "dev", "GSF_SEAT_SECRET": "dev",
               **self.extra_env}
        # The runtime's own log goes to stderr, so stdout carries only this tool's lines (frames).
        self.proc = subprocess.Popen([node, str(RUNTIME)], env=env, stdout=sys.stderr,
                                     pass_fds=(self.listener.fileno(),))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def wait_healthy(self, timeout: float = 10) -> bool:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        return False


def check(game: Path) -> int:
    console.rule(f"[bold]{game.name}[/] analysis")
    return run_check(game, False, [], console)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # the same way out as Ctrl-C, so the runtime is stopped too


def refuse_blocked(game: Path) -> None:
    console.print(f"[bold red]gsf dev: not running {game.name}[/]: the analysis blocks it (the findings "
                  "above), and the platform would refuse to deploy it. Fix them, or pass --allow-blocked "
                  "to run it on this machine anyway.")


def run_dev(game: Path, port: int, players: int, script: Path | None, watch: bool = True,
            allow_blocked: bool = False) -> int:
    from cli.project import is_project

    if is_project(game):
        return run_dev_project(game, port, players, script, watch=watch, allow_blocked=allow_blocked)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        runtime = DevRuntime(game, port)
    except OSError as exc:
        console.print(f"[red]gsf dev: cannot listen on 127.0.0.1:{port}: {exc.strerror}[/] (--port 0 picks a free one)")
        return 1
    port = runtime.port
    code = check(game)
    if code == EXIT_BLOCKED and not allow_blocked:
        refuse_blocked(game)
        sys.stdout.flush()
        return EXIT_BLOCKED
    runtime.start()
    try:
        if not runtime.wait_healthy():
            console.print("[red]the runtime did not become healthy; see its output above[/]")
            if not watch:
                return 1
        else:
            console.print(f"[green]ready[/]  join: ws://127.0.0.1:{port}/ws   (no seat token needed in dev)")
            sys.stdout.flush()
        if script is not None:
            frames = asyncio.run(play_script(port, players, json.loads(script.read_text())))
            for player, frame in frames:
                print(f"p{player} {json.dumps(frame)}", flush=True)  # one frame a line, for tools too
            return 1 if code == 1 else 0
        if not watch:
            return code
        mtime = game.stat().st_mtime_ns
        while True:
            time.sleep(POLL_SECONDS)
            try:
                now = game.stat().st_mtime_ns
            except FileNotFoundError:
                continue
            if now != mtime:
                mtime = now
                # Analysis first (milliseconds for a game module): a blocked save never replaces
                # the version that is running.
                if check(game) == EXIT_BLOCKED and not allow_blocked:
                    running = runtime.proc is not None and runtime.proc.poll() is None
                    console.print("[bold red]✗ not reloaded[/]: the analysis blocks the saved version; "
                                  + ("the last good version keeps running" if running else "nothing is running")
                                  + ". Fix it and save (or restart with --allow-blocked).")
                    sys.stdout.flush()
                    continue
                runtime.stop()
                runtime.start()
                if runtime.wait_healthy():
                    console.print(f"[green]reloaded[/]  join: ws://127.0.0.1:{port}/ws")
                sys.stdout.flush()
            elif runtime.proc is not None and runtime.proc.poll() is not None:
                console.print(f"[red]the runtime exited with {runtime.proc.returncode}; fix the module and save[/]")
                sys.stdout.flush()
                runtime.proc = None
    except KeyboardInterrupt:
        return 0
    finally:
        runtime.stop()
        runtime.listener.close()


def _project_version(path: Path, allow_blocked: bool) -> tuple[Path, dict[str, str]] | None:
    """Analyze and build the project as it is on disk: (bundle, its env), or None when the analysis
    blocks it (without --allow-blocked) or it does not read or build (the reason printed)."""
    from cli.check import EXIT_BLOCKED, exit_code
    from cli.project import analyze_local, build_local, print_project_finding
    from core.archives import project_limits, read_project
    from core.errors import GsfError
    from core.settings import get_settings
    from gameserver.project import BuildError

    settings = get_settings()
    console.rule(f"[bold]{path.name}[/] analysis")
    try:
        project = read_project(path, project_limits(settings))
        report = analyze_local(path, project, settings, [])
        for finding in report.findings:
            print_project_finding(console, project, finding)
        code = exit_code(report)
        console.print(f"{len(report.files)} files, {len(report.dependencies)} packages: "
                      + ("[bold red]blocked[/]" if code == EXIT_BLOCKED else "[green]ok[/]"))
        if code == EXIT_BLOCKED and not allow_blocked:
            return None
        build = build_local(project, settings)
    except (GsfError, BuildError) as exc:
        console.print(f"[red]{exc}[/]", markup=False)
        return None
    if not build.ok:
        for error in build.errors:
            console.print(f"[red]build error[/] {error.get('file')}:{error.get('line')}:{error.get('column')} "
                          f"{error.get('text')}")
        return None
    env = build.runtime_env()
    return Path(env.pop("GSF_GAME_FILE")), env


def run_dev_project(path: Path, port: int, players: int, script: Path | None, watch: bool = True,
                    allow_blocked: bool = False) -> int:
    """`gsf dev <project>`: analyzed, built (TypeScript, dependencies) and run; any file of the
    project saved -> analyzed, built and reloaded; a version that is blocked or does not build
    never replaces the one running."""
    from gameserver import esbuild_service

    with esbuild_service.kept_warm():  # every save compiles; the service keeps the unchanged files
        return _run_dev_project(path, port, players, script, watch, allow_blocked)


def _run_dev_project(path: Path, port: int, players: int, script: Path | None, watch: bool,
                     allow_blocked: bool) -> int:
    from cli.project import project_signature

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    version = _project_version(path, allow_blocked)
    if version is None:
        refuse_blocked(path)
        sys.stdout.flush()
        return EXIT_BLOCKED
    try:
        runtime = DevRuntime(version[0], port)
    except OSError as exc:
        console.print(f"[red]gsf dev: cannot listen on 127.0.0.1:{port}: {exc.strerror}[/] (--port 0 picks a free one)")
        return 1
    runtime.extra_env = version[1]
    port = runtime.port
    runtime.start()
    try:
        if runtime.wait_healthy():
            console.print(f"[green]ready[/]  join: ws://127.0.0.1:{port}/ws   (no seat token needed in dev)")
        else:
            console.print("[red]the runtime did not become healthy; see its output above[/]")
            if not watch:
                return 1
        sys.stdout.flush()
        if script is not None:
            frames = asyncio.run(play_script(port, players, json.loads(script.read_text())))
            for player, frame in frames:
                print(f"p{player} {json.dumps(frame)}", flush=True)
            return 0
        if not watch:
            return 0
        signature = project_signature(path)
        while True:
            time.sleep(POLL_SECONDS)
            try:
                now = project_signature(path)
            except OSError:
                continue
            if now == signature:
                if runtime.proc is not None and runtime.proc.poll() is not None:
                    console.print(f"[red]the runtime exited with {runtime.proc.returncode}; fix the game and save[/]")
                    sys.stdout.flush()
                    runtime.proc = None
                continue
            signature = now
            version = _project_version(path, allow_blocked)
            if version is None:
                console.print("[bold red]✗ not reloaded[/]: the saved version is blocked or does not build; "
                              "the last good version keeps running.")
                sys.stdout.flush()
                continue
            runtime.stop()
            runtime.game, runtime.extra_env = version
            runtime.start()
            if runtime.wait_healthy():
                console.print(f"[green]reloaded[/]  join: ws://127.0.0.1:{port}/ws")
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
    finally:
        runtime.stop()
        runtime.listener.close()


async def play_script(port: int, players: int, steps: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    """Connect `players` clients; each step sends {"player", "type", "data"} and waits `wait` seconds."""
    import websockets

    frames: list[tuple[int, Any]] = []
    clients = [await websockets.connect(f"ws://127.0.0.1:{port}/ws?name=p{i}") for i in range(players)]
    welcomed = [asyncio.Event() for _ in clients]

    async def reader(i: int, ws: Any) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            frames.append((i, frame))
            if frame.get("type") in ("welcome", "error"):
                welcomed[i].set()  # onJoin has finished (or refused this client)

    tasks = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(clients)]
    try:
        # The script starts once every client's onJoin is done, however slow the machine is.
        try:
            await asyncio.wait_for(asyncio.gather(*(event.wait() for event in welcomed)), 10)
        except TimeoutError:
            console.print("[yellow]not every client was welcomed within 10 s; playing the script anyway[/]")
        for step in steps:
            ws = clients[int(step.get("player", 0))]
            await ws.send(json.dumps({"type": step["type"], "data": step.get("data")}))
            await asyncio.sleep(float(step.get("wait", 0.1)))
        await asyncio.sleep(0.3)
    finally:
        for ws in clients:
            await ws.close()
        await asyncio.gather(*tasks, return_exceptions=True)
    return frames


if __name__ == "__main__":
    sys.exit(run_dev(Path(sys.argv[1]), 0, 2, None))
