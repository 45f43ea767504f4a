"""The `gsf` command."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from core import listen
from core.errors import StartupError
from core.request_bounds import MAX_PLAYERS, MIN_PLAYERS
from core.settings import get_settings

app = typer.Typer(help="Game Server Factory: host multiplayer JavaScript game servers.", no_args_is_help=True,
                  add_completion=False)


def _logging() -> None:
    """Text or JSON lines (GSF_LOG_FORMAT) at GSF_LOG_LEVEL, for this process and uvicorn's loggers."""
    from core.logging import configure

    s = get_settings()
    configure(s.log_format, s.log_level)


def _run_until_signal(coro: Coroutine[Any, Any, None]) -> None:
    """Run a long-lived service; SIGTERM/SIGINT cancel it so workers shut down gracefully."""

    async def main() -> None:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(main())
    except StartupError as exc:
        typer.echo(f"gsf: {exc}", err=True)
        raise typer.Exit(2) from None


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
    from api.server import uvicorn_config
    from core.heap import settle_heap

    _logging()
    s = get_settings()
    app = create_app(s)
    settle_heap()  # the objects of startup out of the collector's way (the p99 of allocation)
    # proxy_headers off: X-Forwarded-For is the platform's to read, from GSF_TRUSTED_PROXIES only.
    config = uvicorn_config(app, s)
    # The socket `gsf up` bound and handed over, if it did (core/listen.py); else bound here.
    uvicorn.Server(config).run(sockets=[listen.listener(s.api_host, s.api_port)])


@app.command()
def matchmaker() -> None:
    """Run the matchmaker."""
    from core.heap import settle_heap
    from matchmaker.server import build_server

    # MatchmakerServer ends open SSE streams first, so a stop never waits on a watching browser.
    server = build_server(get_settings(), log_level="warning")
    _logging()  # after uvicorn.Config, which installs handlers of its own
    settle_heap()  # full collections over startup's objects paused it 60-380 ms under load
    settings = get_settings()
    server.run(sockets=[listen.listener(settings.matchmaker_host, settings.matchmaker_port)])


@app.command("control-worker")
def control_worker() -> None:
    """Run the control worker (workflows and control activities)."""
    from control_worker.worker import run_control_worker

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
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=True, readable=True,
                                         help="a game module, or a project: folder, .zip, .tar.gz, .ts")],
    name: Annotated[str, typer.Option(help="server name")] = "",
    max_players: Annotated[int | None, typer.Option(
        min=MIN_PLAYERS, max=MAX_PLAYERS, help="seats; default: the module's maxPlayers")] = None,
    max_rooms: Annotated[int | None, typer.Option(
        min=1, help="rooms this server may host (joinOrCreate fills them); default: the module's maxRooms, else 1")
    ] = None,
    label: Annotated[list[str] | None, typer.Option(help="key=value; repeatable")] = None,
    wait: Annotated[bool, typer.Option(help="follow the deployment until it runs")] = True,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    replace: Annotated[str | None, typer.Option(
        metavar="OLD_SERVER_ID", help=("once the new server runs, stop this one with its durable rooms moved into "
                                       "the new one (another version: its onMigrate runs); exit 1 if any stayed"))
    ] = None,
) -> None:
    """Upload a game module or project and deploy it (--replace: a rolling update of a server)."""
    from api.uploads import upload_stem
    from cli.client import deploy as run

    default = upload_stem(file.resolve().name if file.is_dir() else file.name)
    raise typer.Exit(run(get_settings(), file, name or default, max_players, label or [], wait, json_output,
                         max_rooms, replace))


