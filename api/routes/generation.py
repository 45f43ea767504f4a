"""3D models through Tripo (DESIGN §6): start a job from an image or a prompt, follow it, fetch the GLB."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from api.deps import CurrentUser, SessionDep, SettingsDep, TemporalDep, require_scope
from api.generation_schemas import (
    OPTION_FIELDS,
    CheckedImage,
    ModelCreate,
    ModelError,
    ModelJobCreated,
    ModelJobPublic,
    ModelJobsPublic,
    ModelJobStatusPublic,
    ModelLinks,
    ModelResultInfo,
    check_idempotency_key,
    check_image,
    check_prompt,
)
from api.ownership import may_see
from api.schemas import Offset
from core.contracts import (
    MODEL_JOB_DONE,
    GenerateModelInput,
    ModelInputKind,
    ModelJobStatus,
    ModelOptions,
)
from core.db.models import ModelJob, User, new_id
from core.errors import (
    BadRequest,
    Conflict,
    IdempotencyKeyReused,
    ModelNotReady,
    NotFound,
    Unavailable,
    UnsupportedMediaType,
    UploadTooLarge,
)
from core.model_cache import ModelStatusCache, ModelStatusDoc, status_doc
from core.problems import problems
from core.queues import model_workflow_id, workflow_ui_url
from core.settings import Settings
from core.storage import ObjectStore, open_object_store
from core.temporal import SA_OWNER, SA_STATUS
from workflows.generation import ModelGenerationWorkflow

GLB = "model/gltf-binary"
DONE = {s.value for s in MODEL_JOB_DONE}
MAX_JSON_BYTES = 64 * 1024
CANCEL_WAIT_SECONDS = 10.0


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The object store and the status cache live as long as the app (merged into its lifespan)."""
    settings: Settings = app.state.settings
    app.state.model_store = open_object_store(settings)
    app.state.model_cache = ModelStatusCache.from_settings(settings)
    try:
        yield
    finally:
        await app.state.model_store.close()
        if app.state.model_cache is not None:
            await app.state.model_cache.close()


router = APIRouter(prefix="/api/v1/models", tags=["models"], lifespan=lifespan,
                   dependencies=[Depends(require_scope("models"))])


async def get_model_store(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.model_store
    return store


async def get_model_cache(request: Request) -> ModelStatusCache | None:
    cache: ModelStatusCache | None = request.app.state.model_cache
    return cache


ModelStoreDep = Annotated[ObjectStore, Depends(get_model_store)]
ModelCacheDep = Annotated[ModelStatusCache | None, Depends(get_model_cache)]

# Two request bodies share one route; FastAPI cannot infer that, so the schema is spelled out here.
_OPTIONS_SCHEMA: dict[str, Any] = {
    "model_version": {"type": "string", "example": "v2.5-20250123",
                      "pattern": ModelOptions.model_fields["model_version"].metadata[0].pattern},
    "texture": {"type": "boolean"}, "pbr": {"type": "boolean"},
    "face_limit": {"type": "integer", "minimum": 1, "maximum": 2_000_000},
}
# `check_idempotency_key`: 1-255 printable ASCII characters (a header's own spaces at either end
# are not part of its value).
IDEMPOTENCY_KEY_PATTERN = r"^[!-~](?:[ -~]{0,253}[!-~])?$"
CREATE_BODY = {"requestBody": {"required": True, "content": {
    # Both refuse fields they do not name (`_parse`, `ModelCreate`).
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "additionalProperties": False,
                                       "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": "PNG, JPEG or WebP, each side 20-6000 px (size limit: GSF_MAX_IMAGE_BYTES)"},
        **_OPTIONS_SCHEMA}}},
    "application/json": {"schema": {"type": "object", "required": ["prompt"], "additionalProperties": False,
                                    "properties": {
        # `check_prompt`: something besides whitespace (str.isspace's, which \s lacks a few of), no NUL.
        "prompt": {"type": "string", "maxLength": 1024,
                   "pattern": "^[^\\u0000]*[^\\s\\u0000\\u001c-\\u001f\\u0085][^\\u0000]*$"},
        "negative_prompt": {"type": "string", "maxLength": 1024, "pattern": "^[^\\u0000]*$"},
        **_OPTIONS_SCHEMA}}},
}}}


