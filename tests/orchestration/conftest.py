"""The whole app against the whole sandbox, in one process: the real orchestrator on the local
Durable host, activities on the real SDKs into the ARM and Kubernetes simulators, events through
the real Service Bus client into the local broker, all on one ManualClock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import kubernetes.client
import pytest
from azure.mgmt.containerservice.models import ManagedCluster
from azure.servicebus import ServiceBusClient, ServiceBusReceiveMode

from sandbox.arm import ArmSimulator
from sandbox.clock import ManualClock
from sandbox.durable import LocalDurableHost
from sandbox.kube import KubeSimulator
from sandbox.servicebus import ServiceBusBroker
from sandbox.world import World as SandboxWorld
from sandbox.world import aks_client, app_settings
from shared.events import close_event_publisher
from shared.sequence import RunInput, RunOptions
from shared.settings import current_settings
from tests.builders import parse
from tests.sandbox_fixtures import SUBSCRIPTION, kube_client

TOPIC = "gpu-provisioning-events"


@dataclass
class World:
    """Everything a run touches, and how to read what it did."""

    clock: ManualClock
    arm: ArmSimulator
    kube: KubeSimulator
    broker: ServiceBusBroker
    host: LocalDurableHost
    ca_path: str
    storage: str

    def start(self, document: dict[str, Any], options: RunOptions | None = None) -> str:
        request = parse(document, current_settings())
        run = RunInput.of(request, options or RunOptions())
        return self.host.start_new(
            "provision_gpu_pool",
            instance_id=request.request_id,
            input=run.model_dump(mode="json", by_alias=True),
        )

    def clusters(self, resource_group: str = "myResourceGroup") -> list[str]:
        """Names of the managed clusters ARM has in the resource group (the real SDK asks)."""
        with aks_client(self.arm.url, self.ca_path) as aks:
            return [
                c.name or "" for c in aks.managed_clusters.list_by_resource_group(resource_group)
            ]

    def existing_cluster(self, resource_group: str, name: str, location: str) -> None:
        """A cluster someone else made (untagged), ready before the request arrives."""
        self.arm.add_resource_group(SUBSCRIPTION, resource_group, location)
        body = {
            "location": location,
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "dnsPrefix": name,
                "agentPoolProfiles": [
                    {"name": "system", "count": 1, "vmSize": "Standard_D4ds_v5", "mode": "System"}
                ],
            },
        }
        with aks_client(self.arm.url, self.ca_path) as aks:
            aks.managed_clusters.begin_create_or_update(
                resource_group, name, ManagedCluster(body), polling=False
            )
        self.clock.advance(3600)
        self.arm.settle()

    def gpu_nodes(self, cluster_id: str) -> list[str]:
        """Names of the cluster's nodes outside its system pool (real kubernetes client)."""
        access = self.kube.ensure_cluster(cluster_id)
        with kube_client(access) as api:
            nodes: Any = kubernetes.client.CoreV1Api(api).list_node(
                label_selector="kubernetes.azure.com/agentpool!=system"
            )
            return [str(n.metadata.name) for n in nodes.items]

    def jobs(self, cluster_id: str, namespace: str) -> list[str]:
        access = self.kube.ensure_cluster(cluster_id)
        with kube_client(access) as api:
            listed: Any = kubernetes.client.BatchV1Api(api).list_namespaced_job(namespace)
            return [str(j.metadata.name) for j in listed.items]

    def events(self, subscription: str = "all") -> list[tuple[str, str]]:
        """(step, status) of every event on a subscription, in order."""
        return [(data["step"], data["status"]) for data in self.event_data(subscription)]

    def event_data(self, subscription: str = "all") -> list[dict[str, Any]]:
        """The `data` of every CloudEvent on a subscription, in order (taken off it)."""
        received: list[dict[str, Any]] = []
        with ServiceBusClient.from_connection_string(self.broker.connection_string) as client:
            receiver = client.get_subscription_receiver(
                TOPIC, subscription, receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE
            )
            with receiver:
                while batch := receiver.receive_messages(max_message_count=100, max_wait_time=1):
                    for message in batch:
                        event = json.loads(b"".join(message.body))
                        received.append(event["data"])
        return received


def cluster_id(resource_group: str, name: str) -> str:
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.ContainerService/managedClusters/{name}"
    )


@pytest.fixture
def world(
    monkeypatch: pytest.MonkeyPatch,
    sandbox_world: SandboxWorld[ManualClock],
    broker: ServiceBusBroker,
    storage: str,
) -> Iterator[World]:
    parts = sandbox_world
    values = app_settings(
        parts.arm.url, parts.ca.ca_path, storage=storage, service_bus=broker.connection_string
    )
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    current_settings.cache_clear()
    import function_app

    host = LocalDurableHost(function_app.app, clock=parts.clock)
    try:
        yield World(
            parts.clock, parts.arm, parts.kube, broker, host, str(parts.ca.ca_path), storage
        )
    finally:
        close_event_publisher()
        current_settings.cache_clear()
