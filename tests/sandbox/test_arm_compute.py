"""The ARM simulator's Resource SKUs, Usages and Retail Prices, read by clients we did not write.

azure-mgmt-compute's `resource_skus.list` and `usage.list` (Microsoft.Compute `ResourceSkus_List`
and `Usage_List` in azure-rest-api-specs) and a plain HTTP GET of the Retail Prices API's shape
(learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.containerservice import ContainerServiceClient

from sandbox import tls
from sandbox.arm import ArmSimulator, CapacityRule
from sandbox.clock import ManualClock
from shared import prices
from shared.arm.compute import read_compute
from tests.sandbox.test_arm import (
    CLUSTER,
    GROUP,
    POOL_SECONDS,
    SUBSCRIPTION,
    TIMINGS,
    TOKEN,
    RecordingBackend,
    StaticToken,
    aks_for,
    create_cluster,
    finish,
    gpu_pool_body,
)


@pytest.fixture
def sim(clock: ManualClock, ca: tls.TestCA) -> Iterator[ArmSimulator]:
    backend = RecordingBackend(ca.ca_path)
    # An operator's token (owner rights): the app's identity is held to infra/permissions.json,
    # which grants no Microsoft.Compute reads until the preflight step needs them.
    with ArmSimulator(
        clock, ca, backend, tokens=frozenset({TOKEN}), timings=TIMINGS, app_tokens=frozenset()
    ) as server:
        server.add_resource_group(SUBSCRIPTION, GROUP)
        yield server


@pytest.fixture
def aks(sim: ArmSimulator, ca: tls.TestCA) -> Iterator[ContainerServiceClient]:
    with aks_for(sim, ca) as client:
        yield client


@pytest.fixture
def compute(sim: ArmSimulator, ca: tls.TestCA) -> Iterator[ComputeManagementClient]:
    with ComputeManagementClient(
        StaticToken(TOKEN),
        SUBSCRIPTION,
        base_url=sim.url,
        connection_verify=str(ca.ca_path),
        polling_interval=0.01,
    ) as client:
        yield client


def usage_of(compute: ComputeManagementClient, name: str) -> tuple[int, int]:
    for usage in compute.usage.list("eastus"):
        if usage.name is not None and usage.name.value == name:
            return usage.current_value, usage.limit
    raise AssertionError(f"no usage named {name}")


def test_resource_skus_offer_the_gpu_sizes_with_zones_and_vcpus(
    compute: ComputeManagementClient,
) -> None:
    skus = {s.name: s for s in compute.resource_skus.list(filter="location eq 'eastus'")}
    t4 = skus["Standard_NC4as_T4_v3"]
    assert t4.resource_type == "virtualMachines"
    assert t4.family == "standardNCASv3_T4Family"
    assert t4.locations == ["eastus"]
    assert t4.location_info is not None
    assert t4.location_info[0].zones == ["1", "2", "3"]
    assert {c.name: c.value for c in t4.capabilities or []}["vCPUs"] == "4"
    assert t4.restrictions == []
    assert skus["Standard_ND96isr_H100_v5"].family == "standardNDSH100v5Family"


def test_default_scenario_has_no_nd_h100_v5_quota_and_the_put_is_refused(
    compute: ComputeManagementClient, aks: ContainerServiceClient, clock: ManualClock
) -> None:
    assert usage_of(compute, "standardNDSH100v5Family") == (0, 0)
    create_cluster(aks, clock)
    with pytest.raises(HttpResponseError) as refused:
        aks.agent_pools.begin_create_or_update(
            GROUP, CLUSTER, "gpu", gpu_pool_body(vmSize="Standard_ND96isr_H100_v5", count=1)
        )
    assert refused.value.status_code == 400
    assert refused.value.error is not None
    assert refused.value.error.code == "QuotaExceeded"
    assert "standardNDSH100v5Family" in str(refused.value.message)
    assert "Current Limit: 0" in str(refused.value.message)


def test_pools_consume_family_quota_and_release_it_on_delete(
    compute: ComputeManagementClient, aks: ContainerServiceClient, clock: ManualClock
) -> None:
    create_cluster(aks, clock)
    assert usage_of(compute, "standardNCASv3_T4Family") == (0, 400)
    poller = aks.agent_pools.begin_create_or_update(GROUP, CLUSTER, "gpu", gpu_pool_body())
    finish(poller, clock, POOL_SECONDS)
    # gpu_pool_body: 2 x Standard_NC64as_T4_v3 (64 vCPUs each)
    assert usage_of(compute, "standardNCASv3_T4Family") == (128, 400)
    cores, _ = usage_of(compute, "cores")
    assert cores == 128 + 4  # and the system pool's Standard_D4s_v5
    finish(aks.agent_pools.begin_delete(GROUP, CLUSTER, "gpu"), clock, TIMINGS.pool_delete_seconds)
    assert usage_of(compute, "standardNCASv3_T4Family") == (0, 400)


def test_spot_pools_count_against_low_priority_cores(
    compute: ComputeManagementClient, aks: ContainerServiceClient, clock: ManualClock
) -> None:
    create_cluster(aks, clock)
    body = gpu_pool_body(count=1, vmSize="Standard_NC8as_T4_v3", scaleSetPriority="Spot")
    finish(
        aks.agent_pools.begin_create_or_update(GROUP, CLUSTER, "spot", body), clock, POOL_SECONDS
    )
    assert usage_of(compute, "lowPriorityCores") == (8, 500)
    assert usage_of(compute, "standardNCASv3_T4Family") == (0, 400)


def test_retail_prices_answer_a_filter_without_a_token(sim: ArmSimulator, ca: tls.TestCA) -> None:
    answer = requests.get(
        sim.url + "/api/retail/prices",
        params={
            "$filter": "serviceName eq 'Virtual Machines' and armSkuName eq "
            "'Standard_NC4as_T4_v3' and armRegionName eq 'westeurope' and "
            "priceType eq 'Consumption'"
        },
        verify=str(ca.ca_path),
        timeout=10,
    )
    assert answer.status_code == 200
    items = answer.json()["Items"]
    assert {i["meterName"] for i in items} == {"NC4as T4 v3", "NC4as T4 v3 Spot"}
    assert all(i["armRegionName"] == "westeurope" and i["retailPrice"] > 0 for i in items)
    assert answer.json()["NextPageLink"] is None


def test_prices_come_from_the_api_and_from_the_snapshot_when_it_is_unreachable(
    sim: ArmSimulator, ca: tls.TestCA
) -> None:
    asked = prices.fetch(
        sim.url + "/api/retail/prices", "Standard_NC4as_T4_v3", "eastus", spot=False,
        verify=str(ca.ca_path),
    )  # fmt: skip
    assert asked is not None
    assert asked.source == "retail prices API (127.0.0.1)"
    spot = prices.fetch(
        sim.url + "/api/retail/prices", "Standard_NC4as_T4_v3", "eastus", spot=True,
        verify=str(ca.ca_path),
    )  # fmt: skip
    assert spot is not None
    assert 0 < spot.hourly < asked.hourly
    offline = prices.fetch("https://127.0.0.1:9/api/retail/prices", "Standard_NC4as_T4_v3",
                           "eastus", spot=False)  # fmt: skip
    assert offline is not None
    assert offline.hourly == asked.hourly
    assert offline.source.startswith("snapshot 20")


def test_a_standing_sku_not_available_rule_is_a_restriction_the_preflight_reads(
    sim: ArmSimulator, compute: ComputeManagementClient
) -> None:
    # The sandbox's SkuNotAvailable answers and its Resource SKUs agree: a size it refuses is
    # listed with a `Location` restriction, a zone it refuses with a `Zone` one.
    t4, a100 = "Standard_NC4as_T4_v3", "Standard_NC24ads_A100_v4"
    sim.add_capacity_rule(CapacityRule(a100, "SkuNotAvailable"))
    sim.add_capacity_rule(CapacityRule(t4, "SkuNotAvailable", zone="2"))
    raw = {s.name: s for s in compute.resource_skus.list(filter="location eq 'eastus'")}
    restriction = (raw[a100].restrictions or [])[0]
    assert (restriction.type, restriction.reason_code) == (
        "Location",
        "NotAvailableForSubscription",
    )
    view = read_compute(compute, "eastus", [t4, a100, "Standard_ND96isr_H100_v5"])
    assert view.skus[a100.lower()].restricted == "NotAvailableForSubscription"
    assert view.skus[t4.lower()].restricted is None
    assert view.skus[t4.lower()].zones == ["1", "3"]
    assert view.skus[t4.lower()].zone_restriction == "NotAvailableForSubscription"
    assert view.skus[t4.lower()].vcpus == 4
    assert view.quotas["standardNDSH100v5Family"].limit == 0
    assert view.unchecked == {}