# --- helpers ----------------------------------------------------------------------------------------


def _links(request: Request, job_id: str) -> ModelLinks:
    # Spelled out rather than `url_for`, which walks every route and is the slowest part of a status read.
    job = f"{str(request.base_url).rstrip('/')}{router.prefix}/{job_id}"
    return ModelLinks(job=job, status=f"{job}/status", result=f"{job}/result")


def _status_public(doc: ModelStatusDoc, request: Request) -> ModelJobStatusPublic:
    error = ModelError(code=doc.error_code, message=doc.error_message or "") if doc.error_code else None
    return ModelJobStatusPublic(job_id=doc.job_id, status=doc.status, progress=doc.progress,
                                created_at=doc.created_at, started_at=doc.started_at, updated_at=doc.updated_at,
                                finished_at=doc.finished_at, error=error, links=_links(request, doc.job_id))


def _public(job: ModelJob, request: Request, settings: Settings) -> ModelJobPublic:
    base = _status_public(status_doc(job), request)
    result = (ModelResultInfo(sha256=job.result_sha256, size=job.result_size, source=job.result_source)
              if job.result_sha256 and job.status == ModelJobStatus.SUCCESS.value else None)
    return ModelJobPublic(
        **base.model_dump(), kind=job.input_kind, prompt=job.prompt, negative_prompt=job.negative_prompt,
        image_type=job.image_type, image_size=job.image_size, options=dict(job.options or {}),
        tripo_task_id=job.tripo_task_id, result=result, workflow_id=job.workflow_id,
        workflow_url=workflow_ui_url(settings.temporal_ui_url, settings.temporal_namespace, job.workflow_id))


def _created(job: ModelJob, request: Request, settings: Settings) -> ModelJobCreated:
    return ModelJobCreated(job_id=job.id, status=job.status, created_at=job.created_at,
                           links=_links(request, job.id), workflow_id=job.workflow_id,
                           workflow_url=workflow_ui_url(settings.temporal_ui_url, settings.temporal_namespace,
                                                        job.workflow_id, job.run_id))


async def _owned(session: SessionDep, user: User, job_id: str) -> ModelJob:
    job = await session.get(ModelJob, job_id) if len(job_id) <= 32 else None
    # Another user's job is indistinguishable from a missing one.
    if job is None or not may_see(user, job.owner_id):
        raise NotFound(f"no model job {job_id!r}")
    return job


def _validation_error(exc: ValidationError, prefix: tuple[str, ...] = ("body",)) -> RequestValidationError:
    return RequestValidationError([{**e, "loc": (*prefix, *e.get("loc", ()))} for e in exc.errors()])


def _fingerprint(kind: ModelInputKind, image_sha: str | None, prompt: str | None, negative: str | None,
                 options: ModelOptions) -> str:
    """What makes two requests the same request, for Idempotency-Key replays."""
    body = {"kind": kind.value, "image": image_sha, "prompt": prompt, "negative_prompt": negative,
            "options": options.model_dump()}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class _Parsed:
    def __init__(self, kind: ModelInputKind, options: ModelOptions, image: bytes | None = None,
                 checked: CheckedImage | None = None, prompt: str | None = None,
                 negative: str | None = None) -> None:
        self.kind, self.options, self.image, self.checked = kind, options, image, checked
        self.prompt, self.negative = prompt, negative


