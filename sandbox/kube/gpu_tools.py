"""What the GPU tools print when a smoke pod runs them on a simulated GPU node.

Each answer keeps the layout of the real tool, from its source or NVIDIA's docs:
- `nvidia-smi -q`: "==============NVSMI LOG==============" then `Key : value` lines, four
  spaces per nesting level (NVIDIA "nvidia-smi.txt" man page, section "-q"; sample output in
  NVIDIA's "GPU Deployment and Management" docs).
- NVIDIA's vectorAdd sample (cuda-samples `Samples/0_Introduction/vectorAdd/vectorAdd.cu`, image
  `nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0`): its printf lines verbatim, "Test
  PASSED" and "Done", or "Failed to allocate device vector A (error code ...)!" on stderr.
- `dcgmi diag -r 1` (DCGM docs "dcgmi diag", example output of run level 1): a table of the
  deployment checks with Pass/Fail/Skip.
- nccl-tests `all_reduce_perf -b 8 -e 8G -f 2 -g N` (NVIDIA/nccl-tests `src/common.cu`): the
  `# nThread ...` header, one `#  Rank` line per GPU, the size table, `# Out of bounds values :
  0 OK` and `# Avg bus bandwidth    : <GB/s>`.
- The NVIDIA device plugin failing NVML init (NVIDIA/k8s-device-plugin#856 for the message
  chain; Azure/AKS#5869 for the driver/library mismatch a node image shipped).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sandbox.kube.gpu_stack import GpuStack
from sandbox.kube.objects import JSON

SMOKE_TOOLS = ("nvidia-smi", "vectoradd", "dcgmi", "nccl")


def smoke_tool(pod: JSON) -> str | None:
    """Which GPU tool a pod's (single) container runs, or None for any other workload."""
    for container in pod["spec"]["containers"]:
        words = " ".join(
            str(part)
            for part in [container.get("image", "")]
            + (container.get("command") or [])
            + (container.get("args") or [])
        )
        if "all_reduce_perf" in words:
            return "nccl"
        if "dcgmi" in words:
            return "dcgmi"
        if "cuda-sample:vectoradd" in words or "vectorAdd" in words:
            return "vectoradd"
        if "nvidia-smi" in words:
            return "nvidia-smi"
    return None


def tool_output(tool: str, stack: GpuStack, gpus: int, node: str, now: float) -> list[str]:
    """A healthy run of the tool on a node with `gpus` GPUs of this stack."""
    if tool == "nvidia-smi":
        return nvidia_smi_q(stack, gpus, node, now)
    if tool == "vectoradd":
        return VECTORADD_PASSED
    if tool == "dcgmi":
        return dcgmi_diag_r1(stack, gpus)
    return all_reduce_perf(stack, gpus, node)


def tool_failure(tool: str, stack: GpuStack) -> list[str]:
    """The same tool when the GPU stack is broken (what `smoke-fails` makes it print)."""
    if tool == "vectoradd":
        return [
            "[Vector addition of 50000 elements]",
            "Failed to allocate device vector A (error code CUDA driver version is insufficient "
            "for CUDA runtime version)!",
        ]
    if tool == "dcgmi":
        return dcgmi_diag_r1(stack, 1, failed="CUDA Main Library")
    return ["Failed to initialize NVML: Driver/library version mismatch", f"NVML library version: "
            f"{stack.driver.rsplit('.', 1)[0]}"]  # fmt: skip


VECTORADD_PASSED = [
    "[Vector addition of 50000 elements]",
    "Copy input data from the host memory to the CUDA device",
    "CUDA kernel launch with 196 blocks of 256 threads",
    "Copy output data from the CUDA device to the host memory",
    "Test PASSED",
    "Done",
]


def _kv(depth: int, key: str, value: object = None) -> str:
    pad = "    " * depth
    if value is None:
        return f"{pad}{key}"
    return f"{pad}{key:<{42 - len(pad)}}: {value}"


def nvidia_smi_q(stack: GpuStack, gpus: int, node: str, now: float) -> list[str]:
    stamp = datetime.fromtimestamp(now, tz=UTC).strftime("%a %b %d %H:%M:%S %Y")
    lines = [
        "",
        "==============NVSMI LOG==============",
        "",
        _kv(0, "Timestamp", stamp),
        _kv(0, "Driver Version", stack.driver),
        _kv(0, "CUDA Version", stack.cuda),
        "",
        _kv(0, "Attached GPUs", gpus),
    ]
    for index in range(gpus):
        used = 0
        lines += [
            _kv(0, f"GPU 0000000{index + 1}:00:00.0"),
            _kv(1, "Product Name", stack.product_name),
            _kv(1, "Product Brand", "NVIDIA"),
            _kv(1, "Product Architecture", stack.architecture),
            _kv(1, "Persistence Mode", "Enabled"),
            _kv(1, "GPU UUID", f"GPU-{uuid.uuid5(uuid.NAMESPACE_DNS, f'{node}/{index}')}"),
            _kv(1, "Minor Number", index),
            _kv(1, "FB Memory Usage"),
            _kv(2, "Total", f"{stack.memory_mib} MiB"),
            _kv(2, "Reserved", "257 MiB"),
            _kv(2, "Used", f"{used} MiB"),
            _kv(2, "Free", f"{stack.memory_mib - 257 - used} MiB"),
            _kv(1, "Compute Mode", "Default"),
            _kv(1, "ECC Mode"),
            _kv(2, "Current", "Enabled"),
            _kv(2, "Pending", "Enabled"),
            _kv(1, "ECC Errors"),
            _kv(2, "Volatile"),
            _kv(3, "SRAM Correctable", 0),
            _kv(3, "SRAM Uncorrectable", 0),
            _kv(3, "DRAM Correctable", 0),
            _kv(3, "DRAM Uncorrectable", 0),
            _kv(2, "Aggregate"),
            _kv(3, "SRAM Correctable", 0),
            _kv(3, "SRAM Uncorrectable", 0),
            _kv(3, "DRAM Correctable", 0),
            _kv(3, "DRAM Uncorrectable", 0),
            _kv(1, "Retired Pages"),
            _kv(2, "Pending Page Blacklist", "No"),
            _kv(1, "Temperature"),
            _kv(2, "GPU Current Temp", "31 C"),
            "",
        ]
    return lines


