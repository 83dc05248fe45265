"""The NVIDIA device plugin: server-side apply its DaemonSet, then wait until it runs on the pool.

Skipped where the pool's GPU stack already runs it (managed GPU pools), where the request says
never, or (`auto`) where the cluster already has a device plugin DaemonSet of someone else's.
"""

from __future__ import annotations

from importlib import resources
from typing import Literal

import yaml
from pydantic import Field

from shared.kube.client import (
    AGENTPOOL_LABEL,
    JSON,
    KubeClient,
    count,
    images,
    is_true,
    labels_of,
    name_of,
    namespace_of,
    pool_tolerations,
)
from shared.ownership import MANAGED_BY_LABEL, MANAGER, Ownership
from shared.request import ProvisionRequest
from shared.wire import HistoryModel

DEVICE_PLUGIN_IMAGE_MARK = "k8s-device-plugin"
DEVICE_PLUGIN_MANIFEST = "nvidia-device-plugin.yaml"


class DevicePluginResult(HistoryModel):
    """What applying the device plugin did (as `kubectl apply` says it), or why it was skipped."""

    action: Literal["created", "configured", "unchanged", "skipped"]
    namespace: str
    name: str
    reason: str = ""
    """Why it was skipped."""
    existing: str | None = None
    """namespace/name of a device plugin DaemonSet found in the cluster that made `auto` skip."""


class DevicePluginStatus(HistoryModel):
    """Whether the device plugin runs on every node of the pool."""

    ready: bool
    daemon_set: str | None
    """namespace/name of the DaemonSet checked; None when there is none to check."""
    generation: int = 0
    observed_generation: int = 0
    desired: int = 0
    """Pods the DaemonSet wants in the whole cluster."""
    number_ready: int = 0
    pool_nodes: int = 0
    pool_nodes_ready: int = 0
    """Nodes of the pool with a running, ready plugin pod."""
    crashlooping: list[str] = Field(default_factory=list)
    """Nodes of the pool whose plugin pod is in CrashLoopBackOff: waiting longer cannot help,
    so the wait ends and verify-gpus reports each node with the plugin's log."""
    reason: str = ""

    @property
    def settled(self) -> bool:
        """Rolled out: every pool node's plugin is ready or crashlooping."""
        settled = self.pool_nodes_ready + len(self.crashlooping)
        return self.ready or (self.pool_nodes > 0 and settled == self.pool_nodes)


