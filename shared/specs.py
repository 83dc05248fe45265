"""What the request asks ARM for, as pure functions: ownership tags, pool and cluster bodies.

Bodies are camelCase ARM JSON, the form the management SDKs accept and GET returns (`as_dict()`),
so `matches` compares like with like. Time comes in as `now`; nothing here reads a clock.
Custom headers are not part of a body: they go on the pool PUT as HTTP headers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field

from shared.request import NewCluster, ProvisionRequest
from shared.wire import HistoryModel

REQUEST_ID_TAG = "gpuprov-request-id"
OWNER_TAG = "gpuprov-owner"
EXPIRES_AT_TAG = "gpuprov-expires-at"
REQUEST_ID_LABEL = "gpuprov/request-id"
"""Node label on the GPU pool's nodes, so Kubernetes objects can be traced to the request."""
SYSTEM_POOL_NAME = "system"
AKS_RESERVED_PREFIX = "kubernetes.azure.com/"
"""Taints and labels under this prefix are added by AKS (e.g. the spot taint): never sent."""
DNS_PREFIX_MAX = 54

JsonDict = dict[str, Any]


def ownership_tags(request: ProvisionRequest, owner: str, now: datetime) -> dict[str, str]:
    """Tags on everything the request creates; the reaper deletes it after `gpuprov-expires-at`."""
    expires = now.astimezone(UTC) + timedelta(hours=request.cleanup.ttl_hours)
    return {
        REQUEST_ID_TAG: request.request_id,
        OWNER_TAG: owner,
        EXPIRES_AT_TAG: expires.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }


def owned_by(tags: Mapping[str, str] | None, request: ProvisionRequest) -> bool:
    """True when the resource carries this request's id tag (so this request created it)."""
    return (tags or {}).get(REQUEST_ID_TAG) == request.request_id


def pool_body(
    request: ProvisionRequest,
    vm_size: str,
    zones: tuple[str, ...],
    owner: str,
    now: datetime,
) -> JsonDict:
    """The GPU agent pool for one capacity candidate (`vm_size`, `zones`)."""
    pool = request.node_pool
    properties: JsonDict = {
        "count": pool.node_count,
        "vmSize": vm_size,
        "mode": "User",
        "osType": "Linux",
        "nodeTaints": list(pool.taints),
        "nodeLabels": {**pool.labels, REQUEST_ID_LABEL: request.request_id},
        "gpuProfile": {"driver": pool.gpu_driver},
        "tags": ownership_tags(request, owner, now),
    }
    if pool.managed_gpu:
        properties["gpuProfile"]["nvidia"] = {"managementMode": "Managed"}
    if zones:
        properties["availabilityZones"] = list(zones)
    if pool.spot is not None:
        properties["scaleSetPriority"] = "Spot"
        properties["scaleSetEvictionPolicy"] = "Delete"
        properties["spotMaxPrice"] = pool.spot.max_price
    if pool.mig_profile is not None:
        properties["gpuInstanceProfile"] = pool.mig_profile
    if pool.os_disk_size_gb is not None:
        properties["osDiskSizeGB"] = pool.os_disk_size_gb
    return {"properties": properties}


def dns_prefix(cluster_name: str) -> str:
    """AKS dnsPrefix from the cluster name: letters, digits and hyphens, at most 54 characters."""
    return re.sub(r"[^A-Za-z0-9-]", "-", cluster_name)[:DNS_PREFIX_MAX].strip("-").lower()


def cluster_body(request: ProvisionRequest, owner: str, now: datetime) -> JsonDict:
    """A new cluster with its system pool only: the GPU pool is added afterwards by its own PUT,
    so the request's custom headers apply to the GPU pool alone."""
    target = request.target
    if not isinstance(target, NewCluster):
        raise ValueError("only a newCluster target has a cluster body")
    tags = ownership_tags(request, owner, now)
    properties: JsonDict = {
        "dnsPrefix": dns_prefix(target.cluster_name),
        "agentPoolProfiles": [
            {
                "name": SYSTEM_POOL_NAME,
                "count": target.system_node_count,
                "vmSize": target.system_node_vm_size,
                "mode": "System",
                "osType": "Linux",
                "type": "VirtualMachineScaleSets",
                "tags": tags,
            }
        ],
    }
    if target.kubernetes_version is not None:
        properties["kubernetesVersion"] = target.kubernetes_version
    if target.entra_id:
        properties["aadProfile"] = {"managed": True, "enableAzureRBAC": True}
        properties["disableLocalAccounts"] = True
    return {
        "location": request.location,
        "tags": tags,
        "identity": {"type": "SystemAssigned"},
        "properties": properties,
    }


