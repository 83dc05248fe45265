"""The pool's GPUs, node by node: `nvidia.com/gpu` allocatable against the VM size's GPU count
(catalog), none of AKS's GPU health node conditions set, and the device plugin pod on the node
Running and ready.

A node is `waiting` while its GPUs may still appear (the plugin starting, the node joining) and
`failed` once they cannot without someone acting: a GPU condition set, a count the registered
plugin advertises that differs from the size's, a crashlooping plugin, or a plugin that runs but
logged an init error (FAIL_ON_INIT_ERROR=false: "otherwise block indefinitely",
NVIDIA/k8s-device-plugin README). A failure names the node, the cause, the plugin's restart count
and its log tail.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from shared.catalog import lookup
from shared.errors import StepError
from shared.kube.client import AGENTPOOL_LABEL, JSON, KubeClient, count, is_true, name_of
from shared.kube.device_plugin import DEVICE_PLUGIN_IMAGE_MARK
from shared.proof.parsers import gpu_problems
from shared.request import ProvisionRequest
from shared.wire import HistoryModel

GPU_RESOURCE = "nvidia.com/gpu"
PLUGIN_LOG_LINES = 8
_KLOG_ERROR = re.compile(r"^E\d{4} ")
"""A klog error line (`E1128 09:41:00.000000 ...`), as the device plugin logs NVML failures."""


class PluginPod(HistoryModel):
    """The device plugin pod on one node, as the kubelet reports it."""

    name: str
    phase: str
    ready: bool
    restarts: int
    waiting: str = ""
    """The container's waiting reason, e.g. CrashLoopBackOff."""
    log_tail: str = ""
    """The plugin's last lines, read when it is not healthy (or logged an error)."""


class NodeGpus(HistoryModel):
    """One node of the pool and what its GPU checks found."""

    name: str
    allocatable: int
    expected: int
    node_ready: bool
    conditions: dict[str, str] = Field(default_factory=dict)
    """AKS's GPU health conditions set on the node: type -> message."""
    plugin: PluginPod | None = None
    state: Literal["ready", "waiting", "failed"] = "waiting"
    cause: str = ""
    """Why the node is not ready, in a sentence that names it."""
    code: str = ""


class GpuStatus(HistoryModel):
    """The pool's nodes against what its VM size and node count promise."""

    pool: str
    expected_nodes: int
    expected_gpus_per_node: int
    nodes: list[NodeGpus]
    ready: bool
    failed: bool = False

    @property
    def causes(self) -> list[str]:
        return [node.cause for node in self.nodes if node.state == "failed"]


def _plugin_pod(pod: JSON) -> PluginPod:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    waiting = next(
        (
            str(((s.get("state") or {}).get("waiting") or {}).get("reason") or "")
            for s in statuses
            if (s.get("state") or {}).get("waiting")
        ),
        "",
    )
    return PluginPod(
        name=name_of(pod),
        phase=str((pod.get("status") or {}).get("phase") or ""),
        ready=is_true(pod, "Ready"),
        restarts=max([count(s.get("restartCount")) for s in statuses] + [0]),
        waiting=waiting,
    )


def _judge(node: NodeGpus, managed: bool) -> NodeGpus:
    """The node's state and, when it failed, its cause (which names the node)."""
    where, plugin = f"node {node.name}", node.plugin
    tail = f"; plugin log: {plugin.log_tail}" if plugin and plugin.log_tail else ""
    if node.conditions:
        found = "; ".join(f"{kind}: {message}" for kind, message in node.conditions.items())
        return node.model_copy(
            update={"state": "failed", "code": "GpuHealthCondition",
                    "cause": f"{where}: GPU health condition set ({found})"}
        )  # fmt: skip
    if plugin is not None and plugin.waiting == "CrashLoopBackOff":
        return node.model_copy(
            update={"state": "failed", "code": "DevicePluginCrashLoop",
                    "cause": f"{where}: device plugin {plugin.name} in CrashLoopBackOff "
                             f"({plugin.restarts} restarts){tail}"}
        )  # fmt: skip
    registered = managed or (plugin.ready if plugin is not None else node.allocatable > 0)
    if node.allocatable == node.expected and registered and node.node_ready:
        return node.model_copy(update={"state": "ready"})
    if registered and node.allocatable and node.allocatable != node.expected:
        return node.model_copy(
            update={"state": "failed", "code": "GpuCountMismatch",
                    "cause": f"{where}: {node.allocatable} of the size's {node.expected} GPUs "
                             f"allocatable"}
        )  # fmt: skip
    if plugin is not None and plugin.ready and plugin.log_tail and not node.allocatable:
        return node.model_copy(
            update={"state": "failed", "code": "DevicePluginInitFailed",
                    "cause": f"{where}: device plugin {plugin.name} runs but advertises no "
                             f"GPUs ({plugin.restarts} restarts){tail}"}
        )  # fmt: skip
    waiting_for = "the node to be Ready" if not node.node_ready else "the device plugin"
    return node.model_copy(
        update={"cause": f"{where}: {node.allocatable} of {node.expected} GPUs allocatable, "
                         f"waiting for {waiting_for}"}
    )  # fmt: skip


