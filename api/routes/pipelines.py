"""Pipelines: run a YAML pipeline on a node, follow its steps and logs, cancel or resume it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import func, select
from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.service import RPCError

from api.deps import CurrentUser, SessionDep, SettingsDep, TemporalDep, require_scope
from api.ownership import may_see, visible_to
from api.schemas import Offset
from core import pipeline as defs
from core.contracts import (
    PipelineInput,
    PipelineState,
    ResumePipelineInput,
    SelectNodeInput,
    StepCaller,
)
from core.db.models import Game, GameServer, GameVersion, Node, PipelineRun, User, new_id
from core.errors import Conflict, Forbidden, NoCapacity, NotFound, Unavailable
from core.placement import Placement
from core.problems import problems
from core.queues import pipeline_workflow_id, workflow_ui_url
from core.settings import Settings
from workflows.pipeline import PipelineWorkflow

router = APIRouter(prefix="/api/v1/pipelines", tags=["pipelines"],
                   dependencies=[Depends(require_scope("servers"))])
DONE = {"succeeded", "failed", "cancelled"}


class PipelineCreate(BaseModel):
    # The schema says what `_one_source` checks: exactly one of the two is given (not null).
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": [name], "properties": {name: {"type": "string"}}} for name in ("definition", "yaml")]})

    definition: Annotated[str, Field(json_schema_extra={"enum": sorted(
        p.stem for p in defs.PIPELINE_DIR.glob("*.yaml"))})] | None = Field(
        default=None, description="a name from config/pipeline/")
    yaml: str | None = Field(default=None, max_length=256 * 1024, description="an inline definition")
    node_id: str | None = Field(default=None, max_length=64)
    node_selector: dict[str, str] = Field(default_factory=dict)
    variables: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> PipelineCreate:
        if (self.definition is None) == (self.yaml is None):
            raise ValueError("give exactly one of `definition` (a name) or `yaml` (inline text)")
        return self


class PipelinePublic(BaseModel):
    id: str
    name: str
    node_id: str
    status: str
    error: str | None
    progress: float
    state: PipelineState
    workflow_id: str
    workflow_url: str
    created_at: Any
    updated_at: Any


class PipelinesPublic(BaseModel):
    items: list[PipelinePublic]
    count: int


def _public(run: PipelineRun, settings: Settings, state: PipelineState | None = None) -> PipelinePublic:
    state = state or PipelineState.model_validate(run.state or {})
    steps = [s for s in state.steps if not s.cleanup]
    done = sum(1 for s in steps if s.status.value in ("succeeded", "skipped"))
    return PipelinePublic(
        id=run.id, name=run.name, node_id=run.node_id, status=state.status.value if state.steps else run.status,
        error=state.error or run.error, progress=round(done / len(steps), 3) if steps else 0.0, state=state,
        workflow_id=run.workflow_id,
        workflow_url=workflow_ui_url(settings.temporal_ui_url, settings.temporal_namespace, run.workflow_id),
        created_at=run.created_at, updated_at=run.updated_at)


async def _of_uploads(session: SessionDep, user: User, column: str, values: set[str]) -> set[str]:
    """Of `values`, those that `column` (source_sha256 or image) holds on the user's servers or game versions."""
    on_servers = getattr(GameServer, column)
    on_versions = getattr(GameVersion, column)
    found = set((await session.scalars(select(on_servers).where(
        on_servers.in_(values), GameServer.owner_id == user.id))).all())
    found |= set((await session.scalars(select(on_versions).join(Game, Game.id == GameVersion.game_id).where(
        on_versions.in_(values), Game.owner_id == user.id))).all())
    return found


