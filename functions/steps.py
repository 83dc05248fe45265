"""The activities' implementation (functions/activities.py registers them by these names).

Each does one step operation (at least once, so each is idempotent).

Every activity answers a `StepAnswer` as JSON: a classified failure comes back as data, so the
orchestrator decides from kind and code alone. Credentials are fetched here, inside the activity,
and never returned: nothing secret enters orchestration history.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from shared.errors import StepError
from shared.request import ProvisionRequest
from shared.sequence import StepAnswer
from shared.settings import current_settings
from shared.wire import HistoryModel

Payload = dict[str, Any]


def _payload(raw: Any) -> Payload:
    """The worker passes activity input JSON-decoded; a JSON string is accepted too."""
    value = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, dict):
        raise TypeError(f"activity input must be a JSON object, got {type(value).__name__}")
    return value


def _request(payload: Payload) -> ProvisionRequest:
    return ProvisionRequest.model_validate(payload["request"])


def _answer(work: Callable[[], StepAnswer | HistoryModel]) -> dict[str, Any]:
    try:
        result = work()
    except StepError as error:
        answer = StepAnswer(error=error.to_wire(), retry_after=error.retry_after)
    else:
        answer = result if isinstance(result, StepAnswer) else StepAnswer(value=_dump(result))
    return answer.model_dump(mode="json", by_alias=True)


def _dump(model: HistoryModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)


@contextmanager
def _arm() -> Iterator[Any]:
    from shared.arm import ArmAdapter  # SDKs load in activities only, never at app start

    with ArmAdapter(current_settings()) as adapter:
        yield adapter


@contextmanager
def _kube(request: ProvisionRequest) -> Iterator[Any]:
    """A Kubernetes adapter for the request's cluster, with this worker's cached credentials;
    a failure forgets them, so the retry fetches fresh ones."""
    from shared.credentials import cluster_credentials
    from shared.kube import KubeAdapter

    key = (
        current_settings().arm_endpoint,
        request.subscription_id,
        request.resource_group.lower(),
        request.target.cluster_name.lower(),
    )

    def fetch() -> Any:
        with _arm() as arm:
            return arm.cluster_credentials(request)

    credentials = cluster_credentials.get(key, fetch)
    try:
        with KubeAdapter(credentials) as adapter:
            yield adapter
    except StepError:
        cluster_credentials.forget(key)
        raise


Operation = Callable[[Any, ProvisionRequest, Payload], StepAnswer | HistoryModel]


def _on_arm(payload: Any, operation: Operation) -> dict[str, Any]:
    """Run one operation with an ARM adapter; its answer (or classified failure) as JSON."""
    data = _payload(payload)

    def work() -> StepAnswer | HistoryModel:
        with _arm() as arm:
            return operation(arm, _request(data), data)

    return _traced(operation, data, work)


def _on_cluster(payload: Any, operation: Operation) -> dict[str, Any]:
    """Run one operation with a Kubernetes adapter for the request's cluster."""
    data = _payload(payload)

    def work() -> StepAnswer | HistoryModel:
        request = _request(data)
        with _kube(request) as kube:
            return operation(kube, request, data)

    return _traced(operation, data, work)


def _traced(
    operation: Operation, data: Payload, work: Callable[[], StepAnswer | HistoryModel]
) -> dict[str, Any]:
    """The answer, worked out inside the activity's span (a child of its step's span)."""
    from shared.telemetry import activity_span

    where = data.get("trace") or {}
    request_id = str((data.get("request") or {}).get("requestId", ""))
    name = operation.__qualname__.split(".")[0]  # the activity function the operation is in
    with activity_span(name, request_id, str(where.get("step", "request")),
                       int(where.get("attempt", 1))):  # fmt: skip
        return _answer(work)


def _now(data: Payload) -> datetime:
    return datetime.fromisoformat(data["now"])


# -- ARM ---------------------------------------------------------------------------------------


def register_features(payload: Any) -> dict[str, Any]:
    def register(arm: Any, request: ProvisionRequest, data: Payload) -> StepAnswer:
        from shared.arm import FeatureRegistration

        previous = data.get("previous")
        report = arm.register_features(
            request.subscription_id,
            request.preview_features,
            FeatureRegistration.model_validate(previous) if previous else None,
        )
        return StepAnswer(value=_dump(report), done=report.done)

    return _on_arm(payload, register)


