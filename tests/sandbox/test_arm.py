"""The ARM simulator, driven by the real azure-mgmt clients over HTTPS.

Covers: bearer-token authentication (401 without a token or with a wrong one); preview-feature
registration (Registering → Registered, by reads and by simulated time) and listing;
resource-provider re-registration and MissingSubscriptionRegistration; resource groups
(create, check existence, list) and ResourceGroupNotFound; managed-cluster create,
list (by resource group and subscription, with tags) and delete as long-running operations;
listClusterUserCredential kubeconfigs (local account and Entra ID); agent pools with GPU, spot and
zone fields, custom headers in the request log, and what the cluster backend is told; pool
updates (200, backend reconciled); `settle()` finishing due work without a request; an LRO
resumed from a continuation token in a new client; capacity errors (QuotaExceeded on the PUT,
AllocationFailed/ZonalAllocationFailed as failed operations); OperationNotAllowed while a pool
operation runs; ParentResourceNotFound; an injected 429 with Retry-After retried by the SDK.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.core.pipeline.policies import HeadersPolicy
from azure.core.polling import LROPoller
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import AgentPool, ManagedCluster
from azure.mgmt.resource.features import FeatureClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.resources.models import ResourceGroup

from sandbox import tls
from sandbox.arm import SPOT_LABEL_KEY, SPOT_TAINT, ArmSimulator, ArmTimings, CapacityRule
from sandbox.clock import ManualClock
from sandbox.cloud import ClusterAccess, PoolNodes
from sandbox.world import aks_client

SUBSCRIPTION = "0b1f6471-1bf0-4dda-aec3-111122223333"
GROUP = "rg-gpu"
CLUSTER = "aks-gpu"
TOKEN = "sandbox-token"
TIMINGS = ArmTimings(retry_after_seconds=0)
CLUSTER_SECONDS = TIMINGS.cluster_create_seconds
POOL_SECONDS = TIMINGS.pool_create_seconds


class StaticToken:
    """A TokenCredential that always hands out the same bearer token."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


class RecordingBackend:
    """The cluster backend seam, recording what ARM tells the Kubernetes side."""

    def __init__(self, ca_path: Path) -> None:
        self.ca_path = ca_path
        self.clusters: dict[str, bool] = {}
        self.pools: dict[tuple[str, str], PoolNodes] = {}
        self.removed: list[str] = []

    def ensure_cluster(self, cluster_id: str, *, entra_id: bool = False) -> ClusterAccess:
        self.clusters[cluster_id] = entra_id
        return ClusterAccess(
            server=f"https://127.0.0.1:6443/clusters/{cluster_id.rsplit('/', 1)[-1]}",
            token="" if entra_id else "cluster-token",
            ca_path=str(self.ca_path),
        )

    def set_pool(self, cluster_id: str, pool: PoolNodes) -> None:
        self.pools[(cluster_id, pool.pool_name)] = pool

    def remove_pool(self, cluster_id: str, pool_name: str) -> None:
        del self.pools[(cluster_id, pool_name)]
        self.removed.append(f"{cluster_id}/agentPools/{pool_name}")

    def remove_cluster(self, cluster_id: str) -> None:
        del self.clusters[cluster_id]
        self.pools = {k: v for k, v in self.pools.items() if k[0] != cluster_id}
        self.removed.append(cluster_id)


def cluster_id(name: str = CLUSTER, group: str = GROUP) -> str:
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}"
        f"/providers/Microsoft.ContainerService/managedClusters/{name}"
    )


def props(resource: Any) -> Any:
    """A resource's `.properties`, which the SDK types as optional."""
    assert resource.properties is not None
    return resource.properties


def cluster_body(**properties: Any) -> ManagedCluster:
    return ManagedCluster(
        {
            "location": "eastus",
            "tags": {"owner": "gpuprov", "purpose": "test"},
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "dnsPrefix": "aksgpu",
                "agentPoolProfiles": [
                    {"name": "system", "count": 1, "vmSize": "Standard_D4s_v5", "mode": "System"}
                ],
                **properties,
            },
        }
    )


def gpu_pool_body(**properties: Any) -> AgentPool:
    return AgentPool(
        {
            "properties": {
                "count": 2,
                "vmSize": "Standard_NC64as_T4_v3",
                "mode": "User",
                "nodeTaints": ["sku=gpu:NoSchedule"],
                "nodeLabels": {"workload": "gpu"},
                **properties,
            }
        }
    )