def matches(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Does the existing resource (a GET as camelCase JSON) already have what `desired` sets?

    Only the fields we set are compared. Tags must carry the same request id and owner; the
    expiry is not compared (it is fixed when the resource is created). AKS additions (its
    `kubernetes.azure.com/` taints and labels, defaults we leave out) do not count as changes.
    """
    if "location" in desired and not _same_text(existing.get("location"), desired["location"]):
        return False
    if "identity" in desired and not _subset(existing.get("identity"), desired["identity"]):
        return False
    if "tags" in desired and not _same_owner(existing.get("tags"), desired["tags"]):
        return False
    have = existing.get("properties") or {}
    want = desired.get("properties") or {}
    return all(_property_matches(key, have.get(key), value) for key, value in want.items())


def _property_matches(key: str, have: Any, want: Any) -> bool:
    if key == "tags":
        return _same_owner(have, want)
    if key in ("vmSize", "location"):
        return _same_text(have, want)
    if key == "nodeTaints":
        return sorted(_without_aks(have or [])) == sorted(want)
    if key == "nodeLabels":
        return _subset(have, want)
    if key == "availabilityZones":
        return sorted(have or []) == sorted(want)
    if key == "kubernetesVersion":
        return have is not None and _same_version(str(have), str(want))
    if key == "spotMaxPrice":
        return have is not None and float(have) == float(want)
    if key == "agentPoolProfiles":
        return _pools_match(have or [], want)
    if isinstance(want, dict):
        return _subset(have, want)
    return bool(have == want)


def _pools_match(have: list[Any], want: list[Any]) -> bool:
    by_name = {str(p.get("name", "")).lower(): p for p in have if isinstance(p, dict)}
    for profile in want:
        existing = by_name.get(str(profile["name"]).lower())
        if existing is None:
            return False
        wanted = {k: v for k, v in profile.items() if k != "name"}
        if not all(_property_matches(k, existing.get(k), v) for k, v in wanted.items()):
            return False
    return True


def _same_owner(have: Any, want: Mapping[str, str]) -> bool:
    tags = have if isinstance(have, dict) else {}
    return all(tags.get(key) == want.get(key) for key in (REQUEST_ID_TAG, OWNER_TAG))


def _same_text(have: Any, want: Any) -> bool:
    return isinstance(have, str) and have.lower() == str(want).lower()


def _same_version(have: str, want: str) -> bool:
    """'1.33' is met by '1.33' or '1.33.4' (AKS picks the patch)."""
    return have.split(".")[: len(want.split("."))] == want.split(".")


def _without_aks(taints: list[str]) -> list[str]:
    return [t for t in taints if not t.startswith(AKS_RESERVED_PREFIX)]


def _subset(have: Any, want: Any) -> bool:
    """Every key of `want` is in `have` with an equal value (recursively for objects)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(_subset(have.get(k), v) for k, v in want.items())
    return bool(have == want)


class Candidate(HistoryModel):
    """One capacity try for the GPU pool: a VM size and the zones to ask for."""

    vm_size: str
    zones: list[str] = Field(default_factory=list)


def candidates(request: ProvisionRequest) -> list[Candidate]:
    """The pool's capacity tries, in order; the orchestrator moves on after a capacity error.

    Each size (nodePool.vmSize, then alternativeVmSizes) is tried first with all requested zones,
    then, when several were requested, with each zone alone. No zones: one regional try per size.
    """
    pool = request.node_pool
    tries: list[Candidate] = []
    for size in [pool.vm_size, *pool.alternative_vm_sizes]:
        zones: list[str] = list(pool.zones)
        tries.append(Candidate(vm_size=size, zones=zones))
        if len(zones) > 1:
            tries.extend(Candidate(vm_size=size, zones=[zone]) for zone in zones)
    return tries
