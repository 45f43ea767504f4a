"""Game servers: deploy an upload, list, inspect, follow logs, stop and delete."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, select
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import ArtifactsDep, CurrentUser, SessionDep, SettingsDep, TemporalDep, require_scope
from api.ownership import may_see, visible_to
from api.schemas import (
    LABELS_TEXT_SCHEMA,
    MAX_ROW_ID,
    Labels,
    LogLinePublic,
    LogsPublic,
    Offset,
    ServerCreated,
    ServerDetail,
    ServerEventPublic,
    ServerPublic,
    ServersPublic,
    limit_override,
)
from api.uploads import (
    ALLOW_RULES_SCHEMA,
    GAME_MODULE_SCHEMA,
    allowed_rules,
    game_module_upload,
    read_game_upload,
    upload_stem,
)
from core.contracts import Limits, ServerStatus, StopServerInput
from core.db.models import GameServer, LogLine, ServerEvent, StatSample, User, new_id
from core.deploy import Deployment
from core.errors import (
    BadRequest,
    Conflict,
    InvalidLimits,
    NotFound,
    Unavailable,
)
from core.fleets import version_name
from core.limits import below_floors
from core.problems import problems
from core.queues import workflow_ui_url
from core.request_bounds import MAX_PLAYERS, MAX_ROOMS, MIN_PLAYERS, MIN_ROOMS, SERVER_NAME_PATTERN, SERVER_NAME_RULE
from core.settings import Settings
from core.sse import EventStream
from workflows.deployments import deploy
from workflows.gameserver import GameServerWorkflow

router = APIRouter(prefix="/api/v1/servers", tags=["servers"], dependencies=[Depends(require_scope("servers"))])

NAME_RE = re.compile(SERVER_NAME_PATTERN)
LABELS = TypeAdapter(Labels)
DONE = {s.value for s in (ServerStatus.STOPPED, ServerStatus.DELETED, ServerStatus.FAILED, ServerStatus.REJECTED)}
STOP_TIMEOUT = 120.0


def _parse_labels(raw: str, field: str) -> dict[str, str]:
    """`k=v,k2=v2` or a JSON object of strings; malformed text is a 400, labels that break the
    rules of `Labels` (a nested or non-string value, a bad key, too many) a 422 as in JSON bodies."""
    raw = raw.strip()
    if not raw:
        return {}
    data: object
    if raw.startswith("{"):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"{field}: invalid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise BadRequest(f"{field}: expected a JSON object")
    else:
        pairs: dict[str, str] = {}
        for part in raw.split(","):
            key, sep, value = part.partition("=")
            if not sep:
                raise BadRequest(f"{field}: expected key=value, got {part.strip()!r}")
            pairs[key.strip()] = value.strip()
        data = pairs
    try:
        return LABELS.validate_python(data, strict=True)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", field, *e["loc"])} for e in exc.errors(
            include_url=False, include_context=False, include_input=False)]) from None


def _game_name(filename: str | None, project_name: str | None = None) -> str:
    """The game's name: a project's package.json `name`, else the file's stem (`mygame.zip` -> `mygame`)."""
    stem = project_name or upload_stem(filename)
    return re.sub(r"[^A-Za-z0-9_.-]", "-", stem)[:64] or "game"


def plan_limits(settings: Settings, plan: str, *, memory_mb: int | None = None, cpus: float | None = None,
                pids: int | None = None) -> Limits:
    """A plan's limits with the upload's overrides: refused below the floors the runtime needs
    (core/limits.py) and beyond the admin-set maxima, so Docker never sees a limit it would
    ignore (NanoCpus 0) or refuse, and placement never counts a server as almost nothing."""
    base = settings.plans.get(plan)
    if base is None:
        raise InvalidLimits(f"no plan {plan!r}; plans: {', '.join(sorted(settings.plans))}")
    asked: dict[str, float] = {name: base[name] if value is None else value
                               for name, value in (("memory_mb", memory_mb), ("cpus", cpus), ("pids", pids))}
    refused = below_floors(asked)
    refused += [f"{name} above {cap:g}" for name, cap in (
        ("memory_mb", settings.max_server_memory_mb), ("cpus", settings.max_server_cpus),
        ("pids", settings.max_server_pids)) if not refused and asked[name] > cap]
    if refused:
        raise InvalidLimits("limits outside what the runtime needs and this installation allows: "
                            + ", ".join(refused))
    return Limits(memory_mb=int(asked["memory_mb"]), cpus=float(asked["cpus"]), pids=int(asked["pids"]),
                  tmpfs_mb=settings.server_tmpfs_mb)


