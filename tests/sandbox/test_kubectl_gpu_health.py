"""AKS GPU health conditions and NVIDIA smoke pods in the Kubernetes simulator, as kubectl shows
them: the pinned kubectl and, when the machine has it, its own /usr/bin/kubectl.

Aspects covered, on an ND H100 v5 node whose drills set GPUMissing and XIDErrors (Node Problem
Detector's GPU conditions: learn.microsoft.com/azure/aks/node-problem-detector, "Node
conditions"; NPD only reports, so the node stays Ready):
- `kubectl get node -o jsonpath` lists every GPU condition with its status and reason;
- `kubectl describe node` prints them in its Conditions table beside the kubelet's;
- `kubectl get nodes` shows the node Ready (kubectl's node printer reads only `Ready`);
- `kubectl get --raw /api/v1/nodes/<node>` answers the same Node;
- a finished `nvidia-smi -q` smoke pod: `kubectl logs` shows the size's GPUs, `kubectl get pod
  -o wide` shows Completed on that node, with an IP from the node's `spec.podCIDR` (the API's
  "PodCIDR represents the pod IP range assigned to the node"), and `kubectl describe pod`
  lists it under IPs (`status.podIPs`: "the 0th entry must match the podIP field").
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from sandbox import tls
from sandbox.clock import ManualClock
from sandbox.cloud import PoolNodes
from sandbox.kube import KubeSimulator
from tests.sandbox.test_gpu_drills import (
    CLUSTER_ID,
    GPU_TOLERATION,
    H100,
    TOKEN,
    advance,
    gpu_node,
    install_plugin,
    run_smoke,
)
from tests.sandbox.test_kubectl import KUBECTLS, table
from tests.sandbox_fixtures import write_kubeconfig

SYSTEM_POOL = PoolNodes("nodepool1", "Standard_D4ds_v5", 2, 0, ())
Kubectl = Callable[..., str]


def wants_eight(node: str) -> dict[str, Any]:
    """A pod created with spec.nodeName for all eight GPUs of a size whose node has seven."""
    container = {"name": "c", "image": "nvcr.io/nvidia/cuda:12.8.0-base-ubuntu22.04",
                 "resources": {"limits": {"nvidia.com/gpu": "8"}}}  # fmt: skip
    return {
        "metadata": {"name": "wants-eight"},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "tolerations": [GPU_TOLERATION],
            "containers": [container],
        },
    }


@pytest.fixture(scope="module", params=KUBECTLS)
def binary(request: pytest.FixtureRequest) -> Path:
    return Path(request.param)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KubeSimulator, str, Path]]:
    """A cluster with two system nodes and one ND H100 v5 node the drills hit, the device
    plugin running, and a finished `nvidia-smi -q` smoke pod on the GPU node."""
    root = tmp_path_factory.mktemp("gpu-health")
    clock = ManualClock()
    with KubeSimulator(clock, tls.make_ca(root / "ca"), entra_token=TOKEN) as sim:
        access = sim.ensure_cluster(CLUSTER_ID)
        config = client.Configuration()
        config.host = access.server
        config.ssl_ca_cert = access.ca_path
        config.api_key = {"authorization": f"Bearer {access.token}"}
        with client.ApiClient(config) as api_client:
            api: Any = client.CoreV1Api(api_client)
            sim.set_pool(CLUSTER_ID, SYSTEM_POOL)
            sim.inject_gpu_fault("gpu-missing")
            sim.inject_gpu_fault("xid-error")
            sim.set_pool(CLUSTER_ID, H100)
            install_plugin(api)
            advance(sim, clock, 60)
            node = gpu_node(api, "ndpool").metadata.name
            phase, _ = run_smoke(api, sim, clock, "nvidia-smi", node, 7)
            assert phase == "Succeeded"
            api.create_namespaced_pod("default", wants_eight(node))
            advance(sim, clock, 5)
        yield sim, node, write_kubeconfig(access, root / "kubeconfig")


@pytest.fixture
def kubectl(cluster: tuple[KubeSimulator, str, Path], binary: Path, tmp_path: Path) -> Kubectl:
    kubeconfig = cluster[2]

    def run(*args: str) -> str:
        done = subprocess.run(
            [str(binary), "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path), *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout

    return run


GPU_CONDITIONS = {
    "GPUMissing": ("True", "GPUMissing"),
    "XIDErrors": ("True", "XIDErrors"),
    "NVLinkStatusInactive": ("False", "NoNVLinkStatusInactive"),
    "IBLinkFlapping": ("False", "NoIBLinkFlapping"),
    "GPUClockThrottling": ("False", "NoGPUClockThrottling"),
}


def test_jsonpath_lists_the_gpu_conditions_the_drills_set(
    cluster: tuple[KubeSimulator, str, Path], kubectl: Kubectl
) -> None:
    node = cluster[1]
    shown = kubectl(
        "get", "node", node, "-o",
        "jsonpath={range .status.conditions[*]}{.type} {.status} {.reason}{'\\n'}{end}",
    )  # fmt: skip
    conditions = {line.split()[0]: tuple(line.split()[1:]) for line in shown.splitlines()}
    assert {kind: conditions[kind] for kind in GPU_CONDITIONS} == GPU_CONDITIONS
    assert conditions["Ready"] == ("True", "KubeletReady")


def test_describe_node_prints_the_gpu_conditions_in_its_conditions_table(
    cluster: tuple[KubeSimulator, str, Path], kubectl: Kubectl
) -> None:
    described = kubectl("describe", "node", cluster[1])
    section = described.split("\nConditions:\n")[1].split("\nAddresses:")[0]
    rows = {line.split()[0]: line for line in section.splitlines()[2:]}
    for kind, (status, reason) in GPU_CONDITIONS.items():
        assert rows[kind].split()[1] == status, rows[kind]
        assert f"  {reason}  " in rows[kind], rows[kind]
    assert "Xid (PCI:0001:00:00): 79, GPU has fallen off the bus" in rows["XIDErrors"]
    assert rows["Ready"].split()[1] == "True"
    capacity = described.split("Capacity:")[1].split("Allocatable:")[0]
    assert re.search(r"^\s+nvidia\.com/gpu:\s+7$", capacity, re.MULTILINE), capacity


def test_get_nodes_shows_the_gpu_node_ready_despite_its_gpu_conditions(
    cluster: tuple[KubeSimulator, str, Path], kubectl: Kubectl
) -> None:
    nodes = {row["NAME"]: row for row in table(kubectl("get", "nodes"))}
    assert nodes[cluster[1]]["STATUS"] == "Ready"
    assert len(nodes) == 3


def test_get_raw_answers_the_same_node(
    cluster: tuple[KubeSimulator, str, Path], kubectl: Kubectl
) -> None:
    raw = json.loads(kubectl("get", "--raw", f"/api/v1/nodes/{cluster[1]}"))
    assert (raw["kind"], raw["apiVersion"], raw["metadata"]["name"]) == ("Node", "v1", cluster[1])
    statuses = {c["type"]: c["status"] for c in raw["status"]["conditions"]}
    assert {kind: statuses[kind] for kind in GPU_CONDITIONS} == {
        kind: status for kind, (status, _) in GPU_CONDITIONS.items()
    }
    assert raw["status"]["allocatable"]["nvidia.com/gpu"] == "7"


def test_a_finished_smoke_pod_shows_its_log_node_and_an_ip_of_the_nodes_range(
    cluster: tuple[KubeSimulator, str, Path], kubectl: Kubectl
) -> None:
    node = cluster[1]
    log = kubectl("logs", "smoke-nvidia-smi")
    assert re.search(r"^Attached GPUs\s+: 7$", log, re.MULTILINE), log[:400]
    assert log.count("Product Name                          : NVIDIA H100 80GB HBM3") == 7

    (row,) = table(kubectl("get", "pod", "smoke-nvidia-smi", "-o", "wide"))
    assert (row["READY"], row["STATUS"], row["NODE"]) == ("0/1", "Completed", node)
    cidr = kubectl("get", "node", node, "-o", "jsonpath={.spec.podCIDR}")
    assert ipaddress.ip_address(row["IP"]) in ipaddress.ip_network(cidr)

    described = kubectl("describe", "pod", "smoke-nvidia-smi")
    assert re.search(rf"^IPs:\n\s+IP:\s+{re.escape(row['IP'])}$", described, re.MULTILINE), (
        described
    )


def test_every_node_has_its_own_pod_range(
    cluster: tuple[KubeSimulator, str, Path], kubectl: Kubectl
) -> None:
    cidrs = kubectl(
        "get", "nodes", "-o", "jsonpath={range .items[*]}{.spec.podCIDR}{'\\n'}{end}"
    ).split()  # fmt: skip
    networks = [ipaddress.ip_network(c) for c in cidrs]
    assert len(networks) == 3
    assert not any(a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1 :])


def test_a_pod_for_more_gpus_than_its_node_has_is_rejected_by_the_kubelet(
    cluster: tuple[KubeSimulator, str, Path], kubectl: Kubectl
) -> None:
    """Created with spec.nodeName, it skips the scheduler; the kubelet rejects it as its
    `rejectPod` does (kubernetes pkg/kubelet/kubelet.go): phase Failed, reason OutOf<resource>,
    "Pod was rejected: " + the message in the status, the message alone in a Warning event."""
    (row,) = table(kubectl("get", "pod", "wants-eight"))
    assert (row["READY"], row["STATUS"]) == ("0/1", "OutOfnvidia.com/gpu")
    described = kubectl("describe", "pod", "wants-eight")
    fields = dict(
        line.split(":", 1) for line in described.split("\nContainers:")[0].splitlines()
        if ":" in line and not line.startswith(" ")
    )  # fmt: skip
    assert fields["Status"].strip() == "Failed"
    assert fields["Reason"].strip() == "OutOfnvidia.com/gpu"
    reason = "Node didn't have enough resource: nvidia.com/gpu, requested: 8, used: 0, capacity: 7"
    assert fields["Message"].strip() == f"Pod was rejected: {reason}"
    events = described.split("\nEvents:\n")[1].splitlines()[2:]
    assert [e.split()[:2] for e in events] == [["Warning", "OutOfnvidia.com/gpu"]], events
    assert events[0].split("  kubelet  ")[1].strip() == reason
