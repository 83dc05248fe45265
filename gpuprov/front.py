"""`gpuprov submit` and `gpuprov watch`: the provisioner's queues and topic from a terminal.

submit puts a request on the Storage queue (or the Service Bus queue) the app listens on; watch
follows the events topic by peeking, so it consumes nothing another subscriber needs and several
watchers can follow the same subscription.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any, Literal, TextIO

from gpuprov.progress import FINAL_STEPS, Progress
from shared.problems import InvalidRequest, Problem

REQUESTS_QUEUE = "provisioning-requests"
Via = Literal["queue", "servicebus"]


class FrontDoorError(RuntimeError):
    """The queue or topic cannot be reached or is missing; the message says what to set."""


def submit(raw: bytes, values: Mapping[str, str], via: Via) -> None:
    """Send the request document as it is (the app validates it again on arrival)."""
    text = raw.decode("utf-8-sig")
    if via == "queue":
        _to_storage_queue(text, values)
    else:
        _to_service_bus(text, values)


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""What XML 1.0 cannot carry: a Storage queue message must fit an XML request (Put Message),
so Azure refuses it; Azurite stores it and then fails every read of the queue."""


def already_submitted(values: Mapping[str, str], request_id: str) -> str | None:
    """How far an earlier submission of `request_id` got, or None when there was none to see:
    its message still on the Storage queue, or its run's events on the topic (a request that
    was only rejected was never submitted). Nothing to read, nothing known: None."""
    from azure.core.exceptions import AzureError

    try:
        with storage_queue(values, REQUESTS_QUEUE) as queue:
            for message in queue.peek_messages(max_messages=32):
                if _request_id_of(str(message.content)) == request_id:
                    return "its message is on the queue, not yet picked up"
    except (AzureError, FrontDoorError):
        pass
    if not values.get("ServiceBusConnection") and not values.get(
        "ServiceBusConnection__fullyQualifiedNamespace"
    ):
        return None
    run = [e.get("data") or {} for e in _topic_events(values) if e.get("subject") == request_id]
    if not any(data.get("step") == "accepted" for data in run):
        return None
    last = run[-1]
    step, status = last.get("step"), last.get("status")
    if step in ("completed", "failed"):
        return f"its run {step}"
    return f"its run is under way: {step} {status}" if step != status else "its run started"


def _request_id_of(text: str) -> str | None:
    from shared.intake import readable_request_id

    return readable_request_id(text)


