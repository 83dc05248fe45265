"""Step events: what each step did, as CloudEvents 1.0 on the Service Bus events topic.

The step names, statuses, event ids and types are a public contract: subscribers filter on them
(the `failures` subscription on `status=failed`, `completed` on `step=completed`). An event id is
`{requestId}:{step}:{status}` (plus `:{attempt}` for a repeated step's later attempts, and a
digest of the message for a rejection, so each rejected message has its own), and it is
also the Service Bus message id, so duplicate detection drops the replays that at-least-once
activities produce. Building an event is pure; `EventPublisher` sends it with one long-lived
sender per worker process. An event always fits one Service Bus message: a long log tail is cut
to its end and marked, never dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import TYPE_CHECKING, Final, Literal, get_args

from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.core.messaging import CloudEvent
from pydantic import AwareDatetime, Field, JsonValue, field_validator, model_validator

from shared.credentials import credential_for
from shared.errors import CONNECTION_FAILED, StepError, StepErrorWire, classify
from shared.settings import Settings
from shared.wire import HistoryModel

if TYPE_CHECKING:  # the SDK is imported where a message is sent, not where events are built
    from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSender

StepName = Literal[
    "accepted",
    "register-features",
    "create-cluster",
    "create-node-pool",
    "install-device-plugin",
    "verify-gpus",
    "run-job",
    "cleanup",
    "completed",
    "failed",
    "rejected",
    "reaped",
]
"""Every step an event can be about: the provisioning steps and the request's lifecycle."""

StepStatus = Literal["started", "succeeded", "failed", "skipped"]
"""What happened to a provisioning step."""

LifecycleStep = Literal["accepted", "rejected", "completed", "failed", "reaped"]
"""Steps that mark the request's lifecycle; their status is their own name (`failed` included,
so the `failures` subscription receives a request's final failure as well as a step's)."""

Status = Literal[StepStatus, "accepted", "rejected", "completed", "reaped"]
"""An event's status: a step's, or the lifecycle step's own name."""

STEPS: Final[tuple[StepName, ...]] = get_args(StepName)
STEP_STATUSES: Final[tuple[StepStatus, ...]] = get_args(StepStatus)
LIFECYCLE_STEPS: Final[frozenset[str]] = frozenset(get_args(LifecycleStep))

CONTENT_TYPE: Final = "application/cloudevents+json"
"""Structured mode: the whole CloudEvent, envelope and data, is the message body."""
DATA_CONTENT_TYPE: Final = "application/json"
SPEC_VERSION: Final = "1.0"
MAX_BODY_BYTES: Final = 240 * 1024
"""A Standard-tier message holds 256 KB including its properties; the body keeps a margin."""
EVENTS_NOT_CONFIGURED: Final = "EventsNotConfigured"
"""StepError code when neither Service Bus setting is set."""
LOG_TAIL: Final = "logTail"
"""The `details` key of a job's log tail: the first thing cut when an event is too big."""

_SECRET_WORDS = (
    "token",
    "password",
    "secret",
    "kubeconfig",
    "authorization",
    "credential",
    "accesskey",
    "sharedaccess",
    "connectionstring",
    "privatekey",
)


