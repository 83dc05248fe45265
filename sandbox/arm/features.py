"""Preview capabilities AKS only grants to subscriptions that registered the feature behind them.

- `gpuProfile.nvidia.managementMode: Managed` needs `Microsoft.ContainerService/
  ManagedGPUExperiencePreview` (AKS docs "Use fully managed GPU nodes (preview)": register the
  feature, then create the pool).
- A custom header needs its feature, as `az aks nodepool add --aks-custom-headers` documents:
  `UseGPUDedicatedVHD=true` needs `GPUDedicatedVHDPreview` (AKS docs gpu-cluster, before 2025).

The refusal is AKS's own, as users have met it: 400 `BadRequest`, "Feature
Microsoft.ContainerService/<feature> is not enabled. Please see https://aka.ms/aks/previews for
how to enable features." (Azure/AKS-Construction#411 for AKS-KedaPreview,
Azure/terraform-azurerm-avm-ptn-aks-production#26 for EnableAPIServerVnetIntegrationPreview).
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
    """The features the request's preview capabilities need."""
    needed: list[str] = []
    for props in pools:
        nvidia = (props.get("gpuProfile") or {}).get("nvidia") or {}
        if str(nvidia.get("managementMode", "")).lower() == "managed":
            needed.append(MANAGED_GPU_FEATURE)
    for name, value in (headers or {}).items():
        feature = HEADER_FEATURES.get(name.lower())
        if feature and str(value).lower() == "true":
            needed.append(feature)
    return needed


def require_features(
    state: FeatureState,
    subscription: str,
    headers: dict[str, str] | None,
    pools: Iterable[dict[str, Any]],
) -> None:
    """Refuse the PUT when it uses a preview capability whose feature is not Registered."""
    for feature in _needed(headers, pools):
        if state(subscription, NAMESPACE, feature) != "Registered":
            raise ArmError(
                400,
                "BadRequest",
                f"Feature {NAMESPACE}/{feature} is not enabled. Please see "
                "https://aka.ms/aks/previews for how to enable features.",
            )
