"""Webhooks through the API with a real Temporal and control worker: CRUD, SSRF refusals, signed test
deliveries, retries with backoff, a worker restart mid-backoff, refusal at delivery time, automatic disabling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from control_worker.worker import run_control_worker
from core.settings import Settings
from core.webhooks import DeliverWebhookResult, DeliveryStatus
from tests.harness import Harness, platform
from tests.problems import assert_problem
from tests.webhooks.conftest import (
    Receiver,
    create_webhook,
    load_sample,
    record_history,
    webhook_settings,
)

pytestmark = [pytest.mark.temporal]
sample = load_sample()
PROBLEM = "application/problem+json"


async def wait_delivery(api: httpx.AsyncClient, webhook_id: str, statuses: set[str],
                        timeout: float = 30) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(int(timeout / 0.1)):
        body = (await api.get(f"/api/v1/webhooks/{webhook_id}/deliveries")).json()
        if body["items"] and body["items"][0]["status"] in statuses:
            return dict(body["items"][0])
        await asyncio.sleep(0.1)
    raise AssertionError(f"no delivery reached {statuses}: {body}")


async def test_create_list_update_delete(hp: Harness, receiver: Receiver) -> None:
    key = await hp.user_key("dev@example.com")
    other = await hp.user_key("other@example.com")
    async with hp.api(key) as api, hp.api(other) as them:
        created = await create_webhook(api, receiver.url + "/a", ["server.running", "server.failed",
                                                                  "server.running"], description="ops channel")
        assert created["secret"].startswith("whsec_")
        assert len(created["secret"]) > 30
        assert created["events"] == ["server.failed", "server.running"]
        assert created["enabled"] is True
        mine = await create_webhook(api, receiver.url + "/b", ["model.succeeded"], secret="s" * 20)
        assert mine["secret"] == "s" * 20
        got = (await api.get(f"/api/v1/webhooks/{created['id']}")).json()
        assert "secret" not in got
        assert got["description"] == "ops channel"
        listed = (await api.get("/api/v1/webhooks")).json()
        assert listed["count"] == 2
        assert {w["id"] for w in listed["items"]} == {created["id"], mine["id"]}
        assert (await them.get("/api/v1/webhooks")).json()["count"] == 0
        assert_problem(await them.get(f"/api/v1/webhooks/{created['id']}"), 404, "not-found")
        assert_problem(await them.delete(f"/api/v1/webhooks/{created['id']}"), 404, "not-found")

        patched = (await api.patch(f"/api/v1/webhooks/{created['id']}",
                                   json={"events": ["pipeline.paused"], "enabled": False})).json()
        assert patched["events"] == ["pipeline.paused"]
        assert patched["enabled"] is False
        assert patched["disabled_reason"] == "disabled by its owner"
        again = (await api.patch(f"/api/v1/webhooks/{created['id']}", json={"enabled": True})).json()
        assert again["enabled"] is True
        assert again["disabled_reason"] is None

        assert (await api.delete(f"/api/v1/webhooks/{created['id']}")).status_code == 204
        assert_problem(await api.get(f"/api/v1/webhooks/{created['id']}"), 404, "not-found")
        assert_problem(await api.get(f"/api/v1/webhooks/{created['id']}/deliveries"), 404, "not-found")


async def test_events_are_checked_against_role_and_scopes(hp: Harness, receiver: Receiver) -> None:
    key = await hp.user_key("dev@example.com")
    admin = await hp.user_key("ops@example.com", admin=True)
    async with hp.api(key) as api, hp.api(admin) as ops:
        for events in (["node.offline"], ["server.running", "node.online"]):
            assert_problem(await api.post("/api/v1/webhooks", json={"url": receiver.url, "events": events}),
                           403, "forbidden")
        for bad in ([], ["webhook.test"], ["server.exploded"]):
            assert_problem(await api.post("/api/v1/webhooks", json={"url": receiver.url, "events": bad}),
                           422, "validation-error")
        assert_problem(await api.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["server.running"],
                                                                "secret": "short"}), 422, "validation-error")
        models_only = (await api.post("/api/v1/keys", json={"scopes": ["models"]})).json()["key"]
        async with hp.api(models_only) as narrow:
            assert_problem(await narrow.post("/api/v1/webhooks", json={"url": receiver.url,
                                                                       "events": ["server.running"]}),
                           403, "forbidden")
            await create_webhook(narrow, receiver.url, ["model.failed"])
        await create_webhook(ops, receiver.url, ["node.offline", "node.online", "server.failed"])


@pytest.fixture
async def strict(settings: Settings, temporal_env: WorkflowEnvironment) -> AsyncIterator[Harness]:
    """The default policy: webhooks reach public addresses only."""
    async with platform(settings, temporal_env.client, agent=False) as harness:
        yield harness


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://10.0.0.5/hook", "http://10.200.3.4:9000/", "http://169.254.169.254/latest",
    "http://[::1]:8000/hook", "http://localhost:8000/hook", "http://[::ffff:127.0.0.1]/", "http://2130706433/",
    "ftp://example.com/hook", "file:///etc/passwd", "gopher://127.0.0.1:70/", "javascript:alert(1)",
    "http://user:secret@example.com/", "http://no-such-host.invalid/",
])
async def test_ssrf_targets_are_refused(strict: Harness, url: str) -> None:
    key = await strict.user_key("dev@example.com")
    async with strict.api(key) as api:
        resp = await api.post("/api/v1/webhooks", json={"url": url, "events": ["server.running"]})
        assert resp.status_code == 422, resp.text
        assert resp.json()["type"].rsplit("/", 1)[1] in ("webhook-target-refused", "webhook-target-unresolvable")
        assert (await api.get("/api/v1/webhooks")).json()["count"] == 0


async def test_a_test_ping_arrives_signed(hp: Harness, receiver: Receiver) -> None:
    key = await hp.user_key("dev@example.com")
    async with hp.api(key) as api:
        hook = await create_webhook(api, receiver.url + "/ping", ["server.running"])
        resp = await api.post(f"/api/v1/webhooks/{hook['id']}/test")
        assert resp.status_code == 202, resp.text
        queued = resp.json()
        assert queued["status"] == "pending"
        assert queued["event_type"] == "webhook.test"
        assert queued["workflow_id"] == f"webhook-{hook['id']}-{queued['event_id']}"
        (got,) = await receiver.wait("/ping")
        event = sample.verify(hook["secret"], got.headers["x-gsf-signature"], got.body)
        assert event["id"] == queued["event_id"] == got.headers["x-gsf-event-id"]
        assert event["type"] == "webhook.test" == got.headers["x-gsf-event"]
        assert event["resource"] == {"kind": "webhook", "id": hook["id"], "url": hook["url"],
                                     "events": ["server.running"]}
        assert event["links"]["resource"].endswith(f"/api/v1/webhooks/{hook['id']}")
        assert got.headers["content-type"] == "application/json"
        assert got.headers["x-gsf-attempt"] == "1"
        assert got.headers["x-gsf-delivery"] == queued["id"]
        with pytest.raises(sample.InvalidSignature):
            sample.verify("whsec_" + "x" * 30, got.headers["x-gsf-signature"], got.body)
        done = await wait_delivery(api, hook["id"], {"delivered"})
        assert done["attempt_count"] == 1
        assert done["last_status_code"] == 204
        assert done["delivered_at"]
        (attempt,) = done["attempts"]
        assert attempt["status_code"] == 204
        assert attempt["latency_ms"] > 0
        assert attempt["error"] is None
    result = await hp.client.get_workflow_handle(queued["workflow_id"], result_type=DeliverWebhookResult).result()
    assert result.status == DeliveryStatus.DELIVERED
    assert result.attempts == 1
    await record_history(hp, queued["workflow_id"], "delivery_first_try")


@pytest.fixture
async def hdb(settings: Settings, temporal_env: WorkflowEnvironment, database_url: str) -> AsyncIterator[Harness]:
    s = webhook_settings(settings, database_url=database_url)
    async with platform(s, temporal_env.client, agent=False) as harness:
        yield harness


async def test_three_failures_then_exactly_one_success(hdb: Harness, receiver: Receiver) -> None:
    key = await hdb.user_key("dev@example.com")
    receiver.fail["/flaky"] = 3
    async with hdb.api(key) as api:
        hook = await create_webhook(api, receiver.url + "/flaky", ["server.running"])
        queued = (await api.post(f"/api/v1/webhooks/{hook['id']}/test")).json()
        await receiver.wait("/flaky")
        done = await wait_delivery(api, hook["id"], {"delivered", "failed"})
        assert done["status"] == "delivered", done
        assert [a["status_code"] for a in done["attempts"]] == [500, 500, 500, 204]
        assert [a["attempt"] for a in done["attempts"]] == [1, 2, 3, 4]
        assert done["attempts"][0]["error"] == "the receiver answered HTTP 500"
        assert done["attempt_count"] == 4
        assert done["last_error"] is None
        got = receiver.at("/flaky")
        assert [r.answered for r in got] == [500, 500, 500, 204]
        assert {r.headers["x-gsf-event-id"] for r in got} == {queued["event_id"]}, "one event, retried"
        assert [r.headers["x-gsf-attempt"] for r in got] == ["1", "2", "3", "4"]
        for r in got:
            sample.verify(hook["secret"], r.headers["x-gsf-signature"], r.body)
        # Backoff: the waits grow (0.3 s, 0.6 s, then the 1 s cap, with ±10 % jitter).
        times = [a["at"] for a in done["attempts"]]
        assert len(set(times)) == 4
        listed = (await api.get(f"/api/v1/webhooks/{hook['id']}/deliveries",
                                params={"status": "delivered"})).json()
        assert listed["count"] == 1, "exactly one successful delivery recorded"
        healthy = (await api.get(f"/api/v1/webhooks/{hook['id']}")).json()
        assert healthy["failing_since"] is None
        assert healthy["last_success_at"]
        assert healthy["last_failure_at"]
    await record_history(hdb, queued["workflow_id"], "delivery_retries")


async def test_a_worker_restart_mid_backoff_loses_no_delivery(settings: Settings, temporal_env: WorkflowEnvironment,
                                                             receiver: Receiver) -> None:
    s = webhook_settings(settings, webhook_backoff_initial_seconds=3.0, webhook_backoff_max_seconds=3.0)
    async with platform(s, temporal_env.client, agent=False) as h:
        key = await h.user_key("dev@example.com")
        receiver.fail["/restart"] = 1
        async with h.api(key) as api:
            hook = await create_webhook(api, receiver.url + "/restart", ["server.running"])
            queued = (await api.post(f"/api/v1/webhooks/{hook['id']}/test")).json()
            await receiver.wait("/restart", ok_only=False)
            await h.stop("control")  # the workflow is now waiting on its backoff timer, with no worker
            await asyncio.sleep(4)
            assert [r.answered for r in receiver.at("/restart")] == [500]
            h.start_control_worker()
            done = await wait_delivery(api, hook["id"], {"delivered", "failed"})
            assert done["status"] == "delivered"
            assert done["attempt_count"] == 2
            assert [r.answered for r in receiver.at("/restart")] == [500, 204]
        await record_history(h, queued["workflow_id"], "delivery_worker_restart")


async def test_the_target_is_checked_again_at_delivery_time(hp: Harness, receiver: Receiver) -> None:
    """Allowed when created; the admin then closes private addresses: the next delivery is refused, not sent."""
    key = await hp.user_key("dev@example.com")
    async with hp.api(key) as api:
        hook = await create_webhook(api, receiver.url + "/later", ["server.running"])
        await hp.stop("control")
        strict = hp.settings.model_copy(update={"webhook_allow_private": False})
        hp.tasks["control"] = asyncio.create_task(run_control_worker(strict, hp.client))
        queued = (await api.post(f"/api/v1/webhooks/{hook['id']}/test")).json()
        done = await wait_delivery(api, hook["id"], {"failed", "delivered"})
        assert done["status"] == "failed"
        assert done["attempt_count"] == 1
        assert "127.0.0.1 is a loopback address" in done["last_error"]
        (attempt,) = done["attempts"]
        assert attempt["status_code"] is None
        assert attempt["latency_ms"] is None
    assert receiver.at("/later") == []
    result = await hp.client.get_workflow_handle(queued["workflow_id"], result_type=DeliverWebhookResult).result()
    assert result.status == DeliveryStatus.FAILED
    assert result.attempts == 1
    await record_history(hp, queued["workflow_id"], "delivery_refused")


async def test_gives_up_after_the_retry_window_and_disables_a_failing_webhook(
        settings: Settings, temporal_env: WorkflowEnvironment, receiver: Receiver) -> None:
    # 0.00002 days = 1.7 s of nothing but failures disables the webhook.
    s = webhook_settings(settings, webhook_retry_seconds=2.5, webhook_disable_after_days=0.00002)
    receiver.fail["/down"] = 10_000
    async with platform(s, temporal_env.client, agent=False) as h:
        key = await h.user_key("dev@example.com")
        async with h.api(key) as api:
            hook = await create_webhook(api, receiver.url + "/down", ["server.running"])
            first = (await api.post(f"/api/v1/webhooks/{hook['id']}/test")).json()
            done = await wait_delivery(api, hook["id"], {"failed", "skipped", "delivered"})
            assert done["status"] == "failed", done
            assert done["last_error"].startswith(f"gave up after {done['attempt_count']} attempt(s)")
            assert all(a["status_code"] == 500 for a in done["attempts"])
            assert done["attempt_count"] >= 3
            state = (await api.get(f"/api/v1/webhooks/{hook['id']}")).json()
            assert state["enabled"] is False, state
            assert state["disabled_reason"].startswith("disabled automatically: every delivery failed for")
            assert "HTTP 500" in state["disabled_reason"]
            assert state["disabled_at"]
            assert_problem(await api.post(f"/api/v1/webhooks/{hook['id']}/test"), 409, "conflict")
            # The owner fixes the receiver and turns the webhook back on.
            receiver.fail["/down"] = 0
            back = (await api.patch(f"/api/v1/webhooks/{hook['id']}", json={"enabled": True})).json()
            assert back["enabled"]
            assert back["disabled_reason"] is None
            assert back["failing_since"] is None
            second = (await api.post(f"/api/v1/webhooks/{hook['id']}/test")).json()
            assert (await wait_delivery(api, hook["id"], {"delivered"}))["event_id"] == second["event_id"]
        result = await h.client.get_workflow_handle(first["workflow_id"], result_type=DeliverWebhookResult).result()
        assert result.status == DeliveryStatus.FAILED
        await record_history(h, first["workflow_id"], "delivery_gave_up")


async def test_deleting_a_webhook_cancels_its_pending_deliveries(settings: Settings,
                                                                temporal_env: WorkflowEnvironment,
                                                                receiver: Receiver) -> None:
    # The next attempt is a minute away and well inside the retry window: the delivery waits, not gives up.
    s = webhook_settings(settings, webhook_backoff_initial_seconds=60, webhook_backoff_max_seconds=60,
                         webhook_retry_seconds=3600)
    receiver.fail["/gone"] = 10_000
    async with platform(s, temporal_env.client, agent=False) as h:
        key = await h.user_key("dev@example.com")
        async with h.api(key) as api:
            hook = await create_webhook(api, receiver.url + "/gone", ["server.running"])
            queued = (await api.post(f"/api/v1/webhooks/{hook['id']}/test")).json()
            await receiver.wait("/gone", ok_only=False)
            assert (await api.delete(f"/api/v1/webhooks/{hook['id']}")).status_code == 204
        handle = h.client.get_workflow_handle(queued["workflow_id"])
        deadline = time.monotonic() + 10
        while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        status = (await handle.describe()).status
        if status == WorkflowExecutionStatus.COMPLETED:
            # The attempt in flight ended first and found the webhook gone: skipped, not retried.
            result = await h.client.get_workflow_handle(queued["workflow_id"],
                                                        result_type=DeliverWebhookResult).result()
            assert result.status == DeliveryStatus.SKIPPED, result
        else:
            assert status == WorkflowExecutionStatus.CANCELED
        assert len(receiver.at("/gone")) == 1