def start_create_cluster(payload: Any) -> dict[str, Any]:
    return _on_arm(
        payload, lambda arm, request, data: arm.start_create_cluster(request, _now(data))
    )


def start_create_node_pool(payload: Any) -> dict[str, Any]:
    return _on_arm(
        payload,
        lambda arm, request, data: arm.start_create_pool(
            request, data["vmSize"], data["zones"], _now(data)
        ),
    )


def start_delete_node_pool(payload: Any) -> dict[str, Any]:
    return _on_arm(
        payload, lambda arm, request, _: arm.start_delete_pool(request, request.node_pool.name)
    )


def start_delete_cluster(payload: Any) -> dict[str, Any]:
    return _on_arm(payload, lambda arm, request, _: arm.start_delete_cluster(request))


def check_operation(payload: Any) -> dict[str, Any]:
    def check(arm: Any, request: ProvisionRequest, data: Payload) -> StepAnswer:
        from shared.arm import OperationHandle

        handle = OperationHandle.model_validate(data["handle"])
        if handle.done:
            return StepAnswer(value={"state": "Succeeded"}, done=True)
        status = arm.check_operation(handle)
        return StepAnswer(
            value=_dump(status),
            error=status.error,
            done=status.state != "InProgress",
            retry_after=status.retry_after,
        )

    return _on_arm(payload, check)


# -- Kubernetes --------------------------------------------------------------------------------


def install_device_plugin(payload: Any) -> dict[str, Any]:
    return _on_cluster(payload, lambda kube, request, _: kube.install_device_plugin(request))


def check_device_plugin(payload: Any) -> dict[str, Any]:
    def check(kube: Any, request: ProvisionRequest, _: Payload) -> StepAnswer:
        status = kube.device_plugin_status(request)
        return StepAnswer(value=_dump(status), done=status.ready)

    return _on_cluster(payload, check)


def check_gpus(payload: Any) -> dict[str, Any]:
    def check(kube: Any, request: ProvisionRequest, data: Payload) -> StepAnswer:
        status = kube.gpu_status(request, data["vmSize"])
        return StepAnswer(value=_dump(status), done=status.ready)

    return _on_cluster(payload, check)


def start_job(payload: Any) -> dict[str, Any]:
    return _on_cluster(payload, lambda kube, request, data: kube.start_job(request, data["vmSize"]))


def check_job(payload: Any) -> dict[str, Any]:
    """Done when the job ended, or can never run (unschedulable is reported, not waited on)."""

    def check(kube: Any, request: ProvisionRequest, _: Payload) -> StepAnswer:
        status = kube.job_status(request)
        ended = status.state in ("succeeded", "failed", "pending-unschedulable", "not-found")
        return StepAnswer(value=_dump(status), done=ended)

    return _on_cluster(payload, check)


def collect_job_log(payload: Any) -> dict[str, Any]:
    """The pod log's tail (capped) and what the job reported in it."""

    def collect(kube: Any, request: ProvisionRequest, _: Payload) -> StepAnswer:
        from shared.job_result import parse_job_result

        tail = kube.job_log_tail(request, current_settings().job_log_tail_bytes)
        result = parse_job_result(tail.text)
        return StepAnswer(value={"log": _dump(tail), "result": _dump(result) if result else None})

    return _on_cluster(payload, collect)


def delete_job(payload: Any) -> dict[str, Any]:
    return _on_cluster(payload, lambda kube, request, _: kube.delete_job(request))


# -- events ------------------------------------------------------------------------------------


def publish_event(payload: Any) -> str:
    """Publish one step outcome; a failure raises so the activity is retried (ids dedupe)."""
    from shared.events import Outcome, event_publisher
    from shared.telemetry import activity_span, record_outcome

    outcome = Outcome.model_validate(_payload(payload))
    with activity_span("publish_event", outcome.request_id, outcome.step, outcome.attempt):
        event_id = event_publisher(current_settings()).publish(outcome)
    record_outcome(outcome)
    return event_id
