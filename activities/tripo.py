"""The Tripo AI v2 client and the control activities of 3D-model generation (DESIGN §6).

Tripo answers `{"code": 0, "data": ...}` or `{"code": N, "message": ..., "suggestion": ...}` with an HTTP
status; `TripoClient` turns the second into a typed `TripoError`, and the activities turn those into
`ApplicationError`s whose `type` the workflow and the tests rely on:

    TripoError (TripoRequestRejected)  any other 4xx                 non-retryable
    ├── TripoAuthFailed                401 / code 1002               non-retryable
    ├── TripoInsufficientCredits       403 / code 2010               non-retryable
    ├── TripoContentPolicy             400 / code 2008               non-retryable
    ├── TripoTaskNotFound              404 / code 2001               non-retryable
    ├── TripoRateLimited               429 / code 2000               retried after Retry-After
    ├── TripoUnavailable               5xx, timeouts, network        retried with backoff
    └── TripoProtocolError             an answer that is not the v2 envelope   retried

Every call is logged with Tripo's trace id (`X-Tripo-Trace-ID`), which Tripo's support asks for.
The API key comes from settings on the worker; it is never in a workflow input, a log line or an error.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import logging
import struct
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from core.contracts import (
    MODEL_JOB_DONE,
    CheckSlotHoldersInput,
    CheckSlotHoldersResult,
    CreateTripoTaskInput,
    CreateTripoTaskResult,
    FetchTripoModelInput,
    FetchTripoModelResult,
    ModelInputKind,
    ModelJobStatus,
    ModelOptions,
    PollTripoTaskInput,
    PollTripoTaskResult,
    RecordModelStatusInput,
    RecordModelStatusResult,
    RequestTripoSlotInput,
    RequestTripoSlotResult,
    SlotRequest,
    TripoSlotsInput,
    UploadTripoImageInput,
    UploadTripoImageResult,
)
from core.db.models import ModelJob
from core.db.session import SessionFactory, shielded
from core.events import EventEmitter
from core.model_cache import ModelStatusCache, ModelStatusDoc, status_doc
from core.queues import TRIPO_SLOTS_ACQUIRE, TRIPO_SLOTS_WORKFLOW
from core.settings import Settings
from core.storage import ObjectStore, open_object_store

log = logging.getLogger("gsf.tripo")

TRACE_HEADER = "X-Tripo-Trace-ID"
API_PREFIX = "/v2/openapi"
# Tripo's outputs, best first: the PBR model when asked for, then the textured model, then the bare mesh.
MODEL_OUTPUTS = ("pbr_model", "model", "base_model")
GLB_MAGIC = b"glTF"
GLB_CONTENT_TYPE = "model/gltf-binary"
MAX_RETRY_AFTER = 600.0
IMAGE_MIME = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}


# --- errors ------------------------------------------------------------------------------


class TripoError(Exception):
    """A refusal by Tripo; `error_type` is the ApplicationError type the activities raise."""

    error_type = "TripoRequestRejected"
    retryable = False

    def __init__(self, message: str, *, http_status: int = 0, code: int | None = None,
                 suggestion: str | None = None, trace_id: str | None = None,
                 retry_after: float | None = None) -> None:
        self.message = message
        self.http_status = http_status
        self.code = code
        self.suggestion = suggestion
        self.trace_id = trace_id
        self.retry_after = retry_after
        super().__init__(self.describe())

    def describe(self) -> str:
        parts = [self.message]
        if self.suggestion:
            parts.append(self.suggestion)
        facts = [f"HTTP {self.http_status}" if self.http_status else "", f"code {self.code}" if self.code else "",
                 f"trace {self.trace_id}" if self.trace_id else ""]
        text = " — ".join(p for p in parts if p)
        facts_text = ", ".join(f for f in facts if f)
        return f"{text} ({facts_text})" if facts_text else text


class TripoAuthFailed(TripoError):
    error_type = "TripoAuthFailed"


class TripoInsufficientCredits(TripoError):
    error_type = "TripoInsufficientCredits"


class TripoContentPolicy(TripoError):
    error_type = "TripoContentPolicy"


class TripoTaskNotFound(TripoError):
    error_type = "TripoTaskNotFound"


class TripoRateLimited(TripoError):
    error_type = "TripoRateLimited"
    retryable = True


class TripoUnavailable(TripoError):
    error_type = "TripoUnavailable"
    retryable = True


class TripoProtocolError(TripoError):
    error_type = "TripoProtocolError"
    retryable = True


NON_RETRYABLE_TYPES = ["TripoRequestRejected", "TripoAuthFailed", "TripoInsufficientCredits",
                       "TripoContentPolicy", "TripoTaskNotFound", "TripoNotConfigured", "InvalidModel",
                       "ModelTooLarge", "ImageMissing", "TripoNoModel"]


def classify(http_status: int, code: int | None) -> type[TripoError]:
    """The error class of a Tripo refusal: the envelope's code first, then the HTTP status."""
    by_code: dict[int, type[TripoError]] = {1002: TripoAuthFailed, 2000: TripoRateLimited, 2001: TripoTaskNotFound,
                                            2008: TripoContentPolicy, 2010: TripoInsufficientCredits}
    if code in by_code:
        return by_code[code]
    if http_status == 401:
        return TripoAuthFailed
    if http_status == 429:
        return TripoRateLimited
    if http_status == 404:
        return TripoTaskNotFound
    if http_status >= 500 or http_status == 408:
        return TripoUnavailable
    if 300 <= http_status < 400:
        return TripoProtocolError
    return TripoError


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), capped; None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(int(value)), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(delta, 0.0), MAX_RETRY_AFTER)


