"""The durable sequence's data: what the orchestrator gets as input and what activities answer.

The orchestrator may not read settings or clocks, so everything it decides with travels here:
the validated request and the run options. Activities answer in one envelope, `StepAnswer`, so a
classified failure reaches the orchestrator as data (kind, code, hint) rather than as an
exception string.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from shared.errors import StepErrorWire
from shared.request import ProvisionRequest
from shared.wire import HistoryModel


class RunOptions(HistoryModel):
    """Timing bounds of one run; defaults suit AKS (clusters take minutes, rarely half an hour)."""

    min_poll_seconds: int = Field(default=10, ge=1)
    """Shortest wait between two polls, whatever Retry-After says."""
    max_poll_seconds: int = Field(default=120, ge=1)
    """Longest wait between two polls."""
    default_poll_seconds: int = Field(default=30, ge=1)
    """Wait between polls when the server gives no Retry-After (ARM's own default)."""
    transient_retries: int = Field(default=5, ge=0)
    """Tries again after a transient error (429, 5xx, another operation on the cluster)."""
    polls_per_execution: int = Field(default=50, ge=2)
    """A waiting sub-orchestration continues as new after this many polls, bounding history."""
    feature_minutes: int = Field(default=60, ge=1)
    cluster_minutes: int = Field(default=45, ge=1)
    pool_minutes: int = Field(default=30, ge=1)
    device_plugin_minutes: int = Field(default=15, ge=1)
    gpu_minutes: int = Field(default=15, ge=1)
    delete_minutes: int = Field(default=45, ge=1)

    def poll_delay(self, retry_after: int | None) -> int:
        """Honour the server's Retry-After within bounds."""
        wanted = self.default_poll_seconds if retry_after is None else retry_after
        return max(self.min_poll_seconds, min(self.max_poll_seconds, wanted))


class RunInput(HistoryModel):
    """The orchestration input: the normalised request and the run options."""

    request: ProvisionRequest
    options: RunOptions = Field(default_factory=RunOptions)


class StepAnswer(HistoryModel):
    """What every activity returns: a value, or a classified error; `done` ends a wait."""

    value: dict[str, Any] | None = None
    error: StepErrorWire | None = None
    done: bool = True
    """For check activities: whether the thing waited for has happened (or can no longer)."""
    retry_after: int | None = None
    """Seconds the server asked to wait before the next check."""


class WaitInput(HistoryModel):
    """Input of the waiting sub-orchestration: which check to repeat, until when."""

    activity: str
    payload: dict[str, Any]
    deadline: datetime = Field(strict=False)
    """When to stop waiting (ISO 8601 in history)."""
    options: RunOptions
    polls: int = 0
    """Polls made by earlier executions (continue-as-new keeps the count)."""
    carry: str | None = None
    """A payload key that takes each answer's value for the next check (a check that needs
    what it saw last, like feature registration)."""


def deadline(now: datetime, minutes: int) -> datetime:
    return now + timedelta(minutes=minutes)
