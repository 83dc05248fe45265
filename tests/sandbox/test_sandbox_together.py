"""The ARM and Kubernetes simulators together, as the product will meet them.

Covers the walkthrough's path end to end with real clients: a cluster and a tainted GPU pool
created through ARM (azure-mgmt-containerservice); the kubeconfig from listClusterUserCredential
reaches the cluster (kubernetes client); the pool's nodes exist with AKS's labels and taints but
no GPUs until the device plugin tolerating `sku=gpu` is applied; then a GPU job runs to its log;
deleting the pool through ARM removes its nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import config

from sandbox.arm import ArmSimulator, ArmTimings
from sandbox.clock import ManualClock
from sandbox.kube import KubeSimulator
from sandbox.tls import TestCA, make_ca
from sandbox.world import aks_client, open_world

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
GROUP = "myResourceGroup"
CLUSTER = "myAKSCluster"
TIMINGS = ArmTimings(retry_after_seconds=0)
PLUGIN: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "metadata": {"name": "nvidia-device-plugin-daemonset", "namespace": "gpu-resources"},
    "spec": {
        "selector": {"matchLabels": {"name": "nvidia-device-plugin-ds"}},
        "template": {
            "metadata": {"labels": {"name": "nvidia-device-plugin-ds"}},
            "spec": {
                "tolerations": [{"key": "sku", "operator": "Equal", "value": "gpu",
                                 "effect": "NoSchedule"}],
                "containers": [{"name": "nvidia-device-plugin-ctr",
                                "image": "nvcr.io/nvidia/k8s-device-plugin:v0.18.0"}],
            },
        },
    },
}  # fmt: skip


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[ManualClock, TestCA, ArmSimulator, KubeSimulator]]:
    with open_world(ManualClock(), make_ca(tmp_path), arm_timings=TIMINGS) as sandbox:
        yield sandbox.clock, sandbox.ca, sandbox.arm, sandbox.kube


def gpu_counts(api: Any) -> dict[str, str]:
    nodes = api.list_node(label_selector="kubernetes.azure.com/agentpool=gpunp").items
    return {n.metadata.name: n.status.allocatable.get("nvidia.com/gpu", "0") for n in nodes}


def test_walkthrough_path(world: tuple[ManualClock, TestCA, ArmSimulator, KubeSimulator]) -> None:
    from kubernetes import client

    clock, ca, arm, kube = world
    aks: Any = aks_client(arm.url, ca.ca_path, polling_interval=0.01)
    with aks:
        cluster = aks.managed_clusters.begin_create_or_update(GROUP, CLUSTER, {
            "location": "eastus", "identity": {"type": "SystemAssigned"},
            "properties": {"dnsPrefix": "myaks", "agentPoolProfiles": [
                {"name": "system", "count": 1, "vmSize": "Standard_D4ds_v5", "mode": "System"}]},
        })  # fmt: skip
        clock.advance(TIMINGS.cluster_create_seconds)
        assert cluster.result().provisioning_state == "Succeeded"
        pool = aks.agent_pools.begin_create_or_update(GROUP, CLUSTER, "gpunp", {
            "properties": {"count": 2, "vmSize": "Standard_NC4as_T4_v3", "mode": "User",
                           "nodeTaints": ["sku=gpu:NoSchedule"]},
        })  # fmt: skip
        clock.advance(TIMINGS.pool_create_seconds)
        assert pool.result().provisioning_state == "Succeeded"
        [credential] = aks.managed_clusters.list_cluster_user_credentials(
            GROUP, CLUSTER
        ).kubeconfigs
        kubeconfig = yaml.safe_load(bytes(credential.value))  # the SDK decodes base64
        # The kubeconfig alone reaches the cluster: server, CA data and token are all in it.
        api_client: Any = config.new_client_from_config_dict(kubeconfig)  # type: ignore[no-untyped-call]
        with api_client:
            core: Any = client.CoreV1Api(api_client)
            apps: Any = client.AppsV1Api(api_client)
            nodes = core.list_node(label_selector="kubernetes.azure.com/agentpool=gpunp").items
            assert len(nodes) == 2
            node = nodes[0]
            assert (
                node.metadata.labels["node.kubernetes.io/instance-type"] == "Standard_NC4as_T4_v3"
            )
            assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [
                ("sku", "gpu", "NoSchedule")
            ]
            assert set(gpu_counts(core).values()) == {"0"}, "no GPUs before the device plugin"

            core.create_namespace({"metadata": {"name": "gpu-resources"}})
            apps.patch_namespaced_daemon_set(
                "nvidia-device-plugin-daemonset", "gpu-resources", PLUGIN,
                field_manager="gpuprov", force=True,
                _content_type="application/apply-patch+yaml",
            )  # fmt: skip
            clock.advance(60)
            kube.settle()
            assert set(gpu_counts(core).values()) == {"1"}

            delete = aks.agent_pools.begin_delete(GROUP, CLUSTER, "gpunp")
            clock.advance(TIMINGS.pool_delete_seconds)
            delete.result()
            assert gpu_counts(core) == {}
