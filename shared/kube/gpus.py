"""The pool's GPUs: `nvidia.com/gpu` allocatable on each node against its VM size's GPU count."""

from __future__ import annotations

from shared.catalog import lookup
from shared.errors import StepError
from shared.kube.client import AGENTPOOL_LABEL, KubeClient, count, is_true, name_of
from shared.request import ProvisionRequest
from shared.wire import HistoryModel

GPU_RESOURCE = "nvidia.com/gpu"


class NodeGpus(HistoryModel):
    """One node of the pool: the GPUs the kubelet advertises as allocatable."""

    name: str
    allocatable: int
    node_ready: bool


class GpuStatus(HistoryModel):
    """The pool's schedulable GPUs against what its VM size and node count promise."""

    pool: str
    expected_nodes: int
    expected_gpus_per_node: int
    nodes: list[NodeGpus]
    ready: bool


class Gpus(KubeClient):
    """The GPU check."""

    def gpu_status(self, request: ProvisionRequest, vm_size: str) -> GpuStatus:
        """`nvidia.com/gpu` allocatable on each node of the pool against its VM size's GPUs."""
        size = lookup(vm_size)
        if size is None:
            raise StepError("permanent", "UnknownVmSize", f"{vm_size} is not a known GPU VM size")
        pool = request.node_pool.name
        with self._errors(f"list nodes of pool {pool}"):
            nodes = self._items(self._core.list_node, label_selector=f"{AGENTPOOL_LABEL}={pool}")
        counts = [
            NodeGpus(
                name=name_of(node),
                allocatable=count(
                    ((node.get("status") or {}).get("allocatable") or {}).get(GPU_RESOURCE)
                ),
                node_ready=is_true(node, "Ready"),
            )
            for node in sorted(nodes, key=name_of)
        ]
        ready = len(counts) >= request.node_pool.node_count and all(
            node.node_ready and node.allocatable >= size.gpus for node in counts
        )
        return GpuStatus(
            pool=pool,
            expected_nodes=request.node_pool.node_count,
            expected_gpus_per_node=size.gpus,
            nodes=counts,
            ready=ready,
        )
