"""What the GPU tools print, turned into structured results.

Layouts (the same evidence the sandbox's tools cite): `nvidia-smi -q` is `Key : value` lines
nested by four spaces; NVIDIA's vectorAdd sample ends with "Test PASSED"; `dcgmi diag` prints a
table of `| check | Pass/Fail/Skip/Warn |` rows; nccl-tests prints `# Avg bus bandwidth : X`
and `# Out of bounds values : N OK|FAILED`. A parser never raises on odd input: what it cannot
find is None, and the check that reads it fails with that said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Gpu:
    name: str
    uuid: str
    memory_mib: int | None
    ecc_uncorrectable: int | None
    """Volatile DRAM + SRAM uncorrectable ECC errors since the driver loaded."""


@dataclass(frozen=True)
class NvidiaSmi:
    """`nvidia-smi -q` of one node."""

    driver: str | None
    cuda: str | None
    attached: int | None
    gpus: tuple[Gpu, ...] = ()
    error: str | None = None
    """The line nvidia-smi printed instead of its report (e.g. an NVML init failure)."""

    @property
    def model(self) -> str | None:
        names = {gpu.name for gpu in self.gpus}
        return names.pop() if len(names) == 1 else (", ".join(sorted(names)) or None)


_GPU_SECTION = re.compile(r"^GPU [0-9A-Fa-f]+:[0-9A-Fa-f]+:[0-9A-Fa-f]+\.[0-9A-Fa-f]+$")
"""A GPU's section header: `GPU <PCI bus id>`, e.g. `GPU 00000001:00:00.0`."""


def _tree(text: str) -> dict[str, Any]:
    """`nvidia-smi -q` as nested dicts; repeated keys (one `GPU <bus id>` per GPU) in order."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for raw in text.splitlines():
        if not raw.strip() or raw.startswith("="):
            continue
        depth = (len(raw) - len(raw.lstrip(" "))) // 4
        if _GPU_SECTION.match(raw.strip()):
            key, sep, value = raw.strip(), "", ""
        else:
            key, sep, value = raw.strip().partition(":")
            key = key.strip()
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1]
        if sep and value.strip():
            parent[key] = value.strip()
        else:
            child: dict[str, Any] = {}
            if key.startswith("GPU "):
                parent.setdefault("GPUs", []).append(child)
            else:
                parent[key] = child
            stack.append((depth, child))
    return root


def _int(value: Any) -> int | None:
    match = re.match(r"\s*(\d+)", value) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


def parse_nvidia_smi(text: str) -> NvidiaSmi:
    if "NVSMI LOG" not in text:
        first = next((line.strip() for line in text.splitlines() if line.strip()), "no output")
        return NvidiaSmi(None, None, None, error=first)
    tree = _tree(text)
    gpus = []
    for entry in tree.get("GPUs", []):
        volatile = entry.get("ECC Errors", {}).get("Volatile", {})
        counts = [_int(volatile.get(k)) for k in ("DRAM Uncorrectable", "SRAM Uncorrectable")]
        known = [count for count in counts if count is not None]
        gpus.append(
            Gpu(
                name=str(entry.get("Product Name", "")),
                uuid=str(entry.get("GPU UUID", "")),
                memory_mib=_int(entry.get("FB Memory Usage", {}).get("Total")),
                ecc_uncorrectable=sum(known) if known else None,
            )
        )
    return NvidiaSmi(
        driver=tree.get("Driver Version"),
        cuda=tree.get("CUDA Version"),
        attached=_int(tree.get("Attached GPUs")),
        gpus=tuple(gpus),
    )


@dataclass(frozen=True)
class VectorAdd:
    passed: bool
    detail: str


def parse_vectoradd(text: str) -> VectorAdd:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "Test PASSED" in lines:
        return VectorAdd(True, "Test PASSED")
    failure = next((line for line in lines if line.startswith("Failed")), None)
    return VectorAdd(False, failure or (lines[-1] if lines else "no output"))


@dataclass(frozen=True)
class DcgmDiag:
    passed: bool
    results: dict[str, str] = field(default_factory=dict)
    """Each check's result as dcgmi prints it (Pass, Fail, Skip, Warn)."""
    warnings: tuple[str, ...] = ()

    @property
    def failed(self) -> list[str]:
        return [name for name, result in self.results.items() if result.startswith("Fail")]


