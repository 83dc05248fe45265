"""The GPU agent pool: its body for one capacity candidate, the candidates, and its SDK calls.

Custom headers are not part of the body: they go on the pool's PUT as HTTP headers. A pool of
this request left with another size or zones is not changed in place (AKS cannot): the step
deletes it before the next candidate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import AgentPool as AgentPoolModel
from pydantic import Field

from shared.arm.handles import JsonDict, StartOnly
from shared.arm.reconcile import Resource
from shared.errors import StepError
from shared.ownership import REQUEST_ID_LABEL, Ownership
from shared.request import ProvisionRequest
from shared.wire import HistoryModel


class Candidate(HistoryModel):
    """One capacity try for the GPU pool: a VM size and the zones to ask for."""

    vm_size: str
    zones: list[str] = Field(default_factory=list)


def candidates(request: ProvisionRequest) -> list[Candidate]:
    """The pool's capacity tries, in order; the step moves on after a capacity error.

    Each size (nodePool.vmSize, then alternativeVmSizes) is tried first with all requested zones,
    then, when several were requested, with each zone alone. No zones: one regional try per size.
    """
    pool = request.node_pool
    tries: list[Candidate] = []
    for size in [pool.vm_size, *pool.alternative_vm_sizes]:
        zones: list[str] = list(pool.zones)
        tries.append(Candidate(vm_size=size, zones=zones))
        if len(zones) > 1:
            tries.extend(Candidate(vm_size=size, zones=[zone]) for zone in zones)
    return tries


@dataclass(frozen=True)
class AgentPool(Resource):
    pool: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    """The request's custom headers, sent on the PUT."""

    kind: ClassVar[str] = "Agent pool"

    @classmethod
    def of(
        cls,
        request: ProvisionRequest,
        owner: str,
        candidate: Candidate | None = None,
        now: datetime | None = None,
    ) -> AgentPool:
        """The request's GPU pool; with a candidate and `now`, the body to create it with."""
        desired: JsonDict = {}
        if candidate is not None and now is not None:
            zones = tuple(candidate.zones)
            desired = pool_body(request, candidate.vm_size, zones, owner, now)
        return cls(
            subscription_id=request.subscription_id,
            resource_group=request.resource_group,
            cluster_name=request.target.cluster_name,
            ownership=Ownership(owner=owner, request_id=request.request_id),
            desired=desired,
            vm_size=candidate.vm_size if candidate is not None else None,
            location=request.location if candidate is not None else None,
            pool=request.node_pool.name,
            headers=dict(request.node_pool.custom_headers),
        )

    @property
    def pool_name(self) -> str:
        return self.pool

    @property
    def resource_id(self) -> str:
        return f"{self.cluster_id}/agentPools/{self.pool}"

    def describe(self) -> str:
        return f"{self.kind} {self.pool} of cluster {self.cluster_name}"

    def tags(self, existing: JsonDict) -> object:
        return (existing.get("properties") or {}).get("tags")

    def conflict(self, existing: JsonDict) -> StepError | None:
        have = existing.get("properties") or {}
        want = self.desired.get("properties") or {}
        same = str(have.get("vmSize", "")).lower() == str(want.get("vmSize")).lower() and sorted(
            have.get("availabilityZones") or []
        ) == sorted(want.get("availabilityZones") or [])
        if same:
            return None
        return StepError(
            "permanent",
            "PoolHasOtherSize",
            f"Agent pool {self.pool} exists with VM size {have.get('vmSize')} and "
            f"zones {have.get('availabilityZones') or []}.",
            "AKS cannot change a pool's size or zones: delete the pool, then create it "
            "with the next candidate.",
        )

    def read(self, aks: ContainerServiceClient) -> JsonDict:
        found = aks.agent_pools.get(self.resource_group, self.cluster_name, self.pool)
        answer: JsonDict = found.as_dict()
        return answer

    def begin_put(self, aks: ContainerServiceClient, polling: StartOnly) -> None:
        aks.agent_pools.begin_create_or_update(
            self.resource_group,
            self.cluster_name,
            self.pool,
            AgentPoolModel(self.desired),
            headers=dict(self.headers),
            polling=polling,
        )

    def begin_delete(self, aks: ContainerServiceClient, polling: StartOnly) -> None:
        aks.agent_pools.begin_delete(
            self.resource_group, self.cluster_name, self.pool, polling=polling
        )


def pool_body(
    request: ProvisionRequest,
    vm_size: str,
    zones: Sequence[str],
    owner: str,
    now: datetime,
) -> JsonDict:
    """The GPU agent pool for one capacity candidate (`vm_size`, `zones`)."""
    pool = request.node_pool
    properties: JsonDict = {
        "count": pool.node_count,
        "vmSize": vm_size,
        "mode": "User",
        "osType": "Linux",
        "nodeTaints": list(pool.taints),
        "nodeLabels": {**pool.labels, REQUEST_ID_LABEL: request.request_id},
        "gpuProfile": {"driver": pool.gpu_driver},
        "tags": Ownership(owner, request.request_id).tags(now, request.cleanup.ttl_hours),
    }
    if pool.managed_gpu:
        properties["gpuProfile"]["nvidia"] = {"managementMode": "Managed"}
    if zones:
        properties["availabilityZones"] = list(zones)
    if pool.spot is not None:
        properties["scaleSetPriority"] = "Spot"
        properties["scaleSetEvictionPolicy"] = "Delete"
        properties["spotMaxPrice"] = pool.spot.max_price
    if pool.mig_profile is not None:
        properties["gpuInstanceProfile"] = pool.mig_profile
    if pool.os_disk_size_gb is not None:
        properties["osDiskSizeGB"] = pool.os_disk_size_gb
    return {"properties": properties}
