"""The ARM simulator checks, trims and fills in bodies as ARM and AKS do (spec 2026-08-01).

Covers, with the real azure-mgmt clients sending raw JSON bodies: the invalid bodies of issue 13
(bad enum values for `gpuProfile.driver`, `scaleSetPriority`, `gpuInstanceProfile`; pool name
`Bad_Name!`; cluster name `bad_name_`; `api-version=1999-01-01`; a changed `location`), each a
400 with AKS's code; unknown and read-only properties dropped; write-only secrets never returned;
retired VM sizes refused; server defaults (Kubernetes version, orchestratorVersion, maxPods,
nodeImageVersion, upgradeSettings, networkProfile, identity ids, eTag, azurePortalFQDN); preview
capabilities (managed GPU, a custom header) refused until their feature is Registered, which
takes simulated minutes; and the spec's x-ms-examples for the operations served, replayed
(AgentPoolsCreate_ManagedGPU, AgentPoolsCreate_Spot, AgentPoolsDelete, KubernetesVersions_List).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.rest import HttpRequest
from azure.mgmt.containerservice import ContainerServiceClient

from sandbox import tls
from sandbox.arm import ArmSimulator, ArmTimings
from sandbox.clock import ManualClock
from tests.sandbox_fixtures import aks_client

SUBSCRIPTION = "0b1f6471-1bf0-4dda-aec3-111122223333"
GROUP, CLUSTER = "rg-gpu", "aks-gpu"
TOKEN = "sandbox-token"
API = "2026-08-01"
CLUSTER_PATH = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}"
    f"/providers/Microsoft.ContainerService/managedClusters/{CLUSTER}"
)
TIMINGS = ArmTimings(retry_after_seconds=0)


class StaticToken:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(TOKEN, int(time.time()) + 3600)


@pytest.fixture
def sim(clock: ManualClock, tmp_path: Path) -> Iterator[ArmSimulator]:
    ca = tls.make_ca(tmp_path / "ca")
    # As the owner: the app identity's limits are test_arm_authorization.py's subject.
    with ArmSimulator(
        clock, ca, tokens=frozenset({TOKEN}), timings=TIMINGS, app_tokens=frozenset()
    ) as server:
        server.add_resource_group(SUBSCRIPTION, GROUP)
        yield server


@pytest.fixture
def aks(sim: ArmSimulator) -> Iterator[ContainerServiceClient]:
    with aks_client(sim.url, sim.ca.ca_path, SUBSCRIPTION, token=TOKEN) as client:
        yield client


def send(
    aks: ContainerServiceClient,
    method: str,
    path: str,
    body: Any = None,
    api_version: str = API,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """A raw request through the SDK's own pipeline (auth, TLS): status and JSON body."""
    request = HttpRequest(
        method,
        f"{path}?api-version={api_version}",
        json=body,
        headers=headers or {},
    )
    response = aks.send_request(request)
    text = response.text()
    return response.status_code, json.loads(text) if text else None


def cluster_body(**properties: Any) -> dict[str, Any]:
    return {
        "location": "eastus",
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "dnsPrefix": "aksgpu",
            "agentPoolProfiles": [{"name": "system", "count": 1, "mode": "System"}],
            **properties,
        },
    }


@pytest.fixture
def cluster(aks: ContainerServiceClient, sim: ArmSimulator, clock: ManualClock) -> dict[str, Any]:
    status, body = send(aks, "PUT", CLUSTER_PATH, cluster_body())
    assert status == 201, body
    clock.advance(TIMINGS.cluster_create_seconds)
    sim.settle()
    return dict(send(aks, "GET", CLUSTER_PATH)[1])


def pool_body(**properties: Any) -> dict[str, Any]:
    return {"properties": {"count": 1, "vmSize": "Standard_NC4as_T4_v3", **properties}}


