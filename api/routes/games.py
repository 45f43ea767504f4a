"""Games: named, versioned uploads (a build: content hash, analysis report, image), and a server
deployed from one version."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from analysis import AnalysisLimits
from analysis.project_report import project_report
from api.analysis_pool import AnalysisPool, AnalysisPoolDep, caller_key
from api.deps import ArtifactsDep, CurrentUser, SessionDep, SettingsDep, TemporalDep, require_scope
from api.ownership import visible_to
from api.routes.servers import plan_limits
from api.schemas import Labels, LimitOverrides, ServerCreated
from api.uploads import (
    ALLOW_RULES_SCHEMA,
    GAME_MODULE_SCHEMA,
    GameUpload,
    allowed_rules,
    game_module_upload,
    read_game_upload,
)
from core.contracts import AnalysisReport
from core.db.models import Game, GameVersion, User, new_id
from core.deploy import Deployment
from core.errors import (
    BadRequest,
    NotFound,
    Unavailable,
)
from core.fleets import CodeRejected, FleetBuild
from core.problems import problems
from core.queues import workflow_ui_url
from core.request_bounds import MAX_PLAYERS, MIN_PLAYERS
from core.settings import Settings
from gameserver.image import game_image_tag
from gameserver.project import BuildError, transpile_typescript
from workflows.deployments import deploy

router = APIRouter(prefix="/api/v1/games", tags=["games"], dependencies=[Depends(require_scope("servers"))])

GAME_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
GAME_NAME_RE = re.compile(GAME_NAME)
# A version number in a path: past this it names no version (and would overflow the database's integers).
VersionNumber = Annotated[int, Path(ge=1, le=1_000_000_000)]


class GameVersionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    version: int
    source_sha256: str
    source_size: int
    filename: str
    module_kind: str
    max_players: int
    image: str
    notes: str
    created_at: datetime


class GameVersionDetail(GameVersionPublic):
    game: str
    analysis: dict[str, Any]


class GamePublic(BaseModel):
    id: str
    name: str
    owner_id: str
    latest_version: int | None
    versions: int
    created_at: datetime
    updated_at: datetime


class GamesPublic(BaseModel):
    items: list[GamePublic]
    count: int


class GameVersionsPublic(BaseModel):
    game: str
    items: list[GameVersionPublic]


class VersionDeploy(LimitOverrides):
    """A single server from a stored version: the same options as an upload's deploy."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")]
    labels: Labels = Field(default_factory=dict)
    node_selector: Labels = Field(default_factory=dict)
    idle_timeout: Annotated[float, Field(ge=0, le=7 * 86400)] | None = None
    plan: Annotated[str, Field(max_length=40)] = ""


async def _analyze(request: Request, pool: AnalysisPool, settings: Settings, upload: GameUpload,
                   allow: list[str]) -> AnalysisReport:
    """A module through the analysis pool; a project here, in a thread: its own files by the same
    rules and its packages from the lockfile (install scripts). Its installed packages' files are
    judged when a server is deployed from it (the `analyze_code` activity installs them)."""
    if upload.project is None:
        return await pool.analyze(caller_key(request), upload.source, filename=upload.filename, allow_rules=allow)
    limits = AnalysisLimits(max_bytes=settings.project_max_file_bytes, max_depth=settings.analysis_max_depth,
                            time_budget_seconds=settings.analysis_time_budget_seconds)
    try:
        return await asyncio.to_thread(project_report, upload.project, transpile=transpile_typescript,
                                       allow_packages=settings.allowed_packages, allow_rules=allow, limits=limits)
    except BuildError as exc:  # the build tooling (esbuild) is missing or broken on this host
        raise Unavailable(f"the project cannot be analyzed here: {exc}") from None


async def owned_game(session: SessionDep, user: User, name: str) -> Game:
    """The caller's game by name (an admin's own first, then anyone's); another user's is a 404."""
    query = visible_to(user, select(Game).where(Game.name == name), Game.owner_id)
    games = (await session.scalars(query.order_by(Game.created_at))).all()
    game = next((g for g in games if g.owner_id == user.id), games[0] if games else None)
    if game is None:
        raise NotFound(f"no game {name!r}")
    return game


async def game_version(session: SessionDep, game: Game, version: int | None) -> GameVersion:
    """A version of the game; None: the newest."""
    query = select(GameVersion).where(GameVersion.game_id == game.id)
    query = query.where(GameVersion.version == version) if version is not None else query.order_by(
        GameVersion.version.desc()).limit(1)
    found = await session.scalar(query)
    if found is None:
        raise NotFound(f"game {game.name!r} has no version {version}" if version is not None
                       else f"game {game.name!r} has no version yet")
    return found


def build_of(version: GameVersion) -> FleetBuild:
    return FleetBuild(version=version.version, version_id=version.id, source_sha256=version.source_sha256,
                      filename=version.filename, max_players=version.max_players,
                      allow_rules=list(version.allow_rules or []))


def _detail(game: Game, version: GameVersion) -> GameVersionDetail:
    return GameVersionDetail(**GameVersionPublic.model_validate(version).model_dump(), game=game.name,
                             analysis=dict(version.analysis or {}))


@router.post("", status_code=201, response_model=GameVersionDetail, responses=problems(403, 422, 503),
             openapi_extra=game_module_upload({}))