def max_rooms(server: GameServer) -> int:
    """Rooms the server may host, as its workflow decides: the deployment's `max_rooms`, else the
    module's `maxRooms` once the analysis has read it, else one."""
    asked = (server.limits or {}).get("max_rooms")
    if isinstance(asked, int) and asked > 0:
        return asked
    exported = ((server.analysis or {}).get("exports") or {}).get("maxRooms")
    return exported if isinstance(exported, int) and not isinstance(exported, bool) and exported > 0 else 1


def server_public(server: GameServer, settings: Settings, cls: type[ServerPublic] = ServerPublic) -> ServerPublic:
    out = cls.model_validate(server)
    out.max_rooms = max_rooms(server)
    out.workflow_url = workflow_ui_url(settings.temporal_ui_url, settings.temporal_namespace, server.workflow_id)
    return out


async def _owned(session: SessionDep, user: User, server_id: str) -> GameServer:
    server = await session.get(GameServer, server_id) if len(server_id) <= 32 else None
    # Another user's server is indistinguishable from a missing one.
    if server is None or not may_see(user, server.owner_id):
        raise NotFound(f"no server {server_id!r}")
    return server


@router.post("", status_code=202, response_model=ServerCreated, openapi_extra=game_module_upload({}))
async def create_server(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    temporal: TemporalDep,
    artifacts: ArtifactsDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="the game module (.js, .mjs or .cjs), or a project: .zip or "
                                     ".tar.gz with package.json, or a .ts file (docs/projects.md)",
                                     json_schema_extra=GAME_MODULE_SCHEMA)],
    name: Annotated[str, Form(json_schema_extra={"pattern": SERVER_NAME_PATTERN})],
    max_players: Annotated[int | None, Form(ge=MIN_PLAYERS, le=MAX_PLAYERS)] = None,
    max_rooms: Annotated[int | None, Form(ge=MIN_ROOMS, le=MAX_ROOMS, description=(
        "rooms the server may host (joinOrCreate fills them); default: the module's maxRooms, else 1"))] = None,
    labels: Annotated[str, Form(description="room labels: k=v,k2=v2 or a JSON object",
                                json_schema_extra=LABELS_TEXT_SCHEMA)] = "",
    node_selector: Annotated[str, Form(description="node labels the server needs: k=v,...",
                                       json_schema_extra=LABELS_TEXT_SCHEMA)] = "",
    allow_rules: Annotated[str, Form(description="comma-separated rule ids (admin only)",
                                     json_schema_extra=ALLOW_RULES_SCHEMA)] = "",
    idle_timeout: Annotated[float | None, Form(ge=0, le=7 * 86400,
                                               description="stop after this many seconds without players")] = None,
    plan: Annotated[str, Form(max_length=40, description="resource plan (GET /api/v1/config lists them)")] = "",
    memory_mb: Annotated[int | None, Form(**limit_override("memory_mb"))] = None,
    cpus: Annotated[float | None, Form(**limit_override("cpus"))] = None,
    pids: Annotated[int | None, Form(**limit_override("pids"))] = None,
) -> ServerCreated:
    """Upload a game module or project and deploy it as a new server."""
    if not NAME_RE.match(name):
        raise BadRequest(f"name: {SERVER_NAME_RULE}")
    upload = await read_game_upload(file, settings)
    source = upload.source
    allow = allowed_rules(allow_rules, user)
    parsed_labels = _parse_labels(labels, "labels")
    selector = _parse_labels(node_selector, "node_selector")
    limits = plan_limits(settings, plan or settings.default_plan, memory_mb=memory_mb, cpus=cpus, pids=pids)
    # Stored last: a refused upload leaves nothing behind.
    sha = await asyncio.to_thread(artifacts.put, "sources", source)
    server_id = new_id()
    server = await deploy(session, temporal, settings, Deployment(
        server_id=server_id, owner_id=user.id, name=name, game=_game_name(file.filename, upload.game_name),
        source_sha256=sha, source_size=len(source), filename=upload.filename, max_players=max_players or 0,
        max_rooms=max_rooms or 0,
        labels=parsed_labels, node_selector=selector, limits=limits, plan=plan or settings.default_plan,
        allow_rules=allow, message="uploaded",
        idle_timeout=idle_timeout if idle_timeout is not None else settings.idle_timeout_seconds))
    return ServerCreated(
        id=server_id, name=name, status=server.status,
        status_url=str(request.url_for("get_server", server_id=server_id)),
        workflow_id=server.workflow_id,
        workflow_url=workflow_ui_url(settings.temporal_ui_url, settings.temporal_namespace, server.workflow_id,
                                     server.run_id),
    )


