"""Azure VM sizes as the simulated nodes see them: vCPUs, memory and the GPU model."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sandbox.kube.gpu_stack import gpu_stack

_GPU_FAMILIES: tuple[tuple[str, str, str], ...] = (
    (r"_T4_", "Tesla T4", "7.5"),
    (r"A100", "NVIDIA A100 80GB PCIe", "8.0"),
    (r"H100", "NVIDIA H100 NVL", "9.0"),
    (r"A10_", "NVIDIA A10-24Q", "8.6"),
    (r"^Standard_NC\d+s_v3$", "Tesla V100-PCIE-16GB", "7.0"),
    (r"^Standard_NC\d+s_v2$", "Tesla P100-PCIE-16GB", "6.0"),
    (r"^Standard_NC\d+$", "Tesla K80", "3.7"),
)


def vm_shape(vm_size: str) -> tuple[int, int, str, str]:
    """Approximate vCPUs, memory, GPU model and compute capability of an Azure VM size."""
    digits = re.search(r"_[A-Z]+(\d+)", vm_size)
    cpus = int(digits.group(1)) if digits else 4
    memory = cpus * (7 if "NC" in vm_size or "ND" in vm_size else 4)
    stack = gpu_stack(vm_size)  # the name nvidia-smi prints, one place for every tool
    for pattern, model, capability in _GPU_FAMILIES:
        if re.search(pattern, vm_size):
            return cpus, memory, stack.product_name if stack else model, capability
    return cpus, memory, "", ""


@dataclass(frozen=True)
class NodeShape:
    pool: str
    gpus: int
    gpu_model: str
    capability: str
    managed_gpu: bool