def check_glb_header(head: bytes, size: int) -> str | None:
    """None when `head` (the first 12 bytes) starts a glTF 2.0 binary of `size` bytes, else the reason."""
    if len(head) < 12 or head[:4] != GLB_MAGIC:
        return "not a glTF binary (GLB)"
    version, length = struct.unpack("<II", head[4:12])
    if version != 2:
        return f"glTF binary version {version}, expected 2"
    if length != size:
        return f"GLB header says {length} bytes, got {size}"
    return None


# --- the client --------------------------------------------------------------------------


class TripoOutput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    base_model: str | None = None
    pbr_model: str | None = None
    rendered_image: str | None = None


class TripoTask(BaseModel):
    model_config = ConfigDict(extra="ignore")

    task_id: str
    type: str = ""
    status: str
    progress: int = 0
    output: TripoOutput = Field(default_factory=TripoOutput)
    create_time: int | None = None
    error_code: int | None = None
    error_msg: str | None = None

    def best_model(self) -> tuple[str, str] | None:
        """(output name, URL) of the preferred model file, or None when the task has none."""
        for name in MODEL_OUTPUTS:
            url = getattr(self.output, name)
            if url:
                return name, url
        return None


class TripoClient:
    """Tripo's v2 OpenAPI over an injected `httpx.AsyncClient` (timeouts and transport are the caller's)."""

    def __init__(self, http: httpx.AsyncClient, api_key: str, base_url: str = "https://api.tripo3d.ai") -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {api_key}"}

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}{API_PREFIX}{path}"
        started = time.perf_counter()
        try:
            resp = await self.http.request(method, url, headers=self._auth, **kwargs)
        except httpx.TimeoutException as exc:
            log.warning("tripo %s %s -> timeout (%s)", method, path, type(exc).__name__)
            raise TripoUnavailable(f"Tripo did not answer in time ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            log.warning("tripo %s %s -> network error (%s)", method, path, type(exc).__name__)
            raise TripoUnavailable(f"Tripo could not be reached ({type(exc).__name__})") from None
        trace_id = resp.headers.get(TRACE_HEADER)
        elapsed_ms = (time.perf_counter() - started) * 1000
        try:
            body = resp.json()
        except ValueError:
            body = None
        code = body.get("code") if isinstance(body, dict) else None
        code = code if isinstance(code, int) else None
        log.info("tripo %s %s -> %d code=%s trace=%s %.0fms", method, path, resp.status_code, code, trace_id,
                 elapsed_ms)
        if resp.is_success and code == 0 and isinstance(body, dict) and "data" in body:
            return body["data"]
        if resp.is_success and code is None:
            raise TripoProtocolError("Tripo answered without the v2 envelope", http_status=resp.status_code,
                                     trace_id=trace_id)
        message = str(body.get("message") or "") if isinstance(body, dict) else ""
        suggestion = str(body.get("suggestion") or "") if isinstance(body, dict) else ""
        cls = classify(resp.status_code, code)
        retry_after = parse_retry_after(resp.headers.get("Retry-After")) if cls is TripoRateLimited else None
        raise cls(message or f"Tripo refused the request ({resp.reason_phrase or resp.status_code})",
                  http_status=resp.status_code, code=code, suggestion=suggestion or None, trace_id=trace_id,
                  retry_after=retry_after)

    async def upload(self, data: bytes, filename: str, content_type: str) -> str:
        """Upload an image; the token it answers names the image in `image_to_model`."""
        out = await self._call("POST", "/upload", files={"file": (filename, data, content_type)})
        token = out.get("image_token") or out.get("file_token") if isinstance(out, dict) else None
        if not isinstance(token, str) or not token:
            raise TripoProtocolError("Tripo's upload answer has no image token")
        return token

    async def create_task(self, body: dict[str, Any]) -> str:
        out = await self._call("POST", "/task", json=body)
        task_id = out.get("task_id") if isinstance(out, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise TripoProtocolError("Tripo's task answer has no task_id")
        return task_id

    async def get_task(self, task_id: str) -> TripoTask:
        out = await self._call("GET", f"/task/{task_id}")
        try:
            return TripoTask.model_validate(out)
        except ValidationError:
            raise TripoProtocolError(f"Tripo's answer for task {task_id} is not a task") from None

    async def balance(self) -> dict[str, Any]:
        out = await self._call("GET", "/user/balance")
        return dict(out) if isinstance(out, dict) else {}

    async def download(self, url: str, max_bytes: int) -> AsyncIterator[bytes]:
        """The bytes at one of Tripo's output URLs (a CDN, so without our key); they expire quickly."""
        if not url.startswith(("https://", "http://")):
            raise TripoProtocolError("Tripo's model URL is not http(s)")
        try:
            async with self.http.stream("GET", url, follow_redirects=True) as resp:
                if resp.status_code in (403, 404, 410):
                    # Most likely the signed URL expired: the retry asks Tripo for fresh ones.
                    raise TripoUnavailable("the model URL was refused (expired?)", http_status=resp.status_code)
                if not resp.is_success:
                    raise TripoUnavailable("the model download failed", http_status=resp.status_code)
                total = 0
                async for chunk in resp.aiter_bytes(256 * 1024):
                    total += len(chunk)
                    if total > max_bytes:
                        raise ApplicationError(f"the model is larger than {max_bytes} bytes", type="ModelTooLarge",
                                               non_retryable=True)
                    yield chunk
        except httpx.TransportError as exc:
            raise TripoUnavailable(f"the model download broke off ({type(exc).__name__})") from None


def task_body(input: CreateTripoTaskInput) -> dict[str, Any]:
    """The POST /task body for an image or a prompt, with the options the caller set."""
    body: dict[str, Any]
    if input.kind == ModelInputKind.IMAGE:
        body = {"type": "image_to_model", "file": {"type": input.image_type, "file_token": input.file_token}}
    else:
        body = {"type": "text_to_model", "prompt": input.prompt}
        if input.negative_prompt:
            body["negative_prompt"] = input.negative_prompt
    body.update(_options(input.options))
    return body


def _options(options: ModelOptions) -> dict[str, Any]:
    return {k: v for k, v in options.model_dump().items() if v is not None}


def tripo_slots_workflow_id(api_key: str) -> str:
    """The semaphore workflow of one Tripo key: named by a fingerprint, never by the key."""
    return "tripo-slots-" + hashlib.sha256(api_key.encode()).hexdigest()[:16]


@contextlib.contextmanager
def _as_application_errors() -> Iterator[None]:
    try:
        yield
    except TripoError as err:
        delay = timedelta(seconds=err.retry_after) if err.retry_after else None
        raise ApplicationError(err.describe(), {"http_status": err.http_status, "code": err.code,
                                                "trace_id": err.trace_id},
                               type=err.error_type, non_retryable=not err.retryable,
                               next_retry_delay=delay) from None


# --- activities --------------------------------------------------------------------------


class TripoActivities:
    """Tripo calls, the per-key slot requests, model storage and job records, on the control queue."""

    def __init__(self, settings: Settings, sessions: SessionFactory, store: ObjectStore, http: httpx.AsyncClient,
                 temporal: Client, cache: ModelStatusCache | None = None,
                 events: EventEmitter | None = None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.store = store
        self.http = http
        self.temporal = temporal
        self.cache = cache
        self.events = events  # model.* webhooks (issue #12)

    @classmethod
    def create(cls, settings: Settings, sessions: SessionFactory, temporal: Client,
               events: EventEmitter | None = None) -> TripoActivities:
        """With their own HTTP client, object store and status cache; `close()` releases them."""
        timeout = httpx.Timeout(settings.tripo_timeout_seconds, connect=10.0)
        http = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=50))
        return cls(settings, sessions, open_object_store(settings), http, temporal,
                   ModelStatusCache.from_settings(settings), events)

    def activities(self) -> list[Callable[..., Any]]:
        return [self.request_tripo_slot, self.check_slot_holders, self.upload_tripo_image, self.create_tripo_task,
                self.poll_tripo_task, self.fetch_tripo_model, self.record_model_status]

    async def close(self) -> None:
        await self.http.aclose()
        await self.store.close()
        if self.cache is not None:
            await self.cache.close()

    def _client(self) -> TripoClient:
        if not self.settings.tripo_api_key:
            raise ApplicationError("no Tripo API key is configured (GSF_TRIPO_API_KEY)", type="TripoNotConfigured",
                                   non_retryable=True)
        return TripoClient(self.http, self.settings.tripo_api_key, self.settings.tripo_base_url)

    # --- concurrency slots ---

    @activity.defn(name="request_tripo_slot")
    async def request_tripo_slot(self, input: RequestTripoSlotInput) -> RequestTripoSlotResult:
        """Ask the key's semaphore workflow for a slot (starting it if needed); the grant comes as a signal."""
        self._client()
        workflow_id = tripo_slots_workflow_id(self.settings.tripo_api_key)
        limit = self.settings.tripo_concurrency
        await self.temporal.start_workflow(
            TRIPO_SLOTS_WORKFLOW, TripoSlotsInput(limit=limit, control_queue=self.settings.control_queue),
            id=workflow_id, task_queue=self.settings.control_queue,
            start_signal=TRIPO_SLOTS_ACQUIRE, start_signal_args=[SlotRequest(holder=input.holder, limit=limit)])
        return RequestTripoSlotResult(slots_workflow_id=workflow_id)

    @activity.defn(name="check_slot_holders")
    async def check_slot_holders(self, input: CheckSlotHoldersInput) -> CheckSlotHoldersResult:
        """Holders whose workflow has closed without giving its slot back (terminated, timed out)."""
        closed = []
        for holder in input.holders:
            try:
                desc = await self.temporal.get_workflow_handle(holder).describe()
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    closed.append(holder)
                    continue
                raise
            if desc.status != WorkflowExecutionStatus.RUNNING:
                closed.append(holder)
        return CheckSlotHoldersResult(closed=closed)

    # --- Tripo ---

    @activity.defn(name="upload_tripo_image")
    async def upload_tripo_image(self, input: UploadTripoImageInput) -> UploadTripoImageResult:
        """Upload the job's stored image to Tripo."""
        client = self._client()
        try:
            data = await self.store.get_bytes("images", input.image_sha256)
        except KeyError:
            raise ApplicationError(f"the image {input.image_sha256} is no longer stored", type="ImageMissing",
                                   non_retryable=True) from None
        with _as_application_errors():
            token = await client.upload(data, f"{input.job_id}.{input.image_type}",
                                        IMAGE_MIME.get(input.image_type, "application/octet-stream"))
        return UploadTripoImageResult(file_token=token)

    @activity.defn(name="create_tripo_task")
    async def create_tripo_task(self, input: CreateTripoTaskInput) -> CreateTripoTaskResult:
        """Create the image_to_model or text_to_model task."""
        client = self._client()
        with _as_application_errors():
            task_id = await client.create_task(task_body(input))
        activity.logger.info("job %s: Tripo task %s", input.job_id, task_id)
        return CreateTripoTaskResult(task_id=task_id)

    @activity.defn(name="poll_tripo_task")
    async def poll_tripo_task(self, input: PollTripoTaskInput) -> PollTripoTaskResult:
        """One look at the task; the workflow waits between looks on durable timers."""
        client = self._client()
        with _as_application_errors():
            task = await client.get_task(input.task_id)
        return PollTripoTaskResult(status=task.status, progress=max(0, min(100, task.progress)),
                                   error_code=task.error_code, error_message=task.error_msg)

    @activity.defn(name="fetch_tripo_model")
    async def fetch_tripo_model(self, input: FetchTripoModelInput) -> FetchTripoModelResult:
        """Download the finished model at once (fresh URLs from a new look at the task) and store it."""
        client = self._client()
        with _as_application_errors():
            task = await client.get_task(input.task_id)
            best = task.best_model()
            if task.status != "success" or best is None:
                raise ApplicationError(f"Tripo task {input.task_id} has no model to download (status {task.status})",
                                       type="TripoNoModel", non_retryable=True)
            source, url = best
            tmp_dir = self.settings.data_dir / "tmp"
            tmp_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=tmp_dir, prefix="model-", suffix=".glb") as tmp:
                digest = hashlib.sha256()
                head = b""
                size = 0
                last_beat = time.monotonic()
                async for chunk in client.download(url, self.settings.max_model_bytes):
                    tmp.write(chunk)
                    digest.update(chunk)
                    if len(head) < 12:
                        head += chunk[:12 - len(head)]
                    size += len(chunk)
                    if time.monotonic() - last_beat > 2:
                        activity.heartbeat(size)
                        last_beat = time.monotonic()
                tmp.flush()
                if reason := check_glb_header(head, size):
                    if head[:4] == GLB_MAGIC:  # a GLB cut short: a retry downloads it again
                        raise TripoUnavailable(f"the model download is incomplete: {reason}")
                    raise ApplicationError(f"Tripo's {source} is not usable: {reason}", type="InvalidModel",
                                           non_retryable=True)
                stored = await self.store.put_file("models", Path(tmp.name), digest.hexdigest(), GLB_CONTENT_TYPE)
        activity.logger.info("job %s: stored %s (%d bytes) from %s", input.job_id, stored.key, stored.size, source)
        return FetchTripoModelResult(sha256=stored.sha256, key=stored.key, size=stored.size, source=source)

    # --- records ---

    @activity.defn(name="record_model_status")
    async def record_model_status(self, input: RecordModelStatusInput) -> RecordModelStatusResult:
        """Apply a job transition to its row (`seq` orders them) and refresh the status cache."""
        applied, doc = await shielded(self._record(input))
        if doc is not None and self.cache is not None:
            await self.cache.put(doc)
        if self.events is not None:  # model.* webhooks; the event id comes from (job, seq): retries dedupe
            await shielded(self.events.model_transition(input))
        return RecordModelStatusResult(applied=applied)

    async def _record(self, input: RecordModelStatusInput) -> tuple[bool, ModelStatusDoc | None]:
        async with self.sessions() as session:
            job = await session.get(ModelJob, input.job_id)
            if job is None:
                return False, None  # deleted meanwhile
            applied = input.seq > job.status_seq
            if applied:
                job.status = input.status.value
                job.status_seq = input.seq
                job.progress = input.progress
                job.updated_at = input.at
                if input.status != ModelJobStatus.QUEUED and job.started_at is None:
                    job.started_at = input.at
                if input.status in MODEL_JOB_DONE:
                    job.finished_at = input.at
                job.error_code = input.error_code
                job.error_message = input.error_message
            # Facts are kept whatever order they arrive in.
            if input.tripo_task_id:
                job.tripo_task_id = input.tripo_task_id
            if input.model_sha256:
                job.result_sha256, job.result_key = input.model_sha256, input.model_key
                job.result_size, job.result_source = input.model_size, input.model_source
            await session.commit()
            return applied, status_doc(job)
