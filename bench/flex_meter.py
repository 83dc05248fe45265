"""The Flex Consumption on-demand meter, applied to a request's executions on the simulated clock.

Azure Functions docs, Flex Consumption plan, Billing (azure-docs
`articles/azure-functions/flex-consumption-plan.md` and
`includes/functions-flex-consumption-billing-table.md`): on demand, the app is billed for "the
total amount of memory provisioned while each on demand instance is actively executing functions
(in GB-seconds)" plus "the total number of executions"; "The minimum billable execution period for
both execution modes is 1,000 ms. Past that, the billable activity period is rounded up to the
nearest 100 ms." The monitoring reference gives the unit: `OnDemandFunctionExecutionUnits`
(MB-milliseconds) / 1,024,000 is the On Demand Execution Time meter in GB-seconds.

So the meter here: per instance, an activity period is a maximal stretch in which at least one
execution runs (the union of overlapping executions, as a Microsoft Q&A answer on sequential vs
concurrent executions describes: https://learn.microsoft.com/en-us/answers/a/12389275); each
period is billed max(1,000 ms, its length rounded up to 100 ms) times the instance memory.
Every period is one wake-up of the app.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

MINIMUM_PERIOD_SECONDS = 1.0
ROUNDING_SECONDS = 0.1
DEFAULT_MEMORY_MB = 2048


@dataclass(frozen=True)
class Execution:
    """One function execution: `start` on the simulated clock, `seconds` it ran, and the
    instance that ran it."""

    start: float
    seconds: float
    instance: str = "0"


@dataclass(frozen=True)
class Meter:
    """What the meter reads for a set of executions."""

    gb_seconds: float
    wake_ups: int
    """Activity periods: each one a wake-up billed at least the minimum."""
    executions: int
    active_seconds: float
    """The periods' real length, before the minimum and the rounding."""


def lay_out(executions: Iterable[Execution]) -> list[Execution]:
    """Executions as one worker per instance ran them: in order, one at a time, each starting
    when it was due or when the previous one ended. (The local host runs one at a time and its
    clock stands still meanwhile, so several executions share one simulated instant.)"""
    placed: list[Execution] = []
    free: dict[str, float] = {}
    for run in sorted(executions, key=lambda e: (e.start, e.instance)):
        start = max(run.start, free.get(run.instance, run.start))
        placed.append(Execution(start, run.seconds, run.instance))
        free[run.instance] = start + run.seconds
    return placed


def activity_periods(executions: Iterable[Execution]) -> dict[str, list[tuple[float, float]]]:
    """Per instance, the union of its executions' intervals, as (start, end) periods."""
    by_instance: dict[str, list[tuple[float, float]]] = {}
    for run in sorted(executions, key=lambda e: e.start):
        periods = by_instance.setdefault(run.instance, [])
        end = run.start + run.seconds
        if periods and run.start <= periods[-1][1]:
            periods[-1] = (periods[-1][0], max(periods[-1][1], end))
        else:
            periods.append((run.start, end))
    return by_instance


def billed_seconds(period: float) -> float:
    """One activity period as billed: at least 1,000 ms, else rounded up to the next 100 ms."""
    tenths = math.ceil(round(period / ROUNDING_SECONDS, 6))
    return max(MINIMUM_PERIOD_SECONDS, tenths * ROUNDING_SECONDS)


def read(executions: Iterable[Execution], memory_mb: int = DEFAULT_MEMORY_MB) -> Meter:
    """The meter's reading: GB-seconds of instance memory over billed activity periods."""
    runs = list(executions)
    periods = [p for ps in activity_periods(runs).values() for p in ps]
    seconds = sum(billed_seconds(end - start) for start, end in periods)
    return Meter(
        gb_seconds=seconds * memory_mb / 1024,
        wake_ups=len(periods),
        executions=len(runs),
        active_seconds=sum(end - start for start, end in periods),
    )
