"""Preview capabilities AKS only grants to subscriptions that registered the feature behind them.

- `gpuProfile.nvidia.managementMode: Managed` needs `Microsoft.ContainerService/
  ManagedGPUExperiencePreview` (AKS docs "Use fully managed GPU nodes (preview)": register the
  feature, then create the pool).
- A custom header needs its feature, as `az aks nodepool add --aks-custom-headers` documents:
  `UseGPUDedicatedVHD=true` needs `GPUDedicatedVHDPreview` (AKS docs gpu-cluster, before 2025).

The refusal follows ARM's shape for a property behind an unregistered feature ("The property
'...' is not valid because the '<namespace>/<feature>' feature is not enabled for this
subscription.", MicrosoftDocs/azure-docs#68028), with AKS's 400 `BadRequest`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sandbox.arm.model import ArmError

NAMESPACE = "Microsoft.ContainerService"
MANAGED_GPU_FEATURE = "ManagedGPUExperiencePreview"
HEADER_FEATURES = {"usegpudedicatedvhd": "GPUDedicatedVHDPreview"}
"""Custom header (lower-cased) -> the feature it needs."""

FeatureState = Callable[[str, str, str], str]
"""(subscription, namespace, feature) -> registration state."""


def _needed(headers: dict[str, str] | None, pools: Iterable[dict[str, Any]]) -> list[str]:
    """(what, feature) pairs the request uses."""
    needed: list[str] = []
    for props in pools:
        nvidia = (props.get("gpuProfile") or {}).get("nvidia") or {}
        if str(nvidia.get("managementMode", "")).lower() == "managed":
            needed.append(f"properties.gpuProfile.nvidia.managementMode|{MANAGED_GPU_FEATURE}")
    for name, value in (headers or {}).items():
        feature = HEADER_FEATURES.get(name.lower())
        if feature and str(value).lower() == "true":
            needed.append(f"header {name}|{feature}")
    return needed


def require_features(
    state: FeatureState,
    subscription: str,
    headers: dict[str, str] | None,
    pools: Iterable[dict[str, Any]],
) -> None:
    """Refuse the PUT when it uses a preview capability whose feature is not Registered."""
    for entry in _needed(headers, pools):
        what, feature = entry.split("|")
        if state(subscription, NAMESPACE, feature) != "Registered":
            raise ArmError(
                400,
                "BadRequest",
                f"The property '{what}' is not valid because the '{NAMESPACE}/{feature}' "
                "feature is not enabled for this subscription. Register it with `az feature "
                f"register --namespace {NAMESPACE} --name {feature}`, then re-register the "
                f"provider with `az provider register --namespace {NAMESPACE}`.",
            )
