"""The one intake every front door shares: read a request, decide accepted or rejected, say so.

A Storage queue message, a Service Bus message and an HTTP body all become either an accepted
`ProvisionRequest` (the orchestration's input) or a rejection carrying every problem. Nothing in
here raises for bad input; what raises is the infrastructure (settings, Service Bus), so the
trigger's host retries it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from shared.events import Outcome
from shared.naming import RequestId
from shared.problems import InvalidRequest, Problem
from shared.request import ProvisionRequest
from shared.sequence import RunInput, RunOptions
from shared.settings import Settings
from shared.validation import parse_request

Source = Literal["storage-queue", "service-bus", "http"]

_REQUEST_ID: TypeAdapter[str] = TypeAdapter(RequestId)


class Rejection(BaseModel):
    """Why input was not accepted, and the id its `rejected` event is published under."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    problems: list[Problem]
    message_id: str
    """The message rejected; its `rejected` event id names it, so each message has its own."""
    claimed_id: str | None = None
    """The document's own `requestId` when readable (then also `request_id`)."""

    def under_message_id(self) -> Rejection:
        """The same rejection published under its message id: for a claimed request id that
        already has a run, whose event stream a foreign message must not enter."""
        return self.model_copy(update={"request_id": event_safe_id(self.message_id)})


def read_request(
    raw: bytes | str, settings: Settings, fallback_id: str
) -> ProvisionRequest | Rejection:
    """The validated request, or a Rejection under the request's own id when one can be read,
    else under `fallback_id` (a message id)."""
    try:
        return parse_request(raw, settings)
    except InvalidRequest as invalid:
        claimed = readable_request_id(raw)
        return Rejection(
            request_id=claimed or event_safe_id(fallback_id),
            problems=invalid.problems,
            message_id=fallback_id,
            claimed_id=claimed,
        )


def readable_request_id(raw: bytes | str) -> str | None:
    """The document's `requestId` if it is valid on its own, however wrong the rest is."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError, TypeError):
        return None
    candidate = document.get("requestId") if isinstance(document, dict) else None
    try:
        return _REQUEST_ID.validate_python(candidate, strict=True)
    except ValidationError:
        return None


def event_safe_id(message_id: str) -> str:
    """A message id as an event's request id (1 to 63 characters): a longer one is shortened to
    a prefix plus a digest, so it still names the message and stays unique."""
    text = message_id.strip() or "unidentified"
    if len(text) <= 63:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{text[:46]}-{digest}"


def run_input(request: ProvisionRequest, options: RunOptions | None = None) -> dict[str, object]:
    """The orchestration input for an accepted request, as the Durable client sends it."""
    return RunInput.of(request, options).model_dump(mode="json", by_alias=True)


def accepted_outcome(request: ProvisionRequest, source: Source, now: datetime) -> Outcome:
    return Outcome(
        request_id=request.request_id,
        step="accepted",
        status="accepted",
        message=f"accepted from the {source.replace('-', ' ')}",
        details={"source": source, "instanceId": request.request_id},
        time=now,
    )


def rejected_outcome(rejection: Rejection, source: Source, now: datetime) -> Outcome:
    """The `rejected` event of one message: its id names the message (a redelivery of the same
    message repeats it and is dropped by the topic; another message gets its own)."""
    problems = rejection.problems
    summary = "; ".join(f"{p.path}: {p.message}" for p in problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return Outcome(
        request_id=rejection.request_id,
        step="rejected",
        status="rejected",
        message=f"rejected: {summary}{more}",
        message_id=rejection.message_id,
        details={
            "source": source,
            "messageId": rejection.message_id,
            "claimedRequestId": rejection.claimed_id,
            "errors": [p.model_dump() for p in problems],
        },
        time=now,
    )
