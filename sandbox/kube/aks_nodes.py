"""Nodes as AKS registers them: names, labels, providerID, capacity and what AKS reserves.

Shapes from AKS: VMSS node names `aks-<pool>-<8 digits>-vmss<6 digits>`, the node resource group
`MC_<group>_<cluster>_<location>` (lower-cased in providerID), the `kubernetes.io/role=agent`
label (kubectl's ROLES column), and allocatable = capacity − kube-reserved − eviction threshold
(AKS docs "Resource reservations": CPU by core count; memory 20 MiB per max pod + 50 MiB, plus a
100 Mi hard eviction threshold, for Kubernetes 1.29+).
"""

from __future__ import annotations

import uuid

from sandbox.cloud import PoolNodes
from sandbox.kube.hardware import vm_shape
from sandbox.kube.objects import JSON, parse_aks_taint

MAX_PODS = 110
KUBELET_VERSION = "v1.33.2"
_CPU_RESERVED_MILLICORES = {1: 60, 2: 100, 4: 140, 8: 180, 16: 260, 32: 420, 64: 740}


def node_resource_group(cluster_id: str, location: str) -> tuple[str, str]:
    """(subscription, MC_<group>_<cluster>_<location>) of an AKS cluster's ARM id."""
    parts = cluster_id.strip("/").split("/")
    lowered = [part.lower() for part in parts]
    subscription = parts[lowered.index("subscriptions") + 1] if "subscriptions" in lowered else ""
    group = parts[lowered.index("resourcegroups") + 1] if "resourcegroups" in lowered else "rg"
    return subscription, f"MC_{group}_{parts[-1]}_{location}"


def _cpu_reserved(cpus: int) -> int:
    fitting = [cores for cores in _CPU_RESERVED_MILLICORES if cores <= cpus]
    return _CPU_RESERVED_MILLICORES[max(fitting) if fitting else 1]


def capacity_and_allocatable(cpus: int, memory_gib: int) -> tuple[JSON, JSON]:
    memory_ki = memory_gib * 1024 * 1024
    reserved_ki = (20 * MAX_PODS + 50) * 1024 + 100 * 1024
    storage_ki = 129886128
    capacity = {
        "cpu": str(cpus),
        "ephemeral-storage": f"{storage_ki}Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": f"{memory_ki}Ki",
        "pods": str(MAX_PODS),
    }
    allocatable = {
        **capacity,
        "cpu": f"{cpus * 1000 - _cpu_reserved(cpus)}m",
        "ephemeral-storage": str(storage_ki * 1024 * 9 // 10),
        "memory": f"{memory_ki - reserved_ki}Ki",
    }
    return capacity, allocatable


def node_labels(
    cluster_id: str, location: str, pool: PoolNodes, name: str, index: int
) -> dict[str, str]:
    _, resource_group = node_resource_group(cluster_id, location)
    zone = f"{location}-{pool.zones[index % len(pool.zones)]}" if pool.zones else "0"
    labels = {
        "agentpool": pool.pool_name,
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": pool.vm_size,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.azure.com/agentpool": pool.pool_name,
        "kubernetes.azure.com/cluster": resource_group,
        "kubernetes.azure.com/os-sku": "Ubuntu",
        "kubernetes.azure.com/role": "agent",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/role": "agent",
        "node.kubernetes.io/instance-type": pool.vm_size,
        "topology.kubernetes.io/region": location,
        "topology.kubernetes.io/zone": zone,
        **pool.labels,
    }
    if pool.gpus_per_node:
        labels["kubernetes.azure.com/accelerator"] = "nvidia"
    return labels


def new_node(
    cluster_id: str,
    location: str,
    pool: PoolNodes,
    scale_set: str,
    index: int,
    address: str,
    pod_cidr: str,
) -> JSON:
    """A freshly registered node of the pool's scale set (conditions are the caller's), with
    the pod range the cluster gave it (`pod_cidr`, one /24 per node of the cluster)."""
    name = f"{scale_set}{index:06d}"
    subscription, resource_group = node_resource_group(cluster_id, location)
    cpus, memory, _, _ = vm_shape(pool.vm_size)
    capacity, allocatable = capacity_and_allocatable(cpus, memory)
    node: JSON = {
        "metadata": {
            "name": name,
            "labels": node_labels(cluster_id, location, pool, name, index),
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {
            "podCIDR": pod_cidr,
            "podCIDRs": [pod_cidr],
            "providerID": f"azure:///subscriptions/{subscription}/resourceGroups/"
            f"{resource_group.lower()}/providers/Microsoft.Compute/virtualMachineScaleSets/"
            f"{scale_set}/virtualMachines/{index}",
        },
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "addresses": [
                {"type": "InternalIP", "address": address},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": str(uuid.uuid4()),
                "containerRuntimeVersion": "containerd://1.7.27-1",
                "kernelVersion": "5.15.0-1089-azure",
                "kubeProxyVersion": "",
                "kubeletVersion": KUBELET_VERSION,
                "machineID": uuid.uuid4().hex,
                "operatingSystem": "linux",
                "osImage": "Ubuntu 22.04.5 LTS",
                "systemUUID": str(uuid.uuid4()),
            },
        },
    }
    taints = [parse_aks_taint(taint) for taint in pool.taints]
    if taints:
        node["spec"]["taints"] = taints
    return node
