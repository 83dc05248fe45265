"""Traces of a sandbox run: one trace per request, a span per step, the cloud calls beneath.

Covers: every span of a run in the request's one trace; a span per step that ran, each a child
of the request's root span and tagged with the request id; ARM calls (azure-core) and
Kubernetes calls (urllib3) as descendants of the step that made them; the publishing of events
inside the trace too; and no bearer token, kubeconfig or key in any span.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.core.settings import settings as azure_settings
from opentelemetry import trace
from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import telemetry
from tests.orchestration.conftest import World
from tests.orchestration.test_sequence import SEED
from tests.sandbox_fixtures import SANDBOX_TOKEN

_exporter = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans go to memory: the process's tracer provider is set once, the SDKs instrumented
    for this test only."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        made = TracerProvider()
        made.add_span_processor(SimpleSpanProcessor(_exporter))
        trace.set_tracer_provider(made)
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    telemetry.use_provider(provider)
    azure_settings.tracing_implementation = "opentelemetry"
    URLLib3Instrumentor().instrument(tracer_provider=provider)
    _exporter.clear()
    try:
        yield _exporter
    finally:
        URLLib3Instrumentor().uninstrument()
        azure_settings.tracing_implementation = None
        telemetry.reset()
        _exporter.clear()


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        above = by_id[parent.span_id]
        names.append(above.name)
        parent = above.parent
    return names


def test_a_run_is_one_trace_with_a_span_per_step(world: World, spans: InMemorySpanExporter) -> None:
    instance = world.start(SEED)
    status = world.host.wait_for_completion(instance, timeout=120)
    assert status.output["status"] == "completed", status.output

    finished = spans.get_finished_spans()
    request_id = SEED["requestId"]
    assert {s.context.trace_id for s in finished} == {telemetry.trace_id_for(request_id)}
    by_id = {s.context.span_id: s for s in finished}
    (root,) = [s for s in finished if s.parent is None]
    assert root.name == f"provision {request_id}"
    steps = [
        s for s in finished if s.parent is not None and s.parent.span_id == root.context.span_id
    ]
    assert [s.name for s in sorted(steps, key=lambda s: s.start_time or 0)] == [
        "preflight", "register-features", "create-cluster", "create-node-pool",
        "install-device-plugin", "verify-gpus", "run-job", "cleanup",
    ]  # fmt: skip
    assert all(s.attributes and s.attributes["gpuprov.request_id"] == request_id for s in steps)
    create = next(s for s in steps if s.name == "create-cluster")
    assert create.end_time is not None
    assert create.start_time is not None
    assert (create.end_time - create.start_time) / 1e9 >= 60  # a simulated ten-minute creation

    def calls_under(step: str, marker: str) -> list[ReadableSpan]:
        return [s for s in finished if step in _ancestors(s, by_id) and marker in _url(s)]

    assert calls_under("create-cluster", "/managedClusters/myAKSCluster")
    assert calls_under("run-job", "/apis/batch/v1/namespaces/")
    assert any(s.name.startswith("activity publish_events") for s in finished)
    text = repr([(s.name, dict(s.attributes or {}), [e.attributes for e in s.events])
                 for s in finished])  # fmt: skip
    for secret in (SANDBOX_TOKEN, "Bearer", "client-key-data", "SharedAccessKey"):
        assert secret not in text


def _url(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    return str(attributes.get("url.full") or attributes.get("http.url") or "")
