"""/metrics of the API, the matchmaker and the node agent, scraped and parsed with
prometheus_client's own text parser."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from temporalio import activity, workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from agent_worker.metrics import AgentMetrics
from core.db.models import GameServer, User
from matchmaker.app import create_app as create_matchmaker
from tests.conftest import reserve_port
from tests.matchmaker.conftest import make_settings
from tests.problems import assert_problem
from tests.security.conftest import MakeApi, api_settings

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


# --- API ------------------------------------------------------------------------------------------


async def test_api_counts_requests_by_route_template_and_deployments_by_status(
        make_api: MakeApi, database_url: str) -> None:
    api = await make_api(database_url=database_url, metrics_token="scrape-secret")
    root, anon = await api.client(key=api.admin_key), await api.client("10.0.0.2")
    async with api.app.state.sessions() as session:
        owner = await session.scalar(select(User.id).where(User.email == "root@example.com"))
        for status in ("running", "running", "failed"):
            session.add(GameServer(owner_id=owner, name="s", game="g", source_sha256="0" * 64, max_players=2,
                                   status=status, workflow_id=f"wf-{uuid.uuid4().hex}"))
        await session.commit()
    assert (await root.get("/api/v1/servers")).status_code == 200
    for server_id in ("a", "b", "c"):
        assert (await root.get(f"/api/v1/servers/{server_id}")).status_code == 404
    assert (await anon.get("/api/v1/servers")).status_code == 401

    scraped = await anon.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    samples = parse(scraped.text)
    total = "gsf_api_requests_total"
    assert value(samples, total, method="GET", route="/api/v1/servers", status="200") == 1
    assert value(samples, total, method="GET", route="/api/v1/servers", status="401") == 1
    # Ids never become label values: three servers, one series.
    assert value(samples, total, method="GET", route="/api/v1/servers/{server_id}", status="404") == 3
    assert not [k for k in samples if dict(k[1]).get("route", "").endswith(("/a", "/b", "/c"))]
    count = "gsf_api_request_duration_seconds_count"
    assert value(samples, count, method="GET", route="/api/v1/servers/{server_id}") == 3
    assert value(samples, "gsf_api_request_duration_seconds_bucket", method="GET",
                 route="/api/v1/servers/{server_id}", le="+Inf") == 3
    assert value(samples, "gsf_api_requests_in_flight") == 1  # the scrape itself
    assert value(samples, "gsf_api_deployments", status="running") == 2
    assert value(samples, "gsf_api_deployments", status="failed") == 1
    assert value(samples, "gsf_api_deployments", status="stopped") == 0


async def test_api_metrics_token(make_api: MakeApi) -> None:
    api = await make_api(metrics_token="scrape-secret")
    client = await api.client()
    assert_problem(await client.get("/metrics"), 401, "unauthorized")
    assert_problem(await client.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
    # The token under another scheme, or with an API key's worth of admin rights, is not the token.
    assert_problem(await client.get("/metrics", headers={"Authorization": "Basic scrape-secret"}), 401,
                   "unauthorized")
    admin = await api.client(key=api.admin_key)
    assert_problem(await admin.get("/metrics"), 401, "unauthorized")
    ok = await client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert ok.status_code == 200
    assert "gsf_api_requests_total" in ok.text


async def test_api_metrics_are_not_served_without_a_token(make_api: MakeApi) -> None:
    """/metrics is on the public port: with no GSF_METRICS_TOKEN nobody may scrape it (issue #19)."""
    api = await make_api()
    for client in (await api.client("127.0.0.1"), await api.client("203.0.113.7"),
                   await api.client(key=api.admin_key)):
        assert_problem(await client.get("/metrics"), 404, "not-found")
        assert_problem(await client.get("/metrics", headers={"Authorization": "Bearer "}), 404, "not-found")


# --- matchmaker -----------------------------------------------------------------------------------


async def test_matchmaker_metrics_parse_and_honour_the_token(tmp_path: Path) -> None:
    app = create_matchmaker(make_settings(tmp_path, metrics_token="mm-secret"))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://mm") as client:
        assert_problem(await client.get("/metrics"), 401, "unauthorized")
        assert_problem(await client.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
        resp = await client.get("/metrics", headers={"Authorization": "Bearer mm-secret"})
        samples = parse(resp.text)
        assert value(samples, "gsf_matchmaker_info", store="memory") == 1
        assert all(name.startswith("gsf_") for name, _ in samples)
        assert (await client.get("/health")).status_code == 200, "only /metrics is guarded"


async def test_matchmaker_metrics_are_not_served_without_a_token(tmp_path: Path) -> None:
    app = create_matchmaker(make_settings(tmp_path))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app, client=("127.0.0.1", 40000)), base_url="http://mm") as client:
        assert_problem(await client.get("/metrics"), 404, "not-found")
        assert_problem(await client.get("/metrics", headers={"Authorization": "Bearer "}), 404, "not-found")
        assert (await client.get("/health")).status_code == 200


# --- node agent -----------------------------------------------------------------------------------


@activity.defn(name="probe_ok")
async def probe_ok(n: int) -> int:
    return n + 1


@activity.defn(name="probe_fails")
async def probe_fails(n: int) -> int:
    raise ApplicationError("refused", type="ProbeRefused", non_retryable=True)


@workflow.defn(name="MetricsProbe", sandboxed=False)
class MetricsProbe:
    """Runs probe_ok, then probe_fails if asked."""

    @workflow.run
    async def run(self, fail: bool) -> int:
        once = RetryPolicy(maximum_attempts=1)
        n = await workflow.execute_activity(probe_ok, 1, start_to_close_timeout=timedelta(seconds=10),
                                            retry_policy=once)
        if fail:
            await workflow.execute_activity(probe_fails, n, start_to_close_timeout=timedelta(seconds=10),
                                            retry_policy=once)
        return n


