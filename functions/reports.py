"""What a run reports as it goes: its step outcomes to Service Bus (`publish_events`), and at its
end how long its cloud waits took (`remember_durations`, shared/durations.py)."""

from __future__ import annotations

from typing import Any

from functions.activity import decode
from functions.registry import activity


@activity
def publish_events(payload: Any) -> list[str]:
    """Publish step outcomes in order; a failure raises so the activity is retried (ids dedupe)."""
    from shared.events import Outcome, event_publisher
    from shared.settings import current_settings
    from shared.telemetry import activity_span, record_outcome

    outcomes = [Outcome.model_validate(o) for o in decode(payload)["outcomes"]]
    newest = outcomes[-1]  # the activity runs under the newest outcome's step
    with activity_span("publish_events", newest.request_id, newest.step, newest.attempt):
        event_ids = event_publisher(current_settings()).publish_all(outcomes)
    for outcome in outcomes:
        record_outcome(outcome)
    return event_ids


@activity
def remember_durations(payload: Any) -> bool:
    """Fold what this run's waits took into the deployment's learned durations (best effort),
    traced under the run's last step."""
    import os

    from shared.durations import remember
    from shared.telemetry import activity_span

    data = decode(payload)
    where = data.get("trace") or {}
    request_id = str((data.get("request") or {}).get("requestId", ""))
    with activity_span("remember_durations", request_id, str(where.get("step", "request")),
                       int(where.get("attempt", 1))):  # fmt: skip
        return remember(os.environ, str(data["location"]), dict(data["observed"]))
