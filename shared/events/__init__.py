"""Step events on the Service Bus events topic, in three parts:

- `contract`: what subscribers may rely on (step names, statuses, `Outcome`, event ids);
- `encoding`: an outcome as a structured CloudEvent 1.0 that fits one message;
- `publisher`: one long-lived sender per worker process, and Service Bus error classification.
"""

from shared.events.contract import (
    LIFECYCLE_STEPS,
    STEP_STATUSES,
    STEPS,
    LifecycleStep,
    Outcome,
    Status,
    StepName,
    StepStatus,
    event_id,
    event_source,
    event_type,
)
from shared.events.encoding import (
    CONTENT_TYPE,
    DATA_CONTENT_TYPE,
    LOG_TAIL,
    MAX_BODY_BYTES,
    SPEC_VERSION,
    build_event,
    encode,
    structured,
)
from shared.events.publisher import (
    EVENTS_NOT_CONFIGURED,
    EventPublisher,
    classify_send_error,
    close_event_publisher,
    event_publisher,
    message_for,
)

__all__ = [
    "CONTENT_TYPE",
    "DATA_CONTENT_TYPE",
    "EVENTS_NOT_CONFIGURED",
    "LIFECYCLE_STEPS",
    "LOG_TAIL",
    "MAX_BODY_BYTES",
    "SPEC_VERSION",
    "STEPS",
    "STEP_STATUSES",
    "EventPublisher",
    "LifecycleStep",
    "Outcome",
    "Status",
    "StepName",
    "StepStatus",
    "build_event",
    "classify_send_error",
    "close_event_publisher",
    "encode",
    "event_id",
    "event_publisher",
    "event_source",
    "event_type",
    "message_for",
    "structured",
]
