"""Step events as CloudEvents 1.0 in structured JSON, always fitting one Service Bus message.

Building an event is pure. A long log tail is cut to its end and marked, never dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Final

from azure.core.messaging import CloudEvent
from pydantic import JsonValue

from shared.events.contract import Outcome, event_id, event_source, event_type

CONTENT_TYPE: Final = "application/cloudevents+json"
"""Structured mode: the whole CloudEvent, envelope and data, is the message body."""
DATA_CONTENT_TYPE: Final = "application/json"
SPEC_VERSION: Final = "1.0"
MAX_BODY_BYTES: Final = 240 * 1024
"""A Standard-tier message holds 256 KB including its properties; the body keeps a margin."""
LOG_TAIL: Final = "logTail"
"""The `details` key of a job's log tail: the first thing cut when an event is too big."""


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
