"""Traces: one trace per request, one span per step, the ARM and Kubernetes calls beneath them.

A request's work is spread over many short activity invocations in many processes, so no span
can stay open for a step. Instead the ids are derived from the request: the trace id from the
request id, each step's span id from (request id, step, attempt). Activities open their spans as
children of their step's span id; the step's span itself is recorded when its final outcome is
published, with the step's real start time, under the request's root span, which is recorded with
the final `completed` or `failed` event. Every span carries the request id; none carries a
secret (the SDKs' spans hold URLs and status codes, never headers or bodies).

Export: Azure Monitor when APPLICATIONINSIGHTS_CONNECTION_STRING is set (the azure-monitor-
opentelemetry distro, identity-authenticated when APPLICATIONINSIGHTS_AUTHENTICATION_STRING says
so), the console when GPUPROV_TRACE_CONSOLE is true, else nothing (spans cost nothing then).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceFlags

from shared.events import STEP_STATUSES, Outcome
from shared.settings import current_settings

REQUEST_ID = "gpuprov.request_id"
STEP = "gpuprov.step"
ROOT_STEP = "request"
"""The name the request's root span is derived from (never a step's name)."""
TRACER_NAME = "gpuprov"
SERVICE = "gpuprov"
"""`service.name` of the spans this app records."""
_FINAL_STEP_STATUSES = frozenset(STEP_STATUSES) - {"started"}

_current_request: contextvars.ContextVar[str] = contextvars.ContextVar(
    "gpuprov_request", default=""
)
_fixed_ids: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "gpuprov_fixed_ids", default=None
)
_lock = threading.Lock()
_provider: TracerProvider | None = None


class _DerivedIds(RandomIdGenerator):
    """Random ids, except for the span being recorded for a step or a request (fixed ids)."""

    def generate_span_id(self) -> int:
        fixed = _fixed_ids.get()
        return fixed[1] if fixed else super().generate_span_id()

    def generate_trace_id(self) -> int:
        fixed = _fixed_ids.get()
        return fixed[0] if fixed else super().generate_trace_id()


def trace_id_for(request_id: str) -> int:
    return int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:16], "big") or 1


def span_id_for(request_id: str, step: str, attempt: int = 1) -> int:
    digest = hashlib.sha256(f"{request_id}\n{step}\n{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") or 1


def use_provider(provider: TracerProvider) -> None:
    """Trace into `provider` (tests, or a host that made its own); its ids become derived."""
    global _provider
    with _lock:
        provider.id_generator = _DerivedIds()
        _provider = provider


def reset() -> None:
    """Forget the provider (tests): the next activity configures from the environment again."""
    global _provider
    with _lock:
        _provider = None


def configure_from_environment() -> None:
    """Once per process: Azure Monitor, the console, or nothing, as the settings say."""
    global _provider
    with _lock:
        if _provider is not None:
            return
        settings = current_settings()
        if settings.appinsights_connection:
            from azure.monitor.opentelemetry import configure_azure_monitor

            options: dict[str, Any] = {
                "connection_string": settings.appinsights_connection,
                "logger_name": "shared",
            }
            if "AAD" in settings.appinsights_authentication:
                from azure.identity import ManagedIdentityCredential

                options["credential"] = ManagedIdentityCredential(
                    client_id=settings.azure_client_id or None
                )
            configure_azure_monitor(**options)
        elif settings.trace_console:
            from opentelemetry.sdk.resources import SERVICE_NAME, Resource
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

            # stderr, one line a span: stdout stays the command's own (progress, JSON lines)
            exporter = ConsoleSpanExporter(SERVICE, out=sys.stderr, formatter=span_line)
            console = TracerProvider(resource=Resource.create({SERVICE_NAME: SERVICE}))
            console.add_span_processor(SimpleSpanProcessor(exporter))
            trace.set_tracer_provider(console)
        else:
            return
        _tag_log_records()
        global_provider = trace.get_tracer_provider()
        if isinstance(global_provider, TracerProvider):
            global_provider.id_generator = _DerivedIds()
            _provider = global_provider
    _instrument_sdks()


def _instrument_sdks() -> None:
    """ARM calls (azure-core) and Kubernetes calls (urllib3) become child spans."""
    from azure.core.settings import settings as azure_settings
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

    azure_settings.tracing_implementation = "opentelemetry"
    instrumentor = URLLib3Instrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=_provider)


def span_line(span: ReadableSpan) -> str:
    """One span as one line: when, how long, its name and ids, the request's attributes."""
    context, parent = span.get_span_context(), span.parent
    start, end = span.start_time or 0, span.end_time or span.start_time or 0
    began = datetime.fromtimestamp(start / 1e9, tz=UTC).strftime("%H:%M:%S.%f")[:-3]
    attributes = span.attributes or {}
    ours = " ".join(f"{k}={v!s}" for k, v in attributes.items() if k.startswith("gpuprov."))
    service = str(span.resource.attributes.get("service.name", ""))
    line = (
        f"span {began} {(end - start) / 1e6:9.1f} ms  {span.name}  "
        f"trace={trace.format_trace_id(context.trace_id) if context else '-'} "
        f"span={trace.format_span_id(context.span_id) if context else '-'} "
        f"parent={trace.format_span_id(parent.span_id) if parent else '-'} "
        f"status={span.status.status_code.name} service={service} {ours}"
    )
    return line.rstrip() + "\n"