def dcgmi_diag_r1(stack: GpuStack, gpus: int, failed: str = "") -> list[str]:
    rule = "+---------------------------+------------------------------------------------+"

    def row(name: str, value: str) -> str:
        return f"| {name:<25} | {value:<46} |"

    lines = [
        "Successfully ran diagnostic for group.",
        rule,
        row("Diagnostic", "Result"),
        rule.replace("-", "="),
        "|-----  Metadata  ----------+------------------------------------------------|",
        row("DCGM Version", "4.2.3"),
        row("Driver Version Detected", stack.driver),
        row("GPU Device IDs Detected", ",".join([stack.pci_device_id] * gpus)),
        "|-----  Deployment  --------+------------------------------------------------|",
    ]
    for check in (
        "Denylist", "NVML Library", "CUDA Main Library", "Permissions and OS Blocks",
        "Persistence Mode", "Environment Variables", "Page Retirement/Row Remap",
        "Graphics Processes", "Inforom",
    ):  # fmt: skip
        lines.append(row(check, "Fail" if check == failed else "Pass"))
        if check == failed:
            lines.append(row("Warning", "GPU0: Error using CUDA API cuInit"))
    lines.append(rule)
    return lines


def all_reduce_perf(stack: GpuStack, gpus: int, node: str) -> list[str]:
    lines = [
        "# nThread 1 nGpus "
        f"{gpus} minBytes 8 maxBytes 8589934592 step: 2(factor) warmup iters: 5 iters: 20 "
        "agg iters: 1 validation: 1 graph: 0",
        "#",
        "# Using devices",
    ]
    lines += [
        f"#  Rank {rank:>2} Group  0 Pid      1 on {node} device {rank:>2} "
        f"[0x{rank + 1:02x}] {stack.product_name}"
        for rank in range(gpus)
    ]
    lines += [
        "#",
        "#                                                              out-of-place"
        "                       in-place          ",
        "#       size         count      type   redop    root     time   algbw   busbw #wrong"
        "     time   algbw   busbw #wrong",
        "#        (B)    (elements)                               (us)  (GB/s)  (GB/s)       "
        "     (us)  (GB/s)  (GB/s)       ",
    ]
    factor = 2 * (gpus - 1) / gpus if gpus > 1 else 0.0
    peak = stack.busbw_gbps
    sizes = [8 * 2**power for power in range(0, 31, 3)]
    total = 0.0
    for size in sizes:
        busbw = peak * size / (size + 4_000_000) if factor else 0.0
        algbw = busbw / factor if factor else 0.0
        micros = size / (algbw * 1e3) if algbw else 4.1
        total += busbw
        lines.append(
            f"{size:>12} {size // 4:>13}     float     sum      -1 {micros:>8.2f} {algbw:>7.2f} "
            f"{busbw:>7.2f}      0 {micros:>8.2f} {algbw:>7.2f} {busbw:>7.2f}      0"
        )
    lines += [
        "# Out of bounds values : 0 OK",
        f"# Avg bus bandwidth    : {total / len(sizes):.4f} ",
        "#",
    ]
    return lines


def plugin_crash_log(now: float) -> list[str]:
    """The device plugin when NVML cannot initialise: the driver/library mismatch of a node
    image whose kernel module and user-space library differ (Azure/AKS#5869)."""
    stamp = datetime.fromtimestamp(now, tz=UTC).strftime("%m%d %H:%M:%S.000000")
    return [
        f'I{stamp}       1 main.go:235] "Starting NVIDIA Device Plugin" version="v0.18.0"',
        f"I{stamp}       1 main.go:238] Starting FS watcher for /var/lib/kubelet/device-plugins",
        f"I{stamp}       1 main.go:245] Starting OS watcher.",
        f"I{stamp}       1 main.go:260] Starting Plugins.",
        f"I{stamp}       1 main.go:317] Loading configuration.",
        f"E{stamp}       1 factory.go:68] Failed to initialize NVML: Driver/library version "
        "mismatch.",
        f"E{stamp}       1 factory.go:69] If this is a GPU node, did you set the docker default "
        "runtime to `nvidia`?",
        f"E{stamp}       1 main.go:132] error starting plugins: error creating plugin manager: "
        "unable to create plugin manager: nvml init failed: Driver/library version mismatch",
    ]
