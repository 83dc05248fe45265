"""The shared intake: what a front door publishes for good and bad input.

Covers: a valid request accepted as the orchestration input (camelCase, normalised); a rejection
carrying every problem under the request's own id when it is readable, else under the message
id (shortened to fit an event when long, still unique); the `accepted` and `rejected` outcomes
(source, message id, errors, a one-line summary that says how many more).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.events import event_id
from shared.intake import (
    Rejection,
    accepted_outcome,
    event_safe_id,
    read_request,
    rejected_outcome,
    run_input,
)
from shared.request import ProvisionRequest
from shared.settings import Settings
from tests.builders import MINIMAL
from tests.unit.test_bad_input import with_

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_valid_request_becomes_the_orchestration_input(settings: Settings) -> None:
    request = read_request(with_(requestId="seed-1"), settings, "msg-1")
    assert isinstance(request, ProvisionRequest)
    document: Any = run_input(request)
    assert document["request"]["requestId"] == "seed-1"
    assert document["request"]["nodePool"]["vmSize"] == request.node_pool.vm_size
    outcome = accepted_outcome(request, "storage-queue", NOW)
    assert event_id(outcome) == "seed-1:accepted:accepted"
    assert outcome.details == {"source": "storage-queue", "instanceId": "seed-1"}


@pytest.mark.parametrize(
    ("raw", "expected_id"),
    [
        pytest.param(with_(requestId="job-7", location=42), "job-7", id="own-id"),
        pytest.param(with_(requestId="Bad/Id", location=42), "msg-1", id="invalid-own-id"),
        pytest.param(b'{"requestId": "job-8", ', "msg-1", id="malformed-json"),
        pytest.param(b"[1, 2]", "msg-1", id="not-an-object"),
    ],
)
def test_rejection_is_published_under_the_best_id(
    settings: Settings, raw: bytes, expected_id: str
) -> None:
    rejection = read_request(raw, settings, "msg-1")
    assert isinstance(rejection, Rejection)
    assert rejection.request_id == expected_id
    assert rejection.problems


def test_rejected_outcome_lists_every_problem(settings: Settings) -> None:
    document = {**MINIMAL, "location": 42, "resourceGroup": "", "extra": 1, "more": 2}
    rejection = read_request(json.dumps(document), settings, "msg-9")
    assert isinstance(rejection, Rejection)
    outcome = rejected_outcome(rejection, "service-bus", NOW)
    errors: Any = outcome.details["errors"]
    assert isinstance(errors, list)
    assert len(errors) == len(rejection.problems) >= 4
    assert {e["path"] for e in errors} >= {"$.location", "$.resourceGroup", "$"}
    assert outcome.details["messageId"] == "msg-9"
    assert outcome.message.startswith("rejected: ")
    assert f"(and {len(errors) - 3} more)" in outcome.message
    assert event_id(outcome).startswith("msg-9:rejected:rejected:m")


def test_each_rejected_message_has_its_own_event_id_and_a_redelivery_repeats_it(
    settings: Settings,
) -> None:
    """Service Bus drops a repeated message id: two messages under one request id must not
    share one, while the same message delivered again must."""

    def rejected_id(body: dict[str, Any], message_id: str) -> str:
        rejection = read_request(json.dumps(body), settings, message_id)
        assert isinstance(rejection, Rejection)
        return event_id(rejected_outcome(rejection, "service-bus", NOW))

    first = rejected_id({**MINIMAL, "requestId": "job-1", "location": 42}, "msg-1")
    other = rejected_id({**MINIMAL, "requestId": "job-1", "oops": 1}, "msg-2")
    again = rejected_id({**MINIMAL, "requestId": "job-1", "location": 42}, "msg-1")
    assert first != other
    assert first == again
    assert first.startswith("job-1:rejected:rejected:")
    assert len(first) <= 128


def test_a_rejection_claiming_a_request_id_can_move_under_its_message_id(
    settings: Settings,
) -> None:
    rejection = read_request(with_(requestId="job-7", location=42), settings, "msg-3")
    assert isinstance(rejection, Rejection)
    moved = rejection.under_message_id()
    outcome = rejected_outcome(moved, "storage-queue", NOW)
    assert outcome.request_id == "msg-3"
    assert outcome.details["claimedRequestId"] == "job-7"


def test_a_long_message_id_is_shortened_but_stays_distinct() -> None:
    first, second = event_safe_id("m" * 100 + "1"), event_safe_id("m" * 100 + "2")
    assert len(first) == len(second) == 63
    assert first != second
    assert first.startswith("m" * 46)
    assert event_safe_id("  ") == "unidentified"
