"""The `gsf` command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from core.settings import get_settings

app = typer.Typer(help="Game Server Factory: host multiplayer JavaScript game servers.", no_args_is_help=True,
                  add_completion=False)


def _logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _run_until_signal(coro: Coroutine[Any, Any, None]) -> None:
    """Run a long-lived service; SIGTERM/SIGINT cancel it so workers shut down gracefully."""

    async def main() -> None:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())


@app.command()
def up() -> None:
    """Start the whole platform on this machine (embedded defaults); Ctrl-C stops it."""
    from cli.up import run_up

    run_up(get_settings())


@app.command()
def api() -> None:
    """Run the control-plane API."""
    import uvicorn

    from api.main import create_app

    _logging()
    s = get_settings()
    # Open event streams must not hold a stop for long: `gsf up` waits 10 s per child.
    uvicorn.run(create_app(s), host=s.api_host, port=s.api_port, log_level="warning", timeout_graceful_shutdown=2)


@app.command()
def matchmaker() -> None:
    """Run the matchmaker."""
    from matchmaker.server import build_server

    _logging()
    # MatchmakerServer ends open SSE streams first, so a stop never waits on a watching browser.
    build_server(get_settings(), log_level="warning").run()


@app.command("control-worker")
def control_worker() -> None:
    """Run the control worker (workflows and control activities)."""
    from activities.control_worker import run_control_worker

    _logging()
    _run_until_signal(run_control_worker(get_settings()))


@app.command()
def agent(node_id: Annotated[str, typer.Option(help="this node's id")] = "") -> None:
    """Run the node agent for this machine."""
    from agent_worker.agent import Agent

    _logging()
    s = get_settings()
    _run_until_signal(Agent(s, node_id or s.node_id).run())


@app.command()
def deploy(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    name: Annotated[str, typer.Option(help="server name")] = "",
    max_players: Annotated[int | None, typer.Option(help="seats; default: the module's maxPlayers")] = None,
    label: Annotated[list[str] | None, typer.Option(help="key=value; repeatable")] = None,
    wait: Annotated[bool, typer.Option(help="follow the deployment until it runs")] = True,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Upload a game module and deploy it."""
    from cli.client import deploy as run

    raise typer.Exit(run(get_settings(), file, name or file.stem, max_players, label or [], wait, json_output))


