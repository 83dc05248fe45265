"""Does an existing ARM resource already have what we would PUT? (The reconcile's diff.)

Bodies are camelCase ARM JSON, the form the management SDKs accept and GET returns (`as_dict()`),
so existing and desired compare like with like. Only the fields we set are compared; AKS
additions (its `kubernetes.azure.com/` taints and labels, defaults we leave out) are no change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.ownership import OWNER_TAG, REQUEST_ID_TAG, Ownership

AKS_RESERVED_PREFIX = "kubernetes.azure.com/"
"""Taints and labels under this prefix are added by AKS (e.g. the spot taint): never sent."""


def matches(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Does the existing resource (a GET as camelCase JSON) already have what `desired` sets?

    Tags must name the same request and owner; the expiry is not compared (it is fixed when
    the resource is created).
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
    ownership = Ownership(owner=want.get(OWNER_TAG, ""), request_id=want.get(REQUEST_ID_TAG, ""))
    return ownership.owns(have if isinstance(have, dict) else None)


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
