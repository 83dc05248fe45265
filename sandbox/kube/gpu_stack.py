"""The GPU stack AKS puts on a node of each VM size: the GPU as nvidia-smi names it, its memory,
the driver AKS installs and the CUDA version that driver reports.

Evidence:
- Driver: AKS installs the 570 CUDA driver branch on NVIDIA sizes since node image 20250806
  (Azure/AKS#5207); the A10 sizes get the GRID driver, 570.211.01 (vGPU 18.6) since
  Azure/aks-gpu#154. A 570 driver reports CUDA 12.8 (NVIDIA CUDA toolkit release notes, table 3:
  12.8 GA needs >= 570.26).
- GPU names and memory as `nvidia-smi` prints them (`Product Name`, `FB Memory Usage/Total`),
  from the Azure VM size pages: NCasT4_v3 (T4 16 GB), NC A100 v4 (A100 80GB PCIe), ND A100 v4
  (A100 40GB SXM4), NCads H100 v5 (H100 NVL 94 GB), ND H100 v5 (H100 80GB HBM3), NVadsA10 v5
  (A10 partitions, GRID: `NVIDIA A10-24Q`).
- The NCCL all-reduce bus bandwidth a healthy node reaches is the size's published figure, kept
  once in the product's catalog (shared/catalog.py `busbw_gbps`, with its evidence).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from shared.catalog import lookup

CUDA_DRIVER = "570.172.08"
GRID_DRIVER = "570.211.01"
CUDA_VERSION = "12.8"

NPD_GPU_SIZES = frozenset({"standard_nd96asr_v4", "standard_nd96isr_h100_v5"})
"""Sizes on which AKS's Node Problem Detector runs its GPU checks today (azure-aks-docs
gpu-health-monitoring.md, FAQ "On which Azure VM sizes ...")."""


@dataclass(frozen=True)
class GpuStack:
    """What the GPU tools see on one node of a VM size."""

    product_name: str
    architecture: str
    memory_mib: int
    driver: str
    pci_device_id: str
    """The PCI device id DCGM lists under `GPU Device IDs Detected`."""
    busbw_gbps: float = 0.0
    """nccl-tests all_reduce_perf bus bandwidth a healthy node of this size reaches."""
    cuda: str = CUDA_VERSION


_STACKS: tuple[tuple[str, GpuStack], ...] = (
    (r"_T4_", GpuStack("Tesla T4", "Turing", 15360, CUDA_DRIVER, "1eb8")),
    (r"^Standard_ND96asr_v4$",
     GpuStack("NVIDIA A100-SXM4-40GB", "Ampere", 40960, CUDA_DRIVER, "20b0")),
    (r"A100", GpuStack("NVIDIA A100 80GB PCIe", "Ampere", 81920, CUDA_DRIVER, "20b5")),
    (r"^Standard_ND96isr_H100_v5$",
     GpuStack("NVIDIA H100 80GB HBM3", "Hopper", 81559, CUDA_DRIVER, "2330")),
    (r"H100", GpuStack("NVIDIA H100 NVL", "Hopper", 95830, CUDA_DRIVER, "2321")),
    (r"A10_", GpuStack("NVIDIA A10-24Q", "Ampere", 24512, GRID_DRIVER, "2236")),
)  # fmt: skip


def gpu_stack(vm_size: str) -> GpuStack | None:
    """The GPU stack of a VM size, or None for a size without NVIDIA GPUs."""
    size = lookup(vm_size)
    for pattern, stack in _STACKS:
        if re.search(pattern, vm_size, re.IGNORECASE):
            return replace(stack, busbw_gbps=size.busbw_gbps if size else 0.0)
    return None


def npd_watches(vm_size: str) -> bool:
    """Whether AKS's Node Problem Detector sets GPU conditions on nodes of this size."""
    return vm_size.lower() in NPD_GPU_SIZES
