"""GPUs per node for the VM sizes AKS offers with NVIDIA GPUs (Azure docs, sizes current in 2026).

The Kubernetes side needs to know how many `nvidia.com/gpu` a node of a pool reports; sizes not
listed here are CPU sizes (0 GPUs). Retired sizes (NC, NCv2, NCv3) are deliberately absent.
"""

from __future__ import annotations

_GPUS_PER_NODE: dict[str, int] = {
    # NCasT4_v3 (NVIDIA T4)
    "standard_nc4as_t4_v3": 1,
    "standard_nc8as_t4_v3": 1,
    "standard_nc16as_t4_v3": 1,
    "standard_nc64as_t4_v3": 4,
    # NC A100 v4
    "standard_nc24ads_a100_v4": 1,
    "standard_nc48ads_a100_v4": 2,
    "standard_nc96ads_a100_v4": 4,
    # ND A100 v4 / NDm A100 v4
    "standard_nd96asr_v4": 8,
    "standard_nd96amsr_a100_v4": 8,
    # NCads H100 v5, NCC H100 v5, ND H100 v5, ND H200 v5
    "standard_nc40ads_h100_v5": 1,
    "standard_nc80adis_h100_v5": 2,
    "standard_ncc40ads_h100_v5": 1,
    "standard_nd96isr_h100_v5": 8,
    "standard_nd96isr_h200_v5": 8,
    # NVadsA10 v5, whole-GPU sizes only (the smaller ones are GPU partitions)
    "standard_nv36ads_a10_v5": 1,
    "standard_nv72ads_a10_v5": 2,
}


def gpus_per_node(vm_size: str) -> int:
    """Whole NVIDIA GPUs on one VM of this size; 0 for CPU (or unknown) sizes."""
    return _GPUS_PER_NODE.get(vm_size.lower(), 0)