_METADATA = {"Diagnostic", "DCGM Version", "Driver Version Detected", "GPU Device IDs Detected"}


def parse_dcgmi_diag(text: str) -> DcgmDiag:
    results: dict[str, str] = {}
    warnings = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0] or cells[0].startswith("-") or cells[0] in _METADATA:
            continue
        if cells[0] == "Warning":
            warnings.append(cells[1])
        else:
            results[cells[0]] = cells[1]
    passed = bool(results) and not any(r.startswith("Fail") for r in results.values())
    return DcgmDiag(passed, results, tuple(warnings))


@dataclass(frozen=True)
class NcclAllReduce:
    gpus: int | None
    avg_busbw_gbps: float | None
    """`# Avg bus bandwidth` (GB/s): the mean over every message size run, small ones too."""
    out_of_bounds: int | None
    busbw_gbps: float | None = None
    """Out-of-place bus bandwidth (GB/s) at the largest message: what a size's figure means."""

    def meets(self, expected_gbps: float, tolerance: float = 0.8) -> bool:
        """Whether the bus bandwidth reaches `tolerance` x the size's expected figure."""
        return (
            self.busbw_gbps is not None
            and self.out_of_bounds == 0
            and self.busbw_gbps >= expected_gbps * tolerance
        )


def parse_all_reduce_perf(text: str) -> NcclAllReduce:
    gpus = re.search(r"^# nThread \d+ nGpus (\d+)", text, re.MULTILINE)
    busbw = re.search(r"^# Avg bus bandwidth\s*:\s*([\d.]+)", text, re.MULTILINE)
    wrong = re.search(r"^# Out of bounds values\s*:\s*(\d+)", text, re.MULTILINE)
    largest: tuple[int, float] | None = None
    for line in text.splitlines():
        fields = line.split()
        if line.startswith("#") or len(fields) < 9 or not fields[0].isdigit():
            continue
        try:
            row = (int(fields[0]), float(fields[7]))
        except ValueError:
            continue
        if largest is None or row[0] >= largest[0]:
            largest = row
    return NcclAllReduce(
        gpus=int(gpus.group(1)) if gpus else None,
        avg_busbw_gbps=float(busbw.group(1)) if busbw else None,
        out_of_bounds=int(wrong.group(1)) if wrong else None,
        busbw_gbps=largest[1] if largest else None,
    )


GPU_CONDITIONS = (
    "GPUMissing", "XIDErrors", "NVLinkStatusInactive", "IBLinkFlapping", "GPUClockThrottling",
    "UnhealthyNvidiaDevicePlugin", "UnhealthyNvidiaDCGMServices",
)  # fmt: skip
"""AKS Node Problem Detector's GPU node conditions: the "GPU only" rows of
learn.microsoft.com/azure/aks/node-problem-detector ("Node conditions": GPUMissing,
NVLinkStatusInactive, XIDErrors, IBLinkFlapping, GPUClockThrottling, and
UnhealthyNvidiaDevicePlugin for managed GPU pools), plus UnhealthyNvidiaDCGMServices, which
aks-managed-gpu-nodes.md ("Verify the managed GPU node pool") lists next to it."""


def gpu_problems(node: dict[str, Any]) -> dict[str, str]:
    """The GPU health conditions set (status True) on a node: type -> message."""
    conditions = (node.get("status") or {}).get("conditions") or []
    return {
        str(c["type"]): str(c.get("message") or c.get("reason") or "")
        for c in conditions
        if c.get("type") in GPU_CONDITIONS and c.get("status") == "True"
    }
