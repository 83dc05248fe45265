"""Publishing step events: one long-lived Service Bus sender per worker process, and the
classification of Service Bus errors."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from azure.core.exceptions import AzureError, ClientAuthenticationError

from shared.closing import Closing
from shared.credentials import credential_for
from shared.errors import CONNECTION_FAILED, StepError, classify
from shared.events.contract import Outcome
from shared.events.encoding import CONTENT_TYPE, build_event, encode
from shared.settings import Settings

if TYPE_CHECKING:  # the SDK is imported where a message is sent, not where events are built
    from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSender

EVENTS_NOT_CONFIGURED: Final = "EventsNotConfigured"
"""StepError code when neither Service Bus setting is set."""


def message_for(outcome: Outcome, owner: str) -> ServiceBusMessage:
    """The Service Bus message of an outcome: the structured CloudEvent and filterable headers."""
    from azure.servicebus import ServiceBusMessage

    event = build_event(outcome, owner)
    return ServiceBusMessage(
        encode(event),
        content_type=CONTENT_TYPE,
        message_id=event.id,
        correlation_id=outcome.request_id,
        subject=outcome.step,
        application_properties={
            "requestId": outcome.request_id,
            "step": outcome.step,
            "status": outcome.status,
        },
    )


class EventPublisher(Closing):
    """Sends outcomes to the events topic through one sender, opened on first use and kept.

    Opening and closing a Service Bus sender take about half a second each, so a worker keeps
    one (see `event_publisher`); a sender that failed is dropped, the next publish opens another.
    Sends are serialised because the SDK's sender is not thread-safe. A failed send raises a
    StepError, so the publishing activity fails and is retried; duplicate detection on the topic
    (the message id is the event id) drops what a retry sends twice.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        retry_total: int = 3,
        retry_backoff_factor: float = 0.8,
        retry_backoff_max: float = 30.0,
        send_timeout: float = 60.0,
    ) -> None:
        if not settings.service_bus_connection and not settings.service_bus_namespace:
            raise StepError(
                "permanent",
                EVENTS_NOT_CONFIGURED,
                "No Service Bus to publish step events to.",
                "Set ServiceBusConnection (a connection string) or "
                "ServiceBusConnection__fullyQualifiedNamespace (identity-based) in the app "
                "settings.",
            )
        self.settings = settings
        self.opens = 0
        """How many senders this publisher opened: 1 in a healthy worker."""
        self._retry_total = retry_total
        self._retry_backoff_factor = retry_backoff_factor
        self._retry_backoff_max = retry_backoff_max
        self._send_timeout = send_timeout
        self._lock = threading.Lock()
        self._client: ServiceBusClient | None = None
        self._sender: ServiceBusSender | None = None

    def publish(self, outcome: Outcome) -> str:
        """Send the outcome's event; returns its id. Raises StepError when it was not sent."""
        return self.publish_all([outcome])[0]

    def publish_all(self, outcomes: Sequence[Outcome]) -> list[str]:
        """Send the outcomes' events in order, as few batches as their size allows (the SDK's
        `create_message_batch`/`add_message`, which refuses what would exceed the entity's
        limit); returns their ids. Raises StepError when one was not sent: a retry sends them
        all again and duplicate detection drops what already arrived."""
        messages = [message_for(outcome, self.settings.owner) for outcome in outcomes]
        with self._lock:
            try:
                sender = self._open()
                batch = sender.create_message_batch()
                for message in messages:
                    try:
                        batch.add_message(message)
                    except ValueError:  # full: send what it holds, start the next
                        sender.send_messages(batch, timeout=self._send_timeout)
                        batch = sender.create_message_batch()
                        batch.add_message(message)
                sender.send_messages(batch, timeout=self._send_timeout)
            except AzureError as error:  # Service Bus errors, and the credential's
                self._drop()
                raise classify_send_error(error, self.settings.events_topic) from error
        return [str(message.message_id) for message in messages]

    def close(self) -> None:
        """Close the sender and its connection (tests, the CLI, worker shutdown). Idempotent."""
        with self._lock:
            self._drop()

    def _open(self) -> ServiceBusSender:
        if self._sender is None:
            from azure.servicebus import ServiceBusClient

            settings = self.settings
            if settings.service_bus_connection:
                client = ServiceBusClient.from_connection_string(
                    settings.service_bus_connection,
                    retry_total=self._retry_total,
                    retry_backoff_factor=self._retry_backoff_factor,
                    retry_backoff_max=self._retry_backoff_max,
                )
            else:  # identity-based, the Functions binding convention on Azure
                client = ServiceBusClient(
                    settings.service_bus_namespace,
                    credential_for(settings),
                    retry_total=self._retry_total,
                    retry_backoff_factor=self._retry_backoff_factor,
                    retry_backoff_max=self._retry_backoff_max,
                )
            self._client = client
            self._sender = client.get_topic_sender(settings.events_topic)
            self.opens += 1
        return self._sender

    def _drop(self) -> None:
        sender, client = self._sender, self._client
        self._sender = self._client = None
        try:
            if sender is not None:
                sender.close()
        finally:
            if client is not None:
                client.close()


def classify_send_error(error: AzureError, topic: str) -> StepError:
    """Connection trouble and a busy namespace are transient; anything else needs a person."""
    from azure.servicebus.exceptions import (
        MessagingEntityNotFoundError,
        OperationTimeoutError,
        ServiceBusAuthenticationError,
        ServiceBusAuthorizationError,
        ServiceBusCommunicationError,
        ServiceBusConnectionError,
        ServiceBusError,
        ServiceBusServerBusyError,
    )

    if isinstance(error, ClientAuthenticationError):
        hint = (
            "The app's identity got no token for Service Bus: check its managed identity (or, "
            "locally, `az login`), or set ServiceBusConnection."
        )
        return StepError("permanent", "ClientAuthentication", str(error), hint)
    if not isinstance(error, ServiceBusError):
        return classify(error)

    code = type(error).__name__.removesuffix("Error")
    message = str(error)
    if isinstance(error, ServiceBusConnectionError | ServiceBusCommunicationError):
        hint = "Service Bus could not be reached; the event is published again."
        return StepError("transient", CONNECTION_FAILED, message, hint)
    if isinstance(error, OperationTimeoutError | ServiceBusServerBusyError):
        return StepError("transient", code, message, "Service Bus is busy; tried again.")
    if isinstance(error, ServiceBusAuthenticationError | ServiceBusAuthorizationError):
        hint = (
            "Grant the app's identity 'Azure Service Bus Data Sender' on the namespace or on "
            f"the topic {topic}, or fix ServiceBusConnection."
        )
    elif isinstance(error, MessagingEntityNotFoundError):
        hint = f"Create the topic {topic}, or set GPUPROV_EVENTS_TOPIC to an existing one."
    else:
        hint = ""
    return StepError("permanent", code, message, hint)


_shared: EventPublisher | None = None
_shared_lock = threading.Lock()


def event_publisher(settings: Settings) -> EventPublisher:
    """This worker process's publisher (one sender for all activities), made on first use.

    Other settings (a test's own broker) replace it, closing the old one.
    """
    global _shared
    with _shared_lock:
        if _shared is not None and _shared.settings != settings:
            _shared.close()
            _shared = None
        if _shared is None:
            _shared = EventPublisher(settings)
        return _shared


def close_event_publisher() -> None:
    """Close the process's publisher, if any (tests, the CLI, shutdown)."""
    global _shared
    with _shared_lock:
        if _shared is not None:
            _shared.close()
            _shared = None