@pytest.fixture
def backend(ca: tls.TestCA) -> RecordingBackend:
    return RecordingBackend(ca.ca_path)


@pytest.fixture
def sim(clock: ManualClock, ca: tls.TestCA, backend: RecordingBackend) -> Iterator[ArmSimulator]:
    # As the owner: the app identity's limits are test_arm_authorization.py's subject.
    with ArmSimulator(
        clock, ca, backend, tokens=frozenset({TOKEN}), timings=TIMINGS, app_tokens=frozenset()
    ) as server:
        server.add_resource_group(SUBSCRIPTION, GROUP)
        yield server


def aks_for(sim: ArmSimulator, ca: tls.TestCA, **options: Any) -> ContainerServiceClient:
    """The real AKS client on this module's simulator, with its token unless options say."""
    return aks_client(sim.url, ca.ca_path, SUBSCRIPTION, **{"token": TOKEN, **options},
                      polling_interval=0.01)  # fmt: skip


@pytest.fixture
def aks(sim: ArmSimulator, ca: tls.TestCA) -> Iterator[ContainerServiceClient]:
    with aks_for(sim, ca) as client:
        yield client


def finish(poller: LROPoller[Any], clock: ManualClock, seconds: float) -> Any:
    """Let the simulated operation's time pass, then wait for the SDK poller to see the end."""
    assert not poller.done()
    clock.advance(seconds)
    return poller.result(timeout=10)


def create_cluster(
    aks: ContainerServiceClient, clock: ManualClock, name: str = CLUSTER, **properties: Any
) -> Any:
    poller = aks.managed_clusters.begin_create_or_update(GROUP, name, cluster_body(**properties))
    return finish(poller, clock, CLUSTER_SECONDS)


def create_gpu_pool(aks: ContainerServiceClient, clock: ManualClock) -> Any:
    """The `gpu` pool on the test cluster, its creation waited out on the manual clock."""
    poller = aks.agent_pools.begin_create_or_update(GROUP, CLUSTER, "gpu", gpu_pool_body())
    return finish(poller, clock, POOL_SECONDS)


@pytest.mark.parametrize(
    "unauthenticated_client",
    [
        pytest.param({"authentication_policy": HeadersPolicy()}, id="no-token"),
        pytest.param({"token": "stolen"}, id="wrong-token"),
    ],
)
def test_requests_without_a_valid_bearer_token_get_401(
    sim: ArmSimulator, ca: tls.TestCA, unauthenticated_client: dict[str, Any]
) -> None:
    with (
        aks_for(sim, ca, **unauthenticated_client) as client,
        pytest.raises(ClientAuthenticationError) as caught,
    ):
        client.managed_clusters.get(GROUP, CLUSTER)
    assert caught.value.status_code == 401
    assert caught.value.error is not None
    assert caught.value.error.code in {"AuthenticationFailed", "InvalidAuthenticationToken"}
    assert sim.requests[-1].status == 401


def test_feature_registration_turns_registered_after_reads(
    sim: ArmSimulator, ca: tls.TestCA
) -> None:
    with FeatureClient(
        StaticToken(TOKEN), SUBSCRIPTION, base_url=sim.url, connection_verify=str(ca.ca_path)
    ) as features:
        namespace, name = "Microsoft.ContainerService", "ManagedGPUExperiencePreview"
        assert props(features.features.get(namespace, name)).state == "NotRegistered"
        assert props(features.features.register(namespace, name)).state == "Registering"
        states = [props(features.features.get(namespace, name)).state for _ in range(3)]
        assert states == ["Registering", "Registering", "Registered"]
        listed = {f.name: props(f).state for f in features.features.list(namespace)}
        assert listed == {f"{namespace}/{name}": "Registered"}
        assert [f.name for f in features.features.list_all()] == [f"{namespace}/{name}"]


def test_feature_registration_turns_registered_with_simulated_time(
    sim: ArmSimulator, ca: tls.TestCA, clock: ManualClock
) -> None:
    with FeatureClient(
        StaticToken(TOKEN), SUBSCRIPTION, base_url=sim.url, connection_verify=str(ca.ca_path)
    ) as features:
        features.features.register("Microsoft.ContainerService", "SomePreview")
        clock.advance(TIMINGS.feature_registration_seconds)
        state = props(features.features.get("Microsoft.ContainerService", "SomePreview")).state
        assert state == "Registered"


