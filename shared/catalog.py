"""GPU VM sizes AKS can run, and the retired ones with what replaces them (PLATFORM-FACTS.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

DEFAULT_GPU_VM_SIZE = "Standard_NC4as_T4_v3"


@dataclass(frozen=True)
class GpuVmSize:
    """One VM size: what GPUs it carries and whether a new pool can use it."""

    name: str
    gpu_model: str
    gpus: int
    family: str
    mig_capable: bool = False
    retired_on: date | None = None
    replacement: str | None = None
    needs_grid_driver: bool = False
    busbw_gbps: float = 0.0
    """NCCL all-reduce bus bandwidth (GB/s, largest message) a healthy node of a multi-GPU size
    reaches across its GPUs: NVLink sizes from Azure's published ND A100 v4 / ND H100 v5 NCCL
    figures (HPC blog "Performance of ND H100 v5": ~480 GB/s at 8 GB), PCIe sizes bounded by
    their PCIe link (Gen4 x16 ~ 25 GB/s; the T4's Gen3 x16 less). 0 = not measured."""

    @property
    def retired(self) -> bool:
        return self.retired_on is not None


_T4 = "NVIDIA T4"
_A100_80 = "NVIDIA A100 80GB"
_A100_40 = "NVIDIA A100 40GB"
_H100_NVL = "NVIDIA H100 NVL"
_H100 = "NVIDIA H100"
_A10 = "NVIDIA A10"
_K80_RETIRED = date(2023, 9, 6)
_P100_RETIRED = date(2023, 9, 6)
_V100_RETIRED = date(2025, 9, 30)

_SIZES: tuple[GpuVmSize, ...] = (
    GpuVmSize("Standard_NC4as_T4_v3", _T4, 1, "NCasT4_v3"),
    GpuVmSize("Standard_NC8as_T4_v3", _T4, 1, "NCasT4_v3"),
    GpuVmSize("Standard_NC16as_T4_v3", _T4, 1, "NCasT4_v3"),
    GpuVmSize("Standard_NC64as_T4_v3", _T4, 4, "NCasT4_v3", busbw_gbps=11.2),
    GpuVmSize("Standard_NC24ads_A100_v4", _A100_80, 1, "NC_A100_v4", mig_capable=True),
    GpuVmSize("Standard_NC48ads_A100_v4", _A100_80, 2, "NC_A100_v4", mig_capable=True,
              busbw_gbps=21.5),
    GpuVmSize("Standard_NC96ads_A100_v4", _A100_80, 4, "NC_A100_v4", mig_capable=True,
              busbw_gbps=21.5),
    GpuVmSize("Standard_ND96asr_v4", _A100_40, 8, "ND_A100_v4", mig_capable=True, busbw_gbps=228.0),
    GpuVmSize("Standard_NC40ads_H100_v5", _H100_NVL, 1, "NCads_H100_v5", mig_capable=True),
    GpuVmSize("Standard_NC80adis_H100_v5", _H100_NVL, 2, "NCads_H100_v5", mig_capable=True,
              busbw_gbps=24.8),
    GpuVmSize("Standard_ND96isr_H100_v5", _H100, 8, "ND_H100_v5", mig_capable=True,
              busbw_gbps=480.0),
    GpuVmSize("Standard_NV36ads_A10_v5", _A10, 1, "NVadsA10_v5", needs_grid_driver=True),
    GpuVmSize("Standard_NV72ads_A10_v5", _A10, 2, "NVadsA10_v5", needs_grid_driver=True),
    # Retired: new pools cannot use these. The replacement keeps the GPU count.
    GpuVmSize("Standard_NC6", "NVIDIA K80", 1, "NC", retired_on=_K80_RETIRED,
              replacement="Standard_NC4as_T4_v3"),
    GpuVmSize("Standard_NC12", "NVIDIA K80", 2, "NC", retired_on=_K80_RETIRED,
              replacement="Standard_NC64as_T4_v3"),
    GpuVmSize("Standard_NC24", "NVIDIA K80", 4, "NC", retired_on=_K80_RETIRED,
              replacement="Standard_NC64as_T4_v3"),
    GpuVmSize("Standard_NC24r", "NVIDIA K80", 4, "NC", retired_on=_K80_RETIRED,
              replacement="Standard_NC64as_T4_v3"),
    GpuVmSize("Standard_NC6s_v2", "NVIDIA P100", 1, "NCv2", retired_on=_P100_RETIRED,
              replacement="Standard_NC24ads_A100_v4"),
    GpuVmSize("Standard_NC12s_v2", "NVIDIA P100", 2, "NCv2", retired_on=_P100_RETIRED,
              replacement="Standard_NC48ads_A100_v4"),
    GpuVmSize("Standard_NC24s_v2", "NVIDIA P100", 4, "NCv2", retired_on=_P100_RETIRED,
              replacement="Standard_NC96ads_A100_v4"),
    GpuVmSize("Standard_NC24rs_v2", "NVIDIA P100", 4, "NCv2", retired_on=_P100_RETIRED,
              replacement="Standard_NC96ads_A100_v4"),
    GpuVmSize("Standard_NC6s_v3", "NVIDIA V100", 1, "NCv3", retired_on=_V100_RETIRED,
              replacement="Standard_NC24ads_A100_v4"),
    GpuVmSize("Standard_NC12s_v3", "NVIDIA V100", 2, "NCv3", retired_on=_V100_RETIRED,
              replacement="Standard_NC48ads_A100_v4"),
    GpuVmSize("Standard_NC24s_v3", "NVIDIA V100", 4, "NCv3", retired_on=_V100_RETIRED,
              replacement="Standard_NC96ads_A100_v4"),
)  # fmt: skip

_BY_NAME = {size.name.lower(): size for size in _SIZES}


def lookup(name: str) -> GpuVmSize | None:
    """The catalog entry for a VM size, matched case-insensitively as Azure does."""
    return _BY_NAME.get(name.lower())


def current_sizes() -> list[GpuVmSize]:
    """Sizes a new pool can use with the driver AKS installs."""
    return [s for s in _SIZES if not s.retired and not s.needs_grid_driver]
