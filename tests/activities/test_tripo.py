"""The Tripo client of the 3D-model activities (activities/tripo.py): TripoClient against the fake
Tripo (in process, through httpx's ASGI transport) and odd answers, and how Tripo's answers are read.
The activities in their workflow: tests/models/."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from activities.tripo import (
    TripoAuthFailed,
    TripoClient,
    TripoContentPolicy,
    TripoError,
    TripoInsufficientCredits,
    TripoProtocolError,
    TripoRateLimited,
    TripoTaskNotFound,
    TripoUnavailable,
    check_glb_header,
    classify,
    parse_retry_after,
    task_body,
)
from core.contracts import CreateTripoTaskInput, ModelInputKind, ModelOptions
from fakes.tripo import FakeTripo, create_fake_tripo_app, make_glb
from tests.models.conftest import image_bytes, parse_glb

KEY_A, KEY_B = "tsk_alice", "tsk_bob"
BASE = "http://tripo.test"


@pytest.fixture
async def fake() -> FakeTripo:
    return FakeTripo(api_keys={KEY_A, KEY_B}, generation_seconds=0.3)


@pytest.fixture
async def http(fake: FakeTripo) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_fake_tripo_app(fake)),
                                 base_url=BASE, timeout=5) as client:
        yield client


def client(http: httpx.AsyncClient, key: str = KEY_A) -> TripoClient:
    return TripoClient(http, key, BASE)


async def finished(tripo: TripoClient, task_id: str) -> Any:
    for _ in range(100):
        task = await tripo.get_task(task_id)
        if task.status not in ("queued", "running"):
            return task
        await asyncio.sleep(0.02)
    raise AssertionError("the fake task never finished")


async def test_image_to_model_round_trip(http: httpx.AsyncClient, fake: FakeTripo) -> None:
    tripo = client(http)
    token = await tripo.upload(image_bytes(), "a.png", "image/png")
    body = task_body(CreateTripoTaskInput(job_id="j", kind=ModelInputKind.IMAGE, file_token=token, image_type="png",
                                          options=ModelOptions(model_version="v2.5-20250123", pbr=True,
                                                               face_limit=5000)))
    assert body == {"type": "image_to_model", "file": {"type": "png", "file_token": token},
                    "model_version": "v2.5-20250123", "pbr": True, "face_limit": 5000}
    task_id = await tripo.create_task(body)
    first = await tripo.get_task(task_id)
    assert first.status in ("queued", "running")
    assert first.best_model() is None
    seen = []
    while (task := await tripo.get_task(task_id)).status in ("queued", "running"):
        seen.append(task.progress)
        await asyncio.sleep(0.02)
    assert task.status == "success"
    assert task.progress == 100
    assert seen == sorted(seen), "progress only rises"
    name, url = task.best_model() or ("", "")
    assert name == "pbr_model"
    data = b"".join([chunk async for chunk in tripo.download(url, 10_000_000)])
    assert check_glb_header(data[:12], len(data)) is None
    assert parse_glb(data)["asset"]["extras"]["variant"] == "pbr_model"


async def test_text_to_model_without_pbr_prefers_model(http: httpx.AsyncClient) -> None:
    tripo = client(http)
    task_id = await tripo.create_task(task_body(CreateTripoTaskInput(
        job_id="j", kind=ModelInputKind.PROMPT, prompt="a barrel", negative_prompt="blurry",
        options=ModelOptions(pbr=False))))
    task = await finished(tripo, task_id)
    assert task.best_model() is not None
    assert task.best_model()[0] == "model"


async def test_bearer_check_and_key_scoping(http: httpx.AsyncClient, fake: FakeTripo) -> None:
    with pytest.raises(TripoAuthFailed) as err:
        await client(http, "tsk_unknown").create_task({"type": "text_to_model", "prompt": "x"})
    assert (err.value.http_status, err.value.code, err.value.retryable) == (401, 1002, False)
    assert err.value.trace_id
    task_id = await client(http, KEY_A).create_task({"type": "text_to_model", "prompt": "x"})
    with pytest.raises(TripoTaskNotFound) as nf:
        await client(http, KEY_B).get_task(task_id)
    assert (nf.value.http_status, nf.value.code) == (404, 2001)
    # An image token is scoped to its key too.
    token = await client(http, KEY_A).upload(image_bytes(), "a.png", "image/png")
    with pytest.raises(TripoError) as bad:
        await client(http, KEY_B).create_task({"type": "image_to_model", "file": {"type": "png", "file_token": token}})
    assert bad.value.http_status == 400
    assert not bad.value.retryable


@pytest.mark.parametrize(("status", "code", "cls", "retryable"), [
    (403, 2010, TripoInsufficientCredits, False),
    (400, 2008, TripoContentPolicy, False),
    (429, 2000, TripoRateLimited, True),
    (500, 1000, TripoUnavailable, True),
    (503, 1001, TripoUnavailable, True),
    (401, 1002, TripoAuthFailed, False),
])
async def test_refusals_are_typed(http: httpx.AsyncClient, fake: FakeTripo, status: int, code: int,
                                  cls: type[TripoError], retryable: bool) -> None:
    fake.fail_next(status, code, scope="create", retry_after=3 if status == 429 else None)
    with pytest.raises(cls) as err:
        await client(http).create_task({"type": "text_to_model", "prompt": "x"})
    assert type(err.value) is cls
    assert err.value.retryable is retryable
    assert (err.value.http_status, err.value.code) == (status, code)
    assert err.value.retry_after == (3.0 if status == 429 else None)
    assert err.value.message
    assert err.value.suggestion
    assert err.value.trace_id
    # The switch was used up: the next call goes through.
    assert await client(http).create_task({"type": "text_to_model", "prompt": "x"})


@pytest.mark.parametrize("outcome", ["failed", "banned", "expired", "cancelled", "unknown"])
async def test_forced_end_states(http: httpx.AsyncClient, fake: FakeTripo, outcome: str) -> None:
    fake.force(outcome)  # type: ignore[arg-type]
    tripo = client(http)
    task = await finished(tripo, await tripo.create_task({"type": "text_to_model", "prompt": "x"}))
    assert task.status == outcome
    assert task.best_model() is None


async def test_every_call_is_logged_with_its_trace_id(http: httpx.AsyncClient,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gsf.tripo")
    tripo = client(http)
    await tripo.balance()
    with pytest.raises(TripoAuthFailed):
        await client(http, "tsk_nope").balance()
    lines = [r.getMessage() for r in caplog.records if r.name == "gsf.tripo"]
    assert len(lines) == 2
    assert all("trace=" in line and "trace=None" not in line for line in lines)
    assert "-> 200 code=0" in lines[0]
    assert "-> 401 code=1002" in lines[1]
    assert not any(KEY_A in line or "tsk_nope" in line for line in lines), "the key is never logged"


async def test_expired_download_urls_are_refused(http: httpx.AsyncClient, fake: FakeTripo) -> None:
    fake.url_ttl_seconds = -1
    tripo = client(http)
    task = await finished(tripo, await tripo.create_task({"type": "text_to_model", "prompt": "x"}))
    _, url = task.best_model() or ("", "")
    with pytest.raises(TripoUnavailable):
        [chunk async for chunk in tripo.download(url, 10_000_000)]


def transport(handler: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=BASE)


@pytest.mark.parametrize(("response", "cls"), [
    (httpx.Response(200, text="<html>gateway</html>"), TripoProtocolError),
    (httpx.Response(200, json={"data": {"task_id": "x"}}), TripoProtocolError),
    (httpx.Response(502, text="bad gateway"), TripoUnavailable),
    (httpx.Response(200, json={"code": 2000, "message": "slow down"}, headers={"Retry-After": "2"}),
     TripoRateLimited),
    (httpx.Response(200, json={"code": 0, "data": {"nope": 1}}), TripoProtocolError),
])
async def test_answers_outside_the_contract(response: httpx.Response, cls: type[TripoError]) -> None:
    async with transport(lambda request: response) as http:
        with pytest.raises(cls) as err:
            await client(http).create_task({"type": "text_to_model", "prompt": "x"})
    if cls is TripoRateLimited:
        assert err.value.retry_after == 2.0  # the code says rate limit, whatever the HTTP status


async def test_timeouts_and_network_errors_are_retryable() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    for handler in (timeout, refused):
        async with transport(handler) as http:
            with pytest.raises(TripoUnavailable) as err:
                await client(http).get_task("t")
            assert err.value.retryable


async def test_the_key_goes_to_tripo_only_not_to_the_cdn() -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("authorization")))
        if request.url.host == "cdn.test":
            return httpx.Response(200, content=b"glTF")
        return httpx.Response(200, json={"code": 0, "data": {"task_id": "t", "status": "running"}})

    async with transport(handler) as http:
        tripo = client(http)
        await tripo.get_task("t")
        assert b"".join([c async for c in tripo.download("https://cdn.test/m.glb", 100)]) == b"glTF"
    assert seen == [("tripo.test", f"Bearer {KEY_A}"), ("cdn.test", None)]


# --- Tripo's answers --------------------------------------------------------------------------------


@given(st.one_of(st.none(), st.text(max_size=40)))
def test_retry_after_never_raises_and_is_bounded(value: str | None) -> None:
    seconds = parse_retry_after(value)
    assert seconds is None or 0 <= seconds <= 600


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("100000") == 600.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=5), usegmt=True), now) == 5.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now) == 0.0
    assert parse_retry_after("soon") is None


@given(st.integers(100, 599), st.one_of(st.none(), st.integers(0, 5000)))
def test_every_refusal_has_a_class(status: int, code: int | None) -> None:
    cls = classify(status, code)
    if code in (1002, 2000, 2001, 2008, 2010):
        assert cls.error_type == {1002: "TripoAuthFailed", 2000: "TripoRateLimited", 2001: "TripoTaskNotFound",
                                  2008: "TripoContentPolicy", 2010: "TripoInsufficientCredits"}[code]
    elif status >= 500:
        assert cls.retryable


@given(st.binary(max_size=64), st.integers(0, 10_000))
def test_glb_header_check_never_raises(head: bytes, size: int) -> None:
    assert check_glb_header(head, size) is None or isinstance(check_glb_header(head, size), str)


def test_fake_glb_passes_the_header_check() -> None:
    glb = make_glb("x", "pbr_model")
    assert check_glb_header(glb[:12], len(glb)) is None
    assert check_glb_header(glb[:12], len(glb) - 1) is not None