@pytest.mark.parametrize(
    ("pool", "properties", "target"),
    [
        pytest.param("gpu", {"gpuProfile": {"driver": "Bogus"}}, "gpuProfile.driver", id="driver"),
        pytest.param("gpu", {"scaleSetPriority": "Cheap"}, "scaleSetPriority", id="priority"),
        pytest.param("gpu", {"gpuInstanceProfile": "MIG9g"}, "gpuInstanceProfile", id="mig"),
        pytest.param(
            "gpu",
            {"gpuProfile": {"nvidia": {"managementMode": "Auto"}}},
            "nvidia.managementMode",
            id="management-mode",
        ),
        pytest.param("Bad_Name!", {}, "agentPoolProfile.name", id="pool-name"),
    ],
)
def test_invalid_pool_bodies_get_400_invalid_parameter(
    aks: ContainerServiceClient,
    cluster: dict[str, Any],
    pool: str,
    properties: dict[str, Any],
    target: str,
) -> None:
    status, body = send(aks, "PUT", f"{CLUSTER_PATH}/agentPools/{pool}", pool_body(**properties))
    assert status == 400
    assert body["error"]["code"] == "InvalidParameter"
    assert target in body["error"]["target"]
    assert target.rsplit(".", 1)[-1] in body["error"]["message"]
    assert send(aks, "GET", f"{CLUSTER_PATH}/agentPools/gpu")[0] == 404


def test_enum_values_are_matched_without_case_and_stored_as_the_spec_spells_them(
    aks: ContainerServiceClient, cluster: dict[str, Any]
) -> None:
    properties = {"scaleSetPriority": "spot", "gpuProfile": {"driver": "install"}}
    status, body = send(aks, "PUT", f"{CLUSTER_PATH}/agentPools/gpu", pool_body(**properties))
    assert status == 201
    assert body["properties"]["scaleSetPriority"] == "Spot"
    assert body["properties"]["gpuProfile"] == {"driver": "Install"}


def test_a_bad_cluster_name_gets_400(aks: ContainerServiceClient) -> None:
    path = CLUSTER_PATH.replace(CLUSTER, "bad_name_")
    status, body = send(aks, "PUT", path, cluster_body())
    assert status == 400
    assert (body["error"]["code"], body["error"]["target"]) == ("InvalidParameter", "resourceName")


def test_an_unknown_api_version_gets_400_invalid_api_version_parameter(
    aks: ContainerServiceClient,
) -> None:
    status, body = send(aks, "PUT", CLUSTER_PATH, cluster_body(), api_version="1999-01-01")
    assert status == 400
    assert body["error"]["code"] == "InvalidApiVersionParameter"
    assert "'1999-01-01'" in body["error"]["message"]
    assert "2026-08-01" in body["error"]["message"]


def test_a_changed_location_gets_400(aks: ContainerServiceClient, cluster: dict[str, Any]) -> None:
    status, body = send(aks, "PUT", CLUSTER_PATH, {**cluster_body(), "location": "westus"})
    assert status == 400
    assert body["error"]["code"] == "InvalidResourceLocation"
    assert send(aks, "GET", CLUSTER_PATH)[1]["location"] == "eastus"


def test_unknown_and_read_only_properties_are_dropped(
    aks: ContainerServiceClient, cluster: dict[str, Any]
) -> None:
    properties = {"colour": "blue", "provisioningState": "Failed", "nodeImageVersion": "mine"}
    status, body = send(aks, "PUT", f"{CLUSTER_PATH}/agentPools/gpu", pool_body(**properties))
    assert status == 201
    assert "colour" not in body["properties"]
    assert body["properties"]["provisioningState"] == "Creating"
    assert body["properties"]["nodeImageVersion"].startswith("AKSUbuntu-")


def test_write_only_secrets_are_never_returned(aks: ContainerServiceClient) -> None:
    body = cluster_body(
        servicePrincipalProfile={"clientId": "msi", "secret": "s3cr3t-value"},
        windowsProfile={"adminUsername": "azureuser", "adminPassword": "P@ssw0rd-value"},
    )
    status, created = send(aks, "PUT", CLUSTER_PATH, body)
    assert status == 201
    for answer in (created, send(aks, "GET", CLUSTER_PATH)[1]):
        text = json.dumps(answer)
        assert "s3cr3t-value" not in text
        assert "P@ssw0rd-value" not in text
        assert answer["properties"]["windowsProfile"] == {"adminUsername": "azureuser"}
        assert answer["properties"]["servicePrincipalProfile"] == {"clientId": "msi"}


@pytest.mark.parametrize("size", ["Standard_NC6", "Standard_NC6s_v3", "standard_nc24s_v2"])
def test_retired_gpu_sizes_are_refused(
    aks: ContainerServiceClient, cluster: dict[str, Any], size: str
) -> None:
    status, body = send(aks, "PUT", f"{CLUSTER_PATH}/agentPools/gpu", pool_body(vmSize=size))
    assert status == 400
    assert body["error"]["code"] == "SkuNotAvailable"
    assert size in body["error"]["message"]