async def upload_version(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    artifacts: ArtifactsDep,
    settings: SettingsDep,
    pool: AnalysisPoolDep,
    file: Annotated[UploadFile, File(description="the game module (.js, .mjs or .cjs), or a project: .zip or "
                                     ".tar.gz with package.json, or a .ts file (docs/projects.md)",
                                     json_schema_extra=GAME_MODULE_SCHEMA)],
    name: Annotated[str, Form(description="the game's name; a new name creates the game",
                              json_schema_extra={"pattern": GAME_NAME})],
    max_players: Annotated[int | None, Form(ge=MIN_PLAYERS, le=MAX_PLAYERS)] = None,
    notes: Annotated[str, Form(max_length=500, description="what changed in this version")] = "",
    allow_rules: Annotated[str, Form(description="comma-separated rule ids (admin only)",
                                     json_schema_extra=ALLOW_RULES_SCHEMA)] = "",
) -> GameVersionDetail:
    """Upload a new version of a game: analyzed now, refused with its findings if blocked."""
    if not GAME_NAME_RE.match(name):
        raise BadRequest("name: 1-64 characters of letters, digits, '_', '.', '-'")
    upload = await read_game_upload(file, settings)
    source, filename = upload.source, upload.filename
    allow = allowed_rules(allow_rules, user)
    report = await _analyze(request, pool, settings, upload, allow)
    if not report.ok:
        raise CodeRejected(f"{len(report.blocking)} blocking finding(s): "
                           + "; ".join(f"{f.rule} at {f.file + ':' if f.file else ''}{f.line}:{f.column}"
                                       for f in report.blocking[:5]),
                           findings=[f.model_dump() for f in report.blocking])
    sha = await asyncio.to_thread(artifacts.put, "sources", source)
    exported = report.exports.get("maxPlayers")
    seats = max_players or (exported if isinstance(exported, int) and MIN_PLAYERS <= exported <= MAX_PLAYERS else 0)
    image = game_image_tag(sha, settings.base_image)
    # Two uploads of one game at once race for the same number: the loser takes the next one.
    for _ in range(5):
        game = await session.scalar(select(Game).where(Game.owner_id == user.id, Game.name == name))
        if game is None:
            game = Game(id=new_id(), owner_id=user.id, name=name)
            session.add(game)
        latest = await session.scalar(select(func.max(GameVersion.version)).where(GameVersion.game_id == game.id))
        version = GameVersion(id=new_id(), game_id=game.id, version=(latest or 0) + 1, source_sha256=sha,
                              source_size=len(source), filename=filename, module_kind=report.module_type,
                              max_players=seats, analysis=report.model_dump(mode="json"), allow_rules=allow,
                              image=image, notes=notes)
        session.add(version)
        game.updated_at = datetime.now(UTC)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            continue
        return _detail(game, version)
    raise BadRequest("too many uploads of this game at once; upload again")


@router.get("", response_model=GamesPublic)
async def list_games(user: CurrentUser, session: SessionDep) -> GamesPublic:
    """The caller's games with their newest version (admins see all)."""
    query = select(Game, func.max(GameVersion.version), func.count(GameVersion.id)).outerjoin(
        GameVersion, GameVersion.game_id == Game.id).group_by(Game.id)
    query = visible_to(user, query, Game.owner_id)
    rows = (await session.execute(query.order_by(Game.name, Game.id))).all()
    items = [GamePublic(id=g.id, name=g.name, owner_id=g.owner_id, latest_version=latest, versions=n,
                        created_at=g.created_at, updated_at=g.updated_at) for g, latest, n in rows]
    return GamesPublic(items=items, count=len(items))


@router.get("/{name}/versions", response_model=GameVersionsPublic)
async def list_versions(name: str, user: CurrentUser, session: SessionDep) -> GameVersionsPublic:
    """Every version of one game, newest first."""
    game = await owned_game(session, user, name)
    rows = (await session.scalars(select(GameVersion).where(GameVersion.game_id == game.id)
                                  .order_by(GameVersion.version.desc()))).all()
    return GameVersionsPublic(game=game.name, items=[GameVersionPublic.model_validate(v) for v in rows])


@router.get("/{name}/versions/{version}", response_model=GameVersionDetail)
async def get_version(name: str, version: VersionNumber, user: CurrentUser, session: SessionDep) -> GameVersionDetail:
    """One version with its analysis report."""
    game = await owned_game(session, user, name)
    return _detail(game, await game_version(session, game, version))


@router.post("/{name}/versions/{version}/servers", status_code=202, response_model=ServerCreated,
             responses=problems(503))
async def deploy_version(name: str, version: VersionNumber, body: VersionDeploy, request: Request, user: CurrentUser,
                         session: SessionDep, temporal: TemporalDep, settings: SettingsDep) -> ServerCreated:
    """Deploy one server from a stored version (no upload: the build is already analyzed)."""
    game = await owned_game(session, user, name)
    found = await game_version(session, game, version)
    plan = body.plan or settings.default_plan
    limits = plan_limits(settings, plan, memory_mb=body.memory_mb, cpus=body.cpus, pids=body.pids)
    build = build_of(found)
    server = await deploy(session, temporal, settings, Deployment(
        server_id=new_id(), owner_id=user.id, name=body.name, game=game.name, source_sha256=build.source_sha256,
        filename=build.filename, max_players=build.max_players, allow_rules=list(build.allow_rules),
        labels=dict(body.labels), node_selector=dict(body.node_selector), limits=limits, plan=plan,
        idle_timeout=body.idle_timeout if body.idle_timeout is not None else settings.idle_timeout_seconds,
        message=f"version {build.version} of {game.name}"))
    return ServerCreated(
        id=server.id, name=server.name, status=server.status,
        status_url=str(request.url_for("get_server", server_id=server.id)), workflow_id=server.workflow_id,
        workflow_url=workflow_ui_url(settings.temporal_ui_url, settings.temporal_namespace, server.workflow_id,
                                     server.run_id))