class Gpus(KubeClient):
    """The per-node GPU checks."""

    def _plugin_pods(self) -> dict[str, JSON]:
        """The NVIDIA device plugin pod of each node (any namespace: ours, or one found); where
        a node runs two (ours next to someone else's), a ready one speaks for the node."""
        pods = self._items(self._core.list_pod_for_all_namespaces)
        found: dict[str, JSON] = {}
        for pod in pods:
            spec = pod.get("spec") or {}
            node = str(spec.get("nodeName") or "")
            if not any(DEVICE_PLUGIN_IMAGE_MARK in str(c.get("image") or "")
                       for c in spec.get("containers") or []):  # fmt: skip
                continue
            if node not in found or (is_true(pod, "Ready") and not is_true(found[node], "Ready")):
                found[node] = pod
        return found

    def _log_tail(self, pod: JSON) -> str:
        """The plugin's last lines (an unreadable log is said, never raised)."""
        try:
            text = self._pod_log(pod, tail_lines=PLUGIN_LOG_LINES)
        except Exception as error:  # a log is evidence, not a reason to fail
            return f"(log unavailable: {type(error).__name__})"
        lines = [line for line in text.splitlines() if line.strip()]
        return " | ".join(lines[-PLUGIN_LOG_LINES:])

    def gpu_status(self, request: ProvisionRequest, vm_size: str) -> GpuStatus:
        """Each node of the pool: allocatable GPUs, health conditions, its plugin pod."""
        size = lookup(vm_size)
        if size is None:
            raise StepError("permanent", "UnknownVmSize", f"{vm_size} is not a known GPU VM size")
        pool, managed = request.node_pool.name, request.node_pool.managed_gpu
        with self._errors(f"list nodes of pool {pool}"):
            nodes = self._items(self._core.list_node, label_selector=f"{AGENTPOOL_LABEL}={pool}")
            plugins = {} if managed else self._plugin_pods()
        checked = []
        for node in sorted(nodes, key=name_of):
            name = name_of(node)
            allocatable = count(((node.get("status") or {}).get("allocatable") or {}).get(
                GPU_RESOURCE))  # fmt: skip
            pod = plugins.get(name)
            plugin = _plugin_pod(pod) if pod is not None else None
            if (
                pod is not None
                and plugin is not None
                and (plugin.waiting or (plugin.ready and allocatable != size.gpus))
            ):
                tail = self._log_tail(pod)
                errors = [line for line in tail.split(" | ") if _KLOG_ERROR.match(line)]
                if plugin.waiting or errors:
                    plugin = plugin.model_copy(update={"log_tail": tail})
            entry = NodeGpus(
                name=name, allocatable=allocatable, expected=size.gpus,
                node_ready=is_true(node, "Ready"), conditions=gpu_problems(node), plugin=plugin,
            )  # fmt: skip
            checked.append(_judge(entry, managed))
        enough = len(checked) >= request.node_pool.node_count
        return GpuStatus(
            pool=pool,
            expected_nodes=request.node_pool.node_count,
            expected_gpus_per_node=size.gpus,
            nodes=checked,
            ready=enough and all(node.state == "ready" for node in checked),
            failed=any(node.state == "failed" for node in checked),
        )
