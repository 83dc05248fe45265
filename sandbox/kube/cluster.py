"""One simulated cluster: its nodes from ARM and its controllers, on top of its object store.

The controllers (DaemonSets, device plugin → node GPUs, scheduler, kubelet, Jobs; one module
each under `controllers/`) run only when `settle(now)` is called, stepping through their timers
in simulated time, so a test that advances a ManualClock by ten minutes sees the same sequence
of states the cluster would have gone through. Callers hold the simulator's lock.
"""

from __future__ import annotations

import copy
import hashlib
import heapq
import random
import string
from datetime import UTC, datetime

from sandbox.cloud import PoolNodes
from sandbox.kube.aks_nodes import new_node, node_labels
from sandbox.kube.controllers.base import FailureRule, GpuFaults, KubeTimings
from sandbox.kube.controllers.daemonsets import DaemonSetController
from sandbox.kube.controllers.jobs import JobController
from sandbox.kube.controllers.kubelet import Kubelet
from sandbox.kube.controllers.scheduler import Scheduler
from sandbox.kube.hardware import NodeShape, vm_shape
from sandbox.kube.objects import JSON, parse_aks_taint
from sandbox.kube.store import rfc3339

__all__ = ["Cluster", "FailureRule", "GpuFaults", "KubeTimings", "random_token"]

LEASE_RENEW_SECONDS = 10.0
_MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def parse_micro_time(text: str | None) -> float:
    """A MicroTime (RFC 3339 with microseconds); 0 for none."""
    if not text:
        return 0.0
    return datetime.strptime(text, _MICRO_TIME).replace(tzinfo=UTC).timestamp()