@router.get("", response_model=ServersPublic)
async def list_servers(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    status: Annotated[str | None, Query(max_length=20)] = None,
    include_deleted: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> ServersPublic:
    """List the caller's servers, newest first (admins see all)."""
    query = visible_to(user, select(GameServer), GameServer.owner_id)
    if status:
        query = query.where(GameServer.status == status)
    elif not include_deleted:
        query = query.where(GameServer.status != ServerStatus.DELETED.value)
    count = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = (await session.scalars(query.order_by(GameServer.created_at.desc(), GameServer.id)
                                  .limit(limit).offset(offset))).all()
    return ServersPublic(items=[server_public(s, settings) for s in rows], count=count,
                         next_offset=offset + limit if offset + limit < count else None)


@router.get("/{server_id}", response_model=ServerDetail)
async def get_server(server_id: str, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> ServerPublic:
    """One server with its status history."""
    server = await _owned(session, user, server_id)
    events = (await session.scalars(select(ServerEvent).where(ServerEvent.server_id == server_id)
                                    .order_by(ServerEvent.seq))).all()
    detail = server_public(server, settings, ServerDetail)
    assert isinstance(detail, ServerDetail)
    detail.events = [ServerEventPublic.model_validate(e) for e in events]
    detail.analysis = server.analysis
    return detail


@router.get("/{server_id}/analysis")
async def get_analysis(server_id: str, user: CurrentUser, session: SessionDep) -> dict[str, object]:
    """The code-analysis report of the server's upload."""
    server = await _owned(session, user, server_id)
    if server.analysis is None:
        raise NotFound("the analysis has not finished yet")
    return dict(server.analysis)


@router.get("/{server_id}/stats")
async def get_stats(server_id: str, user: CurrentUser, session: SessionDep,
                    limit: Annotated[int, Query(ge=1, le=120)] = 60) -> dict[str, list[dict[str, object]]]:
    """Recent resource samples of the server's container, oldest first: CPU % (of one core),
    memory in bytes (as the limit counts it), pids, network bytes received and sent since the
    container started, uptime in seconds."""
    await _owned(session, user, server_id)
    rows = (await session.scalars(select(StatSample).where(StatSample.server_id == server_id)
                                  .order_by(StatSample.id.desc()).limit(limit))).all()
    return {"samples": [{"ts": r.ts.isoformat(), "cpu_percent": r.cpu_percent, "memory_bytes": r.memory_bytes,
                         "pids": r.pids, "net_rx_bytes": r.net_rx_bytes, "net_tx_bytes": r.net_tx_bytes,
                         "uptime_seconds": r.uptime_seconds} for r in reversed(rows)]}


LOG_BATCH = 500  # lines read per poll: the server holds at most this many per follower
LOG_POLL_SECONDS = 0.5


@router.get("/{server_id}/logs", response_model=None, responses={200: {"content": {
    "text/event-stream": {"schema": {"type": "string", "description": "with follow: `log` events"}},
    "application/x-ndjson": {"schema": {"type": "string", "description": "with follow and this Accept"}}}}})
async def get_logs(
    request: Request,
    server_id: str,
    user: CurrentUser,
    session: SessionDep,
    tail: Annotated[int, Query(ge=1, le=10_000)] = 100,
    follow: bool = False,
) -> LogsPublic | StreamingResponse:
    """The container's logs: the last `tail` lines, or with `follow` a live stream that ends
    when the server has stopped: Server-Sent Events (`event: log`, the line as JSON, `id` for
    `Last-Event-ID` resumption), or NDJSON when the request accepts `application/x-ndjson`.
    The server reads the stream in bounded batches, so a follower costs a fixed amount of memory."""
    await _owned(session, user, server_id)
    ndjson = "application/x-ndjson" in request.headers.get("accept", "")
    resume = request.headers.get("last-event-id", "")
    if follow and re.fullmatch(r"[0-9]{1,19}", resume) and int(resume) <= MAX_ROW_ID:
        rows = []  # a reconnecting SSE client: continue after the last line it saw
        last_id = int(resume)
    else:
        rows = list(reversed((await session.scalars(
            select(LogLine).where(LogLine.server_id == server_id).order_by(LogLine.id.desc()).limit(tail))).all()))
        last_id = rows[-1].id if rows else 0
    lines = [LogLinePublic(id=r.id, ts=r.ts, stream=r.stream, line=r.line) for r in rows]
    if not follow:
        return LogsPublic(server_id=server_id, lines=lines)
    sessions = request.app.state.sessions

    def frame(line: LogLinePublic) -> bytes:
        body = line.model_dump_json()
        return (body + "\n").encode() if ndjson else f"id: {line.id}\nevent: log\ndata: {body}\n\n".encode()

    async def stream() -> AsyncIterator[bytes]:
        nonlocal last_id
        if not ndjson:
            yield b": connected\n\n"
        for line in lines:
            yield frame(line)
        quiet_after_done = quiet = 0
        while not await request.is_disconnected():
            async with sessions() as s:
                new = (await s.scalars(select(LogLine).where(LogLine.server_id == server_id, LogLine.id > last_id)
                                       .order_by(LogLine.id).limit(LOG_BATCH))).all()
                status = await s.scalar(select(GameServer.status).where(GameServer.id == server_id))
            for r in new:
                last_id = r.id
                yield frame(LogLinePublic(id=r.id, ts=r.ts, stream=r.stream, line=r.line))
            if len(new) == LOG_BATCH:
                continue  # more waiting: read on without a pause
            if status in DONE and not new:
                quiet_after_done += 1
                if quiet_after_done >= 4:
                    if not ndjson:
                        yield f"event: end\ndata: {json.dumps({'status': status})}\n\n".encode()
                    return
            quiet = 0 if new else quiet + 1
            if not ndjson and quiet * LOG_POLL_SECONDS >= 15:
                quiet = 0
                yield b": keepalive\n\n"  # proxies close a silent connection
            await asyncio.sleep(LOG_POLL_SECONDS)

    if ndjson:
        return StreamingResponse(stream(), media_type="application/x-ndjson")
    return EventStream(stream())


async def _stop(session: SessionDep, temporal: TemporalDep, server: GameServer, delete: bool,
                drain: bool | None = None, drain_to: str = "", from_version: str = "") -> set[str]:
    """The statuses the record may wait for: the stopped ones, or `running` when rooms a rolling
    update could not migrate kept the server (`StopServerResult.status`)."""
    handle = temporal.get_workflow_handle_for(GameServerWorkflow.run, server.workflow_id)
    stop = StopServerInput(delete=delete, drain=drain, drain_to=drain_to, from_version=from_version)
    try:
        result = await asyncio.wait_for(handle.execute_update(GameServerWorkflow.stop, stop), STOP_TIMEOUT)
    except WorkflowUpdateFailedError:
        return DONE  # the validator refused: already deleted, which is what was asked
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise Unavailable(f"Temporal: {exc.message}") from None
        # The workflow has ended (rejected/failed/deleted): only the record is left to update.
        if delete:
            server.status = ServerStatus.DELETED.value
            server.updated_at = datetime.now(UTC)
            await session.commit()
        return DONE
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # The wait ran out (the update itself, cancelled by the timeout, raises the second).
        raise Unavailable("the server did not stop in time; the request goes on in the background") from None
    await session.refresh(server)
    return DONE | {result.status.value}


def game_version(server: GameServer) -> str:
    """The game version a server runs, as `onMigrate` names it (`core.fleets.version_name`)."""
    return version_name(server.labels, server.source_sha256)


def _bad_query(field: str, message: str) -> RequestValidationError:
    """A query parameter the schema lets through but the request cannot use (422, as a schema error)."""
    return RequestValidationError([{"type": "value_error", "loc": ("query", field), "msg": message}])


async def _drain_target(session: SessionDep, user: User, server: GameServer, drain_to: str) -> str:
    """`from_version` of a stop into `drain_to` (empty: the same version, a plain drain), once the
    target is checked: the same owner's, the same game, another server, running."""
    target = await session.get(GameServer, drain_to)
    if target is None or not may_see(user, target.owner_id) or target.owner_id != server.owner_id:
        raise _bad_query("drain_to", f"no server {drain_to!r} of the same owner")
    if target.id == server.id:
        raise _bad_query("drain_to", "a server cannot take its own rooms")
    if target.game != server.game:
        raise Conflict(f"drain_to: server {drain_to} runs game {target.game!r}, not {server.game!r}")
    if target.status != ServerStatus.RUNNING.value:
        raise Conflict(f"drain_to: server {drain_to} is {target.status}, not running")
    if target.source_sha256 == server.source_sha256 and game_version(target) == game_version(server):
        return ""
    return game_version(server)


@router.post("/{server_id}/stop", response_model=ServerPublic, responses=problems(409, 422))
async def stop_server(server_id: str, user: CurrentUser, session: SessionDep, temporal: TemporalDep,
                      settings: SettingsDep,
                      drain: Annotated[bool | None, Query(description=(
                          "move the server's durable rooms to another server of the same game version "
                          "(default: when it has any); false: end them as every other room"))] = None,
                      drain_to: Annotated[str | None, Query(min_length=1, max_length=32, description=(
                          "move the durable rooms into this running server of the same game (`gsf deploy "
                          "--replace`); when it runs another version, the rooms migrate (its `onMigrate` "
                          "runs) and those it refuses stay here, the server running with them"))] = None,
                      ) -> ServerPublic:
    """Stop the server (deregister, stop its container; its durable rooms move); idempotent."""
    server = await _owned(session, user, server_id)
    from_version = ""
    if drain_to is not None:
        if drain is False:
            raise _bad_query("drain", "drain=false cannot go with drain_to, which moves the durable rooms")
        from_version = await _drain_target(session, user, server, drain_to)
    if server.status not in DONE:
        settled = await _stop(session, temporal, server, delete=False, drain=True if drain_to else drain,
                              drain_to=drain_to or "", from_version=from_version)
        await _wait_record(session, server, settled)
    return server_public(server, settings)


@router.delete("/{server_id}", response_model=ServerPublic)
async def delete_server(server_id: str, user: CurrentUser, session: SessionDep, temporal: TemporalDep,
                        settings: SettingsDep) -> ServerPublic:
    """Delete the server, its container and its image if nothing else uses it; idempotent."""
    server = await _owned(session, user, server_id)
    if server.status != ServerStatus.DELETED.value:
        await _stop(session, temporal, server, delete=True)
        await _wait_record(session, server, {ServerStatus.DELETED.value})
    return server_public(server, settings)


async def _wait_record(session: SessionDep, server: GameServer, statuses: set[str], timeout: float = 10.0) -> None:
    """Records are written just after the workflow moves on; wait briefly so the answer is current."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while server.status not in statuses and loop.time() < deadline:
        await asyncio.sleep(0.05)
        await session.refresh(server)
