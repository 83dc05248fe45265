"""The smoke workload: which GPU tools run on each node at a proof level, the pod that runs each
one, and what its output proves.

Images and commands (the same the sandbox's tools answer to, sandbox/kube/gpu_tools.py):
- `nvidia-smi -q` from NVIDIA's CUDA base image, with every GPU of the node (a container sees
  only the GPUs allocated to it, so a count needs them all);
- NVIDIA's vectorAdd sample image (`nvcr.io/nvidia/k8s/cuda-sample`, the GPU Operator's and the
  k8s-device-plugin README's smoke test) on one GPU;
- `dcgmi diag -r 1` from NVIDIA's DCGM image, every GPU;
- nccl-tests `all_reduce_perf -b 8 -e 8G -f 2 -g N` across the node's N GPUs (multi-GPU sizes).
Tools on one node run one after another (each takes the GPUs it needs); nodes run in parallel.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from shared.proof.parsers import (
    parse_all_reduce_perf,
    parse_dcgmi_diag,
    parse_nvidia_smi,
    parse_vectoradd,
)

Tool = Literal["nvidia-smi", "vectoradd", "dcgmi", "nccl"]
SMOKE_LABEL = "gpuprov.io/smoke"
LEVELS: dict[str, tuple[Tool, ...]] = {
    "basic": ("nvidia-smi",),
    "standard": ("nvidia-smi", "vectoradd"),
    "deep": ("nvidia-smi", "vectoradd", "dcgmi", "nccl"),
}


@dataclass(frozen=True)
class ToolSpec:
    image: str
    command: tuple[str, ...]
    all_gpus: bool
    test: str
    """The CTRF test name (with the node after it)."""


TOOLS: dict[Tool, ToolSpec] = {
    "nvidia-smi": ToolSpec("nvcr.io/nvidia/cuda:12.8.0-base-ubuntu22.04",
                           ("nvidia-smi", "-q"), True, "nvidia-smi"),
    "vectoradd": ToolSpec("nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0", (), False,
                          "cuda-vectoradd"),
    "dcgmi": ToolSpec("nvcr.io/nvidia/cloud-native/dcgm:4.2.3-1-ubuntu22.04",
                      ("dcgmi", "diag", "-r", "1"), True, "dcgm-diag-r1"),
    "nccl": ToolSpec("ghcr.io/coreweave/nccl-tests:12.8.0-devel-ubuntu22.04-nccl2.25.1-1-a4b6d81",
                     ("all_reduce_perf", "-b", "8", "-e", "8G", "-f", "2", "-g"), True,
                     "nccl-all-reduce"),
}  # fmt: skip


def tools_for(level: str, gpus: int) -> tuple[Tool, ...]:
    """The tools a node of a size with `gpus` GPUs runs at a level (NCCL needs two or more)."""
    return tuple(tool for tool in LEVELS[level] if tool != "nccl" or gpus > 1)


def pod_name(tool: Tool, node: str, request_id: str) -> str:
    """Deterministic (an activity runs at least once) and distinct per request."""
    digest = hashlib.sha256(request_id.encode()).hexdigest()[:8]
    return f"gpuprov-{tool}-{node}-{digest}"[:253]


def smoke_pod(
    tool: Tool, node: str, gpus: int, request_id: str, labels: dict[str, str],
    tolerations: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """The pod that runs one tool on one node: pinned by nodeName (the kubelet admits it or
    rejects it OutOf<resource>), with the pool's tolerations, never restarted."""
    spec = TOOLS[tool]
    wanted = gpus if spec.all_gpus else 1
    container: dict[str, Any] = {
        "name": tool,
        "image": spec.image,
        "resources": {"limits": {"nvidia.com/gpu": str(wanted)}},
    }
    if spec.command:
        container["command"] = [*spec.command, *([str(gpus)] if tool == "nccl" else [])]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(tool, node, request_id),
            "labels": {**labels, SMOKE_LABEL: tool},
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "tolerations": tolerations,
            "containers": [container],
        },
    }


def judge(tool: Tool, log: str, exit_code: int | None, gpus: int,
          busbw_gbps: float) -> tuple[bool, str, dict[str, object]]:  # fmt: skip
    """Whether a tool's run proves the node: (passed, message, what it found)."""
    if tool == "nvidia-smi":
        smi = parse_nvidia_smi(log)
        ecc = sum(gpu.ecc_uncorrectable or 0 for gpu in smi.gpus)
        found: dict[str, object] = {
            "gpuModel": smi.model, "gpus": smi.attached, "driver": smi.driver, "cuda": smi.cuda,
            "memoryMiB": smi.gpus[0].memory_mib if smi.gpus else None, "eccUncorrectable": ecc,
        }  # fmt: skip
        if smi.error:
            return False, f"nvidia-smi failed: {smi.error}", found
        if smi.attached != gpus:
            return False, f"nvidia-smi sees {smi.attached} of the size's {gpus} GPUs", found
        if ecc:
            return False, f"{ecc} uncorrectable ECC errors", found
        return exit_code == 0, "" if exit_code == 0 else f"exit code {exit_code}", found
    if tool == "vectoradd":
        result = parse_vectoradd(log)
        passed = result.passed and exit_code == 0
        return passed, "" if passed else f"vectorAdd failed: {result.detail}", {}
    if tool == "dcgmi":
        diag = parse_dcgmi_diag(log)
        passed = diag.passed and exit_code == 0
        checks = ", ".join(diag.failed) or log[-200:]
        message = "" if passed else f"dcgmi diag -r 1 failed: {checks}"
        return passed, message, {"dcgmFailed": diag.failed or None}
    nccl = parse_all_reduce_perf(log)
    measured: dict[str, object] = {
        "busbwGBps": nccl.busbw_gbps,
        "expectedBusbwGBps": busbw_gbps or None,
    }
    if busbw_gbps and not nccl.meets(busbw_gbps):
        return False, (f"NCCL all-reduce bus bandwidth {nccl.busbw_gbps} GB/s is below 80% of "
                       f"the size's {busbw_gbps} GB/s"), measured  # fmt: skip
    passed = exit_code == 0 and nccl.out_of_bounds == 0
    return passed, "" if passed else "NCCL all-reduce failed", measured
