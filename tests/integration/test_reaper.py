"""The reaper against the ARM simulator, through the real management SDK.

Covers: an expired owned pool deleted and its `reaped` event published (resource id, reason,
expiresAt), while an untagged pool, another owner's expired pool and the untagged cluster holding
them get no DELETE at all; an owned cluster's pool deleted first, the cluster left while the pool
delete runs (one operation per cluster), then deleted on a later run; a dry run reporting the
deletion but sending no DELETE and publishing nothing; a running request's pool left alone until
its expiry passes; the report serialising to JSON; and the pool's and the cluster's `reaped`
events both reaching the events topic through the real Service Bus client (distinct ids, so
duplicate detection keeps both); and a pool re-tagged by someone after the list kept
(no DELETE).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.mgmt.containerservice.models import AgentPool, ManagedCluster
from azure.servicebus import ServiceBusClient, ServiceBusReceiveMode

from sandbox.arm import ArmSimulator
from sandbox.clock import ManualClock
from sandbox.servicebus import ServiceBusBroker
from shared.arm import ArmAdapter
from shared.errors import StepError
from shared.events import Outcome, close_event_publisher, event_id
from shared.ownership import EXPIRES_AT_TAG, NOT_OWNED, OWNER_TAG, REQUEST_ID_TAG
from shared.reaper import UNKNOWN, Reaper, RequestState, plan_reaping, reap
from shared.settings import Settings
from tests.sandbox_fixtures import RESOURCE_GROUP, SUBSCRIPTION, aks_client

OWNER = "gpuprov"
SETTLE_SECONDS = 600


def now(clock: ManualClock) -> datetime:
    return datetime.fromtimestamp(clock.now(), tz=UTC)


def tags(clock: ManualClock, hours: float, request: str = "req-1", owner: str = OWNER) -> dict:
    """Ownership tags expiring `hours` from the clock's now (negative: already expired)."""
    expires = (now(clock) + timedelta(hours=hours)).replace(microsecond=0)
    return {
        REQUEST_ID_TAG: request,
        OWNER_TAG: owner,
        EXPIRES_AT_TAG: expires.isoformat().replace("+00:00", "Z"),
    }


class Cloud:
    """Makes clusters and pools as someone (the provisioner or not) would, with the real SDK."""

    def __init__(self, arm: ArmSimulator, clock: ManualClock, ca_path: str) -> None:
        self.arm, self.clock = arm, clock
        self.aks = aks_client(arm.url, ca_path)

    def cluster(self, name: str, cluster_tags: dict | None, system_tags: dict | None) -> None:
        body = {
            "location": "eastus",
            "tags": cluster_tags or {},
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "dnsPrefix": name,
                "agentPoolProfiles": [
                    {
                        "name": "system",
                        "count": 1,
                        "vmSize": "Standard_D4ds_v5",
                        "mode": "System",
                        "tags": system_tags or {},
                    }
                ],
            },
        }
        self.aks.managed_clusters.begin_create_or_update(
            RESOURCE_GROUP, name, ManagedCluster(body), polling=False
        )
        self.settle()

    def pool(self, cluster: str, name: str, pool_tags: dict | None) -> None:
        body = {
            "properties": {
                "count": 1,
                "vmSize": "Standard_NC4as_T4_v3",
                "mode": "User",
                "tags": pool_tags or {},
            }
        }
        self.aks.agent_pools.begin_create_or_update(
            RESOURCE_GROUP, cluster, name, AgentPool(body), polling=False
        )
        self.settle()

    def pools(self, cluster: str) -> list[str]:
        return sorted(p.name or "" for p in self.aks.agent_pools.list(RESOURCE_GROUP, cluster))

    def clusters(self) -> list[str]:
        return sorted(c.name or "" for c in self.aks.managed_clusters.list())

    def settle(self) -> None:
        self.clock.advance(SETTLE_SECONDS)
        self.arm.settle()


@pytest.fixture
def cloud(arm: ArmSimulator, clock: ManualClock, sandbox_settings: Settings) -> Iterator[Cloud]:
    made = Cloud(arm, clock, sandbox_settings.ca_bundle)
    with made.aks:
        yield made


@pytest.fixture
def settings(sandbox_settings: Settings) -> Settings:
    return sandbox_settings.model_copy(update={"reaper_subscriptions": frozenset({SUBSCRIPTION})})


