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
from shared.polling import PollBounds, WaitPrice, check_usd
from shared.request import ProvisionRequest
from shared.wire import HistoryModel

EXPECTED_SECONDS: dict[str, int] = {
    "register_features": 120,  # "a few minutes" (az feature register)
    "start_create_cluster": 300,  # often 5-15 minutes (PLATFORM-FACTS)
    "start_create_node_pool": 180,
    "start_delete_cluster": 240,
    "start_delete_node_pool": 180,
    "check_device_plugin": 15,  # image pull and start of a DaemonSet pod
}
"""Low guesses on purpose: a first check too early costs one wake-up, one too late idle GPUs."""


class RunOptions(HistoryModel):
    """Timing bounds of one run; defaults suit AKS (clusters take minutes, rarely half an hour)."""

    min_poll_seconds: int = Field(default=2, ge=1)
    """Shortest wait between two polls, whatever Retry-After or the GPUs' price say."""
    max_poll_seconds: int = Field(default=120, ge=1)
    """Longest wait between two polls once a wait is past its expected duration."""
    max_wait_seconds: int = Field(default=3600, ge=1)
    """Longest sleep before a wait's expected completion (its first check)."""
    price_horizon_seconds: int = Field(default=300, ge=1)
    """Seconds of waiting over which the polling policy prices its interval (shared.polling)."""
    overrun_share: float = Field(default=0.1, ge=0, le=1)
    """Without GPUs, past the expected duration: no check sooner than this share of the time
    waited so far (a slow operation is seen at most that much late, in few checks)."""
    expected_seconds: dict[str, int] = Field(default_factory=lambda: dict(EXPECTED_SECONDS))
    """What a wait usually takes, by the activity that starts or checks it: its first check is
    made then, not before."""
    default_poll_seconds: int = Field(default=30, ge=1)
    """Wait between polls when the server gives no Retry-After (ARM's own default)."""
    transient_retries: int = Field(default=5, ge=0)
    """Tries again after a transient error (429, 5xx, another operation on the cluster)."""
    polls_per_execution: int = Field(default=5, ge=2)
    """A waiting sub-orchestration continues as new after this many polls: its history is reset
    (Durable Functions, eternal orchestrations), so what is stored and replayed stays small."""
    feature_minutes: int = Field(default=60, ge=1)
    cluster_minutes: int = Field(default=45, ge=1)
    pool_minutes: int = Field(default=30, ge=1)
    device_plugin_minutes: int = Field(default=15, ge=1)
    proof_minutes: int = Field(default=30, ge=1)
    """verify-gpus: every GPU allocatable and healthy, then the smoke workload, in one wait."""
    delete_minutes: int = Field(default=45, ge=1)

    def bounds(self) -> PollBounds:
        return PollBounds(
            shortest=self.min_poll_seconds,
            longest_poll=self.max_poll_seconds,
            default=self.default_poll_seconds,
            longest_wait=self.max_wait_seconds,
            horizon=self.price_horizon_seconds,
            overrun=self.overrun_share,
        )

    def poll_delay(self, retry_after: int | None) -> int:
        """Honour the server's Retry-After within bounds."""
        wanted = self.default_poll_seconds if retry_after is None else retry_after
        return max(self.min_poll_seconds, min(self.max_poll_seconds, wanted))


class RunInput(HistoryModel):
    """The orchestration input: the normalised request and the run options."""

    request: ProvisionRequest
    options: RunOptions = Field(default_factory=RunOptions)
    check_usd: float = Field(default=0.0, ge=0)
    """What one check costs on the Flex Consumption plan (0: waits are not priced)."""
    gpu_hourly_usd: dict[str, float] = Field(default_factory=dict)
    """USD per hour of one node, by the VM sizes the pool may get (list prices)."""

    @classmethod
    def of(cls, request: ProvisionRequest, options: RunOptions | None = None) -> RunInput:
        """The input for a request, with the prices its waits are weighed by (read here, at
        intake: the orchestrator may not read files)."""
        from shared.prices import from_snapshot

        spot = request.node_pool.spot is not None
        hourly: dict[str, float] = {}
        for size in [request.node_pool.vm_size, *request.node_pool.alternative_vm_sizes]:
            price = from_snapshot(size, spot=spot)
            if price is not None:
                hourly[size] = price.hourly
        return cls(
            request=request,
            options=options or RunOptions(),
            check_usd=check_usd(),
            gpu_hourly_usd=hourly,
        )

    def wait_price(self, vm_size: str | None) -> WaitPrice:
        """What waiting costs while the pool of `vm_size` exists (None: no GPU node yet)."""
        hourly = self.gpu_hourly_usd.get(vm_size, 0.0) if vm_size else 0.0
        return WaitPrice(self.check_usd, hourly * self.request.node_pool.node_count)


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
    started: datetime | None = Field(default=None, strict=False)
    """When the wait began (the first execution's start; continue-as-new keeps it)."""
    expected: int | None = None
    """Seconds the wait usually takes (RunOptions.expected_seconds); None: unknown."""
    check_usd: float = 0.0
    gpu_usd_per_hour: float = 0.0
    """The GPU nodes left idle while the answer is unseen (0: none)."""
    pending_at: datetime | None = Field(default=None, strict=False)
    """When a check last saw it not yet done (continue-as-new keeps it)."""
    sleep_first: bool = False
    """Sleep before the first check: what it waits for was just started and cannot be done
    yet (an ARM operation answered 201/202 with Retry-After: the client waits before polling)."""
    carry: str | None = None
    """A payload key that takes each answer's value for the next check (a check that needs
    what it saw last, like feature registration)."""


def deadline(now: datetime, minutes: int) -> datetime:
    return now + timedelta(minutes=minutes)


class WaitResult(HistoryModel):
    """What the waiting sub-orchestration returns: the last check's answer, and when the check
    before the one that saw it done ran (the end lies between: what a learned duration takes)."""

    answer: StepAnswer
    pending_at: datetime | None = Field(default=None, strict=False)
