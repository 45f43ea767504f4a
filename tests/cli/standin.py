"""What the CLI unit tests share: the API answered in process (httpx.MockTransport) and the CLI run
by typer's runner. The CLI's own behaviour is the subject; the API's answers are each test's."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from cli.main import app

Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler) -> httpx.Client:
    return httpx.Client(base_url="http://127.0.0.1:9", transport=httpx.MockTransport(handler))


class Recorder:
    """A stand-in API that keeps each request it answers (`seen`, bodies read); a subclass answers."""

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.seen.append(request)
        return self.answer(request)

    def answer(self, request: httpx.Request) -> httpx.Response:
        raise NotImplementedError


def answer_with(monkeypatch: pytest.MonkeyPatch, handler: Handler, *modules: ModuleType) -> None:
    """Every `make_client` of `modules` answers through `handler`."""
    def make_client(settings: Any) -> httpx.Client:
        return client_for(handler)

    for module in modules:
        monkeypatch.setattr(module, "make_client", make_client)


def gsf(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "80", "GSF_API_KEY": "k"})
