"""The seam between the ARM simulator and the Kubernetes simulator.

ARM owns managed clusters and agent pools; when a pool reaches Succeeded (or is deleted) ARM tells
the Kubernetes side, which makes the pool's nodes appear (or disappear). listClusterUserCredential
asks the Kubernetes side how to reach a cluster, and returns that as a kubeconfig.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class PoolNodes:
    """What the Kubernetes side needs to know to simulate one agent pool's nodes."""

    pool_name: str
    vm_size: str
    count: int
    gpus_per_node: int
    """0 for CPU sizes; GPU nodes report `nvidia.com/gpu` once a device plugin tolerates them."""
    taints: tuple[str, ...] = ()
    """AKS form, e.g. 'sku=gpu:NoSchedule'; spot pools include the scalesetpriority taint."""
    labels: dict[str, str] = field(default_factory=dict)
    managed_gpu: bool = False
    """AKS-managed GPU stack: GPUs are allocatable at once, no device plugin needed."""
    zones: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClusterAccess:
    """How a client reaches one simulated cluster's API server."""

    server: str
    """HTTPS URL of the cluster's API (may include a path prefix)."""
    token: str
    """Bearer token the API server accepts for this cluster (local-account clusters)."""
    ca_path: str
    """PEM of the CA that signed the API server's certificate."""


class ClusterBackend(Protocol):
    """Implemented by the Kubernetes simulator; called by the ARM simulator."""

    def ensure_cluster(self, cluster_id: str, *, entra_id: bool = False) -> ClusterAccess:
        """Create the simulated cluster if new (idempotent); cluster_id is the ARM resource id.

        Local-account clusters accept `ClusterAccess.token`; Entra ID clusters (token "") accept
        the sandbox's Entra bearer token instead, as AKS accepts an Entra token for its server app.
        """
        ...

    def set_pool(self, cluster_id: str, pool: PoolNodes) -> None:
        """Make the pool's nodes exist as described (create, or reconcile count/labels)."""
        ...

    def remove_pool(self, cluster_id: str, pool_name: str) -> None:
        """Delete the pool's nodes (and evict their pods)."""
        ...

    def remove_cluster(self, cluster_id: str) -> None:
        """Forget the cluster and everything in it."""
        ...