class Events:
    """The publish port, recording what the reaper would send to the events topic."""

    def __init__(self) -> None:
        self.sent: list[Outcome] = []

    def __call__(self, outcome: Outcome) -> None:
        self.sent.append(outcome)


def deletes(arm: ArmSimulator) -> list[str]:
    """Paths of the DELETE requests ARM received, in order, from the cluster on."""
    return [r.path.split("/managedClusters/")[1] for r in arm.requests if r.method == "DELETE"]


def unknown(request_id: str) -> RequestState:
    return UNKNOWN


def test_expired_owned_pool_is_deleted_and_nothing_else_is_touched(
    arm: ArmSimulator, clock: ManualClock, cloud: Cloud, settings: Settings
) -> None:
    cloud.cluster("shared", None, None)
    mine = tags(clock, hours=1)
    cloud.pool("shared", "mine", mine)
    cloud.pool("shared", "plain", None)
    cloud.pool("shared", "theirs", tags(clock, hours=1, request="req-x", owner="someone-else"))
    clock.advance(2 * 3600)
    arm.clear_requests()
    events = Events()

    report = reap(settings, unknown, now(clock), events)

    assert deletes(arm) == ["shared/agentPools/mine"]
    assert [(d.pool_name, d.reason) for d in report.deletions] == [("mine", "expired")]
    (event,) = events.sent
    assert (event.request_id, event.step, event.status) == ("req-1", "reaped", "reaped")
    assert event.details == {
        "resourceId": report.deletions[0].resource_id,
        "kind": "pool",
        "reason": "expired",
        "expiresAt": mine[EXPIRES_AT_TAG],
    }
    cloud.settle()
    assert cloud.pools("shared") == ["plain", "system", "theirs"]
    assert cloud.clusters() == ["shared"]
    again = reap(settings, unknown, now(clock), events)
    assert again.deletions == []
    assert deletes(arm) == ["shared/agentPools/mine"]
    assert json.loads(again.model_dump_json())["clustersScanned"] == 1


def test_pools_go_before_their_cluster_one_operation_at_a_time(
    arm: ArmSimulator, clock: ManualClock, cloud: Cloud, settings: Settings
) -> None:
    owned = tags(clock, hours=1)
    cloud.cluster("ours", owned, owned)
    cloud.pool("ours", "gpunp", owned)
    clock.advance(2 * 3600)
    arm.clear_requests()
    events = Events()

    first = reap(settings, unknown, now(clock), events)
    busy = reap(settings, unknown, now(clock), events)
    cloud.settle()
    last = reap(settings, unknown, now(clock), events)

    assert [d.kind for d in first.deletions] == ["pool"]
    assert busy.deletions == []
    assert {s.resource_id.rsplit("/", 1)[1] for s in busy.skipped} == {"gpunp", "ours"}
    assert all("in progress (Deleting)" in s.reason for s in busy.skipped)
    assert [d.kind for d in last.deletions] == ["cluster"]
    assert deletes(arm) == ["ours/agentPools/gpunp", "ours"]
    assert [event_id(e) for e in events.sent] == [
        "req-1:reaped:reaped:pool",
        "req-1:reaped:reaped:cluster",
    ]
    cloud.settle()
    assert cloud.clusters() == []


def test_dry_run_only_reports(
    arm: ArmSimulator, clock: ManualClock, cloud: Cloud, settings: Settings
) -> None:
    cloud.cluster("shared", None, None)
    cloud.pool("shared", "mine", tags(clock, hours=1))
    clock.advance(2 * 3600)
    arm.clear_requests()
    events = Events()

    report = reap(settings.model_copy(update={"reaper_dry_run": True}), unknown, now(clock), events)

    assert report.dry_run
    assert [(d.pool_name, d.reason) for d in report.deletions] == [("mine", "expired")]
    assert deletes(arm) == []
    assert events.sent == []
    assert cloud.pools("shared") == ["mine", "system"]