class Cluster(DaemonSetController, Kubelet, Scheduler, JobController):
    """Nodes, DaemonSets, scheduler, kubelet and Jobs of one simulated cluster."""

    # --- nodes from ARM ------------------------------------------------------------------

    def set_pool(self, pool: PoolNodes) -> None:
        existing = [
            node
            for node in self.items("nodes")
            if node["metadata"]["labels"].get("kubernetes.azure.com/agentpool") == pool.pool_name
        ]
        scale_set = int(hashlib.sha256(f"{self.key}/{pool.pool_name}".encode()).hexdigest(), 16)
        prefix = f"aks-{pool.pool_name}-{scale_set % 10**8:08d}-vmss"
        wanted = {f"{prefix}{index:06d}": index for index in range(pool.count)}
        for stale in existing:
            if stale["metadata"]["name"] not in wanted:
                self._remove_node(stale)
        _, _, model, capability = vm_shape(pool.vm_size)
        for name, index in wanted.items():
            current = self.store["nodes"].get(("", name))
            if current is None and pool.gpus_per_node:
                self.node_faults[name] = self._take_node_faults()
            faults = self.node_faults.get(name, set())
            self.node_shapes[name] = NodeShape(
                pool.pool_name, pool.gpus_per_node - ("gpu-missing" in faults), model,
                capability, pool.managed_gpu,
            )  # fmt: skip
            if current is None:
                address = f"10.224.0.{4 + len(self.store['nodes'])}"
                node = new_node(
                    self.cluster_id, self.location, pool, prefix, index, address, self._pod_cidr()
                )
                node["status"]["conditions"] = (
                    self._gpu_node_conditions(pool.vm_size, faults) if pool.gpus_per_node else []
                ) + self._node_conditions()
                created = self.create("nodes", node)
                self._renew_lease(created)
                self.record_event(
                    created, "Normal", "Starting", "Starting kubelet.", "kubelet", name
                )
                self.record_event(
                    created, "Normal", "RegisteredNode",
                    f"Node {name} event: Registered Node {name} in Controller", "node-controller",
                )  # fmt: skip
                continue
            node = copy.deepcopy(current)
            node["metadata"]["labels"] = node_labels(
                self.cluster_id, self.location, pool, name, index
            )
            taints = [parse_aks_taint(taint) for taint in pool.taints]
            if taints:
                node["spec"]["taints"] = taints
            else:
                node["spec"].pop("taints", None)
            self._put("nodes", node)
        self.reconcile()

    def _pod_cidr(self) -> str:
        """The first /24 of the cluster's pod range (AKS's default 10.244.0.0/16) that no node
        holds: each node its own range ("PodCIDR represents the pod IP range assigned to the
        node", Kubernetes NodeSpec), so two pools' first nodes never share one."""
        taken = {node["spec"].get("podCIDR") for node in self.items("nodes")}
        return next(cidr for cidr in (f"10.244.{i}.0/24" for i in range(256)) if cidr not in taken)

    def _renew_lease(self, node: JSON) -> None:
        """The kubelet's heartbeat Lease in kube-node-lease, owned by its node."""
        name = node["metadata"]["name"]
        stamp = datetime.fromtimestamp(self.now, tz=UTC).strftime(_MICRO_TIME)
        lease = {
            "metadata": {
                "name": name,
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "name": name,
                        "uid": node["metadata"]["uid"],
                    }
                ],
            },
            "spec": {
                "holderIdentity": name,
                "leaseDurationSeconds": 40,
                "renewTime": stamp,
            },
        }
        current = self.store["leases"].get(("kube-node-lease", name))
        if current is None:
            self.create("leases", lease, "kube-node-lease")
        else:
            renewed = copy.deepcopy(current)
            renewed["spec"] = lease["spec"]
            self._put("leases", renewed)

    def _node_conditions(self) -> list[JSON]:
        stamp = rfc3339(self.now)
        conditions = [
            ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID"),
            ("Ready", "True", "KubeletReady"),
        ]
        return [
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": "kubelet is posting ready status"
                if kind == "Ready"
                else f"kubelet has {reason[10:]}",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
            for kind, status, reason in conditions
        ]

    def remove_pool(self, pool_name: str) -> None:
        for node in self.items("nodes"):
            if node["metadata"]["labels"].get("kubernetes.azure.com/agentpool") == pool_name:
                self._remove_node(node)
        self.reconcile()

    def _remove_node(self, node: JSON) -> None:
        self.delete("nodes", "", node["metadata"]["name"], "Background")
        self.node_shapes.pop(node["metadata"]["name"], None)
        self.node_faults.pop(node["metadata"]["name"], None)

    # --- time ------------------------------------------------------------------------------

    def settle(self, now: float) -> None:
        """Run timers and controllers in order up to `now` (simulated seconds)."""
        self.reconcile()
        while self._timers and self._timers[0][0] <= now:
            due, _, action = heapq.heappop(self._timers)
            self.now = max(self.now, due)
            action()
            self.reconcile()
        self.now = max(self.now, now)
        self.reconcile()
        self._heartbeat()

    def _heartbeat(self) -> None:
        """Each kubelet renews its Lease every 10 s (a quarter of leaseDurationSeconds 40).

        Renewed at most once per settle, so a clock that jumps hours writes one renewal, not
        hundreds, and the watch history stays bounded by requests, not by simulated time.
        """
        for node in self.items("nodes"):
            lease = self.store["leases"].get(("kube-node-lease", node["metadata"]["name"]))
            renewed = (lease or {}).get("spec", {}).get("renewTime")
            if lease is None or self.now - parse_micro_time(renewed) >= LEASE_RENEW_SECONDS:
                self._renew_lease(node)

    def reconcile(self) -> None:
        """Run every controller until none changes anything (bounded)."""
        for _ in range(10):
            changed = self._reconcile_daemonsets()
            changed = self._reconcile_node_gpus() or changed
            changed = self._reconcile_jobs() or changed
            changed = self._schedule_pods() or changed
            if not changed:
                return


def random_token() -> str:
    """A per-cluster bearer token (the simulated admin credential)."""
    alphabet = string.ascii_lowercase + string.digits
    rng = random.SystemRandom()
    return "".join(rng.choice(alphabet) for _ in range(64))
