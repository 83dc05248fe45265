"""The Service Bus queue trigger, as the Functions host runs it with `autoCompleteMessages` on.

One client and one peek-lock receiver per trigger for the host's lifetime. Each message goes to
the function as a `TriggerMessage`; success completes it, an exception abandons it, and
the broker dead-letters it once its MaxDeliveryCount is spent. The delivery count the function
sees is the .NET SDK's (the host's): 1 on the first delivery, where the AMQP header says 0.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from azure.functions.servicebus import ServiceBusMessage as TriggerMessage
from azure.servicebus import ServiceBusClient, ServiceBusReceivedMessage, ServiceBusReceiveMode
from azure.servicebus.amqp import AmqpMessageBodyType
from azure.servicebus.exceptions import ServiceBusError

from sandbox.functions_host.worker import FunctionSpec, Worker

log = logging.getLogger(__name__)


@dataclass
class ServiceBusQueueListener:
    """Receives from one Service Bus queue for one function, peek-lock: completed when the
    function succeeds, abandoned when it fails (the queue dead-letters past maxDeliveryCount)."""

    spec: FunctionSpec
    worker: Worker
    connection_string: str
    queue_name: str
    poll_seconds: float
    stopping: threading.Event

    def run(self) -> None:
        """Receive until `stopping` is set; the thread's target. Closes its receiver and client."""
        with (
            ServiceBusClient.from_connection_string(self.connection_string) as client,
            client.get_queue_receiver(
                self.queue_name, receive_mode=ServiceBusReceiveMode.PEEK_LOCK
            ) as receiver,
        ):
            while not self.stopping.is_set():
                try:
                    messages = receiver.receive_messages(
                        max_message_count=1, max_wait_time=self.poll_seconds
                    )
                except ServiceBusError as exc:
                    log.warning("receiving from %s failed: %s", self.queue_name, exc)
                    self.stopping.wait(self.poll_seconds)
                    continue
                for message in messages:
                    succeeded, _ = self.worker.invoke(self.spec, trigger_value(message))
                    try:
                        if succeeded:
                            receiver.complete_message(message)
                        else:
                            receiver.abandon_message(message)
                    except ServiceBusError as exc:
                        log.warning(
                            "settling message %s on %s failed: %s",
                            message.message_id,
                            self.queue_name,
                            exc,
                        )


def trigger_value(message: ServiceBusReceivedMessage) -> TriggerMessage:
    """The `TriggerMessage` the worker builds from the host's trigger metadata."""
    properties = _text_keys(message.application_properties)
    delivery_count = message.delivery_count + 1 if message.delivery_count is not None else 1
    lock_token = str(message.lock_token) if message.lock_token is not None else None
    metadata = {
        "MessageId": message.message_id,
        "DeliveryCount": delivery_count,
        "ContentType": message.content_type,
        "CorrelationId": message.correlation_id,
        "Subject": message.subject,
        "SequenceNumber": message.sequence_number,
        "EnqueuedTimeUtc": message.enqueued_time_utc,
        "LockToken": lock_token,
        "ApplicationProperties": properties,
        "UserProperties": properties,
    }
    return TriggerMessage(
        body=_body(message),
        trigger_metadata=metadata,
        application_properties=properties,
        content_type=message.content_type,
        correlation_id=message.correlation_id,
        dead_letter_error_description=message.dead_letter_error_description,
        dead_letter_reason=message.dead_letter_reason,
        dead_letter_source=message.dead_letter_source,
        delivery_count=delivery_count,
        enqueued_sequence_number=message.enqueued_sequence_number,
        enqueued_time_utc=message.enqueued_time_utc,
        expires_at_utc=message.expires_at_utc,
        label=message.subject,
        locked_until=message.locked_until_utc,
        lock_token=lock_token,
        message_id=message.message_id or "",
        partition_key=message.partition_key,
        reply_to=message.reply_to,
        reply_to_session_id=message.reply_to_session_id,
        scheduled_enqueue_time_utc=message.scheduled_enqueue_time_utc,
        sequence_number=message.sequence_number,
        session_id=message.session_id,
        state=int(message.state) if message.state is not None else None,
        subject=message.subject,
        time_to_live=message.time_to_live,
        to=message.to,
        user_properties=properties,
    )


def _body(message: ServiceBusReceivedMessage) -> bytes:
    if message.body_type != AmqpMessageBodyType.DATA:
        return str(message).encode("utf-8")
    body: bytes | Iterable[bytes] = message.body
    return body if isinstance(body, bytes) else b"".join(body)


def _text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _text_keys(properties: dict[Any, Any] | None) -> dict[str, Any]:
    """Application properties with text keys and values, as the host passes them."""
    return {str(_text(k)): _text(v) for k, v in (properties or {}).items()}
