"""Fixtures of the webhook tests: a receiver on 127.0.0.1 and a platform that may deliver to loopback."""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from temporalio.testing import WorkflowEnvironment

from core.settings import Settings
from tests.conftest import REPO, reserve_port
from tests.harness import Harness, platform, serve

HISTORIES = Path(__file__).parent / "histories"


def load_sample() -> ModuleType:
    """docs/samples/verify_webhook.py, imported the way a reader would copy it: as a standalone file."""
    spec = importlib.util.spec_from_file_location("verify_webhook", REPO / "docs" / "samples" / "verify_webhook.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    """Records every POST; `fail[path] = n` answers 500 to the next n requests on that path."""

    url: str
    requests: list[Received] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)
    delay: dict[str, float] = field(default_factory=dict)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def wait(self, path: str, count: int = 1, timeout: float = 30, ok_only: bool = True) -> list[Received]:
        for _ in range(int(timeout / 0.05)):
            got = [r for r in self.at(path) if r.answered < 300 or not ok_only]
            if len(got) >= count:
                return got
            await asyncio.sleep(0.05)
        raise AssertionError(f"{path}: {len(self.at(path))} request(s) after {timeout} s: "
                             f"{[(r.headers.get('x-gsf-event'), r.answered) for r in self.at(path)]}")

    async def wait_event(self, path: str, type_: str, timeout: float = 60,
                         where: Any = None) -> Received:
        for _ in range(int(timeout / 0.05)):
            for r in self.at(path):
                if r.answered < 300 and r.headers.get("x-gsf-event") == type_ and (where is None or where(r)):
                    return r
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {type_} on {path} after {timeout} s; got "
                             f"{[r.headers.get('x-gsf-event') for r in self.at(path)]}")


def receiver_app(receiver: Receiver) -> FastAPI:
    app = FastAPI()

    @app.post("/{path:path}")
    async def hook(path: str, request: Request) -> Response:
        body = await request.body()
        path = "/" + path
        if receiver.delay.get(path):
            await asyncio.sleep(receiver.delay[path])
        status = 204
        if receiver.fail.get(path, 0) > 0:
            receiver.fail[path] -= 1
            status = 500
        receiver.requests.append(Received(path, {k.lower(): v for k, v in request.headers.items()}, body, status))
        return Response(status_code=status)

    return app


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = reserve_port()
    rec = Receiver(url=f"http://127.0.0.1:{port}")
    server, task = await serve(receiver_app(rec), port)
    try:
        yield rec
    finally:
        server.should_exit = True
        await task


def webhook_settings(base: Settings, **extra: Any) -> Settings:
    """Loopback allowed (the receiver lives there), short backoff, a fast node sweep."""
    values: dict[str, Any] = {"webhook_allow_private": True, "webhook_backoff_initial_seconds": 0.3,
                              "webhook_backoff_max_seconds": 1.0, "webhook_retry_seconds": 60.0,
                              "webhook_timeout_seconds": 5.0, "node_liveness_seconds": 0.5}
    values.update(extra)
    return base.model_copy(update=values)


@pytest.fixture
async def hp(settings: Settings, temporal_env: WorkflowEnvironment) -> AsyncIterator[Harness]:
    """API + control worker (no agent, no Docker) that may deliver to loopback."""
    async with platform(webhook_settings(settings), temporal_env.client, agent=False) as harness:
        yield harness


async def create_webhook(api: httpx.AsyncClient, url: str, events: list[str], **extra: Any) -> dict[str, Any]:
    resp = await api.post("/api/v1/webhooks", json={"url": url, "events": events, **extra})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def record_history(h: Harness, workflow_id: str, name: str) -> None:
    """With GSF_RECORD_HISTORIES=1, keep this run's history for the replay test (after a deliberate change)."""
    if os.environ.get("GSF_RECORD_HISTORIES") != "1":
        return
    history = await h.client.get_workflow_handle(workflow_id).fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(history.to_json())