def test_unregistered_provider_blocks_cluster_put_until_registered(
    sim: ArmSimulator, ca: tls.TestCA, aks: ContainerServiceClient, clock: ManualClock
) -> None:
    namespace = "Microsoft.ContainerService"
    sim.set_provider_state(SUBSCRIPTION, namespace, "NotRegistered")
    with ResourceManagementClient(
        StaticToken(TOKEN), SUBSCRIPTION, base_url=sim.url, connection_verify=str(ca.ca_path)
    ) as resources:
        assert resources.providers.get(namespace).registration_state == "NotRegistered"
        with pytest.raises(HttpResponseError) as caught:
            aks.managed_clusters.begin_create_or_update(GROUP, CLUSTER, cluster_body())
        assert caught.value.status_code == 409
        assert caught.value.error is not None
        assert caught.value.error.code == "MissingSubscriptionRegistration"

        assert resources.providers.register(namespace).registration_state == "Registering"
        assert resources.providers.get(namespace).registration_state == "Registering"
        assert resources.providers.get(namespace).registration_state == "Registered"
    cluster = create_cluster(aks, clock)
    assert props(cluster).provisioning_state == "Succeeded"


def test_cluster_create_is_a_long_running_operation_on_the_clock(
    sim: ArmSimulator, aks: ContainerServiceClient, clock: ManualClock, backend: RecordingBackend
) -> None:
    poller = aks.managed_clusters.begin_create_or_update(GROUP, CLUSTER, cluster_body())
    clock.advance(CLUSTER_SECONDS - 1)
    assert props(aks.managed_clusters.get(GROUP, CLUSTER)).provisioning_state == "Creating"
    assert backend.clusters == {}

    cluster = finish(poller, clock, 1)

    assert props(cluster).provisioning_state == "Succeeded"
    assert cluster.tags == {"owner": "gpuprov", "purpose": "test"}
    assert [p.name for p in props(cluster).agent_pool_profiles] == ["system"]
    assert backend.clusters == {cluster_id(): False}
    system = backend.pools[(cluster_id(), "system")]
    assert (system.vm_size, system.count, system.gpus_per_node) == ("Standard_D4s_v5", 1, 0)
    put = next(r for r in sim.requests if r.method == "PUT")
    assert put.status == 201
    assert put.query["api-version"] == "2026-08-01"


def test_gpu_spot_pool_keeps_fields_records_custom_headers_and_tells_the_backend(
    sim: ArmSimulator, aks: ContainerServiceClient, clock: ManualClock, backend: RecordingBackend
) -> None:
    create_cluster(aks, clock)
    for feature in ("ManagedGPUExperiencePreview", "GPUDedicatedVHDPreview"):  # both need one
        sim.set_feature_state(SUBSCRIPTION, "Microsoft.ContainerService", feature, "Registered")
    body = gpu_pool_body(
        scaleSetPriority="Spot",
        availabilityZones=["1", "2"],
        gpuProfile={"driver": "Install", "nvidia": {"managementMode": "Managed"}},
        osDiskSizeGB=128,
        tags={"job": "smoke"},
    )
    poller = aks.agent_pools.begin_create_or_update(
        GROUP,
        CLUSTER,
        "gpu",
        body,
        headers={"UseGPUDedicatedVHD": "true", "X-Sandbox-Trace": "abc123"},
    )
    pool = props(finish(poller, clock, POOL_SECONDS))

    assert pool.provisioning_state == "Succeeded"
    assert pool.node_taints == ["sku=gpu:NoSchedule", SPOT_TAINT]
    assert pool.node_labels == {"workload": "gpu", SPOT_LABEL_KEY: "spot"}
    assert (pool.spot_max_price, pool.scale_set_eviction_policy) == (-1, "Delete")
    assert pool.gpu_profile.nvidia.management_mode == "Managed"
    assert (pool.os_disk_size_gb, pool.tags) == (128, {"job": "smoke"})
    put = next(r for r in sim.requests if r.method == "PUT" and r.path.endswith("/gpu"))
    assert put.header("usegpudedicatedvhd") == "true"
    assert put.header("X-Sandbox-Trace") == "abc123"
    assert put.body["properties"]["vmSize"] == "Standard_NC64as_T4_v3"
    assert backend.pools[(cluster_id(), "gpu")] == PoolNodes(
        pool_name="gpu",
        vm_size="Standard_NC64as_T4_v3",
        count=2,
        gpus_per_node=4,
        taints=("sku=gpu:NoSchedule", SPOT_TAINT),
        labels={"workload": "gpu", SPOT_LABEL_KEY: "spot"},
        managed_gpu=True,
        zones=("1", "2"),
    )
    listed = props(aks.managed_clusters.get(GROUP, CLUSTER)).agent_pool_profiles
    assert [p.name for p in listed] == ["system", "gpu"]
    assert [p.name for p in aks.agent_pools.list(GROUP, CLUSTER)] == ["system", "gpu"]


