"""The DaemonSet controller: one pod per eligible node, replaced when the template changes."""

from __future__ import annotations

import copy

from sandbox.kube.controllers.base import ClusterBase
from sandbox.kube.objects import JSON, node_selected, untolerated_taint


class DaemonSetController(ClusterBase):
    """Keeps each DaemonSet's pods on the ready nodes it selects and tolerates."""

    def _reconcile_daemonsets(self) -> bool:
        changed = False
        nodes = self.items("nodes")
        for ds in self.items("daemonsets"):
            pod_spec = ds["spec"]["template"].get("spec") or {}
            eligible = {
                node["metadata"]["name"]
                for node in nodes
                if self._node_ready(node)
                and node_selected(pod_spec, node)
                and untolerated_taint(pod_spec, node) is None
            }
            generation = str(ds["metadata"]["generation"])
            placed: dict[str, JSON] = {}
            for pod in self._owned_pods(ds):
                node_name = pod["spec"].get("nodeName", "")
                labels = pod["metadata"].get("labels") or {}
                if (
                    node_name not in eligible
                    or node_name in placed
                    or labels.get("pod-template-generation") != generation
                ):
                    self._delete_pod(pod)
                    changed = True
                else:
                    placed[node_name] = pod
            for node_name in sorted(eligible - placed.keys()):
                placed[node_name] = self._create_daemon_pod(ds, node_name, generation)
                changed = True
            running = sum(1 for pod in placed.values() if pod["status"]["phase"] == "Running")
            status = {
                "currentNumberScheduled": len(placed),
                "desiredNumberScheduled": len(eligible),
                "numberMisscheduled": 0,
                "numberReady": running,
                "numberAvailable": running,
                "numberUnavailable": len(eligible) - running,
                "updatedNumberScheduled": len(placed),
                "observedGeneration": ds["metadata"]["generation"],
            }
            if not status["numberAvailable"]:
                status.pop("numberAvailable")
            if not status["numberUnavailable"]:
                status.pop("numberUnavailable")
            if ds["status"] != status:
                updated = copy.deepcopy(ds)
                updated["status"] = status
                changed = self._put("daemonsets", updated) or changed
        return changed

    def _create_daemon_pod(self, ds: JSON, node_name: str, generation: str) -> JSON:
        template = copy.deepcopy(ds["spec"]["template"])
        meta = template.get("metadata") or {}
        labels = {**(meta.get("labels") or {}), "pod-template-generation": generation}
        tolerations = template["spec"].setdefault("tolerations", [])
        tolerations.append(
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}
        )
        template["spec"]["nodeName"] = node_name
        pod = self._create_owned_pod(
            ds, template["spec"], labels, meta.get("annotations") or {}, "daemonset-controller"
        )
        self._bind(pod, node_name, self.timings.daemon_pod_start)
        return self.get("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
