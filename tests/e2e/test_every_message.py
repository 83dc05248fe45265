"""Every message the app takes off a queue ends in exactly one outcome a user can see.

Covers: a corpus of odd bodies on the Storage queue and on the Service Bus queue (empty, blank,
JSON that is not an object, truncated, deeply nested, duplicate keys, not UTF-8, control
characters, a non-data AMQP body, too big, a valid request, the same request again) each ending
in one run, one logged duplicate, one `rejected` event naming its message, or the poison queue;
rejections of different messages under one request id each reaching the topic (its duplicate
detection drops only true replays); and a bad message claiming the id of a running request
rejected under its own message id, outside that request's event stream.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage
from azure.servicebus.amqp import AmqpAnnotatedMessage
from azure.storage.queue import QueueClient

from tests.e2e.conftest import QUEUE, App

ODD_TEXTS = {
    "empty": "",
    "blank": "  \n ",
    "null": "null",
    "array": "[1, 2]",
    "number": "42",
    "string": '"a request"',
    "truncated": '{"requestId": "odd-truncated", ',
    "deep": "[" * 3000 + "]" * 3000,
    "duplicate-keys": '{"requestId": "odd-dup", "requestId": "odd-dup"}',
    "bad-request-id": '{"requestId": "../../etc", "location": "eastus"}',
    "escaped-nul": '{"requestId": "odd-nul", "location": "\\u0000"}',
    "unicode": "é中文🙂",
    "big": json.dumps({"requestId": "odd-big", "x": "y" * 50_000}),
}
"""Bodies a Storage queue can carry (Put Message: text that fits an XML request)."""
ODD_BYTES = {
    **{name: text.encode() for name, text in ODD_TEXTS.items()},
    "control-characters": b"\x01\x02\x03{",
    "not-utf8": b"\xff\xfe\x00{",
    "surrogate": b'{"requestId": "\xed\xa0\x80"}',
    "too-big": b'{"x": "' + b"y" * 100_000 + b'"}',
}
"""Bodies a Service Bus message can carry (any bytes, up to 256 KB on Standard)."""


class Outcomes:
    """What each message ended in: its rejected events, its run, its logged duplicates."""

    def __init__(self, app: App, caplog: pytest.LogCaptureFixture) -> None:
        self.events = app.events()
        self.runs = app.runs()
        self.logged = [r.getMessage() for r in caplog.records]

    def of(self, message_id: str, request_id: str = "-") -> list[Any]:
        rejected = [
            e for e in self.events
            if e["step"] == "rejected" and e["details"]["messageId"] == message_id
        ]  # fmt: skip
        runs = [r for r in self.runs if r == request_id]
        duplicates = [m for m in self.logged if m.startswith(f"{request_id}: duplicate")]
        return [*rejected, *runs, *duplicates]


@pytest.mark.timeout(180)
def test_odd_bodies_on_the_storage_queue_each_end_in_one_outcome(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="functions")
    valid = app.request()
    bodies = {**ODD_TEXTS, "valid": json.dumps(valid), "valid-bom": "\ufeff" + json.dumps(
        {**valid, "requestId": valid["requestId"] + "-bom"})}  # fmt: skip
    sent: dict[str, str] = {}
    with QueueClient.from_connection_string(app.storage, QUEUE) as queue:
        for name, body in bodies.items():
            sent[name] = queue.send_message(body).id
        sent["valid-again"] = queue.send_message(json.dumps(valid)).id
    request_ids = {"valid": valid["requestId"], "valid-again": valid["requestId"],
                   "valid-bom": valid["requestId"] + "-bom"}  # fmt: skip

    def everything_answered() -> bool:
        seen = Outcomes(app, caplog)
        odd = all(seen.of(sent[n], request_ids.get(n, "-")) for n in sent)
        return odd and len(seen.of(sent["valid"], valid["requestId"])) == 2

    app.wait_for(everything_answered, timeout=90)
    app.wait_for(lambda: not app.queue_messages(QUEUE))

    seen = Outcomes(app, caplog)
    for name, message_id in sent.items():
        if name not in ("valid", "valid-again"):
            ended = seen.of(message_id, request_ids.get(name, "-"))
            assert len(ended) == 1, (name, ended)
    # the request and its copy: its run and one logged duplicate, nothing rejected
    ended = seen.of(sent["valid"], valid["requestId"]) + seen.of(sent["valid-again"])
    assert len(ended) == 2, ended
    assert ended[0] == valid["requestId"]
    assert "already submitted" in ended[1]
    assert app.queue_messages(f"{QUEUE}-poison") == []


@pytest.mark.timeout(180)
def test_odd_bodies_on_the_service_bus_queue_each_end_in_one_outcome(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="functions")
    valid = app.request()
    with ServiceBusClient.from_connection_string(app.broker.connection_string) as client:
        sender = client.get_queue_sender(QUEUE)
        with sender:
            for name, body in ODD_BYTES.items():
                sender.send_messages(ServiceBusMessage(body, message_id=f"odd-{name}"))
            sender.send_messages(AmqpAnnotatedMessage(
                value_body={"requestId": "odd-value"}, properties={"message_id": "odd-value"}
            ))  # fmt: skip
            for copy in ("first", "second"):
                sender.send_messages(
                    ServiceBusMessage(json.dumps(valid), message_id=f"valid-{copy}")
                )
    names = [*ODD_BYTES, "value"]

    def everything_answered() -> bool:
        seen = Outcomes(app, caplog)
        odd = all(seen.of(f"odd-{n}") for n in names)
        return odd and len(seen.of("valid-first", valid["requestId"])) == 2

    app.wait_for(everything_answered, timeout=90)

    seen = Outcomes(app, caplog)
    for name in names:
        ended = seen.of(f"odd-{name}")
        assert len(ended) == 1, (name, ended)
        assert ended[0]["details"]["source"] == "service-bus"
    ended = seen.of("valid-first", valid["requestId"])
    assert len(ended) == 2, ended  # its run and the second copy's logged duplicate
    assert not [e for e in app.events() if e["requestId"] == valid["requestId"]
                and e["step"] == "rejected"]  # fmt: skip


def test_each_rejected_message_under_one_request_id_reaches_the_topic(app: App) -> None:
    """Eight different mistakes under one request id: eight `rejected` events, not one."""
    mistakes: list[dict[str, Any]] = [
        {"location": 42}, {"resourceGroup": ""}, {"apiVersion": "v0"}, {"oops": 1},
        {"nodePool": {"vmSize": "Standard_NC6"}}, {"subscriptionId": "x"},
        {"target": {}}, {"cleanup": {"ttlHours": -1}},
    ]  # fmt: skip
    for number, mistake in enumerate(mistakes):
        body = {**app.request(requestId="same-id"), **mistake}
        app.send_to_service_bus(json.dumps(body), message_id=f"mistake-{number}")

    def all_rejected() -> list[dict[str, Any]]:
        found = [e for e in app.events() if e["step"] == "rejected"]
        return found if len(found) >= len(mistakes) else []

    rejected = app.wait_for(all_rejected, timeout=60)

    assert sorted(e["details"]["messageId"] for e in rejected) == [
        f"mistake-{n}" for n in range(len(mistakes))
    ]
    assert {e["requestId"] for e in rejected} == {"same-id"}


def test_a_bad_message_claiming_a_running_request_stays_out_of_its_stream(app: App) -> None:
    request = app.request()
    app.enqueue(json.dumps(request))
    app.wait_for(lambda: request["requestId"] in app.runs())

    app.enqueue(json.dumps({**request, "location": 42}))  # someone else's mistake, same id
    final = app.final_event(request["requestId"])

    assert final["step"] == "completed"
    rejected = app.wait_for(lambda: [e for e in app.events() if e["step"] == "rejected"])
    assert [e["requestId"] for e in rejected] == [rejected[0]["details"]["messageId"]]
    assert rejected[0]["details"]["claimedRequestId"] == request["requestId"]
    assert "rejected" not in [step for step, _ in app.steps_of(request["requestId"])]