def _tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME, tracer_provider=_provider)


@contextlib.contextmanager
def activity_span(activity: str, request_id: str, step: str, attempt: int) -> Iterator[None]:
    """An activity's span, child of its step's span; the request id also tags every log
    record written meanwhile."""
    configure_from_environment()
    parent = SpanContext(
        trace_id=trace_id_for(request_id),
        span_id=span_id_for(request_id, step, attempt),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    context = trace.set_span_in_context(NonRecordingSpan(parent))
    token = _current_request.set(request_id)
    try:
        with _tracer().start_as_current_span(
            f"activity {activity}",
            context=context,
            kind=SpanKind.INTERNAL,
            attributes={REQUEST_ID: request_id, STEP: step},
        ):
            yield
    finally:
        _current_request.reset(token)


def record_outcome(outcome: Outcome) -> None:
    """Record a step's span when its final outcome is published, and the request's root span
    with the final event. Other outcomes record nothing."""
    configure_from_environment()
    if outcome.started_at is None:
        return
    request_id = outcome.request_id
    if outcome.step in ("completed", "failed"):
        name, span_id, parent = "provision " + request_id, span_id_for(request_id, ROOT_STEP), None
    elif outcome.status in _FINAL_STEP_STATUSES:
        name = outcome.step
        span_id = span_id_for(request_id, outcome.step, outcome.attempt)
        parent = SpanContext(
            trace_id=trace_id_for(request_id),
            span_id=span_id_for(request_id, ROOT_STEP),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    else:
        return
    context = trace.set_span_in_context(NonRecordingSpan(parent)) if parent else Context()
    attributes: dict[str, Any] = {
        REQUEST_ID: request_id,
        STEP: outcome.step,
        "gpuprov.status": outcome.status,
        "gpuprov.attempt": outcome.attempt,
    }
    if outcome.error is not None:
        attributes["gpuprov.error_code"] = outcome.error.code
    token = _fixed_ids.set((trace_id_for(request_id), span_id))
    try:
        span = _tracer().start_span(
            name, context=context, attributes=attributes, start_time=_nanos(outcome.started_at)
        )
    finally:
        _fixed_ids.reset(token)
    if outcome.status == "failed":
        span.set_status(Status(StatusCode.ERROR, outcome.message[:200]))
    span.end(end_time=_nanos(outcome.time))


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


def _tag_log_records() -> None:
    """Every log record gets `request_id` (empty outside an activity): exported with the
    record, so a request's logs can be found by its id."""
    make_record = logging.getLogRecordFactory()

    def tagged(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        record.request_id = _current_request.get()
        return record

    logging.setLogRecordFactory(tagged)