async def check_guarded(session: SessionDep, user: User, definition: defs.PipelineDef,
                        variables: dict[str, Any]) -> None:
    """A pipeline acts for its caller: the servers, owner, uploads and images its steps name must be
    the caller's own (admins may name anyone's). A server must be one the platform records as the
    caller's: containers of servers nobody recorded are an operator's business."""
    if user.is_admin:
        return
    guarded = defs.guarded_params(definition, variables)
    late = [place for place, _, value in guarded if value is None]
    if late:
        raise defs.PipelineInvalid(
            f"{late[0]} is decided by an earlier step's output; give it directly or as a variable",
            errors=[{"loc": place, "msg": "must not depend on a step's output"} for place in late])
    odd = [place for place, _, value in guarded if not isinstance(value, str)]
    if odd:
        raise defs.PipelineInvalid(f"{odd[0]} must be text",
                                   errors=[{"loc": place, "msg": "must be text"} for place in odd])
    values: dict[str, set[str]] = {}
    for _, name, value in guarded:
        values.setdefault(name, set()).add(value)
    refused: list[str] = []
    if values.get("owner_id", set()) - {user.id}:
        refused.append("owner_id names another user")
    if servers := values.get("server_id"):
        mine = set((await session.scalars(select(GameServer.id).where(
            GameServer.id.in_(servers), GameServer.owner_id == user.id))).all())
        refused += [f"server {sid} is not one of yours" for sid in sorted(servers - mine)]
    if sources := values.get("source_sha256"):
        owned = await _of_uploads(session, user, "source_sha256", sources)
        refused += [f"source {sha[:12]}... is not one you uploaded" for sha in sorted(sources - owned)]
    if images := values.get("image", set()) | values.get("remove_image", set()):
        built = await _of_uploads(session, user, "image", images)
        refused += [f"image {image} is not one built from your uploads" for image in sorted(images - built)]
    if refused:
        raise Forbidden("this pipeline names what is not yours: " + "; ".join(refused[:5]))


def check_node_resources(settings: Settings, user: User, definition: defs.PipelineDef,
                         variables: dict[str, Any]) -> None:
    """Registries, config sizes and quotas, early: the node checks them again with what its Docker
    holds (activities/steps.py), where the volumes and networks are and whose they are."""
    if not user.is_admin:
        defs.check_node_resources(definition, variables, settings, settings.game_network)


async def _owned(session: SessionDep, user: User, run_id: str) -> PipelineRun:
    run = await session.get(PipelineRun, run_id) if len(run_id) <= 32 else None
    if run is None or not may_see(user, run.owner_id):
        raise NotFound(f"no pipeline run {run_id!r}")
    return run


async def _live(temporal: TemporalDep, run: PipelineRun) -> PipelineState | None:
    """While it runs, the workflow itself is the freshest source; records may lag a step."""
    if run.status in DONE:
        return None
    try:
        state: PipelineState = await temporal.get_workflow_handle_for(PipelineWorkflow.run, run.workflow_id).query(
            PipelineWorkflow.state)
        return state
    except (RPCError, WorkflowQueryFailedError):
        return None


@router.post("", status_code=202, response_model=PipelinePublic, responses=problems(403, 409, 429))
async def run_pipeline(body: PipelineCreate, request: Request, user: CurrentUser, session: SessionDep,
                       temporal: TemporalDep, settings: SettingsDep) -> PipelinePublic:
    """Validate a pipeline and start it on a node (by id, or the least-loaded match of a selector)."""
    text = defs.load_named(body.definition) if body.definition is not None else body.yaml or ""
    definition = defs.parse(text)
    variables = defs.with_variables(definition, body.variables)
    await check_guarded(session, user, definition, variables)
    check_node_resources(settings, user, definition, variables)
    # The node acts for the run's owner: what the steps make carries their label, and only what
    # does is reused (a `caller` given in the YAML is refused by parse).
    definition = defs.with_caller(definition, StepCaller(owner_id=user.id, admin=user.is_admin))
    if body.node_id:
        node = await session.get(Node, body.node_id)
        if node is None:
            raise NotFound(f"no node {body.node_id!r}")
        node_id = node.id
    else:
        chosen = await Placement(request.app.state.sessions).choose(
            SelectNodeInput(server_id="", node_selector=body.node_selector))
        if chosen is None:
            raise NoCapacity(f"no online node matches {body.node_selector or 'any labels'}")
        node_id = chosen
    run_id = new_id()
    run = PipelineRun(id=run_id, owner_id=user.id, name=definition.name, node_id=node_id,
                      definition=definition.model_dump(mode="json"), variables=variables,
                      workflow_id=pipeline_workflow_id(run_id))
    session.add(run)
    await session.commit()
    try:
        await temporal.start_workflow(
            PipelineWorkflow.run,
            PipelineInput(run_id=run_id, owner_id=user.id, name=definition.name, node_id=node_id,
                          steps=definition.steps, cleanup=definition.cleanup, variables=variables,
                          control_queue=settings.control_queue,
                          node_schedule_to_start_seconds=settings.node_schedule_to_start_seconds,
                          pause_timeout_seconds=definition.pause_timeout_seconds),
            id=run.workflow_id, task_queue=settings.control_queue)
    except RPCError as exc:
        run.status, run.error = "failed", f"could not start its workflow: {exc.message}"
        await session.commit()
        raise Unavailable(f"Temporal refused the pipeline: {exc.message}") from None
    return _public(run, settings)


