"""OpenTelemetry through the Temporal interceptor: a client from `connect()` traces a workflow from
its start down to its activities, as one trace, when an exporter is configured."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import pytest
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from temporalio.worker import Worker

    from core import tracing
    from core.settings import Settings
    from core.temporal import connect
    from tests.conftest import unique

pytestmark = [pytest.mark.temporal]


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@workflow.defn
class EchoWorkflow:
    """No signals, queries or updates: one activity call."""

    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(shout, text, start_to_close_timeout=timedelta(seconds=10))


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    yield InMemorySpanExporter()
    tracing.shutdown()


def test_tracing_is_off_by_default(tmp_path: Any) -> None:
    settings = Settings(env="test", data_dir=tmp_path)
    assert settings.otel_exporter == "none"
    assert tracing.configure(settings) is None
    assert tracing.temporal_interceptors(settings) == []


async def test_a_workflow_is_one_trace_from_client_to_activity(settings: Settings,
                                                               exporter: InMemorySpanExporter) -> None:
    settings = settings.model_copy(update={"otel_exporter": "console"})
    tracing.configure(settings, exporter)
    client = await connect(settings)
    queue = unique("tracing")
    async with Worker(client, task_queue=queue, workflows=[EchoWorkflow], activities=[shout]):
        result = await client.execute_workflow(EchoWorkflow.run, "hi", id=unique("trace"), task_queue=queue)
    assert result == "HI"
    spans = exporter.get_finished_spans()
    names = {span.name for span in spans}
    for expected in ("StartWorkflow:EchoWorkflow", "RunWorkflow:EchoWorkflow", "StartActivity:shout",
                     "RunActivity:shout"):
        assert expected in names, f"{expected} not among {sorted(names)}"
    assert len({span.context.trace_id for span in spans if span.context is not None}) == 1
    assert {span.resource.attributes["service.name"] for span in spans} == {"gsf"}


async def test_the_fastapi_app_gets_request_spans(tmp_path: Any, exporter: InMemorySpanExporter) -> None:
    import httpx
    from fastapi import FastAPI

    settings = Settings(env="test", data_dir=tmp_path, otel_exporter="console")
    tracing.configure(settings, exporter)
    app = FastAPI()

    @app.get("/api/v1/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    assert tracing.instrument_fastapi(app, settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api") as client:
        assert (await client.get("/api/v1/ping")).status_code == 200
    assert any(span.name == "GET /api/v1/ping" for span in exporter.get_finished_spans())