async def _parse(request: Request, settings: Settings) -> _Parsed:
    """The job's input from a multipart image upload or a JSON prompt, checked before anything else runs."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length", "")
    if content_type == "multipart/form-data":
        if declared.isdigit() and int(declared) > settings.max_image_bytes + 64 * 1024:
            raise UploadTooLarge(f"the image is larger than {settings.max_image_bytes} bytes")
        async with request.form(max_files=1, max_fields=len(OPTION_FIELDS) + 4) as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise RequestValidationError([{"type": "missing", "loc": ("body", "file"),
                                               "msg": "an image file is required", "input": None}])
            data = await upload.read(settings.max_image_bytes + 1)
            raw_options = {k: v for k, v in form.items() if k in OPTION_FIELDS and isinstance(v, str) and v != ""}
            unknown = [k for k in form if k not in OPTION_FIELDS and k != "file"]
        if unknown:
            raise BadRequest(f"unknown fields with an image upload: {', '.join(sorted(unknown))}")
        try:
            options = ModelOptions.model_validate(raw_options)
        except ValidationError as exc:
            raise _validation_error(exc) from None
        checked = check_image(data, settings.max_image_bytes)
        return _Parsed(ModelInputKind.IMAGE, options, image=data, checked=checked)
    if content_type == "application/json":
        if declared.isdigit() and int(declared) > MAX_JSON_BYTES:
            raise UploadTooLarge(f"a JSON request is at most {MAX_JSON_BYTES} bytes")
        raw = await request.body()
        if len(raw) > MAX_JSON_BYTES:
            raise UploadTooLarge(f"a JSON request is at most {MAX_JSON_BYTES} bytes")
        try:
            body = ModelCreate.model_validate_json(raw)
            options = ModelOptions.model_validate(body.options())
        except ValidationError as exc:
            raise _validation_error(exc) from None
        prompt, negative = check_prompt(body.prompt, body.negative_prompt)
        return _Parsed(ModelInputKind.PROMPT, options, prompt=prompt, negative=negative)
    raise UnsupportedMediaType("send an image as multipart/form-data (field `file`) or a prompt as application/json")


async def _start(job: ModelJob, settings: Settings, temporal: TemporalDep) -> None:
    input = GenerateModelInput(
        job_id=job.id, owner_id=job.owner_id, kind=ModelInputKind(job.input_kind), image_sha256=job.image_sha256,
        image_type=job.image_type, prompt=job.prompt, negative_prompt=job.negative_prompt,
        options=ModelOptions.model_validate(job.options or {}),
        poll_initial_seconds=settings.tripo_poll_initial_seconds, poll_max_seconds=settings.tripo_poll_max_seconds,
        deadline_seconds=settings.tripo_deadline_seconds, control_queue=settings.control_queue)
    handle = await temporal.start_workflow(
        ModelGenerationWorkflow.run, input, id=job.workflow_id, task_queue=settings.control_queue,
        # A replayed request whose first attempt did start the workflow finds it running.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes([SearchAttributePair(SA_OWNER, job.owner_id),
                                                 SearchAttributePair(SA_STATUS, job.status)]))
    job.run_id = handle.first_execution_run_id or handle.result_run_id


async def _replay(session: SessionDep, job: ModelJob, fingerprint: str, settings: Settings,
                  temporal: TemporalDep) -> ModelJob:
    if job.request_sha256 != fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was used with a different request")
    if job.run_id is None and job.status not in DONE:
        # The first attempt stored the job but did not get to start its workflow.
        try:
            await _start(job, settings, temporal)
        except RPCError as exc:
            raise Unavailable(f"Temporal refused the job: {exc.message}") from None
        await session.commit()
    return job


async def _unreferenced(session: SessionDep, column: Any, sha: str, job_id: str) -> bool:
    others = await session.scalar(select(func.count()).select_from(ModelJob)
                                  .where(column == sha, ModelJob.id != job_id))
    return not others


# --- routes ------------------------------------------------------------------------------------------


@router.post("", status_code=202, response_model=ModelJobCreated, openapi_extra=CREATE_BODY,
             responses=problems(400, 415))
async def create_model_job(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    store: ModelStoreDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", json_schema_extra={
        "pattern": IDEMPOTENCY_KEY_PATTERN})] = None,
) -> JSONResponse:
    """Start a 3D-model job from an image (multipart) or a text prompt (JSON)."""
    owner_id = user.id  # read now: a rollback below would expire `user`, which shares this session
    key = check_idempotency_key(idempotency_key) if idempotency_key is not None else None
    parsed = await _parse(request, settings)
    image_sha = hashlib.sha256(parsed.image).hexdigest() if parsed.image is not None else None
    fingerprint = _fingerprint(parsed.kind, image_sha, parsed.prompt, parsed.negative, parsed.options)
    if key is not None:
        existing = await session.scalar(select(ModelJob).where(ModelJob.owner_id == owner_id,
                                                               ModelJob.idempotency_key == key))
        if existing is not None:
            job = await _replay(session, existing, fingerprint, settings, temporal)
            return _created_response(job, request, settings, replayed=True)
    if parsed.image is not None:
        assert parsed.checked is not None
        await store.put_bytes("images", parsed.image, parsed.checked.mime)
    job_id = new_id()
    job = ModelJob(id=job_id, owner_id=owner_id, idempotency_key=key, request_sha256=fingerprint,
                   input_kind=parsed.kind.value, prompt=parsed.prompt, negative_prompt=parsed.negative,
                   image_sha256=image_sha, image_type=parsed.checked.type if parsed.checked else None,
                   image_size=parsed.checked.size if parsed.checked else None,
                   options=parsed.options.model_dump(exclude_none=True), status=ModelJobStatus.QUEUED.value,
                   workflow_id=model_workflow_id(job_id))
    session.add(job)
    try:
        await session.commit()
    except IntegrityError:
        # The same Idempotency-Key raced in on another request: answer with its job.
        await session.rollback()
        existing = await session.scalar(select(ModelJob).where(ModelJob.owner_id == owner_id,
                                                               ModelJob.idempotency_key == key))
        if existing is None:
            raise
        job = await _replay(session, existing, fingerprint, settings, temporal)
        return _created_response(job, request, settings, replayed=True)
    try:
        await _start(job, settings, temporal)
    except RPCError as exc:
        # Nothing runs for this job: forget it, so that a retry (same Idempotency-Key too) starts afresh.
        await session.delete(job)
        await session.commit()
        raise Unavailable(f"Temporal refused the job: {exc.message}") from None
    await session.commit()
    return _created_response(job, request, settings, replayed=False)


def _created_response(job: ModelJob, request: Request, settings: Settings, replayed: bool) -> JSONResponse:
    body = _created(job, request, settings)
    headers = {"Location": body.links.status}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body.model_dump(mode="json"), status_code=202, headers=headers)


@router.get("", response_model=ModelJobsPublic)
async def list_model_jobs(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    status: Annotated[ModelJobStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> ModelJobsPublic:
    """List the caller's model jobs, newest first."""
    query = select(ModelJob).where(ModelJob.owner_id == user.id)
    if status is not None:
        query = query.where(ModelJob.status == status.value)
    count = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = (await session.scalars(query.order_by(ModelJob.created_at.desc(), ModelJob.id)
                                  .limit(limit).offset(offset))).all()
    return ModelJobsPublic(items=[_public(j, request, settings) for j in rows], count=count,
                           next_offset=offset + limit if offset + limit < count else None)


