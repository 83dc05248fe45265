"""The managed cluster a `newCluster` request creates: its body, and its SDK calls.

The cluster gets its system pool only: the GPU pool is added by its own PUT (shared/arm/pool.py),
so the request's custom headers apply to the GPU pool alone. An `existingCluster` target is
never created or deleted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import ManagedCluster as ManagedClusterModel

from shared.arm.handles import JsonDict, StartOnly
from shared.arm.reconcile import Resource
from shared.errors import StepError
from shared.ownership import Ownership
from shared.request import NewCluster, ProvisionRequest

SYSTEM_POOL_NAME = "system"
DNS_PREFIX_MAX = 54


@dataclass(frozen=True)
class ManagedCluster(Resource):
    kind: ClassVar[str] = "Managed cluster"

    @classmethod
    def of(
        cls, request: ProvisionRequest, owner: str, now: datetime | None = None
    ) -> ManagedCluster:
        """The request's new cluster; with `now`, the body to create it with."""
        target = new_cluster(request)
        return cls(
            subscription_id=request.subscription_id,
            resource_group=request.resource_group,
            cluster_name=target.cluster_name,
            ownership=Ownership(owner=owner, request_id=request.request_id),
            desired=cluster_body(request, owner, now) if now is not None else {},
            location=request.location,
        )

    def read(self, aks: ContainerServiceClient) -> JsonDict:
        found: JsonDict = aks.managed_clusters.get(self.resource_group, self.cluster_name).as_dict()
        return found

    def begin_put(self, aks: ContainerServiceClient, polling: StartOnly) -> None:
        aks.managed_clusters.begin_create_or_update(
            self.resource_group,
            self.cluster_name,
            ManagedClusterModel(self.desired),
            polling=polling,
        )

    def begin_delete(self, aks: ContainerServiceClient, polling: StartOnly) -> None:
        aks.managed_clusters.begin_delete(self.resource_group, self.cluster_name, polling=polling)


def new_cluster(request: ProvisionRequest) -> NewCluster:
    if not isinstance(request.target, NewCluster):
        raise StepError(
            "permanent",
            "NotANewCluster",
            f"Cluster {request.target.cluster_name} was not created by the provisioner.",
            "Only a newCluster target's cluster is created or deleted; an existing cluster is "
            "left as it is.",
        )
    return request.target


def dns_prefix(cluster_name: str) -> str:
    """AKS dnsPrefix from the cluster name: letters, digits and hyphens, at most 54 characters."""
    return re.sub(r"[^A-Za-z0-9-]", "-", cluster_name)[:DNS_PREFIX_MAX].strip("-").lower()


def cluster_body(request: ProvisionRequest, owner: str, now: datetime) -> JsonDict:
    """A new cluster with its system pool only."""
    target = request.target
    if not isinstance(target, NewCluster):
        raise ValueError("only a newCluster target has a cluster body")
    tags = Ownership(owner, request.request_id).tags(now, request.cleanup.ttl_hours)
    properties: JsonDict = {
        "dnsPrefix": dns_prefix(target.cluster_name),
        "agentPoolProfiles": [
            {
                "name": SYSTEM_POOL_NAME,
                "count": target.system_node_count,
                "vmSize": target.system_node_vm_size,
                "mode": "System",
                "osType": "Linux",
                "type": "VirtualMachineScaleSets",
                "tags": tags,
            }
        ],
    }
    if target.kubernetes_version is not None:
        properties["kubernetesVersion"] = target.kubernetes_version
    if target.entra_id:
        properties["aadProfile"] = {"managed": True, "enableAzureRBAC": True}
        properties["disableLocalAccounts"] = True
    return {
        "location": request.location,
        "tags": tags,
        "identity": {"type": "SystemAssigned"},
        "properties": properties,
    }
