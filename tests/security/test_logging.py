"""Structured logs: the JSON formatter, the context fields, and the API's request id in the log
lines of that request (the access line and anything logged while handling it)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import APIRouter, Request
from starlette.routing import Mount
from temporalio import activity, workflow
from temporalio.worker import Worker

from api.deps import CurrentUser
from core import logging as gsf_logging
from tests.conftest import REPO
from tests.security.conftest import MakeApi


@pytest.fixture
def json_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Lines logged during the test as the JSON formatter writes them, parsed back on demand."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(gsf_logging.JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def record(msg: str = "hello %s", *args: Any, **extra: Any) -> logging.LogRecord:
    rec = logging.LogRecord("gsf.test", logging.WARNING, __file__, 1, msg, args or ("world",), None)
    rec.__dict__.update(extra)
    return rec


def test_json_lines_carry_the_fields_and_context() -> None:
    fmt = gsf_logging.JsonFormatter()
    plain = json.loads(fmt.format(record()))
    assert set(plain) == {"ts", "level", "logger", "msg"}
    assert plain["ts"].endswith("Z")
    assert plain["level"] == "WARNING"
    assert plain["logger"] == "gsf.test"
    assert plain["msg"] == "hello world"
    with gsf_logging.bound(request_id="r-1", user="u-1", server_id="s-1"):
        line = json.loads(fmt.format(record(status=404)))
    assert line["request_id"] == "r-1"
    assert line["user"] == "u-1"
    assert line["server_id"] == "s-1"
    assert line["status"] == 404, "extras are kept"
    # An explicit extra wins over the context; Temporal's activity dict gives the workflow id.
    with gsf_logging.bound(request_id="outer"):
        line = json.loads(fmt.format(record(request_id="given", temporal_activity={"workflow_id": "wf-9"})))
    assert line["request_id"] == "given"
    assert line["workflow_id"] == "wf-9"
    assert "temporal_activity" not in line
    assert gsf_logging.request_id.get() is None, "bound() restores the context"


def test_exceptions_are_one_json_line_and_text_lines_show_the_context() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        rec = logging.LogRecord("gsf.test", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    out = gsf_logging.JsonFormatter().format(rec)
    assert "\n" not in out
    assert "ValueError: boom" in json.loads(out)["exc"]
    with gsf_logging.bound(request_id="r-2"):
        text = gsf_logging.TextFormatter().format(rec)
    first, _, rest = text.partition("\n")
    assert first.endswith("failed [request_id=r-2]")
    assert "ValueError: boom" in rest


async def test_the_request_id_is_in_every_log_line_of_its_request(
        make_api: MakeApi, json_lines: Callable[[], list[dict[str, Any]]]) -> None:
    api = await make_api()
    inside = logging.getLogger("gsf.api.test")

    async def probe(server_id: str, user: CurrentUser) -> dict[str, str]:
        inside.info("handling %s", server_id)
        return {"ok": server_id}

    async def broken(request: Request) -> None:
        raise RuntimeError("a bug")

    extra = APIRouter()
    extra.add_api_route("/api/v1/servers/{server_id}/probe", probe, methods=["GET"])
    extra.add_api_route("/api/v1/broken", broken, methods=["GET"])
    api.app.include_router(extra)
    routes = api.app.router.routes  # the mounts (the SDK's, the console's catch-all) stay last
    for mount in [r for r in routes if isinstance(r, Mount)]:
        routes.remove(mount)
        routes.append(mount)
    client = await api.client(key=api.admin_key, raise_app_exceptions=False)
    given = "req-given-12345"
    assert (await client.get("/api/v1/servers/srv-1/probe", headers={"X-Request-Id": given})).status_code == 200
    failed = await client.get("/api/v1/broken")
    assert failed.status_code == 500
    problem_id = failed.json()["request_id"]
    assert problem_id == failed.headers["x-request-id"]
    assert failed.headers["x-content-type-options"] == "nosniff"
    assert "Traceback" not in failed.text

    lines = json_lines()
    handled = next(line for line in lines if line["msg"] == "handling srv-1")
    assert handled["request_id"] == given
    assert handled["server_id"] == "srv-1"
    assert handled["user"]
    access = next(line for line in lines if line["logger"] == "gsf.api.access"
                  and line["path"] == "/api/v1/servers/srv-1/probe")
    assert access["request_id"] == given
    assert access["status"] == 200
    assert access["user"] == handled["user"]
    error = next(line for line in lines if line["msg"].startswith("unhandled error"))
    assert error["request_id"] == problem_id
    assert "RuntimeError: a bug" in error["exc"]
    assert next(line for line in lines if line["logger"] == "gsf.api.access"
                and line["path"] == "/api/v1/broken")["request_id"] == problem_id


def test_entry_points_write_json_when_asked() -> None:
    """`_logging()` as every `gsf` service command calls it, uvicorn's loggers included."""
    code = ("import logging, uvicorn\n"
            "from cli.main import _logging\n"
            "config = uvicorn.Config('api.main:create_app', log_level='warning')\n"
            "_logging()\n"
            "logging.getLogger('gsf.agent').info('agent says hi')\n"
            "logging.getLogger('uvicorn.error').warning('uvicorn says hi')\n")
    env = {**os.environ, "GSF_LOG_FORMAT": "json", "GSF_ENV": "test", "GSF_SECRET_KEY": "x"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    lines = [json.loads(line) for line in out.stderr.splitlines()]
    assert [(line["logger"], line["msg"]) for line in lines] == [
        ("gsf.agent", "agent says hi"), ("uvicorn.error", "uvicorn says hi")]
    text = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**env, "GSF_LOG_FORMAT": "text"},
                          capture_output=True, text=True, timeout=60, check=True)
    assert "INFO gsf.agent: agent says hi" in text.stderr
    assert not text.stderr.startswith("{")


@activity.defn(name="log_something")
async def log_something(text: str) -> None:
    logging.getLogger("gsf.activities.test").info("activity says %s", text)


@workflow.defn(name="LogProbe", sandboxed=False)
class LogProbe:
    """Runs log_something once."""

    @workflow.run
    async def run(self, text: str) -> None:
        await workflow.execute_activity(log_something, text, start_to_close_timeout=timedelta(seconds=10))


async def test_activity_lines_carry_their_workflow_id(
        temporal_env: Any, json_lines: Callable[[], list[dict[str, Any]]]) -> None:
    queue = f"gsf-test-logs-{uuid.uuid4().hex[:8]}"
    async with Worker(temporal_env.client, task_queue=queue, workflows=[LogProbe], activities=[log_something],
                      interceptors=[gsf_logging.ActivityLogContext()]):
        await temporal_env.client.execute_workflow(LogProbe.run, "hi", id=queue + "-wf", task_queue=queue)
    line = next(line for line in json_lines() if line["msg"] == "activity says hi")
    assert line["workflow_id"] == queue + "-wf"
    assert line["logger"] == "gsf.activities.test"