@app.command()
def servers(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List your servers."""
    from cli.client import servers as run

    raise typer.Exit(run(get_settings(), json_output))


@app.command()
def server(server_id: Annotated[str, typer.Argument(help="the server's id, or any unique prefix of it")]) -> None:
    """Show one server and its status history."""
    from cli.client import show

    raise typer.Exit(show(get_settings(), server_id))


@app.command()
def rooms(
    room_id: Annotated[str | None, typer.Argument(help="show this room (its id, or any unique prefix of it)")] = None,
    game: Annotated[str | None, typer.Option(help="only this game's rooms")] = None,
    server: Annotated[str | None, typer.Option(help="only the rooms of this server (id or prefix)")] = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List the rooms (with their server, game, players, free seats), or show one room."""
    from cli.rooms import room, rooms

    settings = get_settings()
    raise typer.Exit(room(settings, room_id, json_output) if room_id else rooms(settings, game, server, json_output))


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
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=True, readable=True,
                                         help="a game module, or a project: folder, .zip, .tar.gz, .ts")],
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable report")] = False,
    allow: Annotated[list[str] | None, typer.Option(help="rule id to allow; repeatable")] = None,
) -> None:
    """Analyze a game module or project locally: exit 0 clean, 1 blocked, 2 warnings only."""
    from cli.check import run_check
    from cli.project import is_project, run_project_check

    if is_project(file):
        raise typer.Exit(run_project_check(file, get_settings(), json_output, allow or []))
    raise typer.Exit(run_check(file, json_output, allow or []))


@app.command()
def dev(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=True, readable=True,
                                         help="a game module, or a project: folder, .zip, .tar.gz, .ts")],
    port: Annotated[int, typer.Option(help="local port; 0 picks a free one")] = 8080,
    players: Annotated[int, typer.Option(help="scripted clients to connect")] = 2,
    script: Annotated[Path | None, typer.Option(help="JSON list of {player, type, data, wait}")] = None,
    allow_blocked: Annotated[bool, typer.Option(
        "--allow-blocked", help="run a module the analysis blocks (refused otherwise: exit 1)")] = False,
) -> None:
    """Run a game module locally in the platform runtime, reloading on save."""
    from cli.dev import run_dev

    raise typer.Exit(run_dev(file, port, players, script, allow_blocked=allow_blocked))


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


image_app = typer.Typer(help="Container images of the platform.", no_args_is_help=True)
app.add_typer(image_app, name="image")