class Outcome(HistoryModel):
    """What one step did: the content of one event, and a small value fit for history."""

    request_id: str = Field(min_length=1, max_length=63)
    step: StepName
    status: Status
    attempt: int = Field(default=1, ge=1)
    """Which try of the step this is; attempts after the first get their own event id."""
    message: str = ""
    """One line for people watching the run."""
    error: StepErrorWire | None = None
    details: dict[str, JsonValue] = Field(default_factory=dict)
    """Step specifics: durations, job result, log tail, what was left and until when."""
    time: AwareDatetime = Field(strict=False)
    """When it happened (the orchestrator's replay-safe clock, or the activity's); ISO 8601
    text is accepted, as an outcome passed to an activity arrives JSON-decoded."""
    started_at: AwareDatetime | None = Field(default=None, strict=False)
    """For a step's final outcome (and the run's): when it began. Traces use it; events don't."""
    message_id: str | None = None
    """For a rejection: the queue message it answers. Its event id ends with a digest of it, so
    two rejected messages never share an id, while a redelivery of one repeats its id."""

    @model_validator(mode="after")
    def _status_fits_step(self) -> Outcome:
        if self.step in LIFECYCLE_STEPS:
            if self.status != self.step:
                raise ValueError(f"a {self.step!r} event has status {self.step!r}")
        elif self.status not in STEP_STATUSES:
            raise ValueError(f"a step's status is one of {', '.join(STEP_STATUSES)}")
        return self

    @field_validator("details")
    @classmethod
    def _no_secret_keys(cls, details: dict[str, JsonValue]) -> dict[str, JsonValue]:
        """Events are read by anyone with the topic: refuse fields named like credentials."""
        for path in _keys(details, "details"):
            leaf = path.rsplit(".", 1)[-1].lower().replace("_", "").replace("-", "")
            if any(word in leaf for word in _SECRET_WORDS):
                raise ValueError(f"{path} looks like a secret; events never carry secrets")
        return details


def _keys(value: JsonValue, path: str) -> Iterator[str]:
    """The dotted path of every object key inside `value`."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}.{key}"
            yield from _keys(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _keys(item, f"{path}.{index}")


def event_id(outcome: Outcome) -> str:
    """`{requestId}:{step}:{status}`, plus `:{attempt}` from the second attempt on, plus
    `:m{digest}` of the message a rejection answers (at most 63 + 36 characters: a Service Bus
    message id holds 128)."""
    base = f"{outcome.request_id}:{outcome.step}:{outcome.status}"
    if outcome.attempt != 1:
        base = f"{base}:{outcome.attempt}"
    if outcome.message_id is not None:
        digest = hashlib.sha256(outcome.message_id.encode()).hexdigest()[:16]
        base = f"{base}:m{digest}"
    return base


def event_type(outcome: Outcome) -> str:
    """`gpuprovisioner.step.<status>` for a step, `gpuprovisioner.request.<step>` otherwise."""
    if outcome.step in LIFECYCLE_STEPS:
        return f"gpuprovisioner.request.{outcome.step}"
    return f"gpuprovisioner.step.{outcome.status}"


def event_source(owner: str) -> str:
    """The deployment that emitted the event; with the id it makes the event unique."""
    return f"/gpuprov/{owner}"


def build_event(outcome: Outcome, owner: str) -> CloudEvent[dict[str, JsonValue]]:
    """The CloudEvent of an outcome; its data holds nothing but the outcome (never a secret)."""
    error = outcome.error.model_dump(mode="json", by_alias=True) if outcome.error else None
    data: dict[str, JsonValue] = {
        "step": outcome.step,
        "status": outcome.status,
        "attempt": outcome.attempt,
        "message": outcome.message,
        "errorCode": outcome.error.code if outcome.error else None,
        "error": error,
        "details": outcome.details,
    }
    return CloudEvent(
        source=event_source(owner),
        type=event_type(outcome),
        specversion=SPEC_VERSION,
        id=event_id(outcome),
        time=outcome.time,
        subject=outcome.request_id,
        datacontenttype=DATA_CONTENT_TYPE,
        data=data,
    )


def structured(event: CloudEvent[dict[str, JsonValue]]) -> dict[str, JsonValue]:
    """The structured-mode JSON object of an event (CloudEvents JSON format)."""
    envelope: dict[str, JsonValue] = {
        "specversion": SPEC_VERSION,
        "id": event.id,
        "source": event.source,
        "type": event.type,
    }
    if event.subject is not None:
        envelope["subject"] = event.subject
    if event.time is not None:
        envelope["time"] = event.time.astimezone(UTC).isoformat().replace("+00:00", "Z")
    envelope["datacontenttype"] = event.datacontenttype or DATA_CONTENT_TYPE
    envelope["data"] = event.data
    return envelope


def encode(event: CloudEvent[dict[str, JsonValue]], max_bytes: int = MAX_BODY_BYTES) -> bytes:
    """The event as a message body of at most `max_bytes`, cutting its data where it must.

    First the log tail (`details.logTail`, a string or an object with `text`) keeps its end and
    says `truncated: true` with `originalBytes`; then the longest other strings keep their start;
    as a last resort `details` becomes a note of its size. Every cut is listed in
    `data.truncated` (JSON paths), so a reader always knows what is missing.
    """
    envelope = structured(event)
    body = _dump(envelope)
    if len(body) <= max_bytes:
        return body
    data = json.loads(body)["data"]  # a private copy to cut
    assert isinstance(data, dict)
    cuts: list[JsonValue] = []
    data["truncated"] = cuts

    def excess() -> int:
        return len(_dump({**envelope, "data": data})) - max_bytes

    details = data.get("details")
    if isinstance(details, dict) and LOG_TAIL in details:
        _cut_log_tail(details, cuts, excess)
    while excess() > 0:
        longest = max(
            (found for found in _strings(data, ()) if ".".join(map(str, found[0])) not in cuts),
            key=lambda found: len(found[1]),
            default=None,
        )
        if longest is None or len(longest[1]) <= _KEEP_AT_LEAST:
            break
        path, text = longest
        cuts.append(".".join(map(str, path)))
        _replace(data, path, _shrink(text, excess(), keep_end=False))
    if excess() > 0:
        data["details"] = {"omitted": True, "originalBytes": len(_dump(data.get("details")))}
        cuts.append("details")
    body = _dump({**envelope, "data": data})
    if len(body) > max_bytes:
        raise ValueError(f"event {event.id} does not fit {max_bytes} bytes even without details")
    return body


_KEEP_AT_LEAST = 256
"""Shortest start of a cut string: enough to say what it was about."""
_TRUNCATED = "… [truncated]"
_Path = tuple[str | int, ...]


def _dump(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _cut_log_tail(
    details: dict[str, JsonValue], cuts: list[JsonValue], excess: Callable[[], int]
) -> None:
    """Keep the log's end: the last lines are the ones that say how the job ended."""
    tail = details[LOG_TAIL]
    entry: dict[str, JsonValue] = dict(tail) if isinstance(tail, dict) else {"text": tail}
    text = entry.get("text")
    if not isinstance(text, str):
        return
    entry["truncated"] = True
    entry["originalBytes"] = len(text.encode())
    details[LOG_TAIL] = entry
    cuts.append(f"details.{LOG_TAIL}.text")
    entry["text"] = _shrink(text, excess(), keep_end=True)