def _topic_events(values: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every event still on the topic's `all` subscription, oldest first (peeked)."""
    from azure.core.exceptions import AzureError

    topic = values.get("GPUPROV_EVENTS_TOPIC") or "gpu-provisioning-events"
    events: list[dict[str, Any]] = []
    try:
        with service_bus(values) as client, client.get_subscription_receiver(topic, "all") as r:
            next_sequence = 0
            while batch := r.peek_messages(max_message_count=250, sequence_number=next_sequence):
                for message in batch:
                    next_sequence = max(next_sequence, (message.sequence_number or 0) + 1)
                    event = _event(message)
                    if event is not None:
                        events.append(event)
    except (AzureError, FrontDoorError):
        return events
    return events


def _to_storage_queue(text: str, values: Mapping[str, str]) -> None:
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    bad = _NOT_XML.search(text)
    if bad is not None:
        message = (
            f"character U+{ord(bad.group()):04X} at offset {bad.start()} cannot travel on a "
            "Storage queue (a message must fit an XML request): remove it, or send the file "
            "with --via servicebus"
        )
        raise InvalidRequest([Problem(path="$", message=message)])

    try:
        with storage_queue(values, REQUESTS_QUEUE) as queue:
            queue.send_message(text)  # host.json messageEncoding "none": the text as it is
    except ResourceNotFoundError:
        raise FrontDoorError(
            f"the Storage queue {REQUESTS_QUEUE} does not exist in that account: deploy the app "
            "(azd up) or start it locally (gpuprov host --sandbox) first"
        ) from None
    except AzureError as exc:
        raise FrontDoorError(f"cannot send to the Storage queue: {_first_line(exc)}") from None


def _to_service_bus(text: str, values: Mapping[str, str]) -> None:
    from azure.core.exceptions import AzureError
    from azure.servicebus import ServiceBusMessage

    try:
        with service_bus(values) as client:
            sender = client.get_queue_sender(REQUESTS_QUEUE)
            with sender:
                sender.send_messages(ServiceBusMessage(text, content_type="application/json"))
    except AzureError as exc:
        raise FrontDoorError(f"cannot send to the Service Bus queue: {_first_line(exc)}") from None


def watch(
    values: Mapping[str, str],
    *,
    request_id: str | None,
    subscription: str,
    out: TextIO,
    json_lines: bool,
    timeout: float | None,
    summary: bool = True,
) -> int:
    """Follow the topic; with a request id, stop at its final event (0 completed, 1 not).
    `summary=False` leaves the summary to the caller (`last_final` holds the final event).

    Events already on the subscription when the watch began (what it catches up on before it
    first finds nothing new) are shown marked `replayed`. Once the request's
    `accepted` is seen it has a run, and only that run's end (`completed`, `failed`) ends the
    watch: a `rejected` event under its id then comes from another message and is only shown.
    """
    from azure.core.exceptions import AzureError

    topic = values.get("GPUPROV_EVENTS_TOPIC") or "gpu-provisioning-events"
    progress = Progress(out, json_lines=json_lines, show_request=request_id is None)
    catching_up = True  # until the first empty peek: the broker's order, not a clock
    deadline = None if timeout is None else time.monotonic() + timeout
    next_sequence = 0
    with_runs: set[str] = set()  # requests whose `accepted` was seen
    try:
        with service_bus(values) as client:
            receiver = client.get_subscription_receiver(topic, subscription)
            with receiver:
                while deadline is None or time.monotonic() < deadline:
                    batch = receiver.peek_messages(
                        max_message_count=100, sequence_number=next_sequence
                    )
                    for message in batch:
                        next_sequence = max(next_sequence, (message.sequence_number or 0) + 1)
                        event = _event(message)
                        if event is None:
                            continue
                        data = event.get("data") or {}
                        if request_id is not None and event.get("subject") != request_id:
                            continue
                        step, subject = data.get("step"), str(event.get("subject"))
                        foreign = step == "rejected" and subject in with_runs
                        progress.show(event, replayed=catching_up, note=_FOREIGN if foreign else "")
                        if step == "accepted":
                            with_runs.add(subject)
                        if request_id is not None and step in FINAL_STEPS and not foreign:
                            last_final.clear()
                            last_final.update(data)
                            if summary:
                                show_summary(data, out, json_lines=json_lines)
                            return 0 if step == "completed" else 1
                    if not batch:
                        catching_up = False
                        time.sleep(0.5)
    except AzureError as exc:
        raise FrontDoorError(f"cannot read the events topic {topic}: {_first_line(exc)}") from None
    print(f"gpuprov watch: no final event within {timeout:.0f} s", file=out, flush=True)
    return 1


_FOREIGN = "(another message with this request id; the run goes on)"


last_final: dict[str, Any] = {}
"""The data of the final event the last `watch` stopped at (the demo prints it at its very end)."""


def show_summary(data: Mapping[str, Any], out: TextIO, *, json_lines: bool = False) -> None:
    """The summary a final event carries: durations, the job's result, what stays."""
    progress = Progress(out, json_lines=json_lines)
    progress.summary(data.get("details") or {}, str(data.get("step")), data.get("message"))


def _event(message: Any) -> dict[str, Any] | None:
    """A structured CloudEvent from a message body; None for anything else on the topic."""
    try:
        event = json.loads(b"".join(message.body))
    except (TypeError, ValueError):
        return None
    return event if isinstance(event, dict) and "id" in event else None


def storage_queue(values: Mapping[str, str], name: str) -> Any:
    """A queue client from AzureWebJobsStorage (a connection string), or identity-based from
    AzureWebJobsStorage__queueServiceUri / __accountName with DefaultAzureCredential."""
    from azure.storage.queue import QueueClient

    connection = values.get("AzureWebJobsStorage", "")
    if connection:
        return QueueClient.from_connection_string(connection, name)
    account = values.get("AzureWebJobsStorage__accountName", "")
    endpoint = values.get("AzureWebJobsStorage__queueServiceUri", "") or (
        f"https://{account}.queue.core.windows.net" if account else ""
    )
    if not endpoint:
        raise FrontDoorError(
            "no storage account: set AzureWebJobsStorage (a connection string) or "
            "AzureWebJobsStorage__accountName, or pass --settings local.settings.json or --sandbox"
        )
    from azure.identity import DefaultAzureCredential

    return QueueClient(endpoint, name, credential=DefaultAzureCredential())


def service_bus(values: Mapping[str, str]) -> Any:
    """A Service Bus client from ServiceBusConnection, or identity-based from
    ServiceBusConnection__fullyQualifiedNamespace with DefaultAzureCredential."""
    from azure.servicebus import ServiceBusClient

    connection = values.get("ServiceBusConnection", "")
    if connection:
        return ServiceBusClient.from_connection_string(connection)
    namespace = values.get("ServiceBusConnection__fullyQualifiedNamespace", "")
    if not namespace:
        raise FrontDoorError(
            "no Service Bus: set ServiceBusConnection or "
            "ServiceBusConnection__fullyQualifiedNamespace, or pass --settings or --sandbox"
        )
    from azure.identity import DefaultAzureCredential

    return ServiceBusClient(namespace, DefaultAzureCredential())


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


POISON_QUEUE = f"{REQUESTS_QUEUE}-poison"


def poison(values: Mapping[str, str], *, replay: bool, out: TextIO) -> int:
    """List the poison queue, or move every message back onto the requests queue (once fixed:
    a message lands there only when the app kept failing on it, e.g. Service Bus unreachable)."""
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    moved = 0
    try:
        with (
            storage_queue(values, POISON_QUEUE) as parked,
            storage_queue(values, REQUESTS_QUEUE) as requests,
        ):
            if not replay:
                return _list_parked(list(parked.peek_messages(max_messages=32)), out)
            for message in parked.receive_messages(visibility_timeout=60):
                requests.send_message(message.content)
                parked.delete_message(message)
                moved += 1
    except ResourceNotFoundError:
        print(f"{POISON_QUEUE} does not exist: nothing was ever parked", file=out)
        return 0
    except AzureError as exc:
        raise FrontDoorError(f"cannot read {POISON_QUEUE}: {_first_line(exc)}") from None
    print(f"moved {moved} message(s) from {POISON_QUEUE} back to {REQUESTS_QUEUE}", file=out)
    return 0


def _list_parked(messages: list[Any], out: TextIO) -> int:
    """One line per parked message: its request id (when readable), id, failures, start."""
    if not messages:
        print(f"{POISON_QUEUE} is empty: nothing is parked", file=out)
        return 0
    for message in messages:
        text = str(message.content)
        request_id = _request_id_of(text) or "(no readable requestId)"
        first = (text.strip().splitlines() or [""])[0][:60]
        print(f"{request_id}  message {message.id}  failed {message.dequeue_count}x  {first}",
              file=out)  # fmt: skip
    more = " (the first 32)" if len(messages) == 32 else ""
    print(f"{len(messages)} parked{more}; `gpuprov poison replay` puts them back", file=out)
    return 0
