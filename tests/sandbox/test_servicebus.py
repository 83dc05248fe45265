"""The local Service Bus broker, driven by the real `azure-servicebus` client over AMQP.

Covers: topic send → subscription receive keeps message id, correlation id, subject, content
type, application properties and a CloudEvents JSON body; correlation filters route by
application property (the app's `failures` / `completed` subscriptions); a batch send; queue
send/receive; peek-lock complete, abandon (redelivered, delivery count + 1) and dead-letter
(reason and description read from the dead-letter queue); lock expiry (redelivered, the old lock
is lost); MaxDeliveryCount exceeded → dead-letter queue; receive-and-delete; duplicate message
ids dropped within the detection window and accepted after it; scheduled messages (via
`schedule_messages` on a queue or topic and via `scheduled_enqueue_time_utc`) hidden until their
time, and cancelled ones never delivered; peek without
locking and lock renewal; message time-to-live expiry to the dead-letter queue; ForwardTo;
unknown entities refused; stop closes the port and ends the thread.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from azure.servicebus import (
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusReceivedMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus.exceptions import (
    MessageLockLostError,
    MessagingEntityNotFoundError,
    ServiceBusError,
)

from sandbox.clock import ManualClock, utc
from sandbox.servicebus import CONFIG_PATH, ServiceBusBroker
from tests.conftest import eventually
from tests.sandbox_fixtures import running_broker

TOPIC = "gpu-provisioning-events"
REQUESTS = "provisioning-requests"
LOCK_SECONDS = 30
MAX_DELIVERIES = 2
# CorrelationFilter field → the value the matching message carries
SYSTEM_FILTERS = {
    "CorrelationId": "req-9",
    "MessageId": "req-9:run-job:failed",
    "Label": "req-9-subject",
    "ContentType": "application/cloudevents+json",
    "To": "ops",
    "ReplyTo": "replies",
    "SessionId": "session-9",
}


def _queue(name: str, **properties: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {"LockDuration": f"PT{LOCK_SECONDS}S", "MaxDeliveryCount": 10}
    return {"Name": name, "Properties": {**defaults, **properties}}


def _config() -> dict[str, Any]:
    """The app's own Config.json plus one queue per behaviour under test."""
    document = json.loads(CONFIG_PATH.read_text())
    document["UserConfig"]["Namespaces"][0]["Queues"] += [
        _queue("batches"),
        _queue("settle-complete"),
        _queue("settle-abandon"),
        _queue("settle-dead-letter"),
        _queue("lock-expiry"),
        _queue("max-delivery", MaxDeliveryCount=MAX_DELIVERIES),
        _queue("receive-and-delete"),
        _queue(
            "deduplicated",
            RequiresDuplicateDetection=True,
            DuplicateDetectionHistoryTimeWindow="PT10M",
        ),
        _queue("scheduled"),
        _queue("peek-renew"),
        _queue("short-lived", DeadLetteringOnMessageExpiration=True),
        _queue("forwarder", ForwardTo="forward-target"),
        _queue("forward-target"),
    ]
    document["UserConfig"]["Namespaces"][0]["Topics"].append(
        {
            "Name": "filters",
            "Subscriptions": [
                {
                    "Name": field,
                    "Rules": [
                        {
                            "Name": "$Default",  # a rule beside $Default would not filter
                            "Properties": {
                                "FilterType": "Correlation",
                                "CorrelationFilter": {field: value},
                            },
                        }
                    ],
                }
                for field, value in SYSTEM_FILTERS.items()
            ],
        }
    )
    return document


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def broker(clock: ManualClock) -> Iterator[ServiceBusBroker]:
    yield from running_broker(_config(), clock)


@pytest.fixture(scope="module")
def client(broker: ServiceBusBroker) -> Iterator[ServiceBusClient]:
    with ServiceBusClient.from_connection_string(broker.connection_string) as sb:
        yield sb