def test_server_defaults_like_aks(cluster: dict[str, Any], aks: ContainerServiceClient) -> None:
    props = cluster["properties"]
    version = props["kubernetesVersion"]
    assert len(version.split(".")) == 3
    assert props["currentKubernetesVersion"] == version
    assert props["azurePortalFQDN"].endswith(".portal.hcp.eastus.azmk8s.io")
    assert props["networkProfile"]["networkPluginMode"] == "overlay"
    assert props["networkProfile"]["serviceCidr"] == "10.0.0.0/16"
    assert cluster["identity"]["principalId"]
    assert cluster["identity"]["tenantId"]
    assert cluster["eTag"]
    (system,) = props["agentPoolProfiles"]
    assert system["orchestratorVersion"] == version
    assert system["maxPods"] == 250
    assert system["upgradeSettings"] == {"maxSurge": "10%"}
    assert system["vmSize"]
    assert system["nodeImageVersion"]
    typed = aks.managed_clusters.get(GROUP, CLUSTER)
    assert typed.properties is not None
    assert typed.properties.kubernetes_version == version


def test_a_minor_version_runs_its_latest_patch(aks: ContainerServiceClient) -> None:
    status, body = send(aks, "PUT", CLUSTER_PATH, cluster_body(kubernetesVersion="1.32"))
    assert status == 201
    assert body["properties"]["kubernetesVersion"] == "1.32"
    assert body["properties"]["currentKubernetesVersion"].startswith("1.32.")
    status, body = send(aks, "PUT", CLUSTER_PATH.replace(CLUSTER, "old"), cluster_body(
        kubernetesVersion="1.20.0"))  # fmt: skip
    assert status == 400
    assert body["error"]["code"] == "AgentPoolK8sVersionNotSupported"


def test_kubernetes_versions_list_has_one_default(aks: ContainerServiceClient) -> None:
    listed = aks.managed_clusters.list_kubernetes_versions("eastus")
    defaults = [v for v in listed.values_property or [] if v.is_default]
    assert len(defaults) == 1
    assert defaults[0].patch_versions


@pytest.mark.parametrize(
    ("properties", "headers", "feature"),
    [
        pytest.param(
            {"gpuProfile": {"nvidia": {"managementMode": "Managed"}}},
            {},
            "ManagedGPUExperiencePreview",
            id="managed-gpu",
        ),
        pytest.param({}, {"UseGPUDedicatedVHD": "true"}, "GPUDedicatedVHDPreview", id="header"),
    ],
)
def test_preview_capabilities_need_their_feature_registered(
    aks: ContainerServiceClient,
    sim: ArmSimulator,
    clock: ManualClock,
    cluster: dict[str, Any],
    properties: dict[str, Any],
    headers: dict[str, str],
    feature: str,
) -> None:
    path = f"{CLUSTER_PATH}/agentPools/gpu"
    features = (
        f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Features/providers/"
        f"Microsoft.ContainerService/features/{feature}"
    )
    status, body = send(aks, "PUT", path, pool_body(**properties), headers=headers)
    assert status == 400
    assert f"Microsoft.ContainerService/{feature}" in body["error"]["message"]

    assert send(aks, "POST", f"{features}/register", api_version="2021-07-01")[0] == 200
    status, body = send(aks, "PUT", path, pool_body(**properties), headers=headers)
    assert status == 400, "Registering is not Registered yet"
    clock.advance(TIMINGS.feature_registration_seconds)
    sim.settle()
    state = send(aks, "GET", features, api_version="2021-07-01")[1]["properties"]["state"]
    assert state == "Registered"
    status, body = send(aks, "PUT", path, pool_body(**properties), headers=headers)
    assert status == 201, body


# -- x-ms-examples of Microsoft.ContainerService 2026-08-01, replayed -----------------------------
# Each request below is the example's `parameters`; the asserts are its documented status codes,
# headers and response fields (values the example echoes from the request; server-chosen values
# such as orchestratorVersion are checked for presence).

EXAMPLE_POOL = "agentpool1"


