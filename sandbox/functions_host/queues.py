"""The Storage queue trigger, as the Functions host's queue listener and QueueProcessor run it.

Messages are received with a 10-minute lease (the host's), handed to the function as a
`TriggerMessage`, then: success → deleted; failure → visible again after host.json's
`visibilityTimeout`; a failure at `maxDequeueCount` dequeues → copied unchanged to
`<queue>-poison` (created if missing) and deleted. A message already past the count when it
arrives goes straight to the poison queue. A queue that does not exist is polled as empty: the
host never creates the trigger's queue.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import threading
from dataclasses import dataclass

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as TriggerMessage
from azure.storage.queue import QueueClient, QueueMessage

from sandbox.functions_host.config import QueueOptions
from sandbox.functions_host.worker import FunctionSpec, Worker

log = logging.getLogger(__name__)

LEASE_SECONDS = 600


@dataclass
class StorageQueueListener:
    """Polls one Storage queue for one function, moving a message to `<queue>-poison` after
    host.json's maxDequeueCount."""

    spec: FunctionSpec
    worker: Worker
    connection_string: str
    queue_name: str
    options: QueueOptions
    poll_seconds: float
    stopping: threading.Event

    @property
    def poison_queue_name(self) -> str:
        return f"{self.queue_name}-poison"

    def run(self) -> None:
        """Poll until `stopping` is set; the thread's target."""
        with (
            QueueClient.from_connection_string(self.connection_string, self.queue_name) as queue,
            QueueClient.from_connection_string(
                self.connection_string, self.poison_queue_name
            ) as poison,
        ):
            while not self.stopping.is_set():
                messages = self._receive(queue)
                for message in messages:
                    self._process(queue, poison, message)
                if not messages:
                    self.stopping.wait(self.poll_seconds)

    def _receive(self, queue: QueueClient) -> list[QueueMessage]:
        try:
            return list(
                queue.receive_messages(
                    max_messages=self.options.batch_size, visibility_timeout=LEASE_SECONDS
                )
            )
        except ResourceNotFoundError:
            return []
        except AzureError as exc:
            log.warning("polling queue %s failed: %s", self.queue_name, exc)
            return []

    def _process(self, queue: QueueClient, poison: QueueClient, message: QueueMessage) -> None:
        dequeues = message.dequeue_count or 0
        try:
            if dequeues > self.options.max_dequeue_count:
                self._to_poison(queue, poison, message)
            elif self._invoke(message):
                queue.delete_message(message)
            elif dequeues >= self.options.max_dequeue_count:
                self._to_poison(queue, poison, message)
            else:
                queue.update_message(
                    message, visibility_timeout=int(self.options.visibility_timeout_seconds)
                )
        except AzureError as exc:
            log.warning("settling message %s on %s failed: %s", message.id, self.queue_name, exc)

    def _invoke(self, message: QueueMessage) -> bool:
        try:
            value = self._trigger_value(message)
        except ValueError as exc:  # the host fails the invocation when the binding fails
            log.error("function %s failed: %s", self.spec.name, exc)
            return False
        succeeded, _ = self.worker.invoke(self.spec, value)
        return succeeded

    def _trigger_value(self, message: QueueMessage) -> TriggerMessage:
        return TriggerMessage(  # type: ignore[no-untyped-call]  # the worker's own class
            id=message.id,
            body=self._body(message.content),
            dequeue_count=message.dequeue_count,
            expiration_time=message.expires_on,
            insertion_time=message.inserted_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )

    def _body(self, content: object) -> bytes:
        """The message text as host.json's `messageEncoding` says: raw (`none`) or base64."""
        text = content if isinstance(content, str) else str(content or "")
        if self.options.message_encoding == "none":
            return text.encode("utf-8")
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise ValueError(
                f"a message on {self.queue_name} is not base64 (host.json messageEncoding)"
            ) from exc

    def _to_poison(self, queue: QueueClient, poison: QueueClient, message: QueueMessage) -> None:
        log.warning(
            "message %s on %s is poison after %s dequeues: moved to %s",
            message.id,
            self.queue_name,
            message.dequeue_count,
            self.poison_queue_name,
        )
        with contextlib.suppress(ResourceExistsError):
            poison.create_queue()
        poison.send_message(message.content)
        queue.delete_message(message)