def test_pool_update_answers_200_and_reconciles_the_backend(
    sim: ArmSimulator, aks: ContainerServiceClient, clock: ManualClock, backend: RecordingBackend
) -> None:
    create_cluster(aks, clock)
    create_gpu_pool(aks, clock)
    scale = aks.agent_pools.begin_create_or_update(GROUP, CLUSTER, "gpu", gpu_pool_body(count=3))
    assert props(aks.agent_pools.get(GROUP, CLUSTER, "gpu")).provisioning_state == "Updating"
    assert backend.pools[(cluster_id(), "gpu")].count == 2

    assert props(finish(scale, clock, TIMINGS.pool_update_seconds)).count == 3
    assert backend.pools[(cluster_id(), "gpu")].count == 3
    puts = [r for r in sim.requests if r.method == "PUT" and r.path.endswith("/gpu")]
    assert [r.status for r in puts] == [201, 200]


def test_settle_completes_due_operations_without_a_request(
    sim: ArmSimulator, aks: ContainerServiceClient, clock: ManualClock, backend: RecordingBackend
) -> None:
    aks.managed_clusters.begin_create_or_update(GROUP, CLUSTER, cluster_body(), polling=False)
    requests_before = len(sim.requests)
    clock.advance(CLUSTER_SECONDS)
    sim.settle()
    assert len(sim.requests) == requests_before
    assert backend.clusters == {cluster_id(): False}
    assert props(aks.managed_clusters.get(GROUP, CLUSTER)).provisioning_state == "Succeeded"


def test_operation_resumes_from_a_continuation_token_in_a_new_client(
    sim: ArmSimulator, ca: tls.TestCA, aks: ContainerServiceClient, clock: ManualClock
) -> None:
    create_cluster(aks, clock)
    first = aks.agent_pools.begin_create_or_update(GROUP, CLUSTER, "gpu", gpu_pool_body())
    token = first.continuation_token()

    with aks_for(sim, ca) as other:
        resumed = other.agent_pools.begin_create_or_update(
            GROUP, CLUSTER, "gpu", AgentPool(), continuation_token=token
        )
        pool = finish(resumed, clock, POOL_SECONDS)
    assert props(pool).provisioning_state == "Succeeded"
    assert props(first.result(timeout=10)).provisioning_state == "Succeeded"
    assert sum(1 for r in sim.requests if r.method == "PUT") == 2  # cluster + pool, once each


def test_delete_operations_remove_pools_and_clusters(
    aks: ContainerServiceClient, clock: ManualClock, backend: RecordingBackend
) -> None:
    create_cluster(aks, clock)
    create_gpu_pool(aks, clock)

    pool_delete = aks.agent_pools.begin_delete(GROUP, CLUSTER, "gpu")
    assert props(aks.agent_pools.get(GROUP, CLUSTER, "gpu")).provisioning_state == "Deleting"
    finish(pool_delete, clock, TIMINGS.pool_delete_seconds)
    with pytest.raises(ResourceNotFoundError) as caught:
        aks.agent_pools.get(GROUP, CLUSTER, "gpu")
    assert caught.value.error is not None
    assert caught.value.error.code == "ResourceNotFound"
    assert (cluster_id(), "gpu") not in backend.pools

    finish(aks.managed_clusters.begin_delete(GROUP, CLUSTER), clock, TIMINGS.cluster_delete_seconds)
    with pytest.raises(ResourceNotFoundError):
        aks.managed_clusters.get(GROUP, CLUSTER)
    assert backend.removed == [f"{cluster_id()}/agentPools/gpu", cluster_id()]


