"""The desired ARM bodies and the comparison that makes a second start a no-op.

Covers: ownership tags and their expiry from `now` and ttlHours; the GPU pool body (taints,
labels with the request id, GPU driver, spot without the AKS-added taint, zones, MIG, managed GPU,
OS disk); the cluster body (system pool only, dnsPrefix, version, Entra ID with local accounts
off); `matches` accepting what AKS adds and rejecting another owner, size, count or zones;
the capacity candidates (sizes in order, zones together then alone).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.arm.cluster import cluster_body, dns_prefix
from shared.arm.compare import matches
from shared.arm.pool import candidates, pool_body
from shared.ownership import (
    EXPIRES_AT_TAG,
    OWNER_TAG,
    REQUEST_ID_LABEL,
    REQUEST_ID_TAG,
    Ownership,
)
from tests.builders import build_request as request

NOW = datetime(2026, 11, 23, 21, 30, 15, 123456, tzinfo=UTC)
OWNER = "team-gpuprov"


def properties(body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = body["properties"]
    return result


def test_ownership_tags_name_request_owner_and_expiry_after_ttl() -> None:
    tags = Ownership(OWNER, "req-1").tags(NOW, 4)
    assert tags == {
        REQUEST_ID_TAG: "req-1",
        OWNER_TAG: OWNER,
        EXPIRES_AT_TAG: "2026-11-24T01:30:15Z",
    }


def test_default_pool_is_a_tainted_user_pool_with_the_driver_installed() -> None:
    body = pool_body(request(), "Standard_NC4as_T4_v3", (), OWNER, NOW)
    assert properties(body) == {
        "count": 1,
        "vmSize": "Standard_NC4as_T4_v3",
        "mode": "User",
        "osType": "Linux",
        "nodeTaints": ["sku=gpu:NoSchedule"],
        "nodeLabels": {REQUEST_ID_LABEL: "req-1"},
        "gpuProfile": {"driver": "Install"},
        "tags": Ownership(OWNER, "req-1").tags(NOW, request().cleanup.ttl_hours),
    }


def test_spot_pool_asks_for_spot_but_leaves_the_spot_taint_to_aks() -> None:
    body = pool_body(request(nodePool={"spot": {"maxPrice": 0.5}}), "Standard_NC4as_T4_v3", (),
                     OWNER, NOW)  # fmt: skip
    props = properties(body)
    assert props["scaleSetPriority"] == "Spot"
    assert props["scaleSetEvictionPolicy"] == "Delete"
    assert props["spotMaxPrice"] == 0.5
    assert props["nodeTaints"] == ["sku=gpu:NoSchedule"]


def test_zones_labels_mig_managed_gpu_and_os_disk_are_sent() -> None:
    pool = {
        "vmSize": "Standard_NC24ads_A100_v4",
        "zones": ["1", "2"],
        "labels": {"team": "a"},
        "migProfile": "MIG3g",
        "managedGpu": True,
        "osDiskSizeGb": 256,
    }
    props = properties(pool_body(request(nodePool=pool), "Standard_NC24ads_A100_v4", ("2",),
                                 OWNER, NOW))  # fmt: skip
    assert props["availabilityZones"] == ["2"]
    assert props["nodeLabels"] == {"team": "a", REQUEST_ID_LABEL: "req-1"}
    assert props["gpuInstanceProfile"] == "MIG3g"
    assert props["gpuProfile"] == {"driver": "Install", "nvidia": {"managementMode": "Managed"}}
    assert props["osDiskSizeGB"] == 256


def test_bring_your_own_driver_pool_says_none() -> None:
    props = properties(pool_body(request(nodePool={"gpuDriver": "None"}), "Standard_NC4as_T4_v3",
                                 (), OWNER, NOW))  # fmt: skip
    assert props["gpuProfile"] == {"driver": "None"}


def test_cluster_body_has_only_the_system_pool() -> None:
    target = {
        "kind": "newCluster",
        "clusterName": "my_AKS_cluster",
        "kubernetesVersion": "1.33",
        "systemNodeVmSize": "Standard_D8ds_v5",
        "systemNodeCount": 2,
    }
    body = cluster_body(request(target=target), OWNER, NOW)
    assert body["location"] == "eastus"
    assert body["identity"] == {"type": "SystemAssigned"}
    assert body["tags"][REQUEST_ID_TAG] == "req-1"
    props = properties(body)
    assert props["dnsPrefix"] == "my-aks-cluster"
    assert props["kubernetesVersion"] == "1.33"
    [system] = props["agentPoolProfiles"]
    assert (system["name"], system["mode"], system["vmSize"], system["count"]) == (
        "system",
        "System",
        "Standard_D8ds_v5",
        2,
    )
    assert "aadProfile" not in props
    assert "disableLocalAccounts" not in props


def test_entra_cluster_uses_managed_entra_with_azure_rbac_and_no_local_accounts() -> None:
    target = {"kind": "newCluster", "clusterName": "c", "entraId": True}
    props = properties(cluster_body(request(target=target), OWNER, NOW))
    assert props["aadProfile"] == {"managed": True, "enableAzureRBAC": True}
    assert props["disableLocalAccounts"] is True
    assert "kubernetesVersion" not in props


def test_existing_cluster_has_no_cluster_body() -> None:
    with pytest.raises(ValueError, match="newCluster"):
        cluster_body(request(target={"kind": "existingCluster", "clusterName": "c"}), OWNER, NOW)


def test_dns_prefix_is_deterministic_and_fits_aks_rules() -> None:
    name = "A" * 30 + "_" + "b" * 30
    assert dns_prefix(name) == dns_prefix(name)
    assert len(dns_prefix(name)) == 54
    assert dns_prefix("cluster-") == "cluster"


def as_aks_returns_it(body: dict[str, Any]) -> dict[str, Any]:
    """The pool as GET answers after AKS added its spot marks, defaults and state."""
    returned = json.loads(json.dumps(body))
    props = returned["properties"]
    props["nodeTaints"] = [
        *props["nodeTaints"],
        "kubernetes.azure.com/scalesetpriority=spot:NoSchedule",
    ]
    props["nodeLabels"]["kubernetes.azure.com/scalesetpriority"] = "spot"
    props.update(
        provisioningState="Succeeded", orchestratorVersion="1.33", type="VirtualMachineScaleSets"
    )
    props["vmSize"] = props["vmSize"].lower()
    returned.update(id="/subscriptions/x/…/agentPools/gpunp", name="gpunp")
    return returned


SPOT_ZONAL = request(nodePool={"spot": {}, "zones": ["1", "2"]})
DESIRED = pool_body(SPOT_ZONAL, "Standard_NC4as_T4_v3", ("1", "2"), OWNER, NOW)


def changed(path: str, value: Any) -> dict[str, Any]:
    body = as_aks_returns_it(DESIRED)
    body["properties"][path] = value
    return body


def test_a_pool_as_aks_returns_it_matches_what_was_asked() -> None:
    assert matches(as_aks_returns_it(DESIRED), DESIRED)


def test_a_later_start_with_another_expiry_still_matches() -> None:
    later = pool_body(
        SPOT_ZONAL, "Standard_NC4as_T4_v3", ("2", "1"), OWNER, NOW + timedelta(hours=1)
    )
    assert matches(as_aks_returns_it(DESIRED), later)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param(
            "tags", {REQUEST_ID_TAG: "someone-else", OWNER_TAG: OWNER}, id="other-request"
        ),
        pytest.param("tags", {}, id="untagged"),
        pytest.param("vmSize", "Standard_NC8as_T4_v3", id="other-size"),
        pytest.param("count", 3, id="other-count"),
        pytest.param("availabilityZones", ["1"], id="other-zones"),
        pytest.param("nodeTaints", [], id="taint-missing"),
        pytest.param("scaleSetPriority", "Regular", id="not-spot"),
        pytest.param("gpuProfile", {"driver": "None"}, id="other-driver"),
    ],
)
def test_a_pool_that_differs_does_not_match(field: str, value: Any) -> None:
    assert not matches(changed(field, value), DESIRED)


def test_cluster_matches_with_patch_version_and_aks_defaults() -> None:
    target = {
        "kind": "newCluster",
        "clusterName": "c",
        "kubernetesVersion": "1.33",
        "entraId": True,
    }
    desired = cluster_body(request(target=target), OWNER, NOW)
    returned = json.loads(json.dumps(desired))
    returned["location"] = "EastUS"
    returned["identity"]["principalId"] = "p"
    props = returned["properties"]
    props.update(kubernetesVersion="1.33.4", provisioningState="Succeeded", enableRBAC=True)
    props["aadProfile"]["tenantID"] = "t"
    props["agentPoolProfiles"][0]["provisioningState"] = "Succeeded"
    props["agentPoolProfiles"].append({"name": "gpunp", "vmSize": "Standard_NC4as_T4_v3"})
    assert matches(returned, desired)
    props["kubernetesVersion"] = "1.32.9"
    assert not matches(returned, desired)


def test_candidates_try_each_size_with_all_zones_then_each_zone() -> None:
    pool = {
        "vmSize": "Standard_NC4as_T4_v3",
        "alternativeVmSizes": ["Standard_NC8as_T4_v3"],
        "zones": ["1", "2"],
    }
    tries = [(c.vm_size, c.zones) for c in candidates(request(nodePool=pool))]
    assert tries == [
        ("Standard_NC4as_T4_v3", ["1", "2"]),
        ("Standard_NC4as_T4_v3", ["1"]),
        ("Standard_NC4as_T4_v3", ["2"]),
        ("Standard_NC8as_T4_v3", ["1", "2"]),
        ("Standard_NC8as_T4_v3", ["1"]),
        ("Standard_NC8as_T4_v3", ["2"]),
    ]


def test_regional_pool_has_one_candidate_per_size() -> None:
    pool = {"alternativeVmSizes": ["Standard_NC8as_T4_v3"]}
    tries = [(c.vm_size, c.zones) for c in candidates(request(nodePool=pool))]
    assert tries == [("Standard_NC4as_T4_v3", []), ("Standard_NC8as_T4_v3", [])]
