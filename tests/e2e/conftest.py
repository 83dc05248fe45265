"""The app as it runs on Azure, on one machine: its triggers on the local Functions host, its
requests on Azurite and the local Service Bus broker, its cloud calls into the ARM and Kubernetes
simulators. Cloud operations run on a clock sped up 600× so a ten-minute cluster takes a second;
the broker keeps real time (its message locks are real-time promises to the host).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusReceiveMode
from azure.storage.queue import QueueClient

from sandbox.arm import ArmSimulator
from sandbox.clock import ScaledClock
from sandbox.functions_host import LocalFunctionsHost
from sandbox.servicebus import ServiceBusBroker
from sandbox.tls import TestCA
from sandbox.world import NEVER, app_settings
from shared.events import close_event_publisher
from shared.settings import current_settings
from tests.builders import seed_document
from tests.conftest import ROOT, eventually

TOPIC = "gpu-provisioning-events"
QUEUE = "provisioning-requests"


@pytest.fixture
def clock() -> ScaledClock:  # overrides the ManualClock of tests/sandbox_fixtures.py
    return ScaledClock(600.0)


@dataclass
class App:
    """The running app and the ways a user reaches it and sees what it did."""

    host: LocalFunctionsHost
    arm: ArmSimulator
    broker: ServiceBusBroker
    storage: str
    seen: list[dict[str, Any]]

    def request(self, **changes: Any) -> dict[str, Any]:
        """The seed walkthrough under a fresh request id, with top-level fields changed."""
        return seed_document({"requestId": f"e2e-{uuid.uuid4().hex[:10]}"}, changes)

    def enqueue(self, body: str, queue: str = QUEUE) -> None:
        with QueueClient.from_connection_string(self.storage, queue) as client:
            client.send_message(body)

    def queue_messages(self, queue: str) -> list[str]:
        with QueueClient.from_connection_string(self.storage, queue) as client:
            return [str(m.content) for m in client.peek_messages(max_messages=32)]

    def send_to_service_bus(self, body: str, message_id: str | None = None) -> None:
        from azure.servicebus import ServiceBusMessage

        with ServiceBusClient.from_connection_string(self.broker.connection_string) as client:
            sender = client.get_queue_sender(QUEUE)
            with sender:
                sender.send_messages(ServiceBusMessage(body, message_id=message_id))

    def events(self) -> list[dict[str, Any]]:
        """Every event received so far on the `all` subscription (data of each CloudEvent)."""
        with ServiceBusClient.from_connection_string(self.broker.connection_string) as client:
            receiver = client.get_subscription_receiver(
                TOPIC, "all", receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE
            )
            with receiver:
                while batch := receiver.receive_messages(max_message_count=100, max_wait_time=0.5):
                    for message in batch:
                        event = json.loads(str(message))
                        self.seen.append({"requestId": event["subject"], **event["data"]})
        return list(self.seen)

    def runs(self) -> list[str]:
        """The orchestrations started for requests (waiting sub-orchestrations left out)."""
        return [i for i in self.host.durable.instance_ids() if ":" not in i]

    def steps_of(self, request_id: str) -> list[tuple[str, str]]:
        return [(e["step"], e["status"]) for e in self.events() if e["requestId"] == request_id]

    def wait_for(self, what: Callable[[], Any], timeout: float = 150.0) -> Any:
        """Poll until `what()` is truthy (the host works in its own threads)."""
        return eventually(what, timeout, str(getattr(what, "__name__", what)), interval=0.2)

    def final_event(self, request_id: str) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            return next(
                (
                    e
                    for e in self.events()
                    if e["requestId"] == request_id and e["step"] in ("completed", "failed")
                ),
                None,
            )

        event: dict[str, Any] = self.wait_for(final)
        return event


def host_json(tmp_path: Path) -> Path:
    """The app's host.json with a 1 s visibility timeout, so five failed dequeues take seconds."""
    config = json.loads((ROOT / "host.json").read_text())
    config["extensions"]["queues"]["visibilityTimeout"] = "00:00:01"
    path = tmp_path / "host.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def app_env(
    monkeypatch: pytest.MonkeyPatch,
    arm: ArmSimulator,
    ca: TestCA,
    storage: str,
    broker: ServiceBusBroker,
) -> dict[str, str]:
    """The settings `gpuprov sandbox up` writes, for this test's servers; Azurite's request
    queues there and empty. The reaper runs once a year: reaper tests set their own schedule."""
    values = app_settings(
        arm.url, ca.ca_path, storage=storage, service_bus=broker.connection_string,
        reaper_schedule=NEVER,
    )  # fmt: skip
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    current_settings.cache_clear()
    return values


def start_app(
    env: dict[str, str], clock: ScaledClock, tmp_path: Path, arm: ArmSimulator, broker: Any
) -> Generator[App, None, None]:
    import function_app

    host = LocalFunctionsHost(
        function_app.app, env=env, clock=clock, host_json=host_json(tmp_path), poll_seconds=0.1
    )
    try:
        with host:
            yield App(host, arm, broker, env["AzureWebJobsStorage"], [])
    finally:
        close_event_publisher()
        current_settings.cache_clear()


@pytest.fixture
def app(
    app_env: dict[str, str],
    clock: ScaledClock,
    tmp_path: Path,
    arm: ArmSimulator,
    broker: ServiceBusBroker,
) -> Iterator[App]:
    yield from start_app(app_env, clock, tmp_path, arm, broker)