def _event(request_id: str, step: str, status: str) -> ServiceBusMessage:
    """An event as the app publishes it: CloudEvents JSON, ids and filterable properties."""
    event_id = f"{request_id}:{step}:{status}"
    body = {
        "specversion": "1.0",
        "id": event_id,
        "source": "/gpu-provisioner",
        "type": f"gpuprovisioner.step.{status}",
        "subject": request_id,
        "datacontenttype": "application/json",
        "data": {"step": step, "status": status, "message": "ok", "durations": {"step": 1.5}},
    }
    return ServiceBusMessage(
        json.dumps(body),
        message_id=event_id,
        correlation_id=request_id,
        subject=request_id,
        content_type="application/cloudevents+json",
        application_properties={"requestId": request_id, "step": step, "status": status},
    )


_eventually = partial(
    eventually, timeout=5, waiting_for="the broker to act on its clock", interval=0.02
)
"""Wait for the broker thread's next clock tick to have acted."""


def _body(message: ServiceBusReceivedMessage) -> bytes:
    return b"".join(message.body)


def _receive_one(client: ServiceBusClient, queue: str, **kwargs: Any) -> ServiceBusReceivedMessage:
    with client.get_queue_receiver(queue, **kwargs) as receiver:
        messages = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        assert len(messages) == 1
        return messages[0]


def _send(client: ServiceBusClient, entity: str, *messages: ServiceBusMessage) -> None:
    with client.get_queue_sender(entity) as sender:
        sender.send_messages(list(messages))


def test_topic_event_reaches_subscription_intact(
    client: ServiceBusClient, broker: ServiceBusBroker, clock: ManualClock
) -> None:
    sent_at = utc(clock)
    with client.get_topic_sender(TOPIC) as sender:
        sender.send_messages(_event("req-1", "create-node-pool", "succeeded"))
    with client.get_subscription_receiver(TOPIC, "all") as receiver:
        messages = receiver.receive_messages(max_message_count=5, max_wait_time=5)
        assert len(messages) == 1
        received = messages[0]
        receiver.complete_message(received)

    assert received.message_id == "req-1:create-node-pool:succeeded"
    assert received.correlation_id == "req-1"
    assert received.subject == "req-1"
    assert received.content_type == "application/cloudevents+json"
    assert received.application_properties == {
        b"requestId": b"req-1",
        b"step": b"create-node-pool",
        b"status": b"succeeded",
    }
    event = json.loads(_body(received))
    assert event["type"] == "gpuprovisioner.step.succeeded"
    assert event["data"]["durations"] == {"step": 1.5}
    assert received.delivery_count == 0
    assert received.sequence_number is not None
    assert received.enqueued_time_utc == sent_at
    assert broker.counts(f"{TOPIC}/Subscriptions/all")["active"] == 0


def test_correlation_filters_route_by_application_property(
    client: ServiceBusClient, broker: ServiceBusBroker
) -> None:
    with client.get_topic_sender(TOPIC) as sender:
        sender.send_messages(
            [
                _event("req-2", "run-job", "failed"),
                _event("req-2", "completed", "succeeded"),
                _event("req-2", "verify-gpus", "started"),
            ]
        )
    counts = {
        sub: broker.counts(f"{TOPIC}/Subscriptions/{sub}")["active"]
        for sub in ("all", "failures", "completed")
    }
    assert counts == {"all": 3, "failures": 1, "completed": 1}
    with client.get_subscription_receiver(
        TOPIC, "failures", receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE
    ) as receiver:
        (failure,) = receiver.receive_messages(max_message_count=5, max_wait_time=5)
    assert failure.message_id == "req-2:run-job:failed"


