"""What the proof job printed, read from its log tail: the MNIST sample's last accuracy and GPU.

A pure parser: output it does not recognise (another image, a truncated or garbled tail) gives no
result rather than an error, because the job's outcome comes from its status, not its log.
"""

from __future__ import annotations

import math
import re

from shared.wire import HistoryModel

_ACCURACY = re.compile(
    r"^Accuracy at step (?P<step>\d{1,12}): "
    r"(?P<accuracy>\d{1,3}(?:\.\d{1,12})?(?:[eE]-?\d{1,3})?)\s*$",
    re.MULTILINE,
)
# TensorFlow 1.x: "Found device 0 with properties: \nname: Tesla K80 major: 3 minor: 7 ...";
# 2.x: "Found device 0 with properties: pciBusID: 0001:00:00.0 name: Tesla T4 computeCapability:".
_FOUND_DEVICE = re.compile(r"Found device \d+ with properties:(?P<rest>[^\n]*(?:\n[^\n]*){0,2})")
_NAME_IN_PROPERTIES = re.compile(
    r"\bname: (?P<name>.+?)(?=\s+(?:major|minor|computeCapability|coreClock|pciBusID):|\s*$)",
    re.MULTILINE,
)
_CREATING_DEVICE = re.compile(r"Creating TensorFlow device [^\n]*?\bname: (?P<name>[^,)\n]+)")


class JobResult(HistoryModel):
    """The MNIST sample's outcome as its log shows it."""

    step: int
    """The last step whose accuracy was printed."""
    accuracy: float
    """Test accuracy at that step, 0 to 1."""
    gpu: str | None = None
    """GPU model TensorFlow ran on (e.g. "Tesla T4"), when the tail still shows it."""


def parse_job_result(log: str) -> JobResult | None:
    """The last `Accuracy at step N: X` line and the GPU name; None when there is none."""
    last = None
    for match in _ACCURACY.finditer(log):
        last = match
    if last is None:
        return None
    accuracy = float(last["accuracy"])
    if not math.isfinite(accuracy) or not 0.0 <= accuracy <= 1.0:
        return None
    return JobResult(step=int(last["step"]), accuracy=accuracy, gpu=_gpu_name(log))


def _gpu_name(log: str) -> str | None:
    """Prefer the "Creating TensorFlow device" line: it names the device TensorFlow used."""
    for match in _CREATING_DEVICE.finditer(log):
        name = match["name"].strip()
        if name:
            return name
    for match in _FOUND_DEVICE.finditer(log):
        named = _NAME_IN_PROPERTIES.search(match["rest"])
        if named and named["name"].strip():
            return named["name"].strip()
    return None
