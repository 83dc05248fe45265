"""The one reconcile routine for every Azure resource (CAPZ's spec + async reconcile).

A resource module supplies a `Resource`: where it is, who owns it, the body it should have and
the SDK calls that read, PUT and DELETE it. `create` and `delete` do the rest, the same way for
every kind: GET → ownership → matches → PUT, or GET → ownership → DELETE (404 is done), and
answer an `OperationHandle` without waiting for the operation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.containerservice import ContainerServiceClient

from shared.arm.compare import matches
from shared.arm.handles import (
    DELETING,
    IN_PROGRESS_STATES,
    JsonDict,
    OperationHandle,
    StartOnly,
    provisioning_state,
    started,
)
from shared.errors import StepError, classified
from shared.ownership import Ownership, not_owned


@dataclass(frozen=True)
class Resource(ABC):
    """One Azure resource as the reconcile routine sees it; subclasses add its SDK calls."""

    subscription_id: str
    resource_group: str
    cluster_name: str
    ownership: Ownership
    desired: JsonDict = field(default_factory=dict)
    """The body to PUT (camelCase ARM JSON); empty for a resource only deleted."""
    vm_size: str | None = None
    """Makes the hints of capacity and quota errors exact."""
    location: str | None = None

    kind: ClassVar[str]
    """How messages name the resource kind: "Managed cluster", "Agent pool"."""

    @property
    def cluster_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.ContainerService/managedClusters/{self.cluster_name}"
        )

    @property
    def pool_name(self) -> str | None:
        return None

    @property
    def resource_id(self) -> str:
        return self.cluster_id

    def describe(self) -> str:
        return f"{self.kind} {self.cluster_name}"

    def handle(self, action: Literal["create", "delete"]) -> OperationHandle:
        """A finished operation on this resource; `started` fills in how to poll a real one."""
        return OperationHandle(
            action=action,
            resource_id=self.resource_id,
            subscription_id=self.subscription_id,
            resource_group=self.resource_group,
            cluster_name=self.cluster_name,
            pool_name=self.pool_name,
            poll="none",
            vm_size=self.vm_size,
            location=self.location,
        )

    def tags(self, existing: JsonDict) -> Any:
        return existing.get("tags")

    def conflict(self, existing: JsonDict) -> StepError | None:
        """Why an owned resource that does not match cannot be PUT over (None: it can)."""
        return None

    @abstractmethod
    def read(self, aks: ContainerServiceClient) -> JsonDict:
        """GET it as camelCase JSON (ResourceNotFoundError when it is not there)."""

    @abstractmethod
    def begin_put(self, aks: ContainerServiceClient, polling: StartOnly) -> None: ...

    @abstractmethod
    def begin_delete(self, aks: ContainerServiceClient, polling: StartOnly) -> None: ...


def read(aks: ContainerServiceClient, resource: Resource) -> JsonDict | None:
    """The resource, or None when ARM answers 404 (a missing parent cluster included)."""
    with classified():
        try:
            return resource.read(aks)
        except ResourceNotFoundError:
            return None


def _owned(resource: Resource, existing: JsonDict) -> None:
    tags = resource.tags(existing)
    if not resource.ownership.owns(tags if isinstance(tags, dict) else None):
        raise not_owned(resource.describe(), resource.ownership)


def create(aks: ContainerServiceClient, resource: Resource) -> OperationHandle:
    """Start creating the resource unless it exists as desired or is being made already."""
    base = resource.handle("create")
    existing = read(aks, resource)
    if existing is not None:
        _owned(resource, existing)
        state = provisioning_state(existing)
        if state in IN_PROGRESS_STATES:
            return base.model_copy(update={"poll": "resource"})
        if state == "Succeeded" and matches(existing, resource.desired):
            return base
        conflict = resource.conflict(existing)
        if conflict is not None:
            raise conflict
    start = StartOnly()
    with classified(vm_size=resource.vm_size, location=resource.location):
        resource.begin_put(aks, start)
    return started(base, start)


def delete(aks: ContainerServiceClient, resource: Resource) -> OperationHandle:
    """Start deleting the resource if it is ours; gone (or going) already is done."""
    base = resource.handle("delete")
    existing = read(aks, resource)
    if existing is None:
        return base
    _owned(resource, existing)
    if provisioning_state(existing) == DELETING:
        return base.model_copy(update={"poll": "resource"})
    start = StartOnly()
    with classified():
        try:
            resource.begin_delete(aks, start)
        except ResourceNotFoundError:
            return base
    return started(base, start)
