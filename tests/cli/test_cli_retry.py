"""The CLI on a 429 (issue #20, item 11): it waits as Retry-After says, with a spinner, a bounded
number of times, then gives the 429 as the answer. Pure client behaviour over httpx.MockTransport;
tests/api/test_cli_api.py holds it to the real API's rate limiter."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

import cli.client as client_mod
from cli.client import MAX_TRIES, MAX_WAIT_SECONDS, ApiError, call
from core.errors import PROBLEM_BASE

PROBLEM = PROBLEM_BASE


def limited(seconds: str | None, slug: str = "rate-limited") -> httpx.Response:
    headers = {"content-type": "application/problem+json"}
    if seconds is not None:
        headers["retry-after"] = seconds
    return httpx.Response(429, headers=headers, json={"type": PROBLEM + slug, "title": "Too many requests",
                                                      "status": 429, "detail": "retry later"})


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, str]]:
    """Every pause the CLI takes, with the spinner's message shown during it (no real sleeping)."""
    out: list[tuple[float, str]] = []
    shown: list[str] = []
    real = client_mod.waiting

    @contextlib.contextmanager
    def recording(message: str) -> Iterator[None]:
        with real(message):
            shown.append(message)
            yield
            shown.pop()

    monkeypatch.setattr(client_mod, "waiting", recording)
    monkeypatch.setattr(client_mod, "pause", lambda s: out.append((s, shown[-1] if shown else "")))
    return out


def mock(answers: Callable[[httpx.Request, int], httpx.Response]) -> tuple[httpx.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return answers(request, len(seen))

    return httpx.Client(base_url="http://127.0.0.1:9", transport=httpx.MockTransport(handler)), seen


def test_a_refused_post_is_sent_again_after_retry_after(waits: list[tuple[float, str]]) -> None:
    client, seen = mock(lambda req, n: limited("2") if n < 3 else httpx.Response(202, json={"id": "s1"}))
    with client:
        got = call(client, "POST", "/api/v1/servers", data={"name": "demo"},
                   files={"file": ("game.js", b"module.exports = {};", "application/javascript")})
    assert got == {"id": "s1"}
    assert len(seen) == 3, "the whole upload is sent again each time"
    assert all(r.method == "POST" and b"module.exports" in r.content for r in seen), "the same upload each time"
    assert [w for w, _ in waits] == [2.0, 2.0]
    assert all(message for _, message in waits), "a spinner shows while the CLI waits"


def test_retries_are_bounded_in_tries(waits: list[tuple[float, str]]) -> None:
    client, seen = mock(lambda req, n: limited("1"))
    with client, pytest.raises(ApiError) as caught:
        call(client, "GET", "/api/v1/servers")
    assert caught.value.status == 429
    assert caught.value.body["type"] == PROBLEM + "rate-limited"
    assert len(seen) == MAX_TRIES
    assert len(waits) == MAX_TRIES - 1


def test_retries_are_bounded_in_time(waits: list[tuple[float, str]]) -> None:
    client, seen = mock(lambda req, n: limited("20"))
    with client, pytest.raises(ApiError):
        call(client, "GET", "/api/v1/servers")
    assert [w for w, _ in waits] == [20.0], f"a second wait of 20 s would pass {MAX_WAIT_SECONDS} s in all"
    assert len(seen) == 2
    client, seen = mock(lambda req, n: limited(str(int(MAX_WAIT_SECONDS) + 1)))
    with client, pytest.raises(ApiError):
        call(client, "GET", "/api/v1/servers")
    assert len(seen) == 1, "a wait longer than the whole budget is not started"


def test_a_429_without_retry_after_is_the_answer(waits: list[tuple[float, str]]) -> None:
    """A pipeline quota (429 without Retry-After) is not something waiting cures."""
    client, seen = mock(lambda req, n: limited(None, "pipeline-quota-exceeded"))
    with client, pytest.raises(ApiError) as caught:
        call(client, "POST", "/api/v1/pipelines", json={"definition": "x"})
    assert caught.value.body["type"] == PROBLEM + "pipeline-quota-exceeded"
    assert len(seen) == 1
    assert waits == []


def test_retry_after_as_an_http_date(waits: list[tuple[float, str]]) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    client, seen = mock(lambda req, n: limited(when) if n == 1 else httpx.Response(200, json={"ok": True}))
    with client:
        assert call(client, "GET", "/api/v1/servers") == {"ok": True}
    assert len(seen) == 2
    assert len(waits) == 1
    assert 0 < waits[0][0] <= 3


def test_a_followed_log_stream_waits_too(waits: list[tuple[float, str]]) -> None:
    lines = b'{"id": 1, "ts": "2025-01-01T00:00:00", "stream": "stdout", "line": "hello [b]x[/b]"}\n'

    def answer(req: httpx.Request, n: int) -> httpx.Response:
        if n == 1:
            return limited("1")
        assert req.headers["accept"] == "application/x-ndjson"
        return httpx.Response(200, content=lines, headers={"content-type": "application/x-ndjson"})

    client, seen = mock(answer)
    with client:
        resp = client_mod.send(client, "GET", "/api/v1/servers/abc/logs", stream=True,
                               params={"follow": True}, headers={"Accept": "application/x-ndjson"})
        with contextlib.closing(resp):
            assert resp.status_code == 200
            assert b"hello" in resp.read()
    assert len(seen) == 2
    assert [w for w, _ in waits] == [1.0]
