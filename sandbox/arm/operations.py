"""Long-running operations: started by PUT/DELETE, polled through Azure-AsyncOperation/Location.

Status URLs are `.../providers/Microsoft.ContainerService/locations/{location}/operations/{id}`
and `.../operationresults/{id}` (spec 2026-08-01, AgentPoolsDelete example's `location` header).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sandbox.arm.model import ArmError, ArmTimings, Reply

CONTAINER_SERVICE = "Microsoft.ContainerService"
OPERATION_API_VERSION = "2016-03-30"

ClusterKey = tuple[str, str, str]


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


class Target(Protocol):
    """What an operation runs on: a managed cluster (or one of its pools)."""

    subscription: str
    resource_group: str
    name: str
    location: str


@dataclass
class Operation:
    id: str
    subscription: str
    location: str
    cluster_key: ClusterKey
    target: str
    """'managedClusters' or the lower-cased pool name."""
    action: str
    """create, update or delete."""
    pool_keys: tuple[str, ...]
    """Pools this operation provisions (a cluster PUT provisions its agentPoolProfiles)."""
    started: float
    due: float
    failure: tuple[str, str] | None = None
    status: str = "InProgress"

    def describe(self) -> str:
        noun = "managed cluster" if self.target == "managedClusters" else "agent pool"
        return f"{self.action} {noun}"


class Operations:
    """Every operation started, by id; one in progress per cluster at a time."""

    def __init__(self, timings: ArmTimings) -> None:
        self.timings = timings
        self.base_url = ""
        self._operations: dict[str, Operation] = {}

    def due(self, now: float) -> list[Operation]:
        """In-progress operations whose time is up, earliest first."""
        return sorted(
            (op for op in self._operations.values() if op.status == "InProgress" and op.due <= now),
            key=lambda op: op.due,
        )

    def cancel_for(self, key: ClusterKey) -> None:
        """The cluster is gone (its resource group was deleted): its operations end."""
        for op in self._operations.values():
            if op.cluster_key == key and op.status == "InProgress":
                op.status = "Canceled"

    def refuse_if_busy(self, key: ClusterKey) -> None:
        for op in self._operations.values():
            if op.cluster_key == key and op.status == "InProgress":
                raise ArmError(
                    409,
                    "OperationNotAllowed",
                    f"Operation is not allowed because there's an in progress {op.describe()} "
                    f"operation started at {iso(op.started)}. Please wait for it to finish "
                    "before starting a new operation.",
                )

    def start(
        self,
        cluster: Target,
        target: str,
        action: str,
        pool_keys: tuple[str, ...],
        now: float,
        seconds: float,
        failure: tuple[str, str] | None = None,
    ) -> Operation:
        op = Operation(
            id=str(uuid.uuid4()),
            subscription=cluster.subscription,
            location=cluster.location,
            cluster_key=(
                cluster.subscription.lower(),
                cluster.resource_group.lower(),
                cluster.name.lower(),
            ),
            target=target,
            action=action,
            pool_keys=pool_keys,
            started=now,
            due=now + seconds,
            failure=failure,
        )
        self._operations[op.id] = op
        return op

    def _operation_path(self, op: Operation, kind: str) -> str:
        return (
            f"/subscriptions/{op.subscription}/providers/{CONTAINER_SERVICE}"
            f"/locations/{op.location}/{kind}/{op.id}"
        )

    def _operations_url(self, op: Operation, kind: str) -> str:
        path = self._operation_path(op, kind)
        return f"{self.base_url}{path}?api-version={OPERATION_API_VERSION}"

    def headers(self, op: Operation, with_location: bool) -> dict[str, str]:
        headers = {
            "Azure-AsyncOperation": self._operations_url(op, "operations"),
            "Retry-After": str(self.timings.retry_after_seconds),
        }
        if with_location:
            headers["Location"] = self._operations_url(op, "operationresults")
        return headers

    def _get(self, sub: str, operation_id: str) -> Operation:
        op = self._operations.get(operation_id)
        if op is None or op.subscription.lower() != sub.lower():
            raise ArmError(404, "NotFound", f"Operation id '{operation_id}' not found.")
        return op

    def status(self, sub: str, operation_id: str, now: float) -> Reply:
        op = self._get(sub, operation_id)
        body: dict[str, Any] = {
            "id": self._operation_path(op, "operations"),
            "name": op.id,
            "status": op.status,
            "startTime": iso(op.started),
        }
        headers: dict[str, str] = {}
        if op.status == "InProgress":
            total = max(op.due - op.started, 1e-9)
            body["percentComplete"] = round(min(100.0, 100 * (now - op.started) / total), 1)
            headers["Retry-After"] = str(self.timings.retry_after_seconds)
        else:
            body["endTime"] = iso(op.due)
        if op.failure and op.status == "Failed":
            body["error"] = {"code": op.failure[0], "message": op.failure[1]}
        return Reply(200, body, headers)

    def result(self, sub: str, operation_id: str) -> Reply:
        op = self._get(sub, operation_id)
        if op.status == "InProgress":
            return Reply(
                202,
                None,
                {
                    "Location": self._operations_url(op, "operationresults"),
                    "Retry-After": str(self.timings.retry_after_seconds),
                },
            )
        if op.status == "Failed" and op.failure:
            raise ArmError(400, op.failure[0], op.failure[1])
        return Reply(204)