def test_a_running_request_is_left_alone_until_it_expires(
    arm: ArmSimulator, clock: ManualClock, cloud: Cloud, settings: Settings
) -> None:
    cloud.cluster("shared", None, None)
    cloud.pool("shared", "mine", tags(clock, hours=3))
    arm.clear_requests()
    events = Events()
    asked: list[str] = []

    def running(request_id: str) -> RequestState:
        asked.append(request_id)
        return RequestState(phase="active")

    kept = reap(settings, running, now(clock), events)
    clock.advance(2 * 3600)
    still_kept = reap(settings, running, now(clock), events)
    clock.advance(2 * 3600)
    reaped = reap(settings, running, now(clock), events)

    assert kept.deletions == still_kept.deletions == []
    assert "still running" in kept.skipped[0].reason
    assert [(d.pool_name, d.reason) for d in reaped.deletions] == [("mine", "expired")]
    assert deletes(arm) == ["shared/agentPools/mine"]
    assert set(asked) == {"req-1"}


@pytest.fixture
def published(settings: Settings, broker: ServiceBusBroker) -> Iterator[Settings]:
    """The settings with the broker to publish to; the publisher closed before the broker stops."""
    try:
        yield settings.model_copy(update={"service_bus_connection": broker.connection_string})
    finally:
        close_event_publisher()


def test_reaped_events_reach_the_events_topic(
    arm: ArmSimulator,
    clock: ManualClock,
    cloud: Cloud,
    settings: Settings,
    broker: ServiceBusBroker,
    published: Settings,
) -> None:
    owned = tags(clock, hours=1)
    cloud.cluster("ours", owned, owned)
    cloud.pool("ours", "gpunp", owned)
    clock.advance(2 * 3600)

    first = reap(published, unknown, now(clock))
    cloud.settle()
    second = reap(published, unknown, now(clock))

    assert first.errors == second.errors == []
    received: list[dict[str, Any]] = []
    with ServiceBusClient.from_connection_string(broker.connection_string) as client:
        receiver = client.get_subscription_receiver(
            settings.events_topic, "all", receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE
        )
        with receiver:
            while batch := receiver.receive_messages(max_message_count=10, max_wait_time=1):
                received.extend(json.loads(str(message)) for message in batch)
    assert [(e["data"]["step"], e["data"]["details"]["kind"]) for e in received] == [
        ("reaped", "pool"),
        ("reaped", "cluster"),
    ]
    assert len({e["id"] for e in received}) == 2
    assert received[1]["data"]["details"]["resourceId"] == second.deletions[0].resource_id


def test_a_pool_retagged_after_the_list_is_not_deleted(
    arm: ArmSimulator, clock: ManualClock, cloud: Cloud, settings: Settings
) -> None:
    cloud.cluster("shared", None, None)
    cloud.pool("shared", "mine", tags(clock, hours=1))
    clock.advance(2 * 3600)
    with ArmAdapter(settings) as adapter:
        reaper = Reaper(settings, adapter, Events())
        plan = plan_reaping(
            reaper.list_clusters(SUBSCRIPTION), OWNER, now(clock), {}, timedelta(hours=1)
        )
        cloud.pool("shared", "mine", {"team": "took it over"})  # someone adopts the pool
        arm.clear_requests()

        with pytest.raises(StepError) as refused:
            reaper.start_delete(plan.deletions[0])

    assert refused.value.code == NOT_OWNED
    assert "gpuprov-request-id=req-1" in refused.value.message
    assert deletes(arm) == []
    assert cloud.pools("shared") == ["mine", "system"]


def test_an_empty_scope_is_an_error_in_the_report_and_a_warning(
    arm: ArmSimulator, clock: ManualClock, cloud: Cloud, sandbox_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """No settings and no request yet: nothing to scan must be said, not done quietly."""
    cloud.cluster("ours", tags(clock, hours=-1), tags(clock, hours=-1))

    report = reap(sandbox_settings, unknown, now(clock), Events())

    assert report.subscriptions == []
    assert [e.code for e in report.errors] == ["NoSubscriptions"]
    assert any("no subscription to scan" in r.getMessage() for r in caplog.records)
    assert deletes(arm) == []


def test_the_subscriptions_requests_named_are_scanned_without_settings(
    arm: ArmSimulator, clock: ManualClock, cloud: Cloud, sandbox_settings: Settings
) -> None:
    cloud.cluster("shared", None, None)
    cloud.pool("shared", "mine", tags(clock, hours=1))
    clock.advance(2 * 3600)
    arm.clear_requests()

    report = reap(sandbox_settings, unknown, now(clock), Events(), recorded=[SUBSCRIPTION])

    assert report.subscriptions == [SUBSCRIPTION]
    assert report.errors == []
    assert deletes(arm) == ["shared/agentPools/mine"]