@app.command()
def servers(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List your servers."""
    from cli.client import servers as run

    raise typer.Exit(run(get_settings(), json_output))


@app.command()
def server(server_id: str) -> None:
    """Show one server and its status history."""
    from cli.client import show

    raise typer.Exit(show(get_settings(), server_id))


@app.command()
def logs(server_id: str, tail: int = 100, follow: Annotated[bool, typer.Option("--follow", "-f")] = False) -> None:
    """Print (or follow) a server's logs."""
    from cli.client import logs as run

    raise typer.Exit(run(get_settings(), server_id, tail, follow))


@app.command()
def stop(server_id: str) -> None:
    """Stop a server."""
    from cli.client import stop as run

    raise typer.Exit(run(get_settings(), server_id, delete=False))


@app.command()
def delete(server_id: str) -> None:
    """Delete a server, its container and image."""
    from cli.client import stop as run

    raise typer.Exit(run(get_settings(), server_id, delete=True))


@app.command()
def check(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable report")] = False,
    allow: Annotated[list[str] | None, typer.Option(help="rule id to allow; repeatable")] = None,
) -> None:
    """Analyze a game module locally: exit 0 clean, 1 blocked, 2 warnings only."""
    from cli.check import run_check

    raise typer.Exit(run_check(file, json_output, allow or []))


@app.command()
def dev(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    port: Annotated[int, typer.Option(help="local port; 0 picks a free one")] = 8080,
    players: Annotated[int, typer.Option(help="scripted clients to connect")] = 2,
    script: Annotated[Path | None, typer.Option(help="JSON list of {player, type, data, wait}")] = None,
) -> None:
    """Run a game module locally in the platform runtime, reloading on save."""
    from cli.dev import run_dev

    raise typer.Exit(run_dev(file, port, players, script))


db_app = typer.Typer(help="The platform database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the schema migrations (SQLite or PostgreSQL, from GSF_DATABASE_URL)."""
    from core.db.migrate import upgrade
    from core.db.session import make_engine

    async def run() -> None:
        engine = make_engine(get_settings().database_url)
        try:
            await upgrade(engine, revision)
        finally:
            await engine.dispose()

    asyncio.run(run())
    typer.echo(f"database at {revision}")


@db_app.command("revision")
def db_revision(message: Annotated[str, typer.Option("-m", "--message")]) -> None:
    """Autogenerate a migration from model changes (for developers)."""
    from core.db.migrate import revision, upgrade
    from core.db.session import make_engine

    async def run() -> None:
        engine = make_engine(get_settings().database_url)
        try:
            await upgrade(engine)
            await revision(engine, message)
        finally:
            await engine.dispose()

    asyncio.run(run())


@app.command()
def nodes(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List nodes with liveness, load and labels (admin)."""
    from cli.client import nodes as run

    raise typer.Exit(run(get_settings(), json_output))


pipeline_app = typer.Typer(help="Run and follow pipelines (config/pipeline/*.yaml or a YAML file).",
                           no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")


@pipeline_app.command("run")
def pipeline_run(
    definition: Annotated[str, typer.Argument(help="a name in config/pipeline/ or a .yaml file")],
    node: Annotated[str, typer.Option(help="node id, or a selector like zone=eu")] = "",
    var: Annotated[list[str] | None, typer.Option(help="name=value; repeatable")] = None,
    wait: Annotated[bool, typer.Option(help="follow the steps live")] = True,
) -> None:
    """Start a pipeline and show its steps live."""
    from cli.client import pipeline_run as run

    raise typer.Exit(run(get_settings(), definition, node or get_settings().node_id, var or [], wait))


@pipeline_app.command("status")
def pipeline_status(run_id: str) -> None:
    """Follow a pipeline run's steps."""
    from cli.client import pipeline_action

    raise typer.Exit(pipeline_action(get_settings(), "status", run_id))


@pipeline_app.command("logs")
def pipeline_logs(run_id: str) -> None:
    """Print a pipeline run's step logs."""
    from cli.client import pipeline_action

    raise typer.Exit(pipeline_action(get_settings(), "logs", run_id))


@pipeline_app.command("cancel")
def pipeline_cancel(run_id: str) -> None:
    """Cancel a run (its cleanup steps run)."""
    from cli.client import pipeline_action

    raise typer.Exit(pipeline_action(get_settings(), "cancel", run_id))


@pipeline_app.command("resume")
def pipeline_resume(run_id: str, var: Annotated[list[str] | None, typer.Option(help="name=value")] = None) -> None:
    """Retry the failed step of a paused run."""
    from cli.client import pipeline_action

    raise typer.Exit(pipeline_action(get_settings(), "resume", run_id, var or []))


@app.command("fake-tripo")
def fake_tripo(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8300,
    generation_seconds: Annotated[float, typer.Option(help="how long each task takes")] = 2.0,
    api_key: Annotated[list[str] | None, typer.Option(help="accepted key; repeatable (default: any tsk_...)")] = None,
) -> None:
    """Run a fake Tripo API (v2 contract) for tests and local development; point GSF_TRIPO_BASE_URL at it."""
    import uvicorn

    from activities.tripo_fake import create_fake_tripo_app

    _logging()
    uvicorn.run(create_fake_tripo_app(api_keys=api_key or None, generation_seconds=generation_seconds),
                host=host, port=port, log_level="warning")

def main() -> None:
    app()


if __name__ == "__main__":
    main()
