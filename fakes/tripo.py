"""A fake Tripo API that keeps the v2 contract, for tests and local development (`gsf fake-tripo`).

What it keeps: `Authorization: Bearer <key>` (401 / code 1002 otherwise), the envelopes
`{"code": 0, "data": ...}` and `{"code": N, "message": ..., "suggestion": ...}`, the `X-Tripo-Trace-ID`
header on every answer, uploads that answer an image token, tasks scoped to the key that created them
(404 / code 2001 for any other key), `queued → running (progress rises) → success`, and output URLs
that expire (403 after `url_ttl_seconds`) serving a real, small glTF 2.0 binary.

Switches (from Python on `FakeTripo`, or over HTTP on `/_fake/*` when run by `gsf fake-tripo`):
`force(outcome)` ends the next tasks `failed`, `banned`, `expired`, `cancelled` or leaves them `unknown`;
`fail_next(status, code, ...)` answers the next calls with an error: 429 / 2000 (with Retry-After),
403 / 2010 (credits), 400 / 2008 (content policy), 5xx, 401 / 1002.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import struct
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

Outcome = Literal["success", "failed", "banned", "expired", "cancelled", "unknown"]
Scope = Literal["any", "upload", "create", "poll", "download"]
MAX_PROMPT = 1024

MESSAGES: dict[int, tuple[str, str]] = {
    1000: ("Server error", "Please retry later"),
    1001: ("Fatal server error", "Please retry later"),
    1002: ("Authentication failed", "Check your API key"),
    2000: ("You have exceeded the limit of generation", "Please retry later"),
    2001: ("Task not found", "Check the task id"),
    2002: ("The task type is unsupported", "Check the request body"),
    2003: ("The input file is empty", "Upload the file again"),
    2004: ("The file token is invalid", "Upload the file again"),
    2008: ("The input violates the content policy", "Modify your input and retry"),
    2010: ("You need more credits to start a new task", "Review your usage and purchase more credits"),
}


# --- a real, small GLB ------------------------------------------------------------------


def make_glb(label: str = "fake", variant: str = "model") -> bytes:
    """A valid glTF 2.0 binary: one triangle with one material; `label`/`variant` make the bytes unique."""
    indices = struct.pack("<3H", 0, 1, 2) + b"\x00\x00"
    positions = struct.pack("<9f", 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    binary = indices + positions
    metallic = 1.0 if variant == "pbr_model" else 0.0
    gltf = {
        "asset": {"version": "2.0", "generator": "gsf fake-tripo", "extras": {"label": label, "variant": variant}},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": label}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 1}, "indices": 0, "material": 0}]}],
        "materials": [{"name": variant, "pbrMetallicRoughness": {
            "baseColorFactor": [0.8, 0.3, 0.2, 1.0], "metallicFactor": metallic, "roughnessFactor": 0.5}}],
        "buffers": [{"byteLength": len(binary)}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": 6, "target": 34963},
                        {"buffer": 0, "byteOffset": 8, "byteLength": 36, "target": 34962}],
        "accessors": [{"bufferView": 0, "componentType": 5123, "count": 3, "type": "SCALAR", "min": [0], "max": [2]},
                      {"bufferView": 1, "componentType": 5126, "count": 3, "type": "VEC3",
                       "min": [0.0, 0.0, 0.0], "max": [1.0, 1.0, 0.0]}],
    }
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    body = struct.pack("<II", len(text), 0x4E4F534A) + text + struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


# --- state and switches -----------------------------------------------------------------


@dataclass
class FakeTask:
    task_id: str
    key: str
    type: str
    input: dict[str, Any]
    outcome: str
    started: float
    create_time: int
    generation_seconds: float


@dataclass
class FakeError:
    http_status: int
    code: int
    scope: str
    times: int
    retry_after: float | None = None
    message: str | None = None


@dataclass
class FakeCall:
    method: str
    path: str
    status: int
    at: float
    key_ok: bool


@dataclass
class FakeTripo:
    """The fake's state; tests hold it and flip its switches."""

    api_keys: set[str] | None = None  # None: any key that starts with `tsk_`
    generation_seconds: float = 2.0
    queue_fraction: float = 0.1  # the first part of the generation time is spent `queued`
    url_ttl_seconds: float = 60.0
    max_concurrency: int | None = None  # when set, creating more live tasks than this answers 429 / 2000
    outcome: str = "success"
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    uploads: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)
    errors: list[FakeError] = field(default_factory=list)
    calls: list[FakeCall] = field(default_factory=list)
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    # switches

    def force(self, outcome: Outcome) -> None:
        """End the tasks created from now on with `outcome` (`unknown`: never end)."""
        self.outcome = outcome

    def fail_next(self, http_status: int, code: int, *, times: int = 1, scope: Scope = "any",
                  retry_after: float | None = None, message: str | None = None) -> None:
        """Answer the next `times` calls in `scope` with this error."""
        self.errors.append(FakeError(http_status, code, scope, times, retry_after, message))

    def reset(self) -> None:
        self.outcome = "success"
        self.errors.clear()

    # observations

    def count(self, method: str, path_prefix: str, status: int | None = None) -> int:
        return sum(1 for c in self.calls if c.method == method and c.path.startswith(path_prefix)
                   and (status is None or c.status == status))

    def live_tasks(self, key: str, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        return sum(1 for t in self.tasks.values() if t.key == key and not self._ended(t, now))

    def peak_concurrency(self, key: str | None = None) -> int:
        """The most tasks of one key (or of any key) that were queued or running at the same moment."""
        edges: list[tuple[float, int]] = []
        for t in self.tasks.values():
            if key is not None and t.key != key:
                continue
            edges.append((t.started, 1))
            if t.outcome != "unknown":
                edges.append((t.started + t.generation_seconds, -1))
        peak = current = 0
        for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
            current += step
            peak = max(peak, current)
        return peak

    # internals

    def _ended(self, task: FakeTask, now: float) -> bool:
        return task.outcome != "unknown" and now - task.started >= task.generation_seconds

    def status(self, task: FakeTask, now: float | None = None) -> tuple[str, int]:
        now = time.monotonic() if now is None else now
        elapsed = now - task.started
        queued_for = task.generation_seconds * self.queue_fraction
        if elapsed < queued_for:
            return "queued", 0
        if task.outcome == "unknown":
            return "unknown", 0
        if elapsed >= task.generation_seconds:
            return task.outcome, 100 if task.outcome == "success" else 0
        share = (elapsed - queued_for) / max(task.generation_seconds - queued_for, 1e-6)
        return "running", max(1, min(99, int(share * 100)))

    def key_ok(self, key: str | None) -> bool:
        if not key:
            return False
        return key in self.api_keys if self.api_keys is not None else key.startswith("tsk_")

    def take_error(self, scope: str) -> FakeError | None:
        for err in self.errors:
            if err.scope in ("any", scope) and err.times > 0:
                err.times -= 1
                if err.times == 0:
                    self.errors.remove(err)
                return err
        return None

    def sign(self, task_id: str, name: str, expires: int) -> str:
        return hmac.new(self.secret, f"{task_id}/{name}/{expires}".encode(), hashlib.sha256).hexdigest()[:32]


# --- the app ----------------------------------------------------------------------------


def _trace() -> dict[str, str]:
    return {"X-Tripo-Trace-ID": uuid.uuid4().hex}


def _error(http_status: int, code: int, message: str | None = None, retry_after: float | None = None) -> JSONResponse:
    default_message, suggestion = MESSAGES.get(code, ("Request failed", ""))
    headers = _trace()
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after))
    return JSONResponse({"code": code, "message": message or default_message, "suggestion": suggestion},
                        status_code=http_status, headers=headers)


