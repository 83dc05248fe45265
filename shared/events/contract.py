"""The public contract of step events: step names, statuses, the outcome record and its ids.

Subscribers filter on these (the `failures` subscription on `status=failed`, `completed` on
`step=completed`). An event id is `{requestId}:{step}:{status}`, plus `:{attempt}` for a
repeated step's later attempts, `:{resource}` where one request's step acts on several resources
(the reaper: its pool, its cluster), and a digest of the message for a rejection (so each
rejected message has its own). It is also the Service Bus message id, so duplicate detection
drops the replays that at-least-once activities produce.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Final, Literal, get_args

from pydantic import AwareDatetime, Field, JsonValue, field_validator, model_validator

from shared.errors import StepErrorWire
from shared.wire import HistoryModel

StepName = Literal[
    "accepted",
    "preflight",
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
    resource: str | None = Field(default=None, pattern=r"^[a-z][a-z-]{0,15}$")
    """Which of the request's resources a step acted on, where one step acts on several (the
    reaper deletes a request's pool and its cluster): part of the event id."""
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
    """`{requestId}:{step}:{status}`, plus `:{attempt}` from the second attempt on, `:{resource}`
    when it names one, and `:m{digest}` of the message a rejection answers (at most
    63 + 53 characters: a Service Bus message id holds 128)."""
    base = f"{outcome.request_id}:{outcome.step}:{outcome.status}"
    if outcome.attempt != 1:
        base = f"{base}:{outcome.attempt}"
    if outcome.resource is not None:
        base = f"{base}:{outcome.resource}"
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
