"""deploy/prometheus/alerts.yml: well-formed rules, and every metric they name is really exported — checked by
scraping the API, the matchmaker, an agent and the control worker's Temporal SDK endpoint of a running platform."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest
import yaml
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.testing import WorkflowEnvironment

from cli.temporal_server import free_port
from core.platform_metrics import control_metrics_runtime
from core.settings import Settings
from tests import leaks
from tests.conftest import REPO, reserve_port
from tests.harness import platform

RULES_FILE = REPO / "deploy" / "prometheus" / "alerts.yml"
RULES: list[dict[str, Any]] = [r for g in yaml.safe_load(RULES_FILE.read_text())["groups"] for r in g["rules"]]
REQUIRED = {"GsfNodeOffline", "GsfAgentHeartbeatLag", "GsfDeploymentFailureRate", "GsfWorkflowTaskFailures",
            "GsfMatchmakerHeartbeatLag", "GsfWebhookBacklog", "GsfApi5xxRate"}
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "offset", "le", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions, keywords or labels."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values, regexes)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        if word.lower() in PROMQL_WORDS or text[match.end():].lstrip().startswith("("):
            continue
        names.add(word)
    return names


def exported_names(exposition: str) -> set[str]:
    """Sample names, and the names a family declares even before its first sample (labelled counters)."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "counter":
                names |= {name.removesuffix("_total") + "_total"}
            if kind == "histogram":
                names |= {name + "_bucket", name + "_sum", name + "_count"}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_the_rules_are_well_formed() -> None:
    names = [r["alert"] for r in RULES]
    assert len(names) == len(set(names)), "alert names are unique"
    assert set(names) >= REQUIRED
    for rule in RULES:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
        expr = rule["expr"]
        assert expr.count("(") == expr.count(")"), rule["alert"]
        assert expr.count("{") == expr.count("}"), rule["alert"]
        assert metric_names(expr), rule["alert"]
        assert all(n.startswith(("gsf_", "temporal_")) for n in metric_names(expr)), metric_names(expr)


def test_metric_names_are_read_from_expressions() -> None:
    expr = ('sum by (le) (rate(gsf_x_bucket{status=~"5..", a="b c"}[5m])) / on (node_id) group_left max '
            "without (instance) (gsf_y) > 0.5 and bool gsf_z offset 5m unless clamp_min(gsf_w, 1)")
    assert metric_names(expr) == {"gsf_x_bucket", "gsf_y", "gsf_z", "gsf_w"}


METRICS_TOKEN = "alerts-test-scrape"  # the API's and matchmaker's /metrics answer 404 without one


async def scrape(url: str) -> set[str]:
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert resp.status_code == 200, f"{url}: {resp.status_code} {resp.text[:200]}"
    return exported_names(resp.text)


def sdk_metrics_runtime(settings: Settings) -> tuple[Settings, Runtime]:
    """The SDK's Prometheus server binds its port itself (in Rust; it takes no socket), so a port
    taken between the choice and its bind is chosen again: retried, never assumed."""
    last: Exception | None = None
    for _ in range(5):
        s = settings.model_copy(update={"control_metrics_port": free_port()})
        try:
            return s, control_metrics_runtime(s)
        except ValueError as exc:  # "Failed starting Prometheus exporter: Address already in use"
            last = exc
    raise AssertionError(f"the SDK's metrics server never bound a port: {last}")


@pytest.mark.docker
@pytest.mark.temporal
async def test_every_metric_the_rules_use_is_exported(settings: Settings, temporal_env: WorkflowEnvironment,
                                                      runtime_images: str, cleanup_docker: None) -> None:
    s, runtime = sdk_metrics_runtime(settings.model_copy(update={"agent_metrics_port": reserve_port(),
                                                                         "metrics_token": METRICS_TOKEN}))
    # The control worker's client, on a runtime that serves the SDK's metrics (as `gsf control-worker` does).
    client = await Client.connect(temporal_env.client.service_client.config.target_host,
                                  data_converter=pydantic_data_converter, runtime=runtime)
    async with platform(s, client) as h:
        # A workflow task that fails (its input cannot be decoded): the failure counter gets its first sample.
        bad = await client.start_workflow("WebhookDeliveryWorkflow", {"not": "a delivery"},
                                          id=f"bad-input-{uuid.uuid4().hex[:8]}", task_queue=s.control_queue)
        control = f"http://127.0.0.1:{s.control_metrics_port}/metrics"
        for _ in range(100):
            if "temporal_workflow_task_execution_failed_total" in await scrape(control):
                break
            await asyncio.sleep(0.1)
        await bad.terminate("a deliberately broken input")
        assert (await bad.describe()).status == WorkflowExecutionStatus.TERMINATED
        exported = (await scrape(f"{s.public_api_url}/metrics") | await scrape(f"{s.matchmaker_url}/metrics")
                    | await scrape(f"http://127.0.0.1:{s.agent_metrics_port}/metrics") | await scrape(control))
        assert h.settings.node_id
    # The SDK's metrics server lives as long as its runtime: drop both, so it closes with this test.
    # The SDK's metrics server (Rust, in this process) has no shutdown: it closes when its Runtime is
    # collected, and the SDK's worker internals keep a reference past the test. It holds one port no
    # other server can be handed, so it is counted as the session's, not as this module's leak.
    leaks.keep_for_session(port=s.control_metrics_port)
    used = {name: rule["alert"] for rule in RULES for name in metric_names(rule["expr"])}
    missing = {name: alert for name, alert in used.items() if name not in exported}
    assert not missing, f"rules read metrics no process exports: {missing}"
