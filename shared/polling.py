"""How long a wait sleeps before its next check, priced the way Azure bills both sides.

A check wakes the app: on the Flex Consumption plan each wake-up is billed at least 1,000 ms of
the instance's memory plus its executions (azure-docs `flex-consumption-plan.md`, Billing). A
check made late leaves the request's GPU nodes idle, billed per second at the VM's price. So:

- before the expected completion, no check is worth making: sleep until it (the first check lands
  near it), however long, within `longest_wait`;
- then, while no GPU node waits on the answer, a late answer costs no GPU time, only the
  request's latency: check no sooner than the server asks (its Retry-After, else the default
  interval), and no sooner than `overrun` times the time waited so far (so a wait that runs long
  is checked a bounded number of times and seen at most that fraction late);
- while GPU nodes wait on it, check every `sqrt(2 * check_usd * horizon / gpu_usd_per_second)`
  seconds: over `horizon` seconds of waiting, checks cost `horizon / interval * check_usd` and
  the answer is seen on average `interval / 2` late; that interval makes the sum least. Here
  the price decides, not Retry-After: a read sooner than the server asked costs one read of
  ARM's budget (25 a second), a late one GPU seconds; one later than asked is always allowed.

Pure: no clock, no I/O; the orchestrator passes what it knows (deterministic on replay).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PollBounds:
    """The run's limits on any wait (RunOptions carries them)."""

    shortest: int
    """No two checks closer than this."""
    longest_poll: int
    """Once past the expected completion, no two checks further apart than this."""
    default: int
    """The interval when the server names none."""
    longest_wait: int
    """The longest sleep before the expected completion."""
    horizon: int
    """Seconds of waiting the priced interval is chosen over."""
    overrun: float = 0.1
    """Without GPUs, past the expected completion: no check sooner than this share of the
    time waited so far."""


@dataclass(frozen=True)
class WaitPrice:
    """What waiting costs: one check, and the GPU nodes idle while the answer is not yet seen."""

    check_usd: float = 0.0
    gpu_usd_per_hour: float = 0.0


def priced_interval(price: WaitPrice, horizon: float) -> float | None:
    """The interval that makes checks plus late-seen idle GPU cheapest; None without GPUs."""
    if price.gpu_usd_per_hour <= 0 or price.check_usd <= 0:
        return None
    per_second = price.gpu_usd_per_hour / 3600.0
    return math.sqrt(2.0 * price.check_usd * horizon / per_second)


def next_delay(
    *,
    elapsed: float,
    expected: float | None,
    retry_after: int | None,
    price: WaitPrice,
    bounds: PollBounds,
) -> int:
    """Seconds to sleep before the next check, `elapsed` seconds into a wait expected to take
    `expected` seconds (None: unknown)."""
    if expected is not None and elapsed < expected:
        return _clamp(expected - elapsed, bounds.shortest, max(bounds.longest_wait, 1))
    server = float(bounds.default if retry_after is None else retry_after)
    priced = priced_interval(price, bounds.horizon)
    late = bounds.overrun * elapsed
    wanted = max(server, late) if priced is None else priced
    return _clamp(wanted, bounds.shortest, bounds.longest_poll)


def _clamp(seconds: float, low: int, high: int) -> int:
    return max(low, min(high, math.ceil(seconds)))


INSTANCE_MEMORY_MB = 2048
"""The Flex Consumption instance memory infra/ deploys (and the plan's default)."""
EXECUTIONS_PER_CHECK = 3
"""A check wakes the app for a timer episode, the check activity and the episode it answers."""
MINIMUM_BILLED_SECONDS = 1.0
"""The minimum billable execution period (azure-docs `flex-consumption-plan.md`, Billing)."""


def check_usd() -> float:
    """One check on the Flex Consumption plan: one minimum activity period of the instance's
    memory and its executions, at the dated on-demand prices."""
    from shared.prices import flex_on_demand

    flex = flex_on_demand()
    memory_gb = INSTANCE_MEMORY_MB / 1024
    period = MINIMUM_BILLED_SECONDS * memory_gb * flex.gb_second
    return period + EXECUTIONS_PER_CHECK * flex.execution