def test_quota_exceeded_is_answered_on_the_put(
    sim: ArmSimulator, aks: ContainerServiceClient, clock: ManualClock, backend: RecordingBackend
) -> None:
    create_cluster(aks, clock)
    sim.add_capacity_rule(CapacityRule(vm_size="Standard_NC24ads_A100_v4", code="QuotaExceeded"))
    with pytest.raises(HttpResponseError) as caught:
        aks.agent_pools.begin_create_or_update(
            GROUP, CLUSTER, "a100", gpu_pool_body(vmSize="Standard_NC24ads_A100_v4")
        )
    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "QuotaExceeded"
    with pytest.raises(ResourceNotFoundError):
        aks.agent_pools.get(GROUP, CLUSTER, "a100")


@pytest.mark.parametrize("code", ["AllocationFailed", "ZonalAllocationFailed"])
def test_allocation_failure_fails_the_operation(
    sim: ArmSimulator,
    aks: ContainerServiceClient,
    clock: ManualClock,
    backend: RecordingBackend,
    code: str,
) -> None:
    create_cluster(aks, clock)
    sim.add_capacity_rule(CapacityRule(vm_size="Standard_NC64as_T4_v3", zone="2", code=code))
    poller = aks.agent_pools.begin_create_or_update(
        GROUP, CLUSTER, "gpu", gpu_pool_body(availabilityZones=["2"])
    )
    clock.advance(POOL_SECONDS)
    with pytest.raises(HttpResponseError) as caught:
        poller.result(timeout=10)
    assert caught.value.error is not None
    assert caught.value.error.code == code
    assert props(aks.agent_pools.get(GROUP, CLUSTER, "gpu")).provisioning_state == "Failed"
    assert (cluster_id(), "gpu") not in backend.pools


def test_second_operation_on_a_busy_cluster_is_not_allowed(
    aks: ContainerServiceClient, clock: ManualClock
) -> None:
    create_cluster(aks, clock)
    running = aks.agent_pools.begin_create_or_update(GROUP, CLUSTER, "gpu", gpu_pool_body())
    with pytest.raises(HttpResponseError) as pool_put:
        aks.agent_pools.begin_create_or_update(
            GROUP, CLUSTER, "cpu", AgentPool({"properties": {"count": 1}})
        )
    with pytest.raises(HttpResponseError) as cluster_delete:
        aks.managed_clusters.begin_delete(GROUP, CLUSTER)
    for caught in (pool_put, cluster_delete):
        assert caught.value.status_code == 409
        assert caught.value.error is not None
        assert caught.value.error.code == "OperationNotAllowed"
    finish(running, clock, POOL_SECONDS)
    after = aks.agent_pools.begin_create_or_update(
        GROUP, CLUSTER, "cpu", AgentPool({"properties": {}})
    )
    assert props(finish(after, clock, POOL_SECONDS)).provisioning_state == "Succeeded"


def test_pool_under_a_missing_cluster_reports_the_parent(aks: ContainerServiceClient) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        aks.agent_pools.begin_create_or_update(GROUP, "nowhere", "gpu", gpu_pool_body())
    assert caught.value.error is not None
    assert caught.value.error.code == "ParentResourceNotFound"


def test_injected_throttle_is_retried_by_the_sdk(
    sim: ArmSimulator, aks: ContainerServiceClient, clock: ManualClock
) -> None:
    create_cluster(aks, clock)
    sim.inject_fault("PUT", r"/agentPools/gpu$", 1, 429, "TooManyRequests", retry_after=1)
    poller = aks.agent_pools.begin_create_or_update(GROUP, CLUSTER, "gpu", gpu_pool_body())
    assert props(finish(poller, clock, POOL_SECONDS)).provisioning_state == "Succeeded"
    puts = [r for r in sim.requests if r.method == "PUT" and r.path.endswith("/agentPools/gpu")]
    assert [r.status for r in puts] == [429, 201]