@router.get("/{job_id}", response_model=ModelJobPublic)
async def get_model_job(job_id: str, request: Request, user: CurrentUser, session: SessionDep,
                        settings: SettingsDep) -> ModelJobPublic:
    """One model job: its input, options, status and result."""
    return _public(await _owned(session, user, job_id), request, settings)


@router.get("/{job_id}/status", response_model=ModelJobStatusPublic)
async def get_model_status(job_id: str, request: Request, user: CurrentUser, session: SessionDep,
                           cache: ModelCacheDep) -> ModelJobStatusPublic:
    """The job's status and progress (through the Redis cache when one is configured)."""
    doc = await cache.get(job_id) if cache is not None else None
    if doc is None:
        doc = status_doc(await _owned(session, user, job_id))
        if cache is not None:
            await cache.put(doc)
    elif not may_see(user, doc.owner_id):
        raise NotFound(f"no model job {job_id!r}")
    return _status_public(doc, request)


@router.get("/{job_id}/result", response_model=None,
            responses={200: {"content": {GLB: {}}}, 307: {"description": "redirect to a presigned URL"},
                       **problems(409)})
async def get_model_result(
    job_id: str,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    store: ModelStoreDep,
    redirect: Annotated[bool, Query(description="false: stream even from an S3-compatible store")] = True,
) -> Response:
    """The generated GLB: streamed, or a redirect to a presigned URL on an S3-compatible store."""
    job = await _owned(session, user, job_id)
    if job.status in (ModelJobStatus.QUEUED.value, ModelJobStatus.RUNNING.value):
        raise ModelNotReady(f"the job is {job.status} ({job.progress}%); try again when it is `success`",
                            job_status=job.status, progress=job.progress)
    if job.status != ModelJobStatus.SUCCESS.value or not job.result_sha256:
        raise Conflict(f"the job ended {job.status} and has no model" +
                       (f": {job.error_message}" if job.error_message else ""), job_status=job.status)
    sha = job.result_sha256
    filename = f"model-{job.id}.glb"
    etag = f'"{sha}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    if redirect:
        url = await store.presigned_url("models", sha, filename, GLB)
        if url is not None:
            return RedirectResponse(url, status_code=307)
    size = await store.size("models", sha)
    if size is None:
        raise NotFound("the stored model is missing")
    return StreamingResponse(store.stream("models", sha), media_type=GLB, headers={
        "Content-Length": str(size), "ETag": etag, "Content-Disposition": f'attachment; filename="{filename}"'})


