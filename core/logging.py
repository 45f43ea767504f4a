"""Log output of every gsf process: text for a terminal, or one JSON object per line for log
shippers (`GSF_LOG_FORMAT=json`), both carrying the request, user, server and workflow a line
belongs to.

Those four come from context variables, set where they become known (the API's middleware
and auth dependency, `bound(...)` anywhere else) and read when a line is formatted; a value
passed in `extra=` wins, and Temporal's activity and workflow loggers supply the workflow id.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

request_id: ContextVar[str | None] = ContextVar("gsf_request_id", default=None)
user: ContextVar[str | None] = ContextVar("gsf_user", default=None)
server_id: ContextVar[str | None] = ContextVar("gsf_server_id", default=None)
workflow_id: ContextVar[str | None] = ContextVar("gsf_workflow_id", default=None)
CONTEXT: dict[str, ContextVar[str | None]] = {
    "request_id": request_id, "user": user, "server_id": server_id, "workflow_id": workflow_id}

# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
# Temporal's loggers attach these dicts (temporalio.activity.logger, temporalio.workflow.logger).
_TEMPORAL = ("temporal_activity", "temporal_workflow")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# uvicorn configures these with handlers of its own; they should write through ours.
_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


@contextlib.contextmanager
def bound(**values: str | None) -> Iterator[None]:
    """Set context fields (request_id, user, server_id, workflow_id) for the enclosed code."""
    tokens = [(CONTEXT[name], CONTEXT[name].set(value)) for name, value in values.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def context_of(record: logging.LogRecord) -> dict[str, str]:
    """The context fields known for a record: its `extra=` values, Temporal's, then the context."""
    out: dict[str, str] = {}
    for source in _TEMPORAL:
        info = getattr(record, source, None)
        if isinstance(info, dict) and info.get("workflow_id"):
            out["workflow_id"] = str(info["workflow_id"])
    for name, var in CONTEXT.items():
        value = getattr(record, name, None) or out.get(name) or var.get()
        if value:
            out[name] = str(value)
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the context fields, then any extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(context_of(record))
        for key, value in record.__dict__.items():
            if (key not in _STANDARD and key not in out and key not in _TEMPORAL and key not in CONTEXT
                    and not key.startswith("_")):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The classic line, with the context fields appended when there are any."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = context_of(record)
        if not context:
            return line
        head, sep, tail = line.partition("\n")  # keep a traceback below the fields
        fields = " ".join(f"{k}={v}" for k, v in context.items())
        return f"{head} [{fields}]{sep}{tail}"


def configure(fmt: Literal["text", "json"] | str = "text", level: str = "INFO") -> None:
    """Route every logger of the process (uvicorn's too) to stderr in `fmt`; call once per entry
    point, after anything that configures logging itself (uvicorn.Config does)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _UVICORN:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


class RequestContextMiddleware:
    """ASGI: binds the request id (already chosen by an outer middleware and kept in
    `scope["state"]`) for every line logged while the request is handled; the user and server
    fields start empty and are filled in by whoever learns them (auth, path parameters)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = scope.get("state", {}).get("request_id")
        with bound(request_id=str(rid) if rid else None, user=None, server_id=None):
            await self.app(scope, receive, send)


class ActivityLogContext(Interceptor):
    """A Temporal worker interceptor: lines an activity logs carry its workflow id, whichever
    logger writes them (Temporal's own activity logger adds it only to its own lines)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BindingInbound(next)


class _BindingInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        with bound(workflow_id=activity.info().workflow_id):
            return await super().execute_activity(input)
