"""Microsoft.Compute Resource SKUs and Usages, consistent with the pools the simulator holds.

Shapes: azure-rest-api-specs, Microsoft.Compute `ResourceSkus_List` (`GET /subscriptions/{sub}/
providers/Microsoft.Compute/skus`, `$filter=location eq '...'`: `resourceType`, `name`, `family`,
`locations`, `locationInfo[].zones`, `capabilities`, `restrictions[].reasonCode`) and
`Usage_List` (`GET .../providers/Microsoft.Compute/locations/{location}/usages`: `unit: Count`,
`currentValue`, `limit`, `name.value`), read by azure-mgmt-compute's `ResourceSku` and `Usage`
models and by `az vm list-skus` / `az vm list-usage`. Family quota names: Azure's "VM families"
tables (e.g. ND-H100-v5-series → `standardNDSH100v5Family`); spot VMs count against the single
regional `lowPriorityCores` bucket, not their family.

Default scenario (documented in README "Sandbox"): every family has 400 vCPUs in every location
except ND H100 v5, which has 0, so the quota refusal path is visible out of the box. Quota is
consumed by the pools the simulator holds and released when they are deleted; a PUT that would
exceed it is refused with `QuotaExceeded` (400), in the words of the real message. A standing
`SkuNotAvailable` capacity rule (no `times`, any priority) is listed as a restriction with
reasonCode `NotAvailableForSubscription`: the SKU list and the PUT's answer agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sandbox.arm.model import ArmError, Reply
from sandbox.arm.vm_sizes import gpus_per_node

LOCATIONS: tuple[str, ...] = (
    "eastus", "eastus2", "southcentralus", "westus2", "westus3", "westeurope", "northeurope",
    "swedencentral", "uksouth", "francecentral", "japaneast", "australiaeast",
)  # fmt: skip
ZONES = ("1", "2", "3")

# name -> (quota family, vCPUs): Azure VM size docs (vCPUs) and the VM families tables.
SIZES: dict[str, tuple[str, int]] = {
    "Standard_D2ds_v5": ("standardDDSv5Family", 2),
    "Standard_D4ds_v5": ("standardDDSv5Family", 4),
    "Standard_D8ds_v5": ("standardDDSv5Family", 8),
    "Standard_D4s_v5": ("standardDSv5Family", 4),
    "Standard_NC4as_T4_v3": ("standardNCASv3_T4Family", 4),
    "Standard_NC8as_T4_v3": ("standardNCASv3_T4Family", 8),
    "Standard_NC16as_T4_v3": ("standardNCASv3_T4Family", 16),
    "Standard_NC64as_T4_v3": ("standardNCASv3_T4Family", 64),
    "Standard_NC24ads_A100_v4": ("StandardNCADSA100v4Family", 24),
    "Standard_NC48ads_A100_v4": ("StandardNCADSA100v4Family", 48),
    "Standard_NC96ads_A100_v4": ("StandardNCADSA100v4Family", 96),
    "Standard_ND96asr_v4": ("standardNDASv4_A100Family", 96),
    "Standard_ND96amsr_A100_v4": ("standardNDAMSv4_A100Family", 96),
    "Standard_NC40ads_H100_v5": ("StandardNCadsH100v5Family", 40),
    "Standard_NC80adis_H100_v5": ("StandardNCadsH100v5Family", 80),
    "Standard_NCC40ads_H100_v5": ("StandardNCCads2023Family", 40),
    "Standard_ND96isr_H100_v5": ("standardNDSH100v5Family", 96),
    "Standard_ND96isr_H200_v5": ("standardNDISRH200V5Family", 96),
    "Standard_NV36ads_A10_v5": ("StandardNVADSA10v5Family", 36),
    "Standard_NV72ads_A10_v5": ("StandardNVADSA10v5Family", 72),
}
_BY_LOWER = {name.lower(): name for name in SIZES}

DEFAULT_FAMILY_LIMIT = 400
DEFAULT_LIMITS: dict[str, int] = {
    "cores": 2000,  # Total Regional vCPUs
    "lowPriorityCores": 500,  # Total Regional Low-priority vCPUs (every spot size)
    "standardNDSH100v5Family": 0,  # no ND H100 v5 quota anywhere: the refusal path, out of the box
}
_LOCALIZED = {
    "cores": "Total Regional vCPUs",
    "lowPriorityCores": "Total Regional Low-priority vCPUs",
    "standardDDSv5Family": "Standard DDSv5 Family vCPUs",
    "standardDSv5Family": "Standard DSv5 Family vCPUs",
    "standardNCASv3_T4Family": "Standard NCASv3_T4 Family vCPUs",
    "StandardNCADSA100v4Family": "Standard NCADS_A100_v4 Family vCPUs",
    "standardNDASv4_A100Family": "Standard NDASv4_A100 Family vCPUs",
    "standardNDAMSv4_A100Family": "Standard NDAMSv4_A100Family vCPUs",
    "StandardNCadsH100v5Family": "Standard NCadsH100v5 Family vCPUs",
    "StandardNCCads2023Family": "Standard NCCads2023 Family vCPUs",
    "standardNDSH100v5Family": "Standard NDSH100v5 Family vCPUs",
    "standardNDISRH200V5Family": "Standard NDISRH200V5 Family vCPUs",
    "StandardNVADSA10v5Family": "Standard NVADSA10v5 Family vCPUs",
}
"""`name.localizedValue`: what `az vm list-usage -o table` prints as Name. As a real listing
shows them (CMASCenter/cyclecloud-cmaq docs/user_guide_cyclecloud/demo/demo-cluster.md: the
regional totals, DDSv5, DSv5, NCASv3_T4, NCADS_A100_v4, NDASv4_A100, NDAMSv4_A100Family —
sic, no space —, NVADSA10v5); the H100 and NCC names as quota requests quote them; H200's by
its siblings' pattern (no real listing found)."""

