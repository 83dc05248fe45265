"""What Microsoft.Compute says about one location before anything is created: the VM sizes it
offers this subscription (Resource SKUs) and the vCPU quotas with their use (Usages). Read-only.

Shapes: azure-rest-api-specs Microsoft.Compute `ResourceSkus_List` (`restrictions[]` with `type`
Location|Zone, `reasonCode` QuotaId|NotAvailableForSubscription, `restrictionInfo.zones`;
`locationInfo[].zones`; capabilities `vCPUs`, `LowPriorityCapable`) and `Usage_List`
(`name.value` = the quota's name: a family such as `standardNCASv3_T4Family`, `cores` for the
regional total, `lowPriorityCores` for spot), as azure-mgmt-compute's models read them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from azure.mgmt.compute import ComputeManagementClient
from pydantic import Field

from shared.errors import StepError, classified
from shared.wire import HistoryModel


class SkuOffer(HistoryModel):
    """One VM size in one location, as this subscription may use it."""

    name: str
    family: str
    """Its vCPU quota's name (Usages `name.value`)."""
    vcpus: int
    zones: list[str] = Field(default_factory=list)
    """Zones it is offered in, restricted ones removed."""
    restricted: str | None = None
    """reasonCode of a restriction on the whole location (QuotaId, NotAvailableForSubscription)."""
    zone_restriction: str | None = None
    """reasonCode of a restriction on some zones."""
    low_priority: bool = True
    """Whether spot (low-priority) VMs of this size exist."""


class Quota(HistoryModel):
    """One vCPU quota of the location: its limit and what is used of it."""

    name: str
    used: int
    limit: int


class ComputeView(HistoryModel):
    """The location's sizes (by lower-case name) and quotas (by name)."""

    location: str
    skus: dict[str, SkuOffer] = Field(default_factory=dict)
    quotas: dict[str, Quota] = Field(default_factory=dict)
    unchecked: dict[str, str] = Field(default_factory=dict)
    """A part that could not be read ("skus", "usages") and why."""


def read_compute(
    compute: ComputeManagementClient, location: str, sizes: Iterable[str]
) -> ComputeView:
    """Resource SKUs of `sizes` and every vCPU usage in `location`, with the SDK's models."""
    wanted = {size.lower() for size in sizes}
    skus: dict[str, SkuOffer] = {}
    unchecked: dict[str, str] = {}
    listed: list[Any] = _read(
        lambda: list(compute.resource_skus.list(filter=f"location eq '{location}'")),
        "skus",
        unchecked,
    )
    usages: list[Any] = _read(lambda: list(compute.usage.list(location)), "usages", unchecked)
    for sku in listed:
        name = str(sku.name or "")
        if sku.resource_type != "virtualMachines" or name.lower() not in wanted:
            continue
        capabilities = {c.name: c.value for c in sku.capabilities or []}
        offered: set[str] = set()
        for info in sku.location_info or []:
            if str(info.location or "").lower() == location.lower():
                offered.update(info.zones or [])
        restricted = zone_restriction = None
        for restriction in sku.restrictions or []:
            code = restriction.reason_code  # the SDK's str enum: its value is ARM's text
            reason = str(getattr(code, "value", code) or "NotAvailableForSubscription")
            info = restriction.restriction_info
            if restriction.type == "Zone":
                zone_restriction = reason
                offered -= set(info.zones or []) if info is not None else offered
            elif restriction.type == "Location":
                restricted = reason
        skus[name.lower()] = SkuOffer(
            name=name,
            family=str(sku.family or ""),
            vcpus=int(capabilities.get("vCPUs") or 0),
            zones=sorted(offered),
            restricted=restricted,
            zone_restriction=zone_restriction,
            low_priority=str(capabilities.get("LowPriorityCapable", "True")).lower() == "true",
        )
    quotas = {
        str(u.name.value): Quota(name=str(u.name.value), used=int(u.current_value), limit=u.limit)
        for u in usages
        if u.name is not None and u.name.value
    }
    return ComputeView(location=location, skus=skus, quotas=quotas, unchecked=unchecked)


def _read(call: Callable[[], list[Any]], part: str, unchecked: dict[str, str]) -> list[Any]:
    """One read; refused rights leave that part unchecked (the run goes on without its
    judgement: the PUT still meets the real limit), any other failure is the step's."""
    try:
        with classified():
            return call()
    except StepError as error:
        if error.code != "AuthorizationFailed":
            raise
        unchecked[part] = f"{error.code}: {error.message}"
        return []
