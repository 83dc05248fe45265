"""GPU nodes, smoke pods and failure drills in the Kubernetes simulator, seen through clients we
did not write: the `kubernetes` Python client (pod logs, node status) and the pinned kubectl
(`describe node`, `get pods`, `logs`). The product's parsers (shared/proof) read what they fetch.

Aspects covered:
- a healthy node's smoke pods: `nvidia-smi -q` (model, count, driver, CUDA, memory, ECC),
  NVIDIA's vectorAdd sample, `dcgmi diag -r 1`, nccl-tests all_reduce_perf on an 8-GPU size
  reaching the size's bus bandwidth;
- NPD's GPU conditions on the sizes AKS monitors (all False when healthy);
- gpu-missing: one GPU fewer allocatable and in nvidia-smi, GPUMissing True;
- plugin-crashloop: CrashLoopBackOff with a rising restart count and the NVML mismatch in the
  log (default FAIL_ON_INIT_ERROR), or a blocked plugin (FAIL_ON_INIT_ERROR=false); never GPUs;
- xid-error: XIDErrors True in `kubectl describe node`;
- smoke-fails: the next smoke pod fails with the tool's error;
- the drill endpoint: the catalog, the token, an unknown name, an ARM fault through it.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from sandbox import tls
from sandbox.clock import ManualClock
from sandbox.cloud import PoolNodes
from sandbox.kube import KubeSimulator
from sandbox.kube.gpu_stack import gpu_stack
from shared.proof.parsers import (
    gpu_problems,
    parse_all_reduce_perf,
    parse_dcgmi_diag,
    parse_nvidia_smi,
    parse_vectoradd,
)
from tests.sandbox_fixtures import EXAMPLE_CLUSTER_ID, kube_client, write_kubeconfig

KUBECTL = Path(sys.executable).parent / "kubectl"
TOKEN = "sandbox-token"
CLUSTER_ID = EXAMPLE_CLUSTER_ID
T4 = PoolNodes("gpunp", "Standard_NC4as_T4_v3", 1, 1, ("sku=gpu:NoSchedule",))
H100 = PoolNodes("ndpool", "Standard_ND96isr_H100_v5", 1, 8, ("sku=gpu:NoSchedule",))
Api = Any
"""kubernetes.client.CoreV1Api; its stubs want model objects where the API takes dicts too."""
GPU_TOLERATION = {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
SMOKE = {
    "nvidia-smi": ("nvcr.io/nvidia/cuda:12.8.0-base-ubuntu22.04", ["nvidia-smi", "-q"]),
    "vectoradd": ("nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0", None),
    "dcgmi": ("nvcr.io/nvidia/cloud-native/dcgm:4.2.3-1-ubuntu22.04", ["dcgmi", "diag", "-r", "1"]),
    "nccl": ("ghcr.io/coreweave/nccl-tests:12.8.0-devel-ubuntu22.04-nccl2.25.1-1-a4b6d81",
             ["all_reduce_perf", "-b", "8", "-e", "8G", "-f", "2", "-g", "8"]),
}  # fmt: skip


@pytest.fixture
def sim(clock: ManualClock, tmp_path: Path) -> Iterator[KubeSimulator]:
    with KubeSimulator(clock, tls.make_ca(tmp_path / "ca"), entra_token=TOKEN) as simulator:
        simulator.ensure_cluster(CLUSTER_ID)
        yield simulator


@pytest.fixture
def api(sim: KubeSimulator) -> Iterator[Api]:
    with kube_client(sim.ensure_cluster(CLUSTER_ID)) as api_client:
        yield client.CoreV1Api(api_client)


@pytest.fixture
def kubectl(sim: KubeSimulator, tmp_path: Path) -> Any:
    path = write_kubeconfig(sim.ensure_cluster(CLUSTER_ID), tmp_path / "kubeconfig")

    def run(*args: str) -> str:
        done = subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(path), "--cache-dir", str(tmp_path / "cache"),
             *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


def advance(sim: KubeSimulator, clock: ManualClock, seconds: float) -> None:
    clock.advance(seconds)
    sim.settle()


def install_plugin(api: Api, fail_on_init_error: str | None = None) -> None:
    """The NVIDIA device plugin DaemonSet (upstream's default: FAIL_ON_INIT_ERROR unset)."""
    api.create_namespace({"metadata": {"name": "gpu-resources"}})
    container: dict[str, Any] = {
        "name": "nvidia-device-plugin-ctr",
        "image": "nvcr.io/nvidia/k8s-device-plugin:v0.18.0",
    }
    if fail_on_init_error is not None:
        container["env"] = [{"name": "FAIL_ON_INIT_ERROR", "value": fail_on_init_error}]
    apps: Any = client.AppsV1Api(api.api_client)
    apps.create_namespaced_daemon_set(
        "gpu-resources",
        {
            "metadata": {"name": "nvidia-device-plugin-daemonset"},
            "spec": {
                "selector": {"matchLabels": {"name": "nvidia-device-plugin-ds"}},
                "template": {
                    "metadata": {"labels": {"name": "nvidia-device-plugin-ds"}},
                    "spec": {"tolerations": [GPU_TOLERATION], "containers": [container]},
                },
            },
        },
    )


def gpu_node(api: Api, pool: str) -> Any:
    nodes = api.list_node(label_selector=f"kubernetes.azure.com/agentpool={pool}").items
    assert len(nodes) == 1
    return nodes[0]


def run_smoke(
    api: Api, sim: KubeSimulator, clock: ManualClock, tool: str, node: str, gpus: int
) -> tuple[str, str]:
    """One smoke pod pinned to the node with the pool's toleration; (phase, log) at its end."""
    image, command = SMOKE[tool]
    container: dict[str, Any] = {
        "name": tool,
        "image": image,
        "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
    }
    if command:
        container["command"] = command
    name = f"smoke-{tool}"
    api.create_namespaced_pod(
        "default",
        {
            "metadata": {"name": name},
            "spec": {
                "nodeName": node,
                "restartPolicy": "Never",
                "tolerations": [GPU_TOLERATION],
                "containers": [container],
            },
        },
    )
    advance(sim, clock, 120)
    phase = api.read_namespaced_pod(name, "default").status.phase
    return phase, api.read_namespaced_pod_log(name, "default")


def test_a_healthy_t4_node_passes_every_smoke_tool_and_reports_its_stack(
    api: Api, sim: KubeSimulator, clock: ManualClock, kubectl: Any
) -> None:
    sim.set_pool(CLUSTER_ID, T4)
    install_plugin(api)
    advance(sim, clock, 60)
    node = gpu_node(api, "gpunp")
    assert node.status.allocatable["nvidia.com/gpu"] == "1"
    assert gpu_problems(api.api_client.sanitize_for_serialization(node)) == {}

    phase, log = run_smoke(api, sim, clock, "nvidia-smi", node.metadata.name, 1)
    smi = parse_nvidia_smi(log)
    assert phase == "Succeeded"
    assert (smi.model, smi.attached, smi.driver, smi.cuda) == ("Tesla T4", 1, "570.172.08", "12.8")
    assert smi.gpus[0].memory_mib == 15360
    assert smi.gpus[0].ecc_uncorrectable == 0
    assert "Driver Version                            : 570.172.08" in kubectl(
        "logs", "smoke-nvidia-smi"
    )

    phase, log = run_smoke(api, sim, clock, "vectoradd", node.metadata.name, 1)
    assert (phase, parse_vectoradd(log).passed) == ("Succeeded", True)
    phase, log = run_smoke(api, sim, clock, "dcgmi", node.metadata.name, 1)
    diag = parse_dcgmi_diag(log)
    assert phase == "Succeeded"
    assert diag.passed
    assert diag.results["NVML Library"] == "Pass"


def test_an_h100_node_has_npd_conditions_and_its_all_reduce_reaches_the_size_figure(
    api: Api, sim: KubeSimulator, clock: ManualClock
) -> None:
    sim.set_pool(CLUSTER_ID, H100)
    install_plugin(api)
    advance(sim, clock, 60)
    node = gpu_node(api, "ndpool")
    kinds = {c.type: c.status for c in node.status.conditions}
    assert {kinds[k] for k in ("GPUMissing", "XIDErrors", "NVLinkStatusInactive")} == {"False"}
    phase, log = run_smoke(api, sim, clock, "nccl", node.metadata.name, 8)
    nccl = parse_all_reduce_perf(log)
    stack = gpu_stack(H100.vm_size)
    assert stack is not None
    assert phase == "Succeeded"
    assert nccl.gpus == 8
    assert nccl.out_of_bounds == 0
    assert nccl.meets(stack.busbw_gbps)
    assert not nccl.meets(stack.busbw_gbps * 10)


def test_gpu_missing_registers_one_gpu_fewer_and_sets_gpumissing(
    api: Api, sim: KubeSimulator, clock: ManualClock, kubectl: Any
) -> None:
    sim.inject_gpu_fault("gpu-missing")
    sim.set_pool(CLUSTER_ID, H100)
    install_plugin(api)
    advance(sim, clock, 60)
    node = gpu_node(api, "ndpool")
    assert node.status.allocatable["nvidia.com/gpu"] == "7"
    described = kubectl("describe", "node", node.metadata.name)
    assert any(line.split()[:2] == ["GPUMissing", "True"] for line in described.splitlines()), (
        described
    )
    _, log = run_smoke(api, sim, clock, "nvidia-smi", node.metadata.name, 7)
    assert parse_nvidia_smi(log).attached == 7
    api.delete_namespaced_pod("smoke-nvidia-smi", "default")
    advance(sim, clock, 60)
    api.create_namespaced_pod(
        "default",
        {
            "metadata": {"name": "wants-eight"},
            "spec": {
                "nodeName": node.metadata.name,
                "restartPolicy": "Never",
                "tolerations": [GPU_TOLERATION],
                "containers": [
                    {"name": "c", "image": SMOKE["nccl"][0],
                     "resources": {"limits": {"nvidia.com/gpu": "8"}}}
                ],
            },
        },
    )  # fmt: skip
    advance(sim, clock, 5)
    status = api.read_namespaced_pod("wants-eight", "default").status
    assert (status.phase, status.reason) == ("Failed", "OutOfnvidia.com/gpu")
    assert status.message.endswith("requested: 8, used: 0, capacity: 7")


def test_plugin_crashloop_shows_crashloopbackoff_rising_restarts_and_the_nvml_line(
    api: Api, sim: KubeSimulator, clock: ManualClock, kubectl: Any
) -> None:
    sim.inject_gpu_fault("plugin-crashloop")
    sim.set_pool(CLUSTER_ID, T4)
    install_plugin(api)
    advance(sim, clock, 30)
    first = kubectl("get", "pods", "-n", "gpu-resources", "--no-headers").split()
    assert first[2] == "CrashLoopBackOff", first
    advance(sim, clock, 300)
    later = kubectl("get", "pods", "-n", "gpu-resources", "--no-headers").split()
    assert later[2] == "CrashLoopBackOff"
    assert int(later[3]) > int(first[3]) >= 0
    log = kubectl("logs", "-n", "gpu-resources", later[0])
    assert "Failed to initialize NVML: Driver/library version mismatch" in log
    assert "nvidia.com/gpu" not in gpu_node(api, "gpunp").status.allocatable


def test_plugin_with_fail_on_init_error_false_blocks_without_gpus(
    api: Api, sim: KubeSimulator, clock: ManualClock
) -> None:
    sim.inject_gpu_fault("plugin-crashloop")
    sim.set_pool(CLUSTER_ID, T4)
    install_plugin(api, fail_on_init_error="false")
    advance(sim, clock, 120)
    pod = api.list_namespaced_pod("gpu-resources").items[0]
    assert pod.status.phase == "Running"
    log = api.read_namespaced_pod_log(pod.metadata.name, "gpu-resources")
    assert "Driver/library version mismatch" in log
    assert "Waiting indefinitely" in log
    assert "nvidia.com/gpu" not in gpu_node(api, "gpunp").status.allocatable


def test_xid_error_is_a_node_condition_kubectl_describes(
    api: Api, sim: KubeSimulator, clock: ManualClock, kubectl: Any
) -> None:
    sim.inject_gpu_fault("xid-error")
    sim.set_pool(CLUSTER_ID, T4)
    node = gpu_node(api, "gpunp")
    described = kubectl("describe", "node", node.metadata.name)
    row = next(line for line in described.splitlines() if line.strip().startswith("XIDErrors"))
    assert "True" in row.split()
    assert "Xid" in row
    problems = gpu_problems(api.api_client.sanitize_for_serialization(node))
    assert list(problems) == ["XIDErrors"]


def test_smoke_fails_makes_the_next_smoke_pod_fail_with_the_tools_error(
    api: Api, sim: KubeSimulator, clock: ManualClock, kubectl: Any
) -> None:
    sim.set_pool(CLUSTER_ID, T4)
    install_plugin(api)
    advance(sim, clock, 60)
    sim.inject_gpu_fault("smoke-fails")
    node = gpu_node(api, "gpunp").metadata.name
    phase, log = run_smoke(api, sim, clock, "vectoradd", node, 1)
    result = parse_vectoradd(log)
    assert phase == "Failed"
    assert not result.passed
    assert result.detail.startswith("Failed to allocate device vector A")
    assert "Failed to allocate device vector A" in kubectl("logs", "smoke-vectoradd")
    assert kubectl("get", "pod", "smoke-vectoradd", "--no-headers").split()[2] == "Error"
    phase, _ = run_smoke(api, sim, clock, "nvidia-smi", node, 1)
    assert phase == "Succeeded", "one fault, one failure"


def _call(sim: KubeSimulator, ca: str, method: str, path: str, token: str = TOKEN) -> Any:
    request = urllib.request.Request(
        f"{sim.url}{path}", method=method, headers={"Authorization": f"Bearer {token}"}
    )
    context = ssl.create_default_context(cafile=ca)
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_drill_endpoint_lists_injects_and_refuses_strangers(
    api: Api, sim: KubeSimulator, clock: ManualClock
) -> None:
    ca = sim.ensure_cluster(CLUSTER_ID).ca_path
    status, body = _call(sim, ca, "GET", "/drills")
    assert status == 200
    assert {"gpu-missing", "plugin-crashloop", "xid-error", "smoke-fails", "arm-throttling",
            "quota", "allocation-failure", "arm-5xx", "kube-5xx"} <= {
        d["name"] for d in body["drills"]
    }  # fmt: skip
    assert _call(sim, ca, "POST", "/drills/xid-error", token="wrong")[0] == 401
    status, body = _call(sim, ca, "POST", "/drills/no-such-fault")
    assert status == 404
    assert "gpu-missing" in body["message"]
    assert _call(sim, ca, "POST", "/drills/quota")[0] == 409  # no ARM simulator attached here
    status, body = _call(sim, ca, "POST", "/drills/xid-error")
    assert status == 200
    assert body["injected"] == "xid-error"
    sim.set_pool(CLUSTER_ID, T4)
    node = gpu_node(api, "gpunp")
    assert "XIDErrors" in gpu_problems(api.api_client.sanitize_for_serialization(node))
