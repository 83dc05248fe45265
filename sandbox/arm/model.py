"""Value types of the ARM simulator: timings, capacity rules, recorded requests, ARM errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SYNCHRONOUS_CAPACITY_CODES = frozenset({"QuotaExceeded", "SkuNotAvailable"})
"""Capacity codes ARM answers on the PUT itself (400); any other code fails the operation later."""


@dataclass(frozen=True)
class ArmTimings:
    """Simulated seconds each operation takes, and what the server tells pollers to wait.

    A registration turns Registered after `*_registration_reads` reads answered "Registering" or
    after `*_registration_seconds` on the clock, whichever comes first.
    `retry_after_seconds` is the Retry-After the server advertises on long-running operations;
    0 makes azure-core fall back to the client's `polling_interval` (what tests want).
    """

    feature_registration_reads: int = 2
    feature_registration_seconds: float = 300.0
    provider_registration_reads: int = 1
    provider_registration_seconds: float = 60.0
    cluster_create_seconds: float = 480.0
    cluster_update_seconds: float = 180.0
    cluster_delete_seconds: float = 300.0
    pool_create_seconds: float = 300.0
    pool_update_seconds: float = 180.0
    pool_delete_seconds: float = 300.0
    retry_after_seconds: int = 15


@dataclass(frozen=True)
class CapacityRule:
    """A capacity or quota answer for pools that match (None matches anything).

    `QuotaExceeded`/`SkuNotAvailable` reject the PUT with 400; other codes (`AllocationFailed`,
    `ZonalAllocationFailed`, `OverconstrainedAllocationRequest`, ...) fail the operation.
    `times` limits how many PUTs the rule answers (None: every one).
    """

    vm_size: str | None
    code: str
    zone: str | None = None
    spot: bool | None = None
    message: str = ""
    times: int | None = None

    def matches(self, vm_size: str, zones: tuple[str, ...], spot: bool) -> bool:
        return (
            (self.vm_size is None or self.vm_size.lower() == vm_size.lower())
            and (self.zone is None or self.zone in zones)
            and (self.spot is None or self.spot == spot)
        )

    def describe(self, vm_size: str) -> str:
        """The message ARM would send, unless the rule has its own."""
        if self.message:
            return self.message
        defaults = {
            "QuotaExceeded": (
                f"Operation could not be completed as it results in exceeding approved cores "
                f"quota for VM size {vm_size}. Submit a request for quota increase."
            ),
            "SkuNotAvailable": (
                f"The requested VM size {vm_size} is currently not available in this location "
                f"or zone for the subscription."
            ),
            "AllocationFailed": (
                f"Allocation failed. We do not have sufficient capacity for the requested VM "
                f"size {vm_size} in this region."
            ),
            "ZonalAllocationFailed": (
                f"Allocation failed. We do not have sufficient capacity for the requested VM "
                f"size {vm_size} in this zone."
            ),
        }
        return defaults.get(self.code, f"{self.code} for VM size {vm_size}.")


@dataclass(frozen=True)
class ArmRequest:
    """One request as the server received it, for tests to assert on."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int
    """The status the simulator answered."""

    def header(self, name: str) -> str | None:
        """A request header by case-insensitive name."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


class ArmError(Exception):
    """An ARM error answer: `{"error": {"code", "message"}}` with an HTTP status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        target: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.target = target
        """The parameter at fault, as AKS names it in `error.target`."""

    def body(self) -> dict[str, Any]:
        error = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        return {"error": error}


@dataclass(frozen=True)
class Reply:
    """What a route answers: status, JSON body (None for no body) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