def plugin_crashlooping(pod: JSON) -> bool:
    """A pod whose container the kubelet restarts with back-off after it crashed."""
    return any(
        ((status.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
        for status in (pod.get("status") or {}).get("containerStatuses") or []
    )


def device_plugin_manifest(request: ProvisionRequest, ownership: Ownership) -> JSON:
    """The DaemonSet to apply: the packaged manifest with this request's image and tolerations."""
    text = resources.files("shared").joinpath("manifests", DEVICE_PLUGIN_MANIFEST).read_text()
    manifest: JSON = yaml.safe_load(text)
    plugin = request.device_plugin
    metadata = manifest["metadata"]
    metadata["namespace"] = plugin.namespace
    metadata["labels"] = {**(metadata.get("labels") or {}), **ownership.labels()}
    template = manifest["spec"]["template"]
    template["metadata"]["labels"] = {
        **template["metadata"]["labels"],
        MANAGED_BY_LABEL: MANAGER,
    }
    pod_spec = template["spec"]
    known = list(pod_spec.get("tolerations") or [])
    pod_spec["tolerations"] = known + [t for t in pool_tolerations(request) if t not in known]
    for container in pod_spec["containers"]:
        container["image"] = plugin.image
    return manifest


class DevicePlugin(KubeClient):
    """The device plugin operations."""

    def _device_plugins(self) -> list[JSON]:
        """Every DaemonSet in the cluster running NVIDIA's device plugin image."""
        return [
            ds
            for ds in self._items(self._apps.list_daemon_set_for_all_namespaces)
            if any(DEVICE_PLUGIN_IMAGE_MARK in image for image in images(ds))
        ]

    @staticmethod
    def _skip_reason(request: ProvisionRequest) -> str:
        if request.node_pool.managed_gpu:
            return "the pool's GPU stack is managed by AKS (managedGpu), which runs the plugin"
        if request.device_plugin.install == "never":
            return "devicePlugin.install is never"
        return ""

    def install_device_plugin(self, request: ProvisionRequest) -> DevicePluginResult:
        """Server-side apply the plugin DaemonSet, unless the pool or the cluster has one."""
        ownership = self.ownership(request)
        manifest = device_plugin_manifest(request, ownership)
        namespace, name = request.device_plugin.namespace, name_of(manifest)
        skip = self._skip_reason(request)
        if skip:
            return DevicePluginResult(action="skipped", namespace=namespace, name=name, reason=skip)
        with self._errors(f"apply DaemonSet {namespace}/{name}"):
            current = self._get(self._apps.read_namespaced_daemon_set, name, namespace)
            if current is not None and not ownership.owns(labels_of(current), "labels"):
                if request.device_plugin.install == "auto" and any(
                    DEVICE_PLUGIN_IMAGE_MARK in image for image in images(current)
                ):
                    return self._skipped_for(current, namespace, name)
                self.refuse_foreign(f"DaemonSet {namespace}/{name}", current, request)
            if current is None and request.device_plugin.install == "auto":
                for plugin in self._device_plugins():
                    if not ownership.owns(labels_of(plugin), "labels"):
                        return self._skipped_for(plugin, namespace, name)
        self.ensure_namespace(namespace)
        with self._errors(f"apply DaemonSet {namespace}/{name}"):
            applied = self._json(
                self._apps.patch_namespaced_daemon_set,
                name,
                namespace,
                manifest,
                field_manager=MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
            )
        if current is None:
            action: Literal["created", "configured", "unchanged"] = "created"
        elif (applied.get("metadata") or {}).get("resourceVersion") == current["metadata"].get(
            "resourceVersion"
        ):
            action = "unchanged"
        else:
            action = "configured"
        return DevicePluginResult(action=action, namespace=namespace, name=name)

    @staticmethod
    def _skipped_for(plugin: JSON, namespace: str, name: str) -> DevicePluginResult:
        found = f"{namespace_of(plugin)}/{name_of(plugin)}"
        return DevicePluginResult(
            action="skipped",
            namespace=namespace,
            name=name,
            reason=f"a device plugin DaemonSet exists: {found} ({', '.join(images(plugin))})",
            existing=found,
        )

    def device_plugin_status(self, request: ProvisionRequest) -> DevicePluginStatus:
        """Whether the plugin (ours, or the one `auto` found) runs ready on the pool's nodes."""
        skip = self._skip_reason(request)
        if skip:
            return DevicePluginStatus(
                ready=True,
                daemon_set=None,
                reason=f"not installed by gpuprov: {skip}; gpu_status shows the GPUs",
            )
        namespace = request.device_plugin.namespace
        name = name_of(device_plugin_manifest(request, self.ownership(request)))
        with self._errors(f"read DaemonSet {namespace}/{name}"):
            plugin = self._get(self._apps.read_namespaced_daemon_set, name, namespace)
            if plugin is None:
                plugin = next(iter(self._device_plugins()), None)
            if plugin is None:
                return DevicePluginStatus(
                    ready=False, daemon_set=None, reason="no device plugin DaemonSet in the cluster"
                )
            if count((plugin.get("status") or {}).get("numberReady")) == 0:
                # DaemonSetStatus.numberReady: no plugin pod is ready anywhere, so none on the
                # pool either; one read instead of three
                return DevicePluginStatus(
                    ready=False,
                    daemon_set=f"{namespace_of(plugin)}/{name_of(plugin)}",
                    reason="no device plugin pod is ready yet",
                )
            pool_nodes = {
                name_of(node)
                for node in self._items(
                    self._core.list_node,
                    label_selector=f"{AGENTPOOL_LABEL}={request.node_pool.name}",
                )
            }
            selector = ((plugin.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            pods = self._items(
                self._core.list_namespaced_pod,
                namespace_of(plugin),
                label_selector=",".join(f"{k}={v}" for k, v in sorted(selector.items())),
            )
        ready_nodes = {
            str((pod.get("spec") or {}).get("nodeName") or "")
            for pod in pods
            if (pod.get("status") or {}).get("phase") == "Running" and is_true(pod, "Ready")
        }
        crashlooping = sorted(
            str((pod.get("spec") or {}).get("nodeName") or "")
            for pod in pods
            if plugin_crashlooping(pod) and (pod.get("spec") or {}).get("nodeName") in pool_nodes
        )
        status = plugin.get("status") or {}
        generation = count((plugin.get("metadata") or {}).get("generation"))
        observed = count(status.get("observedGeneration"))
        pool_ready = len(pool_nodes & ready_nodes)
        ready = observed >= generation and bool(pool_nodes) and pool_ready == len(pool_nodes)
        if not pool_nodes:
            reason = f"the pool {request.node_pool.name} has no nodes yet"
        elif not ready:
            reason = f"the plugin is ready on {pool_ready} of {len(pool_nodes)} nodes of the pool"
        else:
            reason = ""
        return DevicePluginStatus(
            ready=ready,
            daemon_set=f"{namespace_of(plugin)}/{name_of(plugin)}",
            generation=generation,
            observed_generation=observed,
            desired=count(status.get("desiredNumberScheduled")),
            number_ready=count(status.get("numberReady")),
            pool_nodes=len(pool_nodes),
            pool_nodes_ready=pool_ready,
            crashlooping=crashlooping,
            reason=reason,
        )
