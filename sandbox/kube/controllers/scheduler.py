"""kube-scheduler: binds pending pods to nodes that fit, or reports why none does."""

from __future__ import annotations

import copy
from collections import Counter

from sandbox.kube.controllers.base import ClusterBase
from sandbox.kube.objects import JSON, node_selected, pod_requests, untolerated_taint
from sandbox.kube.quantity import value as quantity
from sandbox.kube.store import rfc3339


class Scheduler(ClusterBase):
    """Taints, node selectors and resources decide; FailedScheduling says why not."""

    def _schedule_pods(self) -> bool:
        changed = False
        nodes = list(self.items("nodes"))
        used: dict[str, Counter[str]] = {node["metadata"]["name"]: Counter() for node in nodes}
        for pod in self.items("pods"):
            node_name = pod["spec"].get("nodeName")
            admitted = "startTime" in pod["status"]  # bound, not just named (see _admit)
            if node_name in used and admitted and pod["status"]["phase"] in ("Pending", "Running"):
                used[node_name].update(pod_requests(pod))
        for pod in self.items("pods"):
            if pod["status"]["phase"] != "Pending":
                continue
            if pod["spec"].get("nodeName"):
                if "startTime" not in pod["status"] and pod["spec"]["nodeName"] in used:
                    changed = self._admit(pod, used) or changed
                continue
            requests = pod_requests(pod)
            reasons: Counter[str] = Counter()
            chosen = None
            for node in nodes:
                failures = self._unfit(pod, requests, node, used[node["metadata"]["name"]])
                if not failures:
                    chosen = node["metadata"]["name"]
                    break
                reasons.update(failures)
            if chosen is not None:
                used[chosen].update(requests)
                self._bind(pod, chosen, self.timings.pod_start)
                changed = True
                continue
            message = unschedulable_message(len(nodes), reasons)
            updated = copy.deepcopy(pod)
            existing = next(
                (c for c in pod["status"].get("conditions") or [] if c["type"] == "PodScheduled"),
                None,
            )
            if existing and existing.get("message") == message:
                continue
            updated["status"]["conditions"] = [
                self._condition("PodScheduled", "False", "Unschedulable", message)
            ]
            changed = self._put("pods", updated) or changed
            self.record_event(updated, "Warning", "FailedScheduling", message, "default-scheduler")
        return changed

    def _admit(self, pod: JSON, used: dict[str, Counter[str]]) -> bool:
        """A pod created with spec.nodeName skips the scheduler; the node's kubelet admits it
        or rejects it when a resource does not fit (Kubernetes docs, "Assigning Pods to Nodes",
        nodeName: "the Pod ... will fail and its status will indicate why, for example
        OutOfmemory or OutOfcpu"). The reason and message are the kubelet's admission
        predicate's (`OutOf<resource>`, "Node didn't have enough resource: ..."); as the kubelet's
        `rejectPod` (kubernetes pkg/kubelet/kubelet.go) words them, the Warning event carries the
        message and the pod's status "Pod was rejected: " before it."""
        node_name = pod["spec"]["nodeName"]
        node = self.store["nodes"][("", node_name)]
        allocatable = node["status"].get("allocatable") or {}
        for resource, amount in sorted(pod_requests(pod).items()):
            capacity = quantity(allocatable.get(resource, "0"))
            taken = used[node_name].get(resource, 0.0)
            if amount > 0 and amount > capacity - taken:
                rejected = copy.deepcopy(pod)
                message = (
                    f"Node didn't have enough resource: {resource}, "
                    f"requested: {amount:g}, used: {taken:g}, capacity: {capacity:g}"
                )
                rejected["status"].update(
                    phase="Failed", reason=f"OutOf{resource}",
                    message=f"Pod was rejected: {message}", startTime=rfc3339(self.now),
                )  # fmt: skip
                self.record_event(rejected, "Warning", f"OutOf{resource}", message, "kubelet",
                                  node_name)  # fmt: skip
                return self._put("pods", rejected)
        used[node_name].update(pod_requests(pod))
        self._bind(pod, node_name, self.timings.pod_start, scheduled=False)
        return True

    def _unfit(
        self, pod: JSON, requests: dict[str, float], node: JSON, used: Counter[str]
    ) -> list[str]:
        if node["spec"].get("unschedulable"):
            return ["node(s) were unschedulable"]
        taint = untolerated_taint(pod["spec"], node)
        if taint is not None:
            return [f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"]
        if not node_selected(pod["spec"], node):
            return ["node(s) didn't match Pod's node affinity/selector"]
        allocatable = node["status"].get("allocatable") or {}
        return [
            f"Insufficient {resource}"
            for resource, amount in sorted(requests.items())
            if amount > 0
            and amount > quantity(allocatable.get(resource, "0")) - used.get(resource, 0.0)
        ]

    def _bind(
        self, pod: JSON, node_name: str, start_delay: float, *, scheduled: bool = True
    ) -> None:
        bound = copy.deepcopy(pod)
        bound["spec"]["nodeName"] = node_name
        node = self.store["nodes"].get(("", node_name))
        host_ip = node["status"]["addresses"][0]["address"] if node else "10.224.0.4"
        bound["status"] = {
            "phase": "Pending",
            "qosClass": pod["status"].get("qosClass", "BestEffort"),
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],  # "the first entry must match the hostIP field"
            "startTime": rfc3339(self.now),
            "conditions": [self._condition("PodScheduled", "True")],
            "containerStatuses": [
                self._container_status(c, {"waiting": {"reason": "ContainerCreating"}})
                for c in bound["spec"]["containers"]
            ],
        }
        self._write("pods", bound, "MODIFIED")
        meta = pod["metadata"]
        if scheduled:  # a pod created with spec.nodeName never met the scheduler
            self.record_event(
                bound, "Normal", "Scheduled",
                f"Successfully assigned {meta['namespace']}/{meta['name']} to {node_name}",
                "default-scheduler",
            )  # fmt: skip
        uid = pod["metadata"]["uid"]
        self._at(self.now + start_delay, lambda: self._start_pod(uid))


def unschedulable_message(node_count: int, reasons: Counter[str]) -> str:
    """kube-scheduler's FitError text: per-reason node counts, sorted."""
    if node_count == 0:
        return "no nodes available to schedule pods"
    parts = sorted(f"{count} {reason}" for reason, count in reasons.items())
    return (
        f"0/{node_count} nodes are available: {', '.join(parts)}. preemption: 0/{node_count} "
        f"nodes are available: {node_count} Preemption is not helpful for scheduling."
    )
