"""Azure Resource Manager simulator: groups, features, providers, managed clusters, agent pools."""

from sandbox.arm.model import (
    SYNCHRONOUS_CAPACITY_CODES,
    ArmError,
    ArmRequest,
    ArmTimings,
    CapacityRule,
)
from sandbox.arm.resources import SPOT_LABEL_KEY, SPOT_TAINT
from sandbox.arm.server import ArmSimulator
from sandbox.arm.vm_sizes import gpus_per_node

__all__ = [
    "SPOT_LABEL_KEY",
    "SPOT_TAINT",
    "SYNCHRONOUS_CAPACITY_CODES",
    "ArmError",
    "ArmRequest",
    "ArmSimulator",
    "ArmTimings",
    "CapacityRule",
    "gpus_per_node",
]
