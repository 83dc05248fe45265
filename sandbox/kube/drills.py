"""Failure drills: named faults a user injects into the running sandbox (`gpuprov sandbox
fault NAME`) to watch the provisioner handle each.

GPU faults are the Kubernetes simulator's (controllers/gpu_health.py). The ARM and Kubernetes
API faults map onto what the simulators already support: ARM fault rules (`inject_fault`,
answered before any state change) and capacity rules (`add_capacity_rule`), the Kubernetes
API's fault rules. Codes as ARM and AKS send them (PLATFORM-FACTS.md, "Azure management SDKs":
429 with Retry-After, `QuotaExceeded`, `AllocationFailed`, 5xx).

The control endpoint lives on the Kubernetes simulator's own front server (GET /drills lists
them, POST /drills/{name} injects one), authenticated with the sandbox token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class ArmFaults(Protocol):
    """What a drill needs of the ARM simulator."""

    def inject_fault(
        self,
        method: str,
        path_regex: str,
        count: int,
        status: int,
        code: str,
        retry_after: int | None = None,
        message: str = "",
    ) -> None: ...

    def add_capacity_rule(self, rule: Any) -> None: ...


class KubeFaults(Protocol):
    def inject_gpu_fault(self, name: str, count: int = 1) -> None: ...

    def inject_fault(
        self,
        method: str,
        path_regex: str,
        count: int = 1,
        fault: int | str = 500,
        cluster_id: str | None = None,
    ) -> None: ...


@dataclass(frozen=True)
class Drill:
    name: str
    target: str
    """`kubernetes` or `arm`: which simulator answers it."""
    effect: str
    """What the user will see, in a line."""
    expected: str
    """Where the user sees it (kubectl, or the step that retries or fails)."""


_POOLS = r"/agentPools/[^/]+$"

DRILLS: tuple[Drill, ...] = (
    Drill("gpu-missing", "kubernetes",
          "the next GPU node registers one GPU fewer than its size; NPD sets GPUMissing",
          "verify-gpus fails naming the node and GPUMissing; kubectl describe node shows it"),
    Drill("plugin-crashloop", "kubernetes",
          "the device plugin on the next GPU node crashloops: NVML driver/library mismatch",
          "verify-gpus fails naming the node, the plugin's restarts and its log's NVML error"),
    Drill("xid-error", "kubernetes", "NPD sets XIDErrors on the next GPU node",
          "verify-gpus fails naming the node and XIDErrors with the Xid line"),
    Drill("smoke-fails", "kubernetes", "the next smoke pod's GPU tool fails (exit 1)",
          "verify-gpus fails naming the node and the tool's failure; the proof record has it"),
    Drill("kube-5xx", "kubernetes", "the next 3 Kubernetes API creates (POST) answer 500",
          "the provisioner retries the create (a transient error)"),
    Drill("arm-throttling", "arm",
          "the next 3 agent pool PUTs answer 429 TooManyRequests (Retry-After 1)",
          "create-node-pool waits Retry-After and retries"),
    Drill("arm-5xx", "arm", "the next 2 agent pool PUTs answer 500 InternalServerError",
          "create-node-pool retries (a transient error)"),
    Drill("quota", "arm",
          "the next pool PUT (a new cluster's system pool included) is refused: QuotaExceeded",
          "create-cluster or create-node-pool fails at once with QuotaExceeded"),
    Drill("allocation-failure", "arm",
          "the next pool (a new cluster's system pool included) fails to allocate: "
          "AllocationFailed",
          "create-cluster fails, or create-node-pool moves to the request's next size or zone, "
          "or fails with AllocationFailed"),
)  # fmt: skip

BY_NAME = {drill.name: drill for drill in DRILLS}


class UnknownDrill(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"no fault {name!r}; the faults are: {', '.join(BY_NAME)} "
            "(gpuprov sandbox fault --list says what each does)"
        )


def inject(name: str, kube: KubeFaults, arm: ArmFaults | None) -> Drill:
    """Arm one drill; its description."""
    drill = BY_NAME.get(name)
    if drill is None:
        raise UnknownDrill(name)
    if drill.target == "kubernetes":
        if name == "kube-5xx":
            kube.inject_fault("POST", r"/", 3, 500)
        else:
            kube.inject_gpu_fault(name)
        return drill
    if arm is None:
        raise RuntimeError("this sandbox's Kubernetes simulator has no ARM simulator attached")
    if name == "arm-throttling":
        arm.inject_fault("PUT", _POOLS, 3, 429, "TooManyRequests", retry_after=1)
    elif name == "arm-5xx":
        arm.inject_fault("PUT", _POOLS, 2, 500, "InternalServerError")
    else:
        from sandbox.arm.model import CapacityRule

        code = "QuotaExceeded" if name == "quota" else "AllocationFailed"
        arm.add_capacity_rule(CapacityRule(vm_size=None, code=code, times=1))
    return drill


def listing() -> list[dict[str, str]]:
    return [
        {"name": d.name, "target": d.target, "effect": d.effect, "expected": d.expected}
        for d in DRILLS
    ]