def _shrink(text: str, excess: int, *, keep_end: bool) -> str:
    """`text` at least `excess` JSON bytes shorter: its end, or its start and a mark."""
    target = len(_dump(text)) - max(0, excess)
    floor = 0 if keep_end else _KEEP_AT_LEAST

    def cut(keep: int) -> str:
        return text[len(text) - keep :] if keep_end else text[:keep] + _TRUNCATED

    keep = len(text)
    while keep > floor:
        # shorten in proportion to the bytes still over; JSON escapes make it uneven, so repeat
        keep = max(floor, min(keep - 1, keep * target // max(1, len(_dump(cut(keep))))))
        if len(_dump(cut(keep))) <= target:
            break
    return cut(keep)


def _strings(value: JsonValue, path: _Path) -> Iterator[tuple[_Path, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _replace(data: dict[str, JsonValue], path: _Path, text: str) -> None:
    holder: JsonValue = data
    for step in path[:-1]:
        holder = holder[step]  # type: ignore[index]
    holder[path[-1]] = text  # type: ignore[index]


# --- publishing ------------------------------------------------------------------------------


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


class EventPublisher:
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
        message = message_for(outcome, self.settings.owner)
        with self._lock:
            try:
                self._open().send_messages(message, timeout=self._send_timeout)
            except AzureError as error:  # Service Bus errors, and the credential's
                self._drop()
                raise classify_send_error(error, self.settings.events_topic) from error
        return str(message.message_id)

    def close(self) -> None:
        """Close the sender and its connection (tests, the CLI, worker shutdown). Idempotent."""
        with self._lock:
            self._drop()

    def __enter__(self) -> EventPublisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
