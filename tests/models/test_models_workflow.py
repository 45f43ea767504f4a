"""ModelGenerationWorkflow and TripoSlotsWorkflow against the real Temporal dev server and the fake Tripo:
every error mapping, retries that honour Retry-After, cancellation, a worker restart, the concurrency limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.tripo import tripo_slots_workflow_id
from core.contracts import TripoSlotsState
from core.queues import model_workflow_id
from core.settings import Settings
from tests.harness import Harness, platform
from tests.models.conftest import (
    FakeServer,
    S3Server,
    image_bytes,
    image_upload,
    model_settings,
    parse_glb,
    record_history,
    s3_settings,
    wait_for,
    wait_job,
)
from workflows.generation import TripoSlotsWorkflow

pytestmark = [pytest.mark.temporal]


async def create(api: httpx.AsyncClient, prompt: str = "a crate", **kwargs: Any) -> str:
    resp = await api.post("/api/v1/models", **(kwargs or {"json": {"prompt": prompt}}))
    assert resp.status_code == 202, resp.text
    return str(resp.json()["job_id"])


async def failure_type(h: Harness, job_id: str) -> str:
    with pytest.raises(WorkflowFailureError) as err:
        await h.client.get_workflow_handle(model_workflow_id(job_id)).result()
    assert isinstance(err.value.cause, ApplicationError)
    return str(err.value.cause.type)


async def slots(h: Harness) -> TripoSlotsState:
    handle = h.client.get_workflow_handle_for(TripoSlotsWorkflow.run, tripo_slots_workflow_id(h.settings.tripo_api_key))
    state: TripoSlotsState = await handle.query(TripoSlotsWorkflow.state)
    return state


async def task_of(api: httpx.AsyncClient, job: str) -> str:
    task: str | None = None

    async def created() -> bool:
        nonlocal task
        task = (await api.get(f"/api/v1/models/{job}")).json()["tripo_task_id"]
        return task is not None

    await wait_for(created, what=f"the Tripo task of {job}")
    assert task is not None
    return task


async def test_tripo_end_states_end_the_job(h: Harness, fake_tripo: FakeServer) -> None:
    expected = {"failed": "TripoTaskFailed", "banned": "TripoTaskBanned", "expired": "TripoTaskExpired",
                "cancelled": "TripoTaskCancelled"}
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        jobs = {}
        for outcome in expected:
            fake_tripo.fake.force(outcome)  # type: ignore[arg-type]
            jobs[outcome] = await create(api)
            await task_of(api, jobs[outcome])  # the switch applies when the task is created
        fake_tripo.fake.reset()
        for outcome, code in expected.items():
            done = await wait_job(api, jobs[outcome], {"success", "failed", "cancelled"})
            assert done["status"] == "failed", done
            assert done["error"]["code"] == code, done
            assert f"status {outcome}" in done["error"]["message"]
            assert await failure_type(h, jobs[outcome]) == code
            assert (await api.get(f"/api/v1/models/{jobs[outcome]}/result")).status_code == 409
        assert (await slots(h)).holders == [], "every slot was given back"
    await record_history(h, model_workflow_id(jobs["banned"]), "model_tripo_banned")


async def test_non_retryable_refusals_end_the_job_at_once(h: Harness, fake_tripo: FakeServer) -> None:
    fake = fake_tripo.fake
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        for status, code, expected in [(403, 2010, "TripoInsufficientCredits"), (400, 2008, "TripoContentPolicy")]:
            fake.fail_next(status, code, scope="create")
            job = await create(api)
            done = await wait_job(api, job, {"success", "failed"})
            assert done["status"] == "failed", done
            assert done["error"]["code"] == expected, done
            assert f"code {code}" in done["error"]["message"]
            assert "trace" in done["error"]["message"]
            assert await failure_type(h, job) == expected
        # A refused image upload ends the job the same way.
        fake.fail_next(400, 2008, scope="upload")
        job = await create(api, **image_upload(image_bytes()))
        assert (await wait_job(api, job, {"failed"}))["error"]["code"] == "TripoContentPolicy"
        # A wrong key: Tripo's own Bearer check answers 401 / 1002.
        h.settings.tripo_api_key = "tsk_revoked"
        job = await create(api)
        done = await wait_job(api, job, {"success", "failed"})
        assert done["error"]["code"] == "TripoAuthFailed"
        assert "code 1002" in done["error"]["message"]
        assert "tsk_revoked" not in done["error"]["message"], "the key never shows"
        h.settings.tripo_api_key = ""
        job = await create(api)
        assert (await wait_job(api, job, {"failed"}))["error"]["code"] == "TripoNotConfigured"
    assert fake.count("POST", "/v2/openapi/task", status=200) == 0, "no task was created"
    await record_history(h, model_workflow_id(job), "model_not_configured")


async def test_429_honours_retry_after_and_5xx_is_retried(h: Harness, fake_tripo: FakeServer) -> None:
    fake = fake_tripo.fake
    fake.generation_seconds = 0.2
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        fake.fail_next(429, 2000, scope="poll", times=2, retry_after=1)
        fake.fail_next(500, 1000, scope="create", times=1)
        fake.fail_next(503, 1001, scope="download", times=1)
        job = await create(api)
        done = await wait_job(api, job, {"success", "failed"})
        assert done["status"] == "success", done
    polls = [c for c in fake.calls if c.method == "GET" and c.path.startswith("/v2/openapi/task/")]
    limited = [i for i, c in enumerate(polls) if c.status == 429]
    assert len(limited) == 2
    for i in limited:
        assert polls[i + 1].at - polls[i].at >= 0.95, "the next look waited for Retry-After"
    assert fake.count("POST", "/v2/openapi/task", status=500) == 1
    assert fake.count("POST", "/v2/openapi/task", status=200) == 1, "one task, created on the retry"
    await record_history(h, model_workflow_id(job), "model_retries")


async def test_unknown_is_polled_until_the_deadline(h: Harness, fake_tripo: FakeServer) -> None:
    fake_tripo.fake.force("unknown")
    h.settings.tripo_deadline_seconds = 2.5  # Temporal's timers fire on whole seconds: two or three looks
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        job = await create(api)
        done = await wait_job(api, job, {"success", "failed"})
    assert done["error"]["code"] == "TripoDeadlineExceeded"
    assert "unknown" in done["error"]["message"]
    assert await failure_type(h, job) == "TripoDeadlineExceeded"
    assert fake_tripo.fake.count("GET", "/v2/openapi/task/") >= 2, "unknown was looked at again"
    await record_history(h, model_workflow_id(job), "model_deadline")


async def test_cancel_mid_poll(h: Harness, fake_tripo: FakeServer) -> None:
    fake = fake_tripo.fake
    fake.generation_seconds = 60
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        job = await create(api)
        await task_of(api, job)
        await wait_for(lambda: (fake.count("GET", "/v2/openapi/task/") >= 2), what="polling")
        resp = await api.delete(f"/api/v1/models/{job}")
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "cancelled"
        assert resp.json()["error"]["code"] == "Cancelled"
        # The record says cancelled first (its activity is the workflow's last step); the run closes next.
        for _ in range(100):
            desc = await h.client.get_workflow_handle(model_workflow_id(job)).describe()
            if desc.status != WorkflowExecutionStatus.RUNNING:
                break
            await asyncio.sleep(0.1)
        assert desc.status == WorkflowExecutionStatus.CANCELED
        polls = fake.count("GET", "/v2/openapi/task/")
        await asyncio.sleep(0.8)
        assert fake.count("GET", "/v2/openapi/task/") == polls, "the polling stopped"
        assert (await slots(h)).holders == [], "the slot was given back"
        assert (await api.get(f"/api/v1/models/{job}/status")).json()["status"] == "cancelled"
        await record_history(h, model_workflow_id(job), "model_cancelled_mid_poll")
        assert (await api.delete(f"/api/v1/models/{job}")).status_code == 204, "a second delete removes it"


async def test_concurrency_is_limited_by_the_workflow_layer(h: Harness, fake_tripo: FakeServer) -> None:
    fake = fake_tripo.fake
    fake.generation_seconds = 0.6
    fake.max_concurrency = 2  # Tripo would answer 429 past this; the platform must never get there
    h.settings.tripo_concurrency = 2
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        jobs = await asyncio.gather(*[create(api, f"crate {i}") for i in range(6)])
        late = await create(api, "a queued crate")

        async def waiting() -> bool:
            return model_workflow_id(late) in (await slots(h)).waiters

        await wait_for(waiting, what="a job queued for a slot")
        resp = await api.delete(f"/api/v1/models/{late}")
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "cancelled", resp.text
        for job in jobs:
            assert (await wait_job(api, job, {"success", "failed"}))["status"] == "success"
    assert fake.peak_concurrency(fake_tripo.key) == 2
    assert fake.count("POST", "/v2/openapi/task", status=429) == 0, "no request was refused for concurrency"
    state = await slots(h)
    assert state.holders == []
    assert state.waiters == []
    assert state.granted_total == 6
    assert state.limit == 2
    await record_history(h, tripo_slots_workflow_id(fake_tripo.key), "tripo_slots")
    await record_history(h, model_workflow_id(late), "model_cancelled_queued")


@pytest.fixture
async def h_restartable(settings: Settings, temporal_env: WorkflowEnvironment, fake_tripo: FakeServer,
                        s3_bucket: S3Server) -> AsyncIterator[Harness]:
    """Without Redis, on the S3-compatible store (moto on 127.0.0.1)."""
    s = model_settings(settings, fake_tripo, **s3_settings(s3_bucket))
    async with platform(s, temporal_env.client, agent=False) as harness:
        yield harness


async def test_worker_restart_mid_poll_resumes_the_same_task(h_restartable: Harness, fake_tripo: FakeServer) -> None:
    h, fake = h_restartable, fake_tripo.fake
    fake.generation_seconds = 3
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        job = await create(api, **image_upload(image_bytes("WEBP", (80, 80))))
        task = await task_of(api, job)
        await wait_for(lambda: (fake.count("GET", f"/v2/openapi/task/{task}") >= 2), what="polling")
        await h.stop("control")
        before = fake.count("GET", f"/v2/openapi/task/{task}")
        await asyncio.sleep(0.5)
        assert fake.count("GET", f"/v2/openapi/task/{task}") == before, "nobody polls while the worker is down"
        h.start_control_worker()
        done = await wait_job(api, job, {"success", "failed"}, timeout=40)
        assert done["status"] == "success", done
        assert fake.count("GET", f"/v2/openapi/task/{task}") > before, "the new worker picked the polling up"
        assert fake.count("POST", "/v2/openapi/task") == 1, "no second Tripo task"
        assert fake.count("POST", "/v2/openapi/upload") == 1
        await record_history(h, model_workflow_id(job), "model_worker_restart")
        # The S3 store answers the result with a presigned redirect; ?redirect=false streams it.
        resp = await api.get(f"/api/v1/models/{job}/result")
        assert resp.status_code == 307
        assert "X-Amz-Signature" in resp.headers["location"]
        async with httpx.AsyncClient() as anon:
            glb = (await anon.get(resp.headers["location"])).content
        parse_glb(glb)
        streamed = await api.get(f"/api/v1/models/{job}/result", params={"redirect": "false"})
        assert streamed.status_code == 200
        assert streamed.content == glb
        ready = (await api.get("/ready")).json()["checks"]
        assert ready["object_store"] == "ok"
        assert "redis" not in ready
        assert (await api.delete(f"/api/v1/models/{job}")).status_code == 204
        async with httpx.AsyncClient() as anon:
            gone = await anon.get(resp.headers["location"])
        assert gone.status_code in (403, 404), "deleted from the bucket"