def test_correlation_filters_match_system_properties(
    client: ServiceBusClient, broker: ServiceBusBroker
) -> None:
    matching = ServiceBusMessage(
        "match",
        correlation_id=SYSTEM_FILTERS["CorrelationId"],
        message_id=SYSTEM_FILTERS["MessageId"],
        subject=SYSTEM_FILTERS["Label"],
        content_type=SYSTEM_FILTERS["ContentType"],
        to=SYSTEM_FILTERS["To"],
        reply_to=SYSTEM_FILTERS["ReplyTo"],
        session_id=SYSTEM_FILTERS["SessionId"],
    )
    other = ServiceBusMessage(
        "other", correlation_id="req-10", message_id="x", subject="y", content_type="text/plain"
    )
    with client.get_topic_sender("filters") as sender:
        sender.send_messages([matching, other])
    counts = {
        field: broker.counts(f"filters/Subscriptions/{field}")["active"] for field in SYSTEM_FILTERS
    }
    assert counts == dict.fromkeys(SYSTEM_FILTERS, 1)


def test_batch_is_split_into_messages(client: ServiceBusClient) -> None:
    with client.get_queue_sender("batches") as sender:
        batch = sender.create_message_batch()
        for index in range(3):
            batch.add_message(
                ServiceBusMessage(f"body-{index}", message_id=f"b-{index}", subject="batched")
            )
        sender.send_messages(batch)
    with client.get_queue_receiver("batches") as receiver:
        received: list[ServiceBusReceivedMessage] = []
        while len(received) < 3:
            got = receiver.receive_messages(max_message_count=3, max_wait_time=5)
            assert got, "the batch was not delivered in full"
            received += got
        for message in received:
            receiver.complete_message(message)
    assert [(m.message_id, _body(m), m.subject) for m in received] == [
        (f"b-{i}", f"body-{i}".encode(), "batched") for i in range(3)
    ]


