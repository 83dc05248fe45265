"""The ARM steps against the sandbox's ARM simulator, through the real management SDKs.

Covers: preview features registered once, the provider registered again once after them, nothing
written when all are registered; cluster and pool creates and deletes started without waiting (no
poller thread left), polled once per check, and repeated without a second PUT or DELETE (one per
resource in the request log); custom headers on the pool PUT only; a burst of 429s ridden out by
the SDK's bounded retries, a longer one returned as a transient error with Retry-After;
AllocationFailed on the first size classified as capacity, then the next candidate succeeds;
QuotaExceeded failing at once with its code and the quota family; OperationNotAllowed and
connection failures as transient; pools and clusters not tagged with the request id neither
modified nor deleted; the local-account and Entra ID credential paths reaching the Kubernetes
simulator; and no secret in anything an operation returns for orchestration history.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import AgentPool, ManagedCluster
from kubernetes import client as kubernetes_client

from sandbox.arm import ArmSimulator, CapacityRule
from sandbox.clock import ManualClock
from sandbox.cloud import ClusterAccess
from sandbox.tls import TestCA
from shared.arm import ArmAdapter, OperationHandle
from shared.arm.pool import candidates
from shared.credentials import ClusterCredentials
from shared.errors import StepError
from shared.ownership import REQUEST_ID_TAG
from shared.request import PreviewFeature, ProvisionRequest
from shared.settings import Settings
from tests.builders import build_request as make_request
from tests.sandbox_fixtures import (
    RESOURCE_GROUP,
    SANDBOX_TOKEN,
    SUBSCRIPTION,
    TIMINGS,
    aks_client,
    kube_client,
)

CLUSTER = "myAKSCluster"
POOL = "gpunp"
T4 = "Standard_NC4as_T4_v3"
T4_LARGER = "Standard_NC8as_T4_v3"
A100 = "Standard_NC24ads_A100_v4"
CLUSTER_PATH = f"/managedClusters/{CLUSTER}"
POOL_PATH = f"{CLUSTER_PATH}/agentPools/{POOL}"


def now(clock: ManualClock) -> datetime:
    return datetime.fromtimestamp(clock.now(), tz=UTC)


@pytest.fixture
def adapter(sandbox_settings: Settings) -> Iterator[ArmAdapter]:
    with ArmAdapter(sandbox_settings) as arm_adapter:
        yield arm_adapter


def calls(arm: ArmSimulator, method: str, path_suffix: str, *, accepted: bool = False) -> int:
    """How many `method` requests reached `path_suffix` (only 2xx answers when `accepted`)."""
    return sum(
        1
        for r in arm.requests
        if r.method == method
        and r.path.endswith(path_suffix)
        and (not accepted or 200 <= r.status < 300)
    )


def wait_out(
    adapter: ArmAdapter, handle: OperationHandle, clock: ManualClock, seconds: float
) -> None:
    """The operation is running; once its simulated time has passed, one check sees it done."""
    status = adapter.check_operation(handle)
    assert status.state == "InProgress"
    clock.advance(seconds)
    status = adapter.check_operation(handle)
    assert status.state == "Succeeded", status


def create_cluster(adapter: ArmAdapter, request: ProvisionRequest, clock: ManualClock) -> None:
    handle = adapter.start_create_cluster(request, now(clock))
    wait_out(adapter, handle, clock, TIMINGS.cluster_create_seconds)


def create_cluster_and_pool(
    adapter: ArmAdapter, request: ProvisionRequest, clock: ManualClock
) -> None:
    """The cluster, then its T4 pool, each waited out on the manual clock."""
    create_cluster(adapter, request, clock)
    handle = adapter.start_create_pool(request, T4, [], now(clock))
    wait_out(adapter, handle, clock, TIMINGS.pool_create_seconds)


def poller_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("LROPoller")]


# -- preview features ---------------------------------------------------------------------------


FEATURES = [PreviewFeature.model_validate({"name": "ManagedGPUExperiencePreview"})]
FEATURE_PATH = "/features/ManagedGPUExperiencePreview"


def test_features_are_registered_once_then_the_provider_once(
    adapter: ArmAdapter, arm: ArmSimulator
) -> None:
    first = adapter.register_features(SUBSCRIPTION, FEATURES)
    assert [f.state for f in first.features] == ["Registering"]
    assert not first.done
    result = first
    for _ in range(5):
        if result.done:
            break
        result = adapter.register_features(SUBSCRIPTION, FEATURES, previous=result)
    assert result.done
    assert [(p.namespace, p.state) for p in result.providers] == [
        ("Microsoft.ContainerService", "Registered")
    ]
    assert calls(arm, "POST", f"{FEATURE_PATH}/register") == 1
    assert calls(arm, "POST", "/providers/Microsoft.ContainerService/register") == 1

    arm.clear_requests()
    again = adapter.register_features(SUBSCRIPTION, FEATURES)
    assert again.done
    assert [r.method for r in arm.requests] == ["GET"]


def test_features_already_registered_write_nothing(adapter: ArmAdapter, arm: ArmSimulator) -> None:
    arm.set_feature_state(
        SUBSCRIPTION, "Microsoft.ContainerService", "ManagedGPUExperiencePreview", "Registered"
    )
    result = adapter.register_features(SUBSCRIPTION, FEATURES)
    assert result.done
    assert result.providers == []
    assert {r.method for r in arm.requests} == {"GET"}


# -- create and delete, each once ---------------------------------------------------------------


def test_cluster_create_starts_once_and_repeats_are_no_ops(
    adapter: ArmAdapter, arm: ArmSimulator, clock: ManualClock
) -> None:
    request = make_request()
    threads_before = poller_threads()
    started = time.monotonic()
    handle = adapter.start_create_cluster(request, now(clock))
    assert time.monotonic() - started < 5, "starting must not wait for the operation"
    assert poller_threads() == threads_before == [], "no SDK polling thread left running"
    assert handle.poll == "asyncOperation"
    assert handle.retry_after == TIMINGS.retry_after_seconds

    repeated = adapter.start_create_cluster(request, now(clock))
    assert repeated.poll == "resource", "an operation of this request is already running"
    status = adapter.check_operation(handle)
    assert (status.state, status.retry_after) == ("InProgress", TIMINGS.retry_after_seconds)
    assert adapter.check_operation(repeated).state == "InProgress"

    clock.advance(TIMINGS.cluster_create_seconds)
    assert adapter.check_operation(handle).state == "Succeeded"
    assert adapter.check_operation(repeated).state == "Succeeded"
    assert adapter.start_create_cluster(request, now(clock)).done
    assert calls(arm, "PUT", CLUSTER_PATH) == 1
    assert poller_threads() == []


def test_pool_create_sends_custom_headers_once_and_repeats_are_no_ops(
    adapter: ArmAdapter, arm: ArmSimulator, clock: ManualClock
) -> None:
    request = make_request(nodePool={"customHeaders": {"X-Gpuprov-Test": "on"}, "zones": ["1"]})
    create_cluster(adapter, request, clock)
    [first] = candidates(request)

    handle = adapter.start_create_pool(request, first.vm_size, first.zones, now(clock))
    assert adapter.start_create_pool(request, first.vm_size, first.zones, now(clock)).poll == (
        "resource"
    )
    wait_out(adapter, handle, clock, TIMINGS.pool_create_seconds)
    assert adapter.start_create_pool(request, first.vm_size, first.zones, now(clock)).done

    [put] = [r for r in arm.requests if r.method == "PUT" and r.path.endswith(POOL_PATH)]
    assert put.header("X-Gpuprov-Test") == "on"
    assert put.body["properties"]["tags"][REQUEST_ID_TAG] == request.request_id
    assert put.body["properties"]["availabilityZones"] == ["1"]
    [cluster_put] = [r for r in arm.requests if r.method == "PUT" and r.path.endswith(CLUSTER_PATH)]
    assert cluster_put.header("X-Gpuprov-Test") is None
    assert poller_threads() == []


def test_deletes_start_once_and_gone_counts_as_done(
    adapter: ArmAdapter, arm: ArmSimulator, clock: ManualClock
) -> None:
    request = make_request()
    create_cluster_and_pool(adapter, request, clock)

    pool_delete = adapter.start_delete_pool(request)
    assert pool_delete.poll == "asyncOperation"
    assert adapter.start_delete_pool(request).poll == "resource"
    wait_out(adapter, pool_delete, clock, TIMINGS.pool_delete_seconds)
    assert adapter.start_delete_pool(request).done

    cluster_delete = adapter.start_delete_cluster(request)
    assert adapter.start_delete_cluster(request).poll == "resource"
    wait_out(adapter, cluster_delete, clock, TIMINGS.cluster_delete_seconds)
    assert adapter.start_delete_cluster(request).done
    assert adapter.start_delete_pool(request).done, "no cluster: its pool is gone too"

    assert calls(arm, "DELETE", POOL_PATH) == 1
    assert calls(arm, "DELETE", CLUSTER_PATH) == 1
    assert poller_threads() == []


# -- throttling, capacity, quota, busy, unreachable ---------------------------------------------


def test_a_burst_of_429s_is_ridden_out_by_the_sdk_retries(
    adapter: ArmAdapter, arm: ArmSimulator, clock: ManualClock
) -> None:
    request = make_request()
    create_cluster(adapter, request, clock)
    arm.inject_fault("PUT", f"{POOL_PATH}$", 3, 429, "TooManyRequests", retry_after=1)

    started = time.monotonic()
    handle = adapter.start_create_pool(request, T4, [], now(clock))
    assert time.monotonic() - started >= 3, "the SDK waited Retry-After between tries"
    wait_out(adapter, handle, clock, TIMINGS.pool_create_seconds)
    assert [r.status for r in arm.requests if r.method == "PUT" and r.path.endswith(POOL_PATH)] == [
        429,
        429,
        429,
        201,
    ]


def test_a_longer_throttle_is_a_transient_error_with_retry_after(
    sandbox_settings: Settings, arm: ArmSimulator, clock: ManualClock
) -> None:
    request = make_request()
    with ArmAdapter(sandbox_settings, sdk_retries=0) as impatient:
        create_cluster(impatient, request, clock)
        arm.inject_fault("PUT", f"{POOL_PATH}$", 1, 429, "TooManyRequests", retry_after=7)
        with pytest.raises(StepError) as caught:
            impatient.start_create_pool(request, T4, [], now(clock))
        assert (caught.value.kind, caught.value.code) == ("transient", "TooManyRequests")
        assert caught.value.retry_after == 7

        handle = impatient.start_create_pool(request, T4, [], now(clock))
        wait_out(impatient, handle, clock, TIMINGS.pool_create_seconds)
    assert calls(arm, "PUT", POOL_PATH, accepted=True) == 1


def test_allocation_failure_moves_to_the_next_size(
    adapter: ArmAdapter, arm: ArmSimulator, clock: ManualClock
) -> None:
    request = make_request(nodePool={"alternativeVmSizes": [T4_LARGER]})
    create_cluster(adapter, request, clock)
    arm.add_capacity_rule(CapacityRule(vm_size=T4, code="AllocationFailed"))
    first, second = candidates(request)

    handle = adapter.start_create_pool(request, first.vm_size, first.zones, now(clock))
    clock.advance(TIMINGS.pool_create_seconds)
    status = adapter.check_operation(handle)
    assert status.state == "Failed"
    assert status.error is not None
    assert (status.error.kind, status.error.code) == ("capacity", "AllocationFailed")
    assert T4 in status.error.message
    assert "alternativeVmSizes" in status.error.hint

    with pytest.raises(StepError) as caught:
        adapter.start_create_pool(request, second.vm_size, second.zones, now(clock))
    assert caught.value.code == "PoolHasOtherSize", "AKS cannot resize the failed pool in place"
    wait_out(adapter, adapter.start_delete_pool(request), clock, TIMINGS.pool_delete_seconds)

    handle = adapter.start_create_pool(request, second.vm_size, second.zones, now(clock))
    wait_out(adapter, handle, clock, TIMINGS.pool_create_seconds)
    puts = [r for r in arm.requests if r.method == "PUT" and r.path.endswith(POOL_PATH)]
    assert [r.body["properties"]["vmSize"] for r in puts] == [T4, T4_LARGER]


def test_quota_exceeded_fails_at_once_naming_the_family(
    adapter: ArmAdapter, arm: ArmSimulator, clock: ManualClock
) -> None:
    request = make_request(nodePool={"vmSize": A100})
    create_cluster(adapter, request, clock)
    arm.add_capacity_rule(CapacityRule(vm_size=A100, code="QuotaExceeded"))

    with pytest.raises(StepError) as caught:
        adapter.start_create_pool(request, A100, [], now(clock))
    error = caught.value.to_wire()
    assert (error.kind, error.code) == ("quota", "QuotaExceeded")
    assert "exceeding approved cores quota" in error.message
    assert "NC_A100_v4" in error.hint
    assert "az quota" in error.hint
    assert calls(arm, "PUT", POOL_PATH) == 1, "no retry of a quota error"


def test_a_busy_cluster_is_transient(
    adapter: ArmAdapter, arm: ArmSimulator, clock: ManualClock
) -> None:
    request = make_request()
    adapter.start_create_cluster(request, now(clock))
    with pytest.raises(StepError) as caught:
        adapter.start_create_pool(request, T4, [], now(clock))
    assert (caught.value.kind, caught.value.code) == ("transient", "OperationNotAllowed")


def test_an_unreachable_arm_is_transient(sandbox_settings: Settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    settings = sandbox_settings.model_copy(
        update={"arm_endpoint": f"https://127.0.0.1:{closed_port}"}
    )
    with ArmAdapter(settings, sdk_retries=0) as unreachable, pytest.raises(StepError) as caught:
        unreachable.start_create_cluster(make_request(), datetime.now(UTC))
    assert (caught.value.kind, caught.value.code) == ("transient", "ConnectionFailed")


# -- never touch what is not ours ---------------------------------------------------------------


@pytest.fixture
def direct_aks(arm: ArmSimulator, ca: TestCA) -> Iterator[ContainerServiceClient]:
    """Someone else's client: creates resources without the provisioner's tags."""
    with aks_client(arm.url, ca.ca_path) as aks:
        yield aks


def test_a_pool_not_owned_by_the_request_is_neither_modified_nor_deleted(
    adapter: ArmAdapter, arm: ArmSimulator, clock: ManualClock, direct_aks: ContainerServiceClient
) -> None:
    request = make_request()
    create_cluster(adapter, request, clock)
    direct_aks.agent_pools.begin_create_or_update(
        RESOURCE_GROUP, CLUSTER, POOL, AgentPool({"properties": {"vmSize": T4}}), polling=False
    )
    clock.advance(TIMINGS.pool_create_seconds)
    arm.clear_requests()

    starts: list[Callable[[], OperationHandle]] = [
        lambda: adapter.start_create_pool(request, T4, [], now(clock)),
        lambda: adapter.start_delete_pool(request),
    ]
    for start in starts:
        with pytest.raises(StepError) as caught:
            start()
        assert (caught.value.kind, caught.value.code) == ("permanent", "NotOwned")
    assert {r.method for r in arm.requests} == {"GET"}


def test_a_cluster_not_owned_by_the_request_is_neither_modified_nor_deleted(
    adapter: ArmAdapter, arm: ArmSimulator, clock: ManualClock, direct_aks: ContainerServiceClient
) -> None:
    direct_aks.managed_clusters.begin_create_or_update(
        RESOURCE_GROUP,
        CLUSTER,
        ManagedCluster(
            {"location": "eastus", "properties": {"agentPoolProfiles": [{"name": "system"}]}}
        ),
        polling=False,
    )
    clock.advance(TIMINGS.cluster_create_seconds)
    arm.clear_requests()
    request = make_request()
    starts: list[Callable[[], OperationHandle]] = [
        lambda: adapter.start_create_cluster(request, now(clock)),
        lambda: adapter.start_delete_cluster(request),
    ]
    for start in starts:
        with pytest.raises(StepError) as caught:
            start()
        assert caught.value.code == "NotOwned"
    assert {r.method for r in arm.requests} == {"GET"}


def test_an_existing_cluster_target_is_never_created_or_deleted(adapter: ArmAdapter) -> None:
    request = make_request(target={"kind": "existingCluster", "clusterName": CLUSTER})
    with pytest.raises(StepError, match="NotANewCluster"):
        adapter.start_delete_cluster(request)


# -- credentials for the Kubernetes API ---------------------------------------------------------


def list_pool_nodes(credentials: ClusterCredentials, tmp_path: Path) -> list[str]:
    ca_file = tmp_path / "cluster-ca.pem"
    ca_file.write_bytes(credentials.ca_pem)
    access = ClusterAccess(credentials.server, credentials.token, str(ca_file))
    with kube_client(access) as api_client:
        nodes = kubernetes_client.CoreV1Api(api_client).list_node(
            label_selector=f"kubernetes.azure.com/agentpool={POOL}"
        )
        return sorted(str(node.metadata.name if node.metadata else "") for node in nodes.items)


@pytest.mark.parametrize("entra_id", [False, True], ids=["local-accounts", "entra-id"])
def test_credentials_reach_the_cluster(
    adapter: ArmAdapter, clock: ManualClock, tmp_path: Path, entra_id: bool
) -> None:
    target = {"kind": "newCluster", "clusterName": CLUSTER, "entraId": entra_id}
    request = make_request(target=target, nodePool={"nodeCount": 2})
    create_cluster_and_pool(adapter, request, clock)

    credentials = adapter.cluster_credentials(request)
    assert credentials.ca_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert (credentials.token == SANDBOX_TOKEN) is entra_id, "Entra: a token from the credential"
    assert len(list_pool_nodes(credentials, tmp_path)) == 2
    assert credentials.token not in repr(credentials)


# -- nothing secret goes into history -----------------------------------------------------------


SECRETS = ("sandbox-token", "Bearer", "certificate-authority-data", "client-key", "BEGIN ")


def test_nothing_returned_for_history_holds_a_secret(
    adapter: ArmAdapter, arm: ArmSimulator, clock: ManualClock
) -> None:
    request = make_request(
        target={"kind": "newCluster", "clusterName": CLUSTER},
        nodePool={"customHeaders": {"X-Gpuprov-Test": "on"}},
    )
    returned: list[Any] = []
    registration = adapter.register_features(SUBSCRIPTION, FEATURES)
    while not registration.done:
        returned.append(registration)
        registration = adapter.register_features(SUBSCRIPTION, FEATURES, previous=registration)
    returned.append(registration)
    steps: list[tuple[Callable[[], OperationHandle], float]] = [
        (lambda: adapter.start_create_cluster(request, now(clock)), TIMINGS.cluster_create_seconds),
        (
            lambda: adapter.start_create_pool(request, T4, [], now(clock)),
            TIMINGS.pool_create_seconds,
        ),
    ]
    for start, seconds in steps:
        handle = start()
        returned += [handle, adapter.check_operation(handle), start()]
        clock.advance(seconds)
        returned += [adapter.check_operation(handle), start()]
    cluster_secret = adapter.cluster_credentials(request).token
    arm.add_capacity_rule(CapacityRule(vm_size=A100, code="QuotaExceeded"))
    with pytest.raises(StepError) as caught:
        adapter.start_create_pool(request, A100, [], now(clock))
    returned.append(caught.value.to_wire())
    deletes: list[Callable[[], OperationHandle]] = [
        lambda: adapter.start_delete_pool(request),
        lambda: adapter.start_delete_cluster(request),
    ]
    for delete in deletes:
        handle = delete()
        returned += [handle, adapter.check_operation(handle)]
        clock.advance(TIMINGS.cluster_delete_seconds)
        returned += [adapter.check_operation(handle), delete()]

    for value in returned:
        dumped = value.model_dump_json()
        assert type(value).model_validate_json(dumped) == value, "survives history round-trip"
        for secret in (*SECRETS, cluster_secret):
            assert secret not in dumped, f"{secret!r} in {type(value).__name__}"


def test_an_unregistered_provider_is_permanent_with_the_fix(
    adapter: ArmAdapter, arm: ArmSimulator, clock: ManualClock
) -> None:
    arm.set_provider_state(SUBSCRIPTION, "Microsoft.ContainerService", "NotRegistered")
    with pytest.raises(StepError) as caught:
        adapter.start_create_cluster(make_request(), now(clock))
    assert (caught.value.kind, caught.value.code) == (
        "permanent",
        "MissingSubscriptionRegistration",
    )
    assert "az provider register" in caught.value.hint