async def scrape(port: int, token: str = "") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient() as http:
        return await http.get(f"http://127.0.0.1:{port}/metrics", headers=headers)


async def test_agent_metrics_count_activities_heartbeats_and_read_the_node(temporal_env: Any, tmp_path: Path) -> None:
    running = [3]
    metrics = AgentMetrics("node-7", lambda: running[0])
    settings = api_settings(tmp_path, agent_metrics_port=reserve_port(), metrics_token="agent-secret")
    server = asyncio.create_task(metrics.serve(settings))
    queue = f"gsf-test-metrics-{uuid.uuid4().hex[:8]}"
    try:
        async with Worker(temporal_env.client, task_queue=queue, workflows=[MetricsProbe],
                          activities=[probe_ok, probe_fails], interceptors=[metrics.interceptor]):
            assert await temporal_env.client.execute_workflow(MetricsProbe.run, False, id=queue + "-a",
                                                              task_queue=queue) == 2
            with pytest.raises(WorkflowFailureError):
                await temporal_env.client.execute_workflow(MetricsProbe.run, True, id=queue + "-b", task_queue=queue)

        # The relay's matchmaker client counts every heartbeat by its answer, or its lack of one.
        def matchmaker(request: httpx.Request) -> httpx.Response:
            if "down" in request.url.path:
                raise httpx.ConnectError("refused", request=request)
            return httpx.Response({"gone": 404, "stale": 409}.get(request.url.path.split("/")[-2], 200), json={})

        transport = metrics.relay_transport(httpx.MockTransport(matchmaker))
        async with httpx.AsyncClient(transport=transport, base_url="http://mm") as mm:
            await mm.put("/servers/s1/heartbeat", json={})
            await mm.put("/servers/s2/heartbeat", json={})
            await mm.put("/servers/gone/heartbeat", json={})
            await mm.put("/servers/stale/heartbeat", json={})
            with pytest.raises(httpx.ConnectError):
                await mm.put("/servers/down/heartbeat", json={})
            await mm.post("/servers", json={})  # a registration is no heartbeat

        for _ in range(100):
            if metrics.port:
                break
            await asyncio.sleep(0.02)
        assert (await scrape(settings.agent_metrics_port)).status_code == 401
        resp = await scrape(settings.agent_metrics_port, "agent-secret")
        assert resp.status_code == 200
        samples = parse(resp.text)
        assert value(samples, "gsf_agent_info", node_id="node-7") == 1
        assert value(samples, "gsf_agent_containers_running") == 3
        assert value(samples, "gsf_agent_activities_total", activity="probe_ok", result="ok") == 2
        assert value(samples, "gsf_agent_activities_total", activity="probe_fails", result="failed") == 1
        assert value(samples, "gsf_agent_activity_duration_seconds_count", activity="probe_ok") == 2
        assert value(samples, "gsf_agent_heartbeats_relayed_total", result="ok") == 2
        assert value(samples, "gsf_agent_heartbeats_relayed_total", result="not-found") == 1
        assert value(samples, "gsf_agent_heartbeats_relayed_total", result="error") == 2
        assert value(samples, "gsf_agent_node_memory_bytes", state="total") > 0
        assert 0 <= value(samples, "gsf_agent_node_cpu_percent") <= 100 * value(samples, "gsf_agent_node_cpus")
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{settings.agent_metrics_port}/other")).status_code == 404
    finally:
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server


async def test_agent_metrics_are_off_by_default(tmp_path: Path) -> None:
    metrics = AgentMetrics("node-1", lambda: 0)
    await asyncio.wait_for(metrics.serve(api_settings(tmp_path)), 1)  # returns at once: port 0
    assert metrics.port is None


PROBE_PIPELINE = """
name: metrics-probe
steps:
  - {type: noop, name: first}
  - {type: write_config, name: refused, params: {volume: gsf-test-unused, files: {"../escape": "x"}},
     retry: {maximum_attempts: 1}}
"""


@pytest.mark.docker
@pytest.mark.temporal
async def test_the_running_agent_serves_its_metrics(settings: Any, temporal_env: Any, docker_client: Any,
                                                     cleanup_docker: None) -> None:
    """The real agent: its metrics server is up, and the activities of a pipeline on its node
    (one succeeds, one is refused) are counted."""
    from tests.harness import platform

    port = reserve_port()
    async with platform(settings.model_copy(update={"agent_metrics_port": port}), temporal_env.client) as h:
        key = await h.user_key("ops@example.com", admin=True)
        async with h.api(key) as api:
            resp = await api.post("/api/v1/pipelines", json={"yaml": PROBE_PIPELINE, "node_id": settings.node_id})
            assert resp.status_code == 202, resp.text
            run_id = resp.json()["id"]
            for _ in range(300):
                run = (await api.get(f"/api/v1/pipelines/{run_id}")).json()
                if run["status"] in ("paused", "failed", "succeeded"):
                    break
                await asyncio.sleep(0.1)
            assert run["status"] == "paused", run
        samples = parse((await scrape(port)).text)
        assert value(samples, "gsf_agent_info", node_id=settings.node_id) == 1
        assert value(samples, "gsf_agent_containers_running") == 0
        assert value(samples, "gsf_agent_heartbeats_relayed_total", result="error") == 0, "present from the start"
        assert value(samples, "gsf_agent_activities_total", activity="step_noop", result="ok") == 1
        assert value(samples, "gsf_agent_activities_total", activity="write_config", result="failed") == 1
