"""The Python SDK's async client (`azure.servicebus.aio`) over the operations the Node check covers.

Covers: a message without message id gets one and settles; abandon (delivery count + 1,
dead-lettered at exactly MaxDeliveryCount; the Python SDK cannot modify properties, the Node
check covers that); defer and
receive deferred, then complete (receiving it again is `MessageNotFound`); peek; scheduled
messages and cancel; lock renewal; TTL expiry dead-lettered; sessions (a named session in order,
session state, the next free session; a message without session id and a receiver without a
session refused); topic subscriptions with rules. The broker runs on a
ManualClock, so time moves only when a test says so.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from azure.servicebus import (
    NEXT_AVAILABLE_SESSION,
    ServiceBusMessage,
    ServiceBusReceivedMessage,
    ServiceBusSubQueue,
)
from azure.servicebus.aio import ServiceBusClient
from azure.servicebus.exceptions import ServiceBusError

from sandbox.clock import ManualClock, utc
from sandbox.servicebus import CONFIG_PATH, ServiceBusBroker
from tests.conftest import eventually
from tests.sandbox_fixtures import running_broker

MAX_DELIVERIES = 3
LOCK_SECONDS = 30


def _queue(name: str, **properties: Any) -> dict[str, Any]:
    return {"Name": name, "Properties": {"LockDuration": f"PT{LOCK_SECONDS}S", **properties}}


def _config() -> dict[str, Any]:
    document = json.loads(CONFIG_PATH.read_text())
    document["UserConfig"]["Namespaces"][0]["Queues"] += [
        _queue("no-id"),
        _queue("abandon", MaxDeliveryCount=MAX_DELIVERIES),
        _queue("defer"),
        _queue("peek"),
        _queue("schedule"),
        _queue("renew"),
        _queue("ttl", DeadLetteringOnMessageExpiration=True),
        _queue("sessions", RequiresSession=True),
    ]
    return document


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def broker(clock: ManualClock) -> Iterator[ServiceBusBroker]:
    yield from running_broker(_config(), clock)


def _run(broker: ServiceBusBroker, scenario: Callable[[ServiceBusClient], Awaitable[None]]) -> None:
    async def main() -> None:
        async with ServiceBusClient.from_connection_string(broker.connection_string) as client:
            await scenario(client)

    asyncio.run(main())


_eventually = partial(
    eventually, timeout=10, waiting_for="the broker to act on its clock", interval=0.02
)


async def _send(client: ServiceBusClient, queue: str, *messages: ServiceBusMessage) -> None:
    async with client.get_queue_sender(queue) as sender:
        await sender.send_messages(list(messages))


def _text(message: ServiceBusReceivedMessage) -> str:
    return b"".join(message.body).decode()


def test_message_without_id_gets_one_and_settles(broker: ServiceBusBroker) -> None:
    async def scenario(client: ServiceBusClient) -> None:
        await _send(client, "no-id", ServiceBusMessage("anonymous"))
        async with client.get_queue_receiver("no-id") as receiver:
            (message,) = await receiver.receive_messages(max_wait_time=5)
            assert message.message_id
            await receiver.complete_message(message)

    _run(broker, scenario)
    assert broker.counts("no-id") == {"active": 0, "locked": 0, "dead_lettered": 0, "scheduled": 0}


def test_abandon_counts_and_dead_letters_at_max(
    broker: ServiceBusBroker,
) -> None:
    counts: list[int | None] = []

    async def scenario(client: ServiceBusClient) -> None:
        await _send(client, "abandon", ServiceBusMessage("poison", message_id="p-1"))
        async with client.get_queue_receiver("abandon") as receiver:
            for _ in range(MAX_DELIVERIES):
                (message,) = await receiver.receive_messages(max_wait_time=5)
                counts.append(message.delivery_count)
                await receiver.abandon_message(message)
            assert await receiver.receive_messages(max_wait_time=1) == []
        async with client.get_queue_receiver(
            "abandon", sub_queue=ServiceBusSubQueue.DEAD_LETTER
        ) as dead:
            (letter,) = await dead.receive_messages(max_wait_time=5)
            assert letter.dead_letter_reason == "MaxDeliveryCountExceeded"
            await dead.complete_message(letter)

    _run(broker, scenario)
    assert counts == [0, 1, 2]


def test_defer_then_receive_deferred(broker: ServiceBusBroker) -> None:
    async def scenario(client: ServiceBusClient) -> None:
        await _send(client, "defer", ServiceBusMessage("later", message_id="f-1"))
        async with client.get_queue_receiver("defer") as receiver:
            (message,) = await receiver.receive_messages(max_wait_time=5)
            await receiver.defer_message(message)
            assert await receiver.receive_messages(max_wait_time=1) == []
            number = message.sequence_number
            assert number is not None
            (deferred,) = await receiver.receive_deferred_messages([number])
            assert _text(deferred) == "later"
            await receiver.complete_message(deferred)
            with pytest.raises(ServiceBusError, match="No deferred message"):
                await receiver.receive_deferred_messages([number])

    _run(broker, scenario)


def test_peek_schedule_cancel_and_renew(broker: ServiceBusBroker, clock: ManualClock) -> None:
    async def scenario(client: ServiceBusClient) -> None:
        await _send(client, "peek", ServiceBusMessage("one"), ServiceBusMessage("two"))
        async with client.get_queue_receiver("peek") as receiver:
            peeked = await receiver.peek_messages(max_message_count=5)
            assert [_text(m) for m in peeked] == ["one", "two"]
            assert broker.counts("peek")["active"] == 2
        due = utc(clock) + timedelta(minutes=5)
        async with client.get_queue_sender("schedule") as sender:
            (kept,) = await sender.schedule_messages(ServiceBusMessage("kept"), due)
            (dropped,) = await sender.schedule_messages(ServiceBusMessage("dropped"), due)
            await sender.cancel_scheduled_messages(dropped)
        assert broker.counts("schedule")["scheduled"] == 1
        clock.advance(5 * 60)
        _eventually(lambda: broker.counts("schedule")["active"] == 1)
        await _send(client, "renew", ServiceBusMessage("slow"))
        async with client.get_queue_receiver("renew") as receiver:
            (message,) = await receiver.receive_messages(max_wait_time=5)
            first = message.locked_until_utc
            clock.advance(LOCK_SECONDS - 10)
            renewed = await receiver.renew_message_lock(message)
            clock.advance(20)
            await receiver.complete_message(message)
        assert first is not None
        assert renewed == first + timedelta(seconds=LOCK_SECONDS - 10)
        async with client.get_queue_receiver("schedule") as receiver:
            (message,) = await receiver.receive_messages(max_wait_time=5)
            assert (_text(message), message.sequence_number) == ("kept", kept)
            await receiver.complete_message(message)

    _run(broker, scenario)


def test_expired_message_is_dead_lettered(broker: ServiceBusBroker, clock: ManualClock) -> None:
    async def scenario(client: ServiceBusClient) -> None:
        await _send(client, "ttl", ServiceBusMessage("stale", time_to_live=timedelta(seconds=10)))
        clock.advance(11)
        _eventually(lambda: broker.counts("ttl")["dead_lettered"] == 1)
        async with client.get_queue_receiver(
            "ttl", sub_queue=ServiceBusSubQueue.DEAD_LETTER
        ) as dead:
            (letter,) = await dead.receive_messages(max_wait_time=5)
            assert letter.dead_letter_reason == "TTLExpiredException"
            await dead.complete_message(letter)

    _run(broker, scenario)


def test_sessions(broker: ServiceBusBroker) -> None:
    async def scenario(client: ServiceBusClient) -> None:
        await _send(
            client,
            "sessions",
            ServiceBusMessage("a1", session_id="a"),
            ServiceBusMessage("b1", session_id="b"),
            ServiceBusMessage("a2", session_id="a"),
        )
        async with client.get_queue_receiver("sessions", session_id="a") as receiver:
            got = await receiver.receive_messages(max_message_count=5, max_wait_time=3)
            assert [_text(m) for m in got] == ["a1", "a2"]
            for message in got:
                await receiver.complete_message(message)
            assert receiver.session.locked_until_utc is not None
            await receiver.session.set_state("seen-2")
            assert await receiver.session.get_state() == b"seen-2"
        async with client.get_queue_receiver(
            "sessions", session_id=NEXT_AVAILABLE_SESSION
        ) as receiver:
            assert receiver.session.session_id == "b"
            (message,) = await receiver.receive_messages(max_wait_time=5)
            assert _text(message) == "b1"
            await receiver.complete_message(message)

    _run(broker, scenario)


def test_session_queue_refuses_what_has_no_session(broker: ServiceBusBroker) -> None:
    """Sending without a session id, or receiving without a session receiver, is refused."""

    async def scenario(client: ServiceBusClient) -> None:
        with pytest.raises(ServiceBusError, match="SessionId was not set"):
            await _send(client, "sessions", ServiceBusMessage("no session"))
        async with client.get_queue_receiver("sessions") as receiver:
            with pytest.raises(ServiceBusError, match="requires sessions"):
                await receiver.receive_messages(max_wait_time=2)

    _run(broker, scenario)
    assert broker.counts("sessions")["active"] == 0


def test_topic_rules_route_by_application_property(broker: ServiceBusBroker) -> None:
    async def scenario(client: ServiceBusClient) -> None:
        async with client.get_topic_sender("gpu-provisioning-events") as sender:
            await sender.send_messages(
                [
                    ServiceBusMessage("ok", application_properties={"status": "succeeded"}),
                    ServiceBusMessage("bad", application_properties={"status": "failed"}),
                ]
            )
        async with client.get_subscription_receiver(
            "gpu-provisioning-events", "failures"
        ) as receiver:
            got = await receiver.receive_messages(max_message_count=5, max_wait_time=3)
            assert [_text(m) for m in got] == ["bad"]
            for message in got:
                await receiver.complete_message(message)

    _run(broker, scenario)
