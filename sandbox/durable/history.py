"""The history events and context JSON the Durable extension sends to an out-of-proc orchestrator.

Field names and event type numbers are the extension's (DurableTask.Core history events as
serialised to the worker); `azure.durable_functions` reads them back with `HistoryEvent(**event)`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from azure.durable_functions.models.history import HistoryEventType

Event = dict[str, Any]

# The extension's out-of-process schema numbers (its SchemaVersion enum: V2 = 1, V3 = 2).
UPPER_SCHEMA_VERSION = 1
UPPER_SCHEMA_VERSION_NEW = 2
# Azure Storage's timer limits: longer timers are split by the library into 3-day pieces.
MAXIMUM_SHORT_TIMER = "6.00:00:00"
LONG_TIMER_INTERVAL = "3.00:00:00"

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime(_TIME_FORMAT)


def parse_fire_at(text: str) -> float:
    """Epoch seconds of a timer action's `fireAt` (the library writes `%Y-%m-%dT%H:%M:%S.%fZ`)."""
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC).timestamp()


def event(kind: HistoryEventType, at: float, event_id: int = -1, **fields: Any) -> Event:
    return {
        "EventType": int(kind),
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": timestamp(at),
        **fields,
    }


def context_json(
    history: list[Event], instance_id: str, input_json: str | None, parent_instance_id: str | None
) -> str:
    """The orchestration trigger payload: what the extension hands the worker per episode."""
    replaying = sum(e["EventType"] == HistoryEventType.ORCHESTRATOR_STARTED for e in history) > 1
    return json.dumps(
        {
            "history": history,
            "input": input_json,
            "instanceId": instance_id,
            "isReplaying": replaying,
            "parentInstanceId": parent_instance_id,
            "upperSchemaVersion": UPPER_SCHEMA_VERSION,
            "upperSchemaVersionNew": UPPER_SCHEMA_VERSION_NEW,
            "maximumShortTimerDuration": MAXIMUM_SHORT_TIMER,
            "longRunningTimerIntervalDuration": LONG_TIMER_INTERVAL,
        }
    )
