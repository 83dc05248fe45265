"""GPUs per node for the VM sizes AKS offers with NVIDIA GPUs (Azure docs, sizes current in 2026).

The Kubernetes side needs to know how many `nvidia.com/gpu` a node of a pool reports; sizes not
listed here are CPU sizes (0 GPUs). Retired sizes (NC, NCv2, NCv3) are deliberately absent.
"""

from __future__ import annotations

from sandbox.arm.model import ArmError

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


_RETIRED = {
    # NC (K80) and NCv2 (P100) retired 2023-09-06; NCv3 (V100) NC6s/12s/24s_v3 retired 2025-09-30
    # (Azure docs, "Migrate your NC, NCv2 and NCv3 series VMs"). They exist in no region now.
    "standard_nc6", "standard_nc12", "standard_nc24", "standard_nc24r",
    "standard_nc6s_v2", "standard_nc12s_v2", "standard_nc24s_v2", "standard_nc24rs_v2",
    "standard_nc6s_v3", "standard_nc12s_v3", "standard_nc24s_v3", "standard_nc24rs_v3",
}  # fmt: skip


def refuse_retired(vm_size: str) -> None:
    """A retired size is offered nowhere: ARM refuses the PUT with SkuNotAvailable (400)."""
    if vm_size.lower() in _RETIRED:
        raise ArmError(
            400,
            "SkuNotAvailable",
            f"The requested VM size {vm_size} is currently not available in this location or "
            "zone for the subscription. The size was retired; choose a current size (e.g. "
            "Standard_NC4as_T4_v3).",
        )
