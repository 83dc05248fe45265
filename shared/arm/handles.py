"""A long-running ARM operation as it crosses into orchestration history: started, then polled.

`StartOnly` keeps the first answer of a `begin_*` call and reports it finished, so the SDK's
poller starts no thread; `started` turns that answer into an `OperationHandle` that
`check_operation` (shared/arm/operations.py) polls once per call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from azure.core.pipeline import PipelineResponse
from azure.core.polling import PollingMethod

from shared.errors import StepErrorWire, retry_after
from shared.wire import HistoryModel

JsonDict = dict[str, Any]
IN_PROGRESS_STATES = frozenset({"Creating", "Updating", "Scaling", "Upgrading", "Starting"})
"""provisioningStates of a resource with an operation of ours under way: wait, don't PUT."""
DELETING = "Deleting"


class OperationHandle(HistoryModel):
    """A started (or already finished) ARM operation; `check_operation` polls it once."""

    action: Literal["create", "delete"]
    resource_id: str
    subscription_id: str
    resource_group: str
    cluster_name: str
    pool_name: str | None = None
    """None for the cluster itself."""
    poll: Literal["none", "asyncOperation", "location", "resource"]
    """none: already done; asyncOperation/location: GET `operation_url`; resource: GET the
    resource's provisioningState (an operation this request started earlier)."""
    operation_url: str | None = None
    retry_after: int | None = None
    """Seconds ARM asked to wait before the first poll."""
    vm_size: str | None = None
    location: str | None = None

    @property
    def done(self) -> bool:
        return self.poll == "none"


class OperationStatus(HistoryModel):
    """One poll's answer: failures of the operation itself are classified in `error`."""

    state: Literal["InProgress", "Succeeded", "Failed"]
    retry_after: int | None = None
    error: StepErrorWire | None = None


class StartOnly(PollingMethod[None]):
    """Keeps the first answer of a long-running operation and reports it finished, so the SDK's
    LROPoller starts no polling thread; the operation is polled later with `check_operation`."""

    def __init__(self) -> None:
        self.status_code = 0
        self.headers: dict[str, str] = {}
        self.body: JsonDict | None = None

    def initialize(
        self,
        client: Any,
        initial_response: PipelineResponse[Any, Any],
        deserialization_callback: Callable[[Any], None],
    ) -> None:
        response = initial_response.http_response
        self.status_code = int(response.status_code)
        self.headers = dict(response.headers.items())
        text = response.text()
        self.body = json.loads(text) if text else None

    def run(self) -> None:
        """Nothing to wait for: polling is `check_operation`'s job."""

    def status(self) -> str:
        return "Started"

    def finished(self) -> bool:
        return True

    def resource(self) -> None:
        return None


def provisioning_state(resource: Mapping[str, Any]) -> str:
    return str((resource.get("properties") or {}).get("provisioningState") or "")


def started(base: OperationHandle, start: StartOnly) -> OperationHandle:
    """The handle of an operation ARM just accepted, from its first answer's headers."""
    headers = {name.lower(): value for name, value in start.headers.items()}
    if base.action == "delete" and start.status_code == 204:
        return base
    if headers.get("azure-asyncoperation"):
        poll: Literal["asyncOperation", "location", "resource"] = "asyncOperation"
        url: str | None = headers["azure-asyncoperation"]
    elif headers.get("location"):
        poll, url = "location", headers["location"]
    else:
        state = provisioning_state(start.body or {})
        if base.action == "create" and state == "Succeeded":
            return base
        poll, url = "resource", None
    return base.model_copy(
        update={"poll": poll, "operation_url": url, "retry_after": retry_after(headers)}
    )