def _ok(data: Any) -> JSONResponse:
    return JSONResponse({"code": 0, "data": data}, headers=_trace())


class _Outcome(BaseModel):
    outcome: Outcome


class _FailNext(BaseModel):
    http_status: int = Field(ge=400, le=599)
    code: int
    times: int = Field(default=1, ge=1, le=1000)
    scope: Scope = "any"
    retry_after: float | None = None
    message: str | None = None


def create_fake_tripo_app(fake: FakeTripo | None = None, *, api_keys: Iterable[str] | None = None,
                          generation_seconds: float = 2.0) -> FastAPI:
    """The fake as an ASGI app; pass `fake` to keep its switches at hand (tests), or let it make one."""
    state = fake or FakeTripo(api_keys=set(api_keys) if api_keys is not None else None,
                              generation_seconds=generation_seconds)
    app = FastAPI(title="fake Tripo API (v2)", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.fake = state

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        if not request.url.path.startswith("/_fake"):
            state.calls.append(FakeCall(request.method, request.url.path, response.status_code, time.monotonic(),
                                        state.key_ok(_key(request))))
        return response

    def _key(request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None

    def guard(request: Request, scope: str) -> tuple[str, JSONResponse | None]:
        key = _key(request)
        if not state.key_ok(key):
            return "", _error(401, 1002)
        injected = state.take_error(scope)
        if injected is not None:
            return "", _error(injected.http_status, injected.code, injected.message, injected.retry_after)
        assert key is not None
        return key, None

    @app.post("/v2/openapi/upload")
    async def upload(request: Request) -> JSONResponse:
        key, refused = guard(request, "upload")
        if refused:
            return refused
        form = await request.form()
        try:
            file = form.get("file")
            data = await file.read() if file is not None and not isinstance(file, str) else b""
            content_type = getattr(file, "content_type", None) or "application/octet-stream"
        finally:
            await form.close()
        if not data:
            return _error(400, 2003)
        token = str(uuid.uuid4())
        state.uploads[token] = (key, data, content_type)
        return _ok({"image_token": token})

    @app.post("/v2/openapi/task")
    async def create_task(request: Request) -> JSONResponse:
        key, refused = guard(request, "create")
        if refused:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return _error(400, 2002, "the body is not JSON")
        kind = body.get("type") if isinstance(body, dict) else None
        if kind == "image_to_model":
            token = (body.get("file") or {}).get("file_token")
            if token not in state.uploads or state.uploads[token][0] != key:
                return _error(400, 2004)
        elif kind == "text_to_model":
            prompt = body.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > MAX_PROMPT:
                return _error(400, 2002, "prompt must be 1 to 1024 characters")
        else:
            return _error(400, 2002)
        if state.max_concurrency is not None and state.live_tasks(key) >= state.max_concurrency:
            return _error(429, 2000, "too many concurrent tasks", retry_after=1)
        task = FakeTask(task_id=str(uuid.uuid4()), key=key, type=kind, input=body, outcome=state.outcome,
                        started=time.monotonic(), create_time=int(time.time()),
                        generation_seconds=state.generation_seconds)
        state.tasks[task.task_id] = task
        return _ok({"task_id": task.task_id})

    @app.get("/v2/openapi/task/{task_id}")
    async def get_task(task_id: str, request: Request) -> JSONResponse:
        key, refused = guard(request, "poll")
        if refused:
            return refused
        task = state.tasks.get(task_id)
        if task is None or task.key != key:
            return _error(404, 2001)
        status, progress = state.status(task)
        output: dict[str, Any] = {}
        if status == "success":
            expires = int(time.time() + state.url_ttl_seconds)
            base = str(request.base_url).rstrip("/")
            names = ["model", "base_model"] + (["pbr_model"] if task.input.get("pbr", True) else [])
            for name in names:
                output[name] = (f"{base}/_files/{task.task_id}/{name}.glb?expires={expires}"
                                f"&sig={state.sign(task.task_id, name, expires)}")
        left = max(0, int(task.generation_seconds - (time.monotonic() - task.started)))
        return _ok({"task_id": task.task_id, "type": task.type, "status": status,
                    "input": {k: v for k, v in task.input.items() if k != "file"}, "output": output,
                    "progress": progress, "create_time": task.create_time,
                    "running_left_time": left if status in ("queued", "running") else 0,
                    "queuing_num": 0})

    @app.get("/v2/openapi/user/balance")
    async def balance(request: Request) -> JSONResponse:
        _, refused = guard(request, "any")
        if refused:
            return refused
        return _ok({"balance": 1000.0, "frozen": 0.0})

    @app.get("/_files/{task_id}/{name}.glb")
    async def download(task_id: str, name: str, expires: int = 0, sig: str = "") -> Response:
        """Tripo's output files sit behind signed, short-lived URLs on a CDN: no bearer key here."""
        injected = state.take_error("download")
        if injected is not None:
            return Response(b"", status_code=injected.http_status)
        task = state.tasks.get(task_id)
        good = hmac.compare_digest(sig, state.sign(task_id, name, expires)) if task else False
        if not good or time.time() > expires:
            return Response(b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                            status_code=403, media_type="application/xml")
        return Response(make_glb(task_id, name), media_type="model/gltf-binary")

    @app.post("/_fake/outcome", status_code=204)
    async def set_outcome(body: _Outcome) -> Response:
        state.force(body.outcome)
        return Response(status_code=204)

    @app.post("/_fake/errors", status_code=204)
    async def add_error(body: _FailNext) -> Response:
        state.fail_next(body.http_status, body.code, times=body.times, scope=body.scope,
                        retry_after=body.retry_after, message=body.message)
        return Response(status_code=204)

    @app.post("/_fake/reset", status_code=204)
    async def reset() -> Response:
        state.reset()
        return Response(status_code=204)

    @app.get("/_fake/state")
    async def describe() -> dict[str, Any]:
        return {"outcome": state.outcome, "tasks": len(state.tasks), "calls": len(state.calls),
                "pending_errors": [e.__dict__ for e in state.errors], "peak_concurrency": state.peak_concurrency()}

    return app