@image_app.command("build-platform")
def image_build_platform() -> None:
    """Build the platform image without a registry, from this host's Python and node; prints its tag."""
    import docker

    from cli.platform_image import ensure_platform_image
    from gameserver.image import ImageError

    try:
        typer.echo(ensure_platform_image(docker.from_env()))
    except (ImageError, docker.errors.DockerException) as exc:
        typer.echo(f"gsf: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def nodes(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List nodes with liveness, load and labels (admin)."""
    from cli.client import nodes as run

    raise typer.Exit(run(get_settings(), json_output))


node_app = typer.Typer(help="A node: drain it for maintenance, take it back.", no_args_is_help=True)
app.add_typer(node_app, name="node")


@node_app.command("drain")
def node_drain(
    node_id: str,
    reason: Annotated[str, typer.Option(help="why, shown as the node's status reason")] = "",
    wait: Annotated[float, typer.Option(help="seconds to follow the servers stopping (0: answer at once)")] = 600,
) -> None:
    """No new servers on the node, and its servers stop: durable rooms move to other nodes (their
    players reconnect once), other rooms end; fleets start their servers again elsewhere (admin)."""
    from cli.client import node_drain as run

    raise typer.Exit(run(get_settings(), node_id, reason, wait))


@node_app.command("ready")
def node_ready(node_id: str) -> None:
    """Take a drained node back: placement may put servers on it again (admin)."""
    from cli.client import node_status as run

    raise typer.Exit(run(get_settings(), node_id, "ready", ""))


users_app = typer.Typer(help="Users (admin): list, create, delete.", no_args_is_help=True)
app.add_typer(users_app, name="users")
UserRef = Annotated[str, typer.Argument(help="the user's id or email")]
JsonOutput = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@users_app.command("list")
def users_list(json_output: JsonOutput = False) -> None:
    """List users, deleted ones included."""
    from cli.users import users_list as run

    raise typer.Exit(run(get_settings(), json_output))


@users_app.command("create")
def users_create(email: str, name: Annotated[str, typer.Option(help="display name")] = "",
                 admin: Annotated[bool, typer.Option("--admin", help="an admin user")] = False,
                 json_output: JsonOutput = False) -> None:
    """Create a user and print their first key (shown once)."""
    from cli.users import users_create as run

    raise typer.Exit(run(get_settings(), email, name, admin, json_output))


@users_app.command("delete")
def users_delete(user: UserRef) -> None:
    """Delete a user: revoke their keys, delete their servers and fleets, cancel their pipelines."""
    from cli.users import users_delete as run

    raise typer.Exit(run(get_settings(), user))


keys_app = typer.Typer(help="API keys: yours, or any user's with --user (admin).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
KeyUser = Annotated[str | None, typer.Option("--user", help="another user's id or email (admin)")]


@keys_app.command("list")
def keys_list(user: KeyUser = None, json_output: JsonOutput = False) -> None:
    """List keys, without their secrets."""
    from cli.users import keys_list as run

    raise typer.Exit(run(get_settings(), user, json_output))


@keys_app.command("create")
def keys_create(name: Annotated[str, typer.Option(help="what the key is for")] = "",
                scope: Annotated[list[str] | None, typer.Option(help="servers, models or admin; repeatable "
                                                                "(default: servers and models)")] = None,
                expires_in_days: Annotated[int | None, typer.Option(help="days until it stops working")] = None,
                json_output: JsonOutput = False) -> None:
    """Create a key for yourself with scopes your key holds (shown once)."""
    from cli.users import keys_create as run

    raise typer.Exit(run(get_settings(), name, scope or [], expires_in_days, json_output))


@keys_app.command("revoke")
def keys_revoke(key_id: str, user: KeyUser = None) -> None:
    """Revoke a key: it stops working at once."""
    from cli.users import keys_revoke as run

    raise typer.Exit(run(get_settings(), key_id, user))


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


# --- fleets and allocation (issue #10) --------------------------------------------------------


@app.command()
def fleets(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List your fleets: game version, size policy, ready and allocated servers."""
    from cli.fleets import fleets as run

    raise typer.Exit(run(get_settings(), json_output))


fleet_app = typer.Typer(help="Fleets: one game version on N servers, allocated in milliseconds.",
                        no_args_is_help=True)
app.add_typer(fleet_app, name="fleet")
GameFile = Annotated[Path | None, typer.Option("--file", exists=True, dir_okay=False,
                                               help="upload this file as the game's next version first")]


@fleet_app.command("create")
def fleet_create(
    name: str,
    game: Annotated[str, typer.Option(help="the game's name (gsf uploads it with --file)")],
    file: GameFile = None,
    version: Annotated[int | None, typer.Option(help="game version; default: the newest")] = None,
    replicas: Annotated[int | None, typer.Option(help="a fixed number of servers")] = None,
    buffer: Annotated[int | None, typer.Option(help="ready servers to keep on top of the allocated ones")] = None,
    min_size: Annotated[int, typer.Option("--min", help="with --buffer: fewest servers")] = 0,
    max_size: Annotated[int | None, typer.Option("--max", help="with --buffer: most servers")] = None,
    label: Annotated[list[str] | None, typer.Option(help="key=value; repeatable")] = None,
    plan: Annotated[str, typer.Option(help="resource plan")] = "",
    on_empty: Annotated[str, typer.Option(help="replace | ready: what a server becomes after its match")] = "replace",
    max_rooms: Annotated[int | None, typer.Option(
        help="rooms each server hosts (default: the game's maxRooms, else 1); the buffer counts free room slots",
    )] = None,
    migrate_rooms: Annotated[bool | None, typer.Option(
        "--migrate-rooms/--no-migrate-rooms",
        help="a rollout moves the live durable rooms of allocated servers into the new version (onMigrate)",
    )] = None,
) -> None:
    """Create a fleet (default: 1 replica)."""
    from cli.fleets import fleet_create as run

    raise typer.Exit(run(get_settings(), name, game, file, version, replicas, buffer, min_size, max_size,
                         label or [], plan, on_empty, max_rooms, bool(migrate_rooms)))


@fleet_app.command("scale")
def fleet_scale(
    fleet: str,
    replicas: Annotated[int | None, typer.Option()] = None,
    buffer: Annotated[int | None, typer.Option()] = None,
    min_size: Annotated[int | None, typer.Option("--min")] = None,
    max_size: Annotated[int | None, typer.Option("--max")] = None,
) -> None:
    """Change a fleet's size: --replicas, or a buffer policy (--buffer, --min, --max)."""
    from cli.fleets import fleet_scale as run

    raise typer.Exit(run(get_settings(), fleet, replicas, buffer, min_size, max_size))


@fleet_app.command("update")
def fleet_update(
    fleet: str,
    version: Annotated[int | None, typer.Option(help="roll out this game version")] = None,
    file: GameFile = None,
    max_surge: Annotated[str | None, typer.Option(help="extra servers during a rollout: 1 or 25%")] = None,
    max_unavailable: Annotated[str | None, typer.Option(help="ready servers that may be missing: 0 or 25%")] = None,
    on_empty: Annotated[str | None, typer.Option(help="replace | ready")] = None,
    migrate_rooms: Annotated[bool | None, typer.Option(
        "--migrate-rooms/--no-migrate-rooms",
        help="a rollout moves the live durable rooms of allocated servers into the new version (onMigrate)",
    )] = None,
) -> None:
    """Roll out another game version (allocated servers finish their matches on the old one, or with
    --migrate-rooms their durable rooms move into the new version)."""
    from cli.fleets import fleet_update as run

    raise typer.Exit(run(get_settings(), fleet, version, file, max_surge, max_unavailable, on_empty, migrate_rooms))


@fleet_app.command("delete")
def fleet_delete(fleet: str, force: Annotated[bool, typer.Option(help="stop allocated servers too")] = False) -> None:
    """Delete a fleet: idle servers stop now, allocated ones when their players leave."""
    from cli.fleets import fleet_delete as run

    raise typer.Exit(run(get_settings(), fleet, force))


@app.command()
def allocate(
    fleet: Annotated[str | None, typer.Option(help="fleet id or name")] = None,
    game: Annotated[str | None, typer.Option(help="or any of your fleets of this game")] = None,
    selector: Annotated[list[str] | None, typer.Option(help="label the server must have, key=value")] = None,
    players: Annotated[int, typer.Option(help="seats, one token each")] = 1,
    wait: Annotated[float, typer.Option(help="seconds to wait for a ready server (0: answer at once)")] = 0.0,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Allocate a ready server: its address and seat tokens, in milliseconds."""
    from cli.fleets import allocate as run

    raise typer.Exit(run(get_settings(), fleet, game, selector or [], players, wait, json_output))


@app.command("fake-tripo")
def fake_tripo(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8300,
    generation_seconds: Annotated[float, typer.Option(help="how long each task takes")] = 2.0,
    api_key: Annotated[list[str] | None, typer.Option(help="accepted key; repeatable (default: any tsk_...)")] = None,
) -> None:
    """Run a fake Tripo API (v2 contract) for tests and local development; point GSF_TRIPO_BASE_URL at it."""
    import uvicorn

    from fakes.tripo import create_fake_tripo_app

    _logging()
    config = uvicorn.Config(create_fake_tripo_app(api_keys=api_key or None, generation_seconds=generation_seconds),
                            host=host, port=port, log_level="warning")
    uvicorn.Server(config).run(sockets=[listen.listener(host, port)])

def main() -> None:
    app()


if __name__ == "__main__":
    main()
