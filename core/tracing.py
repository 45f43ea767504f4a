"""OpenTelemetry tracing, when `GSF_OTEL_EXPORTER` asks for it: the process's tracer provider and the
Temporal interceptor that makes client calls, workflows and activities one trace."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from core.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from temporalio.client import Interceptor

# One provider per process, made on first use: every client `connect()` builds shares its exporter
# and batch thread. It is not installed as OpenTelemetry's global provider, so a library that traces
# on its own does not start sending spans nobody asked for.
_lock = threading.Lock()
_provider: TracerProvider | None = None


def _exporter(settings: Settings) -> SpanExporter:
    if settings.otel_exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=settings.otel_endpoint or None)


def configure(settings: Settings, exporter: SpanExporter | None = None) -> TracerProvider | None:
    """The process's tracer provider; None when tracing is off. `exporter` replaces the configured
    one and the provider made before it (tests hand in an in-memory exporter)."""
    global _provider
    if exporter is None and settings.otel_exporter == "none":
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    with _lock:
        if _provider is not None and exporter is None:
            return _provider
        resource = Resource.create({"service.name": settings.otel_service_name})
        old, _provider = _provider, TracerProvider(resource=resource)
        # Spans handed in by a test are checked right after the workflow ends: export them at once.
        _provider.add_span_processor(SimpleSpanProcessor(exporter) if exporter is not None
                                     else BatchSpanProcessor(_exporter(settings)))
        provider = _provider
    if old is not None:
        old.shutdown()
    return provider


def shutdown() -> None:
    """Flush and drop the provider (at process exit, or between tests)."""
    global _provider
    with _lock:
        old, _provider = _provider, None
    if old is not None:
        old.shutdown()


def temporal_interceptors(settings: Settings) -> list[Interceptor]:
    """`[TracingInterceptor]` for `Client.connect` when tracing is on, else `[]`. Workers built on
    that client take it too: a workflow started through it is traced down to its activities."""
    provider = configure(settings)
    if provider is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(tracer=provider.get_tracer("gsf.temporal"))]


def instrument_fastapi(app: Any, settings: Settings) -> bool:
    """Request spans for a FastAPI app when tracing is on and the instrumentation is installed."""
    provider = configure(settings)
    if provider is None:
        return False
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError:  # optional: Temporal spans do not need it
        return False
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="health,ready,metrics")
    return True
