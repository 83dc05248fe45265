"""The event stream of every example on the sandbox, recorded: a restructure must not change it.

Covers: each example in examples/ (and the seed walkthrough with a failing job, and with a
cancel during cluster creation) publishes exactly the recorded CloudEvents, read off the topic
with the real Service Bus client; only times, durations and server-made ids (uids, node names)
are left out of the comparison. `GPUPROV_RECORD_STREAMS=1` writes the recording anew.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusReceiveMode

from sandbox.arm import CapacityRule
from tests.conftest import EXAMPLES
from tests.orchestration.conftest import TOPIC, World

RECORDING = Path(__file__).with_name("event_streams.json")
_VOLATILE = {
    "time",
    "startedAt",
    "expiresAt",
    "totalSeconds",
    "uid",
    "durations",
    "nodes",
    "url",
}  # url: the proof blob's, on Azurite's ephemeral port
"""Keys whose values are times, durations or what the sandbox makes up (uids, node names)."""


def _example(stem: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(next(p for p in EXAMPLES if p.stem == stem).read_text())
    return document


def _normalised(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "<volatile>" if k in _VOLATILE else _normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalised(item) for item in value]
    return value


def _stream(world: World) -> list[Any]:
    received: list[Any] = []
    with ServiceBusClient.from_connection_string(world.broker.connection_string) as client:
        receiver = client.get_subscription_receiver(
            TOPIC, "all", receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE
        )
        with receiver:
            while batch := receiver.receive_messages(max_message_count=100, max_wait_time=1):
                for message in batch:
                    event = json.loads(b"".join(message.body))
                    event["messageId"] = str(message.message_id)
                    received.append(_normalised(event))
    return received


def _seed_failing_job(world: World) -> dict[str, Any]:
    world.kube.fail_next_job(count=5)
    return _example("seed-walkthrough")


def _existing(world: World) -> dict[str, Any]:
    world.existing_cluster("platform-rg", "platform-aks", "westeurope")
    return _example("existing-cluster-gpu-pool")


def _spot(world: World) -> dict[str, Any]:
    world.existing_cluster("batch-rg", "batch-aks", "eastus2")
    world.arm.add_capacity_rule(CapacityRule("Standard_NC4as_T4_v3", "AllocationFailed", spot=True))
    return _example("spot-pool-with-fallback")


CASES: dict[str, Callable[[World], dict[str, Any]]] = {
    "seed-walkthrough": lambda world: _example("seed-walkthrough"),
    "existing-cluster-gpu-pool": _existing,
    "spot-pool-with-fallback": _spot,
    "seed-walkthrough-failing-job": _seed_failing_job,
    "h100-with-a100-fallback": lambda world: _example("h100-with-a100-fallback"),
}


def test_every_example_is_covered() -> None:
    assert {p.stem for p in EXAMPLES} <= set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_event_stream_is_the_recorded_one(world: World, case: str) -> None:
    document = CASES[case](world)
    world.host.wait_for_completion(world.start(document), timeout=120)
    stream = _stream(world)
    recorded = json.loads(RECORDING.read_text()) if RECORDING.exists() else {}
    if os.environ.get("GPUPROV_RECORD_STREAMS") == "1":
        recorded[case] = stream
        RECORDING.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    assert stream == recorded[case]