@router.get("", response_model=PipelinesPublic)
async def list_pipelines(user: CurrentUser, session: SessionDep, settings: SettingsDep,
                         status: Annotated[str | None, Query(max_length=20)] = None,
                         limit: Annotated[int, Query(ge=1, le=200)] = 50,
                         offset: Offset = 0) -> PipelinesPublic:
    """The caller's pipeline runs, newest first (admins see all)."""
    query = visible_to(user, select(PipelineRun), PipelineRun.owner_id)
    if status:
        query = query.where(PipelineRun.status == status)
    count = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = (await session.scalars(query.order_by(PipelineRun.created_at.desc()).limit(limit).offset(offset))).all()
    return PipelinesPublic(items=[_public(r, settings) for r in rows], count=count)


@router.get("/{run_id}", response_model=PipelinePublic)
async def get_pipeline(run_id: str, user: CurrentUser, session: SessionDep, temporal: TemporalDep,
                       settings: SettingsDep) -> PipelinePublic:
    """One run with each step's status, attempts, timings, output and error."""
    run = await _owned(session, user, run_id)
    return _public(run, settings, await _live(temporal, run))


@router.get("/{run_id}/logs")
async def pipeline_logs(run_id: str, user: CurrentUser, session: SessionDep, temporal: TemporalDep) -> dict[str, Any]:
    """Log lines of every step, in order."""
    run = await _owned(session, user, run_id)
    state = await _live(temporal, run) or PipelineState.model_validate(run.state or {})
    lines = [{"step": s.index, "name": s.name, "line": line} for s in state.steps for line in s.logs]
    lines += [{"step": s.index, "name": s.name, "line": f"error: {s.error}"} for s in state.steps if s.error]
    return {"id": run.id, "lines": lines}


@router.post("/{run_id}/cancel", response_model=PipelinePublic, responses=problems(409))
async def cancel_pipeline(run_id: str, user: CurrentUser, session: SessionDep, temporal: TemporalDep,
                          settings: SettingsDep) -> PipelinePublic:
    """Cancel the run: the running step stops through its heartbeat, then the cleanup steps run."""
    run = await _owned(session, user, run_id)
    if run.status not in DONE:
        try:
            await temporal.get_workflow_handle(run.workflow_id).cancel()
        except RPCError as exc:
            raise Unavailable(f"Temporal: {exc.message}") from None
    return _public(run, settings, await _live(temporal, run))


@router.post("/{run_id}/resume", response_model=PipelinePublic, responses=problems(403, 409, 429))
async def resume_pipeline(run_id: str, body: ResumePipelineInput, user: CurrentUser, session: SessionDep,
                          temporal: TemporalDep, settings: SettingsDep) -> PipelinePublic:
    """Retry the failed step of a paused run, optionally with changed variables."""
    run = await _owned(session, user, run_id)
    unknown = sorted(set(body.variables) - set(run.definition.get("variables", {})))
    if unknown:
        raise defs.PipelineInvalid(f"unknown variables: {', '.join(unknown)}",
                                   errors=[{"loc": f"variables.{u}", "msg": "not declared"} for u in unknown])
    live = None
    if body.variables:  # the run's variables so far were checked when they were given
        try:
            definition = defs.PipelineDef.model_validate(run.definition)
        except ValidationError:
            raise Conflict("this run's definition can no longer be read; start a new run") from None
        live = await _live(temporal, run)  # earlier resumes changed variables the record does not have
        if live is None:
            raise Conflict("the run has ended, or its workflow does not answer")
        await check_guarded(session, user, definition, {**live.variables, **body.variables})
        check_node_resources(settings, user, definition, {**live.variables, **body.variables})
    # The record carries the variables the run goes on with before the run does: a node fetching
    # the source a resumed build names is answered from it (api/routes/agent.py).
    before = run.variables
    if body.variables and live is not None:
        run.variables = {**live.variables, **body.variables}
        await session.commit()
    handle = temporal.get_workflow_handle_for(PipelineWorkflow.run, run.workflow_id)
    try:
        state = await handle.execute_update(PipelineWorkflow.resume, body)
    except (WorkflowUpdateFailedError, RPCError) as exc:
        if body.variables:
            run.variables = before
            await session.commit()
        if isinstance(exc, RPCError):
            raise Conflict(f"the run has ended: {exc.message}") from None
        raise Conflict(str(exc.cause) if exc.cause else "the run is not paused") from None
    return _public(run, settings, state)