@router.delete("/{job_id}", status_code=204, response_model=None,
               responses={200: {"model": ModelJobStatusPublic, "description": "cancelled"},
                          202: {"model": ModelJobStatusPublic, "description": "cancellation under way"}})
async def delete_model_job(job_id: str, request: Request, user: CurrentUser, session: SessionDep,
                           temporal: TemporalDep, store: ModelStoreDep, cache: ModelCacheDep) -> Response:
    """Cancel a queued or running job; delete a finished one together with its stored model."""
    job = await _owned(session, user, job_id)
    if job.status not in DONE:
        await _cancel(session, temporal, job, cache)
        doc = status_doc(job)
        return JSONResponse(_status_public(doc, request).model_dump(mode="json"),
                            status_code=200 if job.status in DONE else 202)
    result_sha, image_sha = job.result_sha256, job.image_sha256
    await session.delete(job)
    await session.commit()
    # Content-addressed files may be shared with other jobs (the same image, the same model).
    if result_sha and await _unreferenced(session, ModelJob.result_sha256, result_sha, job_id):
        await store.delete("models", result_sha)
    if image_sha and await _unreferenced(session, ModelJob.image_sha256, image_sha, job_id):
        await store.delete("images", image_sha)
    if cache is not None:
        await cache.forget(job_id)
    return Response(status_code=204)


async def _cancel(session: SessionDep, temporal: TemporalDep, job: ModelJob, cache: ModelStatusCache | None) -> None:
    """Cancel the workflow (its Tripo polling stops with it) and wait briefly for the record."""
    handle = temporal.get_workflow_handle(job.workflow_id)
    try:
        await handle.cancel()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise Unavailable(f"Temporal: {exc.message}") from None
        if await _workflow_exists(temporal, job.workflow_id):
            return  # it has just ended: its last record is on its way
        # No workflow was ever started for it: only the record is left to end.
        now = datetime.now(UTC)
        job.status, job.status_seq = ModelJobStatus.CANCELLED.value, job.status_seq + 1
        job.error_code, job.error_message = "Cancelled", "the job was cancelled"
        job.updated_at = job.finished_at = now
        await session.commit()
        if cache is not None:
            await cache.put(status_doc(job))
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CANCEL_WAIT_SECONDS
    while job.status not in DONE and loop.time() < deadline:
        await asyncio.sleep(0.05)
        await session.refresh(job)


async def _workflow_exists(temporal: TemporalDep, workflow_id: str) -> bool:
    try:
        await temporal.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise Unavailable(f"Temporal: {exc.message}") from None
    return True
