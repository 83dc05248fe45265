"""What AKS fills in on a PUT, so a GET answers as a real cluster or pool would.

Shapes follow the Microsoft.ContainerService 2026-08-01 spec and its examples
(KubernetesVersions_List, ManagedClustersGet, AgentPoolsGet); values are AKS's documented
defaults: Azure CNI Overlay networking (podCidr 10.244.0.0/16, serviceCidr 10.0.0.0/16,
dnsServiceIP 10.0.0.10, standard load balancer), maxPods 250 on Overlay, maxSurge 10% on new
pools, a system-assigned identity with principal and tenant ids.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sandbox.arm.identity import SANDBOX_TENANT_ID
from sandbox.arm.model import ArmError

KUBERNETES_VERSIONS: dict[str, tuple[str, ...]] = {
    "1.32": ("1.32.7", "1.32.9"),
    "1.33": ("1.33.3", "1.33.5"),
    "1.34": ("1.34.1",),
}
"""Minor -> patch versions offered in every location of the sandbox, oldest first."""
DEFAULT_MINOR = "1.33"
NODE_IMAGE_VERSION = "AKSUbuntu-2204gen2containerd-202611.04.0"
DEFAULT_VM_SIZE = "Standard_D4ds_v5"
DEFAULT_MAX_PODS = 250
"""AKS's default for Azure CNI Overlay, the default network plugin mode."""


def _latest(minor: str) -> str:
    return KUBERNETES_VERSIONS[minor][-1]


def resolve_version(requested: str | None) -> tuple[str, str]:
    """(kubernetesVersion as stored, the concrete patch version running) for a request."""
    if not requested:
        current = _latest(DEFAULT_MINOR)
        return current, current
    minor = ".".join(requested.split(".")[:2])
    patches = KUBERNETES_VERSIONS.get(minor, ())
    if requested == minor and patches:
        return requested, patches[-1]
    if requested in patches:
        return requested, requested
    raise ArmError(
        400,
        # AKS's answer to an unsupported version on create, as users have met it (e.g.
        # dspace-group/simphera-reference-architecture-azure#29, elastic/cloud-on-k8s#6676)
        "AgentPoolK8sVersionNotSupported",
        f"Version {requested} is not supported in this region. Please use [az aks get-versions] "
        "command to get the supported version list in this region. For more information, please "
        "check https://aka.ms/supported-version-list",
    )


def kubernetes_versions() -> dict[str, Any]:
    """GET .../locations/{location}/kubernetesVersions (ManagedClusters_ListKubernetesVersions)."""
    everything = [p for patches in KUBERNETES_VERSIONS.values() for p in patches]
    values = []
    for minor, patches in KUBERNETES_VERSIONS.items():
        entry: dict[str, Any] = {
            "version": minor,
            "capabilities": {"supportPlan": ["KubernetesOfficial"]},
            "patchVersions": {
                patch: {"upgrades": everything[everything.index(patch) + 1 :]} for patch in patches
            },
        }
        if minor == DEFAULT_MINOR:
            entry["isDefault"] = True
        values.append(entry)
    return {"values": values}


def etag() -> str:
    return str(uuid.uuid4())


def pool_defaults(props: dict[str, Any], *, mode: str, cluster_version: str) -> dict[str, Any]:
    """A pool's properties with AKS's defaults where the request left a value out (or empty)."""
    filled = {k: v for k, v in props.items() if v not in (None, "")}
    filled.setdefault("count", 1)
    filled.setdefault("vmSize", DEFAULT_VM_SIZE)
    filled.setdefault("mode", mode)
    filled.setdefault("osType", "Linux")
    filled.setdefault("osSKU", "Ubuntu")
    filled.setdefault("type", "VirtualMachineScaleSets")
    filled.setdefault("maxPods", DEFAULT_MAX_PODS)
    filled.setdefault("osDiskType", "Managed")
    filled.setdefault("osDiskSizeGB", 128)
    filled.setdefault("enableNodePublicIP", False)
    filled["upgradeSettings"] = {"maxSurge": "10%", **(filled.get("upgradeSettings") or {})}
    stored, current = resolve_version(filled.get("orchestratorVersion") or cluster_version)
    filled["orchestratorVersion"] = stored
    filled["currentOrchestratorVersion"] = current
    filled["nodeImageVersion"] = NODE_IMAGE_VERSION
    filled["eTag"] = etag()
    return filled


def cluster_defaults(
    properties: dict[str, Any], *, name: str, key: str, resource_group: str, location: str
) -> dict[str, Any]:
    """A cluster's properties with AKS's server-side defaults and computed fields."""
    filled = {k: v for k, v in properties.items() if v not in (None, "")}
    stored, current = resolve_version(filled.get("kubernetesVersion"))
    filled["kubernetesVersion"] = stored
    filled["currentKubernetesVersion"] = current
    dns_prefix = str(filled.setdefault("dnsPrefix", f"{name[:10]}-{resource_group[:16]}"))
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    filled["fqdn"] = f"{dns_prefix}-{digest}.hcp.{location}.azmk8s.io"
    filled["azurePortalFQDN"] = f"{dns_prefix}-{digest}.portal.hcp.{location}.azmk8s.io"
    filled.setdefault("nodeResourceGroup", f"MC_{resource_group}_{name}_{location}")
    filled.setdefault("enableRBAC", True)
    filled.setdefault("maxAgentPools", 100)
    filled.setdefault("supportPlan", "KubernetesOfficial")
    network = {
        "networkPlugin": "azure",
        "networkPluginMode": "overlay",
        "networkPolicy": "none",
        "networkDataplane": "azure",
        "podCidr": "10.244.0.0/16",
        "serviceCidr": "10.0.0.0/16",
        "dnsServiceIP": "10.0.0.10",
        "outboundType": "loadBalancer",
        "loadBalancerSku": "standard",
        "ipFamilies": ["IPv4"],
        "podCidrs": ["10.244.0.0/16"],
        "serviceCidrs": ["10.0.0.0/16"],
    }
    filled["networkProfile"] = {**network, **(filled.get("networkProfile") or {})}
    return filled


def identity_defaults(identity: Any, key: str) -> Any:
    """A system-assigned identity gets its principal id (stable per cluster) and tenant id."""
    if not isinstance(identity, dict) or identity.get("type") != "SystemAssigned":
        return identity
    principal = uuid.UUID(hashlib.sha256(key.encode()).hexdigest()[:32], version=4)
    return {**identity, "principalId": str(principal), "tenantId": SANDBOX_TENANT_ID}