def test_injected_fault_matches_any_case_and_is_used_up(
    sim: ArmSimulator, aks: ContainerServiceClient, clock: ManualClock
) -> None:
    """ARM paths are case-insensitive, so a rule written in lower case still catches the SDK's
    `/agentPools/` requests; its count is spent before the request reaches any state."""
    create_cluster(aks, clock)
    sim.inject_fault("put", r"/agentpools/gpu$", 2, 409, "OperationNotAllowed", message="busy")
    for _ in range(2):
        with pytest.raises(HttpResponseError) as caught:
            aks.agent_pools.begin_create_or_update(GROUP, CLUSTER, "gpu", gpu_pool_body())
        assert caught.value.status_code == 409
        assert caught.value.error is not None
        assert (caught.value.error.code, caught.value.error.message) == (
            "OperationNotAllowed",
            "busy",
        )
    poller = aks.agent_pools.begin_create_or_update(GROUP, CLUSTER, "gpu", gpu_pool_body())
    assert props(finish(poller, clock, POOL_SECONDS)).provisioning_state == "Succeeded"


def test_clusters_need_an_existing_resource_group(
    sim: ArmSimulator, ca: tls.TestCA, aks: ContainerServiceClient, clock: ManualClock
) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        aks.managed_clusters.begin_create_or_update("rg-later", CLUSTER, cluster_body())
    assert caught.value.error is not None
    assert caught.value.error.code == "ResourceGroupNotFound"

    with ResourceManagementClient(
        StaticToken(TOKEN), SUBSCRIPTION, base_url=sim.url, connection_verify=str(ca.ca_path)
    ) as resources:
        assert not resources.resource_groups.check_existence("rg-later")
        resources.resource_groups.create_or_update(
            "rg-later", ResourceGroup(location="westeurope", tags={"team": "ml"})
        )
        assert resources.resource_groups.check_existence("rg-later")
        assert resources.resource_groups.get("rg-later").tags == {"team": "ml"}
        assert {g.name for g in resources.resource_groups.list()} == {GROUP, "rg-later"}
    poller = aks.managed_clusters.begin_create_or_update("rg-later", CLUSTER, cluster_body())
    assert props(finish(poller, clock, CLUSTER_SECONDS)).provisioning_state == "Succeeded"


def test_clusters_list_by_resource_group_and_subscription_with_tags(
    sim: ArmSimulator, aks: ContainerServiceClient, clock: ManualClock
) -> None:
    sim.add_resource_group(SUBSCRIPTION, "rg-other")
    create_cluster(aks, clock, "first")
    other = cluster_body()
    other["tags"] = {"owner": "someone-else"}
    finish(
        aks.managed_clusters.begin_create_or_update("rg-other", "second", other),
        clock,
        CLUSTER_SECONDS,
    )

    in_group = {c.name: c.tags for c in aks.managed_clusters.list_by_resource_group(GROUP)}
    everywhere = {c.name: c.tags for c in aks.managed_clusters.list()}

    assert in_group == {"first": {"owner": "gpuprov", "purpose": "test"}}
    assert everywhere == {**in_group, "second": {"owner": "someone-else"}}


@pytest.mark.parametrize(
    ("properties", "expect_exec"),
    [
        pytest.param({}, False, id="local-account"),
        pytest.param(
            {"aadProfile": {"managed": True, "enableAzureRBAC": True}}, True, id="entra-id"
        ),
    ],
)
def test_user_credential_is_a_kubeconfig_for_the_backend_cluster(
    aks: ContainerServiceClient,
    clock: ManualClock,
    ca: tls.TestCA,
    backend: RecordingBackend,
    properties: dict[str, Any],
    expect_exec: bool,
) -> None:
    create_cluster(aks, clock, **properties)

    result = aks.managed_clusters.list_cluster_user_credentials(GROUP, CLUSTER)

    kubeconfigs = result.kubeconfigs or []
    assert [k.name for k in kubeconfigs] == ["clusterUser"]
    config = yaml.safe_load(kubeconfigs[0].value or b"")
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == f"https://127.0.0.1:6443/clusters/{CLUSTER}"
    assert base64.b64decode(cluster["certificate-authority-data"]) == ca.ca_path.read_bytes()
    user = config["users"][0]["user"]
    if expect_exec:
        assert user["exec"]["command"] == "kubelogin"
        assert "token" not in user
    else:
        assert user == {"token": "cluster-token"}
    assert backend.clusters == {cluster_id(): expect_exec}
