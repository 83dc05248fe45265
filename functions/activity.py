"""What every activity shares: its typed input, the adapter it works with, its answer.

Each activity does one step operation (at least once, so each is idempotent) and answers a
`StepAnswer` as JSON: a classified failure comes back as data, so the orchestrator decides from
kind and code alone. An activity's input is a TypedDict of its own, validated here with pydantic
on the way in. Credentials are fetched inside the activity and never returned: nothing secret
enters orchestration history. shared/ is imported inside the calls, never at app start.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from typing_extensions import TypedDict

if TYPE_CHECKING:
    from shared.arm import ArmAdapter
    from shared.errors import StepError
    from shared.kube import KubeAdapter
    from shared.request import ProvisionRequest
    from shared.sequence import StepAnswer
    from shared.wire import HistoryModel

    Result = StepAnswer | HistoryModel

Answer = dict[str, Any]
In = TypeVar("In")
C = TypeVar("C")


class NoInput(TypedDict):
    """An activity that needs nothing but the request."""


class Started(TypedDict):
    """An activity that starts an ARM operation: when the orchestrator started it."""

    now: str


def when(started: Started) -> datetime:
    return datetime.fromisoformat(started["now"])


def dump(model: HistoryModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)


@contextmanager
def arm_adapter() -> Iterator[ArmAdapter]:
    from shared.arm import ArmAdapter  # SDKs load in activities only, never at app start
    from shared.settings import current_settings

    with ArmAdapter(current_settings()) as adapter:
        yield adapter


@contextmanager
def kube_adapter(request: ProvisionRequest) -> Iterator[KubeAdapter]:
    """A Kubernetes adapter for the request's cluster, with this worker's cached credentials;
    a failure forgets them, so the retry fetches fresh ones."""
    from shared.credentials import cluster_credentials
    from shared.errors import StepError
    from shared.kube import KubeAdapter
    from shared.settings import current_settings

    settings = current_settings()
    key = (
        settings.arm_endpoint,
        request.subscription_id,
        request.resource_group.lower(),
        request.target.cluster_name.lower(),
    )

    def fetch() -> Any:
        with arm_adapter() as arm:
            return arm.cluster_credentials(request)

    credentials = cluster_credentials.get(key, fetch)
    try:
        with KubeAdapter(credentials, owner=settings.owner) as adapter:
            yield adapter
    except StepError:
        cluster_credentials.forget(key)
        raise


Operation = Callable[[C, "ProvisionRequest", In], "Result"]


def on_arm(payload: Any, shape: type[In], operation: Operation[ArmAdapter, In]) -> Answer:
    """Run one operation with an ARM adapter; its answer (or classified failure) as JSON."""

    def work(request: ProvisionRequest, data: In) -> Result:
        with arm_adapter() as arm:
            return operation(arm, request, data)

    return _traced(payload, shape, operation, work)


def on_cluster(payload: Any, shape: type[In], operation: Operation[KubeAdapter, In]) -> Answer:
    """Run one operation with a Kubernetes adapter for the request's cluster."""

    def work(request: ProvisionRequest, data: In) -> Result:
        with kube_adapter(request) as kube:
            return operation(kube, request, data)

    return _traced(payload, shape, operation, work)


def _while_roles_propagate(error: StepError) -> StepError:
    """Soon after `azd provision` assigned the roles, AuthorizationFailed is retried (by the
    wall clock: role propagation happens in Azure's time, not the orchestration's)."""
    from datetime import UTC

    from shared.errors import while_roles_propagate
    from shared.settings import current_settings

    assigned_at = current_settings().roles_assigned_at
    return while_roles_propagate(error, assigned_at, datetime.now(UTC))


def decode(payload: Any) -> dict[str, Any]:
    """The worker passes activity input JSON-decoded; a JSON string is accepted too."""
    value = json.loads(payload) if isinstance(payload, str) else payload
    if not isinstance(value, dict):
        raise TypeError(f"activity input must be a JSON object, got {type(value).__name__}")
    return value


def _traced(
    payload: Any,
    shape: type[In],
    operation: Callable[..., Any],
    work: Callable[[ProvisionRequest, In], Result],
) -> Answer:
    """The answer, worked out inside the activity's span (a child of its step's span)."""
    from pydantic import TypeAdapter

    from shared.errors import StepError
    from shared.request import ProvisionRequest
    from shared.sequence import StepAnswer
    from shared.telemetry import activity_span

    raw = decode(payload)
    where = raw.get("trace") or {}
    request_id = str((raw.get("request") or {}).get("requestId", ""))
    name = operation.__qualname__.split(".")[0]  # the activity function the operation is in
    with activity_span(name, request_id, str(where.get("step", "request")),
                       int(where.get("attempt", 1))):  # fmt: skip
        try:
            request = ProvisionRequest.model_validate(raw["request"])
            result = work(request, TypeAdapter(shape).validate_python(raw))
        except StepError as error:
            error = _while_roles_propagate(error)
            answer = StepAnswer(error=error.to_wire(), retry_after=error.retry_after)
        else:
            answer = result if isinstance(result, StepAnswer) else StepAnswer(value=dump(result))
        return answer.model_dump(mode="json", by_alias=True)