def test_queue_request_round_trip(client: ServiceBusClient, broker: ServiceBusBroker) -> None:
    request = {"requestId": "req-3", "vmSize": "Standard_NC4as_T4_v3"}
    _send(client, REQUESTS, ServiceBusMessage(json.dumps(request), message_id="req-3"))
    with client.get_queue_receiver(REQUESTS) as receiver:
        (message,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        assert broker.counts(REQUESTS)["locked"] == 1
        receiver.complete_message(message)
    assert json.loads(_body(message)) == request
    assert broker.counts(REQUESTS) == {
        "active": 0,
        "locked": 0,
        "dead_lettered": 0,
        "scheduled": 0,
    }


def test_complete_removes_the_message(client: ServiceBusClient, broker: ServiceBusBroker) -> None:
    _send(client, "settle-complete", ServiceBusMessage("done", message_id="c-1"))
    with client.get_queue_receiver("settle-complete") as receiver:
        (message,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        receiver.complete_message(message)
        assert receiver.receive_messages(max_message_count=1, max_wait_time=0.5) == []
    assert broker.counts("settle-complete") == {
        "active": 0,
        "locked": 0,
        "dead_lettered": 0,
        "scheduled": 0,
    }


def test_abandon_redelivers_with_delivery_count_plus_one(client: ServiceBusClient) -> None:
    _send(client, "settle-abandon", ServiceBusMessage("again", message_id="a-1"))
    with client.get_queue_receiver("settle-abandon") as receiver:
        (first,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        first_lock = first.lock_token
        receiver.abandon_message(first)
        (second,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        second_lock = second.lock_token
        receiver.complete_message(second)
    assert (first.message_id, first.delivery_count) == ("a-1", 0)
    assert (second.message_id, second.delivery_count) == ("a-1", 1)
    assert second_lock != first_lock


def test_dead_letter_keeps_reason_and_description(
    client: ServiceBusClient, broker: ServiceBusBroker
) -> None:
    _send(client, "settle-dead-letter", ServiceBusMessage("poison", message_id="d-1"))
    with client.get_queue_receiver("settle-dead-letter") as receiver:
        (message,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        receiver.dead_letter_message(
            message, reason="InvalidRequest", error_description="vmSize is not a GPU size"
        )
    assert broker.counts("settle-dead-letter")["active"] == 0
    dead = _receive_one(client, "settle-dead-letter", sub_queue=ServiceBusSubQueue.DEAD_LETTER)
    assert dead.message_id == "d-1"
    assert _body(dead) == b"poison"
    assert dead.dead_letter_reason == "InvalidRequest"
    assert dead.dead_letter_error_description == "vmSize is not a GPU size"


def test_lock_expiry_makes_the_message_available_again(
    client: ServiceBusClient, clock: ManualClock
) -> None:
    _send(client, "lock-expiry", ServiceBusMessage("slow", message_id="e-1"))
    with client.get_queue_receiver("lock-expiry") as receiver:
        (first,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        assert receiver.receive_messages(max_message_count=1, max_wait_time=0.5) == []
        clock.advance(LOCK_SECONDS + 1)
        (second,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        with pytest.raises(MessageLockLostError):
            receiver.complete_message(first)
        receiver.complete_message(second)
    assert (second.message_id, second.delivery_count) == ("e-1", 1)


def test_max_delivery_count_exceeded_dead_letters(
    client: ServiceBusClient, broker: ServiceBusBroker
) -> None:
    _send(client, "max-delivery", ServiceBusMessage("fails", message_id="m-1"))
    with client.get_queue_receiver("max-delivery") as receiver:
        for _ in range(MAX_DELIVERIES):
            (message,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
            receiver.abandon_message(message)
        assert receiver.receive_messages(max_message_count=1, max_wait_time=0.5) == []
    assert broker.counts("max-delivery")["dead_lettered"] == 1
    dead = _receive_one(client, "max-delivery", sub_queue=ServiceBusSubQueue.DEAD_LETTER)
    assert dead.message_id == "m-1"
    assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"
    assert dead.delivery_count == MAX_DELIVERIES


def test_receive_and_delete_removes_on_delivery(
    client: ServiceBusClient, broker: ServiceBusBroker
) -> None:
    _send(client, "receive-and-delete", ServiceBusMessage("once", message_id="r-1"))
    message = _receive_one(
        client, "receive-and-delete", receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE
    )
    assert message.message_id == "r-1"
    assert message.lock_token is None
    assert broker.counts("receive-and-delete") == {
        "active": 0,
        "locked": 0,
        "dead_lettered": 0,
        "scheduled": 0,
    }


def test_duplicate_message_id_dropped_within_the_window(
    client: ServiceBusClient, broker: ServiceBusBroker, clock: ManualClock
) -> None:
    with client.get_queue_sender("deduplicated") as sender:
        sender.send_messages(ServiceBusMessage("first", message_id="req-4:accepted:succeeded"))
        sender.send_messages(ServiceBusMessage("replay", message_id="req-4:accepted:succeeded"))
        sender.send_messages(ServiceBusMessage("other", message_id="req-4:run-job:started"))
        assert broker.counts("deduplicated")["active"] == 2
        assert broker.namespace.dropped_duplicates == 1
        clock.advance(11 * 60)
        sender.send_messages(ServiceBusMessage("later", message_id="req-4:accepted:succeeded"))
    with client.get_queue_receiver(
        "deduplicated", receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE
    ) as receiver:
        received: list[ServiceBusReceivedMessage] = []
        while len(received) < 3:
            got = receiver.receive_messages(max_message_count=5, max_wait_time=5)
            assert got
            received += got
        assert receiver.receive_messages(max_message_count=5, max_wait_time=0.5) == []
    assert [_body(m) for m in received] == [b"first", b"other", b"later"]


def test_scheduled_messages_wait_for_their_time(
    client: ServiceBusClient, broker: ServiceBusBroker, clock: ManualClock
) -> None:
    due = utc(clock) + timedelta(minutes=5)
    with client.get_queue_sender("scheduled") as sender:
        (number,) = sender.schedule_messages(ServiceBusMessage("via-management"), due)
        sender.send_messages(ServiceBusMessage("via-annotation", scheduled_enqueue_time_utc=due))
        (cancelled,) = sender.schedule_messages(ServiceBusMessage("cancelled"), due)
        sender.cancel_scheduled_messages(cancelled)
    with client.get_topic_sender("filters") as topic_sender:
        topic_sender.schedule_messages(ServiceBusMessage("to-ops", to="ops"), due)
    assert broker.counts("scheduled")["scheduled"] == 2
    with client.get_queue_receiver(
        "scheduled", receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE
    ) as receiver:
        assert receiver.receive_messages(max_message_count=2, max_wait_time=0.5) == []
        to_ops = broker.counts("filters/Subscriptions/To")["active"]
        clock.advance(5 * 60)
        received: list[ServiceBusReceivedMessage] = []
        while len(received) < 2:
            got = receiver.receive_messages(max_message_count=3, max_wait_time=5)
            assert got
            received += got
        assert receiver.receive_messages(max_message_count=1, max_wait_time=0.5) == []
    assert [_body(m) for m in received] == [b"via-management", b"via-annotation"]
    assert received[0].sequence_number == number
    assert broker.counts("filters/Subscriptions/To")["active"] == to_ops + 1


def test_peek_does_not_lock_and_renew_extends_the_lock(
    client: ServiceBusClient, broker: ServiceBusBroker, clock: ManualClock
) -> None:
    _send(client, "peek-renew", ServiceBusMessage("long job", message_id="p-1"))
    with client.get_queue_receiver("peek-renew") as receiver:
        (peeked,) = receiver.peek_messages(max_message_count=5)
        assert peeked.message_id == "p-1"
        assert broker.counts("peek-renew")["active"] == 1
        (message,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        first_until = message.locked_until_utc
        clock.advance(LOCK_SECONDS - 10)
        renewed_until = receiver.renew_message_lock(message)
        clock.advance(20)  # past the first lock, inside the renewed one
        receiver.complete_message(message)
    assert first_until is not None
    assert renewed_until == first_until + timedelta(seconds=LOCK_SECONDS - 10)


def test_expired_message_is_dead_lettered(
    client: ServiceBusClient, broker: ServiceBusBroker, clock: ManualClock
) -> None:
    _send(
        client,
        "short-lived",
        ServiceBusMessage("stale", message_id="t-1", time_to_live=timedelta(seconds=10)),
    )
    assert broker.counts("short-lived")["active"] == 1
    clock.advance(11)
    _eventually(lambda: broker.counts("short-lived")["dead_lettered"] == 1)
    dead = _receive_one(client, "short-lived", sub_queue=ServiceBusSubQueue.DEAD_LETTER)
    assert (dead.message_id, dead.dead_letter_reason) == ("t-1", "TTLExpiredException")


def test_forward_to_moves_messages_on(client: ServiceBusClient, broker: ServiceBusBroker) -> None:
    _send(client, "forwarder", ServiceBusMessage("onwards", message_id="f-1"))
    assert broker.counts("forwarder")["active"] == 0
    assert broker.counts("forward-target")["active"] == 1


def test_unknown_entity_is_refused(broker: ServiceBusBroker) -> None:
    with ServiceBusClient.from_connection_string(broker.connection_string, retry_total=0) as sb:
        with (
            pytest.raises(MessagingEntityNotFoundError, match="'no-such-queue' could not be found"),
            sb.get_queue_receiver("no-such-queue") as receiver,
        ):
            receiver.receive_messages(max_wait_time=1)
        # the SDK's sender reports a refused link without the broker's condition
        with pytest.raises(ServiceBusError), sb.get_queue_sender("no-such-queue") as sender:
            sender.send_messages(ServiceBusMessage("lost"))


def test_stop_closes_the_port_and_ends_the_thread() -> None:
    broker = ServiceBusBroker(CONFIG_PATH).start()
    port = broker.port
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    broker.stop()
    broker.stop()
    assert broker._thread is None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