QUOTA_PAGE = "https://portal.azure.com/#view/Microsoft_Azure_Capacity/QuotaMenuBlade/~/myQuotas"


def size_info(vm_size: str) -> tuple[str, str, int] | None:
    """(canonical name, quota family, vCPUs) of a known size."""
    name = _BY_LOWER.get(vm_size.lower())
    if name is None:
        return None
    family, vcpus = SIZES[name]
    return name, family, vcpus


def _restriction(location: str, zone: str | None) -> dict[str, Any]:
    """ResourceSkuRestrictions: `Location` for the whole region, `Zone` with the zones
    (azure-rest-api-specs `ResourceSkuRestrictions`, `restrictionInfo.zones`). The SKU's
    `locationInfo` keeps every zone: azure-cli's `is_sku_available` subtracts the restricted
    ones, and real `az vm list-skus --all -o table` rows print "1,2,3" beside a Location-only
    restriction (tests/sandbox/test_arm_az_capacity.py drives that CLI)."""
    info: dict[str, Any] = {"locations": [location]}
    if zone is not None:
        info["zones"] = [zone]
    return {
        "type": "Zone" if zone is not None else "Location",
        "values": [location],
        "restrictionInfo": info,
        "reasonCode": "NotAvailableForSubscription",
    }


def _sku(
    name: str, family: str, vcpus: int, location: str, restricted: Iterable[tuple[str, str | None]]
) -> dict[str, Any]:
    return {
        "resourceType": "virtualMachines",
        "name": name,
        "tier": "Standard",
        "size": name.removeprefix("Standard_"),
        "family": family,
        "locations": [location],
        "locationInfo": [{"location": location, "zones": list(ZONES), "zoneDetails": []}],
        "capabilities": [
            {"name": "vCPUs", "value": str(vcpus)},
            {"name": "GPUs", "value": str(gpus_per_node(name))},
            {"name": "LowPriorityCapable", "value": "True"},
            {"name": "HyperVGenerations", "value": "V2"},
        ],
        "restrictions": [
            _restriction(location, zone)
            for size, zone in restricted
            if size.lower() == name.lower()
        ],
    }


def skus(location_filter: str | None, restricted: Iterable[tuple[str, str | None]] = ()) -> Reply:
    """ResourceSkus_List: one entry per size and location (ARM lists a SKU once per location);
    `restricted` (size, zone or None) are the sizes standing SkuNotAvailable rules refuse."""
    restricted = list(restricted)
    locations = LOCATIONS
    if location_filter:
        wanted = location_filter.split("eq", 1)[-1].strip().strip("'\"").lower()
        locations = tuple(loc for loc in LOCATIONS if loc == wanted)
    return Reply(
        200,
        {
            "value": [
                _sku(name, family, vcpus, location, restricted)
                for location in locations
                for name, (family, vcpus) in SIZES.items()
            ]
        },
    )


def _pool_vcpus(props: dict[str, Any]) -> tuple[str, int, bool] | None:
    info = size_info(str(props.get("vmSize") or ""))
    if info is None:
        return None
    count = int(props.get("count") or 0)
    return info[1], info[2] * count, props.get("scaleSetPriority") == "Spot"


def in_use(pools: Iterable[dict[str, Any]]) -> dict[str, int]:
    """vCPUs in use per quota name for these pools' properties (all in one location)."""
    used: dict[str, int] = {}
    for props in pools:
        found = _pool_vcpus(props)
        if found is None:
            continue
        family, vcpus, spot = found
        bucket = "lowPriorityCores" if spot else family
        used[bucket] = used.get(bucket, 0) + vcpus
        if not spot:
            used["cores"] = used.get("cores", 0) + vcpus
    return used


def limit(name: str) -> int:
    return DEFAULT_LIMITS.get(name, DEFAULT_FAMILY_LIMIT)


def usages(location: str, pools: Iterable[dict[str, Any]]) -> Reply:
    """Usage_List for a location: the regional totals and every family, with what pools use."""
    used = in_use(pools)
    names = ["cores", "lowPriorityCores", *sorted({f for f, _ in SIZES.values()})]
    return Reply(
        200,
        {
            "value": [
                {
                    "unit": "Count",
                    "currentValue": used.get(name, 0),
                    "limit": limit(name),
                    "name": {"value": name, "localizedValue": _LOCALIZED[name]},
                }
                for name in names
            ]
        },
    )


def refuse_over_quota(
    location: str, existing: Iterable[dict[str, Any]], new: dict[str, Any]
) -> None:
    """A PUT whose pool would exceed a quota fails with QuotaExceeded, as ARM words it."""
    found = _pool_vcpus(new)
    if found is None:
        return
    family, needed, spot = found
    used = in_use(existing)
    for name in ("lowPriorityCores",) if spot else (family, "cores"):
        current, cap = used.get(name, 0), limit(name)
        if current + needed > cap:
            raise ArmError(
                400,
                "QuotaExceeded",
                f"Operation could not be completed as it results in exceeding approved {name} "
                f"Cores quota. Additional details - Deployment Model: Resource Manager, Location: "
                f"{location}, Current Limit: {cap}, Current Usage: {current}, Additional "
                f"Required: {needed}, (Minimum) New Limit Required: {current + needed}. Submit a "
                f"request for Quota increase at {QUOTA_PAGE} by specifying parameters listed in "
                "the 'Details' section for deployment to succeed.",
            )
