"""What every controller of a simulated cluster shares: its store, timers and bookkeeping.

The controllers are mixins over this base, one module each (DaemonSets, scheduler, kubelet,
Jobs); `sandbox.kube.cluster.Cluster` puts them together. Callers hold the simulator's lock.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.kube.hardware import NodeShape
from sandbox.kube.objects import JSON
from sandbox.kube.store import Store, rfc3339


@dataclass(frozen=True)
class KubeTimings:
    """Simulated seconds the cluster takes for things that are not instant."""

    daemon_pod_start: float = 15.0
    """A DaemonSet pod from bound to Running (image pull, start)."""
    device_plugin_register: float = 5.0
    """A running device plugin until the kubelet advertises `nvidia.com/gpu`."""
    pod_start: float = 30.0
    """A job pod from bound to Running (the training image is large)."""
    job_run: float = 120.0
    """A job pod from Running to Succeeded/Failed."""
    backoff: float = 10.0
    """First delay before a failed job pod is replaced (doubles per failure, capped at 360)."""


@dataclass
class FailureRule:
    """Makes the next `remaining` job pods whose job name matches fail with this exit code."""

    job_name: re.Pattern[str]
    exit_code: int
    log: str
    remaining: int


@dataclass
class GpuFaults:
    """Injected GPU faults waiting for the next GPU node or smoke pod (shared by all clusters);
    `controllers/gpu_health.py` says what each does."""

    node: list[str] = field(default_factory=list)
    smoke: int = 0


class ClusterBase(Store):
    """The state the controllers share, and the small helpers they all use."""

    def __init__(
        self,
        cluster_id: str,
        key: str,
        token: str,
        *,
        entra_id: bool,
        location: str,
        timings: KubeTimings,
        failure_rules: list[FailureRule],
        now: float,
        gpu_faults: GpuFaults | None = None,
    ) -> None:
        self.cluster_id = cluster_id
        self.key = key
        self.token = token
        self.entra_id = entra_id
        self.location = location
        self.timings = timings
        self._failure_rules = failure_rules
        self._gpu_faults = gpu_faults or GpuFaults()
        self.node_faults: dict[str, set[str]] = {}
        """The injected GPU faults each node got when it registered."""
        self.node_shapes: dict[str, NodeShape] = {}
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        self._running_since: dict[str, float] = {}
        self._logs: dict[str, tuple[list[str], float, float]] = {}
        self._job_terminal: dict[str, dict[str, str]] = {}
        self._job_last_failure: dict[str, float] = {}
        super().__init__(cluster_id, now)

    def _delete_pod(self, pod: JSON) -> None:
        self._running_since.pop(pod["metadata"]["uid"], None)
        super()._delete_pod(pod)

    def _at(self, due: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (due, next(self._timer_seq), action))

    def _condition(self, kind: str, status: str, reason: str = "", message: str = "") -> JSON:
        condition: JSON = {
            "type": kind,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": rfc3339(self.now),
        }
        if reason:
            condition["reason"] = reason
        if message:
            condition["message"] = message
        return condition

    def _create_owned_pod(
        self, owner: JSON, spec: JSON, labels: JSON, annotations: JSON, controller: str
    ) -> JSON:
        """A pod of the owner's (`<owner>-<random>`, its controller ownerReference), and the
        `SuccessfulCreate` event the workload's controller records for it."""
        reference = {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        metadata = {
            "generateName": f"{owner['metadata']['name']}-",
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [reference],
        }
        pod = self.create(
            "pods", {"metadata": metadata, "spec": spec}, owner["metadata"]["namespace"]
        )
        self.record_event(
            owner, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
            controller,
        )  # fmt: skip
        return pod

    def _node_ready(self, node: JSON) -> bool:
        return any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in node["status"].get("conditions") or []
        ) and not node["spec"].get("unschedulable")

    def _find_pod(self, uid: str) -> JSON | None:
        return next(
            (pod for pod in self.store["pods"].values() if pod["metadata"]["uid"] == uid), None
        )

    @staticmethod
    def _job_of(pod: JSON) -> str:
        return next(
            (
                ref["uid"]
                for ref in pod["metadata"].get("ownerReferences") or []
                if ref.get("kind") == "Job"
            ),
            "",
        )

    @staticmethod
    def _container_status(container: JSON, state: JSON, *, ready: bool = False) -> JSON:
        return {
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": "",
            "ready": ready,
            "restartCount": 0,
            "started": "running" in state,
            "state": state,
        }

    def _bind(
        self, pod: JSON, node_name: str, start_delay: float, *, scheduled: bool = True
    ) -> None:
        """Bind a pod to a node (the scheduler's binding; the kubelet starts it after a delay)."""
        raise NotImplementedError

    def _start_pod(self, uid: str) -> None:
        """The kubelet starts a bound pod's containers."""
        raise NotImplementedError
