"""What simulated containers print: the seed's TensorFlow MNIST sample and the device plugin."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

from sandbox.kube.hardware import NodeShape
from sandbox.kube.objects import JSON


def _max_steps(pod: JSON) -> int:
    args: list[str] = []
    for container in pod["spec"]["containers"]:
        args += [
            str(arg) for arg in (container.get("command") or []) + (container.get("args") or [])
        ]
    for index, arg in enumerate(args):
        if arg.startswith("--max_steps="):
            return int(arg.split("=", 1)[1])
        if arg == "--max_steps" and index + 1 < len(args):
            return int(args[index + 1])
    return 100


def training_log(pod: JSON, node: NodeShape | None, now: float) -> list[str]:
    """The TensorFlow MNIST sample's output: the GPU it found, then accuracy per 10 steps."""
    stamp = datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    lines = [
        f"{stamp}: I tensorflow/core/platform/cpu_feature_guard.cc:137] Your CPU supports "
        "instructions that this TensorFlow binary was not compiled to use: SSE4.1 SSE4.2 AVX "
        "AVX2 FMA",
    ]
    if node is not None and node.gpu_model:
        major, minor = node.capability.split(".")
        lines += [
            f"{stamp}: I tensorflow/core/common_runtime/gpu/gpu_device.cc:1030] Found device 0 "
            "with properties: ",
            f"name: {node.gpu_model} major: {major} minor: {minor} memoryClockRate(GHz): 1.59",
            "pciBusID: 0001:00:00.0",
            "totalMemory: 15.57GiB freeMemory: 15.27GiB",
            f"{stamp}: I tensorflow/core/common_runtime/gpu/gpu_device.cc:1120] Creating "
            f"TensorFlow device (/device:GPU:0) -> (device: 0, name: {node.gpu_model}, pci bus "
            f"id: 0001:00:00.0, compute capability: {node.capability})",
        ]
    for name, size in (
        ("train-images-idx3-ubyte.gz", 9912422),
        ("train-labels-idx1-ubyte.gz", 28881),
        ("t10k-images-idx3-ubyte.gz", 1648877),
        ("t10k-labels-idx1-ubyte.gz", 4542),
    ):
        lines += [
            f"Successfully downloaded {name} {size} bytes.",
            f"Extracting /tmp/tensorflow/input_data/{name}",
        ]
    noise = random.Random(pod["metadata"]["name"])  # noqa: S311 - not a secret
    for step in range(0, _max_steps(pod), 10):
        accuracy = 0.955 - 0.55 * math.exp(-step / 6) - 0.3 * math.exp(-step / 120)
        accuracy = min(0.99, accuracy + noise.uniform(-0.004, 0.004))
        lines.append(f"Accuracy at step {step}: {round(accuracy, 4)}")
        if step % 100 == 90:
            lines.append(f"Adding run metadata for {step + 9}")
    return lines


def daemon_log(pod: JSON, node: NodeShape | None, now: float) -> list[str]:
    """What the NVIDIA device plugin prints when it registers (other daemons print nothing)."""
    if not any("k8s-device-plugin" in (c.get("image") or "") for c in pod["spec"]["containers"]):
        return []
    stamp = datetime.fromtimestamp(now, tz=UTC).strftime("%m%d %H:%M:%S.000000")
    lines = [f"I{stamp}       1 main.go:235] Starting NVIDIA Device Plugin"]
    if node is None or not node.gpus:
        lines.append(f"I{stamp}       1 factory.go:112] Incompatible platform detected")
        lines.append(f"I{stamp}       1 main.go:381] No devices found. Waiting indefinitely.")
        return lines
    lines += [
        f"I{stamp}       1 server.go:176] Starting GRPC server for 'nvidia.com/gpu'",
        f"I{stamp}       1 server.go:146] Registered device plugin for 'nvidia.com/gpu' with "
        "Kubelet",
    ]
    return lines