def replay_pool_put(
    aks: ContainerServiceClient, sim: ArmSimulator, clock: ManualClock, properties: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """PUT the example's pool: (the 201 body, the GET body once Succeeded)."""
    path = f"{CLUSTER_PATH}/agentPools/{EXAMPLE_POOL}"
    status, created = send(aks, "PUT", path, {"properties": properties})
    assert status == 201, created
    assert created["properties"]["provisioningState"] == "Creating"
    assert sim.requests[-1].status == 201
    clock.advance(TIMINGS.pool_create_seconds)
    sim.settle()
    status, done = send(aks, "GET", path)
    assert status == 200
    assert done["properties"]["provisioningState"] == "Succeeded"
    for body in (created, done):
        assert body["name"] == EXAMPLE_POOL
        assert body["type"] == "Microsoft.ContainerService/managedClusters/agentPools"
        assert body["id"] == path
        for key, value in properties.items():
            if key == "nodeLabels":  # AKS adds its own (the spot label), as nodes show
                assert value.items() <= body["properties"][key].items()
            elif value != "":
                assert body["properties"][key] == value, key
    return created, done


def test_replay_agent_pools_create_managed_gpu(
    aks: ContainerServiceClient, sim: ArmSimulator, clock: ManualClock, cluster: dict[str, Any]
) -> None:
    """AgentPoolsCreate_ManagedGPU.json (the feature registered first, as AKS requires)."""
    sim.set_feature_state(
        SUBSCRIPTION, "Microsoft.ContainerService", "ManagedGPUExperiencePreview", "Registered"
    )
    replay_pool_put(aks, sim, clock, {
        "count": 3,
        "gpuProfile": {"driver": "Install", "nvidia": {"managementMode": "Managed"}},
        "mode": "User",
        "osType": "Linux",
        "vmSize": "Standard_NC4as_T4_v3",
    })  # fmt: skip


def test_replay_agent_pools_create_spot(
    aks: ContainerServiceClient, sim: ArmSimulator, clock: ManualClock, cluster: dict[str, Any]
) -> None:
    """AgentPoolsCreate_Spot.json: an empty orchestratorVersion gets the cluster's version."""
    _, done = replay_pool_put(aks, sim, clock, {
        "count": 3,
        "nodeLabels": {"key1": "val1"},
        "orchestratorVersion": "",
        "osType": "Linux",
        "scaleSetEvictionPolicy": "Delete",
        "scaleSetPriority": "Spot",
        "tags": {"name1": "val1"},
        "vmSize": "Standard_DS1_v2",
    })  # fmt: skip
    props = done["properties"]
    assert props["spotMaxPrice"] == -1
    assert props["orchestratorVersion"] == cluster["properties"]["kubernetesVersion"]
    assert props["currentOrchestratorVersion"] == props["orchestratorVersion"]
    assert props["maxPods"] > 0


def test_replay_agent_pools_delete(
    aks: ContainerServiceClient, sim: ArmSimulator, clock: ManualClock, cluster: dict[str, Any]
) -> None:
    """AgentPoolsDelete.json: 202 with a Location to operationresults, then 204 once gone."""
    path = f"{CLUSTER_PATH}/agentPools/system"
    assert send(aks, "DELETE", path)[0] == 202
    clock.advance(TIMINGS.pool_delete_seconds)
    sim.settle()
    assert send(aks, "GET", path)[0] == 404
    assert send(aks, "DELETE", path)[0] == 204


def test_replay_agent_pools_delete_location_header(
    aks: ContainerServiceClient, cluster: dict[str, Any]
) -> None:
    """AgentPoolsDelete.json's `location` header: .../locations/{loc}/operationresults/{id}."""
    path = f"{CLUSTER_PATH}/agentPools/system"
    response = aks.send_request(HttpRequest("DELETE", f"{path}?api-version={API}"))
    assert response.status_code == 202
    location = response.headers["Location"]
    assert f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.ContainerService/locations/" in (
        location
    )
    assert "/operationresults/" in location


def test_replay_kubernetes_versions_list(aks: ContainerServiceClient) -> None:
    """KubernetesVersions_List.json: values with version, capabilities.supportPlan,
    patchVersions.*.upgrades and one isDefault."""
    path = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.ContainerService/locations/eastus"
    status, body = send(aks, "GET", f"{path}/kubernetesVersions")
    assert status == 200
    for entry in body["values"]:
        assert entry["capabilities"] == {"supportPlan": ["KubernetesOfficial"]}
        assert all("upgrades" in patch for patch in entry["patchVersions"].values())
    assert sum(1 for entry in body["values"] if entry.get("isDefault")) == 1
