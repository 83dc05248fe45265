"""The timer trigger: NCRONTAB schedules fired on the host's clock.

NCRONTAB has six fields with seconds FIRST (`0 */5 * * * *`: every five minutes); croniter takes
seconds as the last field, so the fields are rotated before parsing. Times are UTC (the host's
default without WEBSITE_TIME_ZONE). A timer fires when the clock reaches its next occurrence;
if the clock has already passed the occurrence after that too (the host was busy, or a
ManualClock jumped), it fires once with `past_due` set and the missed ones are skipped, as the
host does. `run_on_startup` fires once when the host starts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from azure.functions.timer import TimerRequest
from croniter import CroniterError, croniter

from sandbox.clock import Clock
from sandbox.functions_host.config import FunctionsHostError
from sandbox.functions_host.worker import FunctionSpec, Worker


@dataclass(frozen=True)
class NcrontabSchedule:
    expression: str

    @classmethod
    def parse(cls, expression: str, function_name: str) -> NcrontabSchedule:
        fields = expression.split()
        if len(fields) != 6:
            raise FunctionsHostError(
                f"function {function_name!r}: schedule {expression!r} is not an NCRONTAB "
                "expression of six fields ({second} {minute} {hour} {day} {month} {day-of-week})"
            )
        schedule = cls(" ".join(fields))
        try:
            schedule.next_after(0.0)
        except (CroniterError, ValueError) as exc:
            raise FunctionsHostError(
                f"function {function_name!r}: schedule {expression!r} is invalid: {exc}"
            ) from exc
        return schedule

    def next_after(self, moment: float) -> float:
        """The first occurrence strictly after `moment` (epoch seconds)."""
        second, *rest = self.expression.split()
        start = datetime.fromtimestamp(moment, tz=UTC)
        return float(croniter(" ".join([*rest, second]), start).get_next(float))


@dataclass
class TimerListener:
    """Fires one function on its NCRONTAB schedule, on the host's clock."""

    spec: FunctionSpec
    worker: Worker
    schedule: NcrontabSchedule
    clock: Clock
    poll_seconds: float
    stopping: threading.Event
    _last: float | None = field(default=None, init=False)
    _due: float = field(init=False)

    def __post_init__(self) -> None:
        self._due = self.schedule.next_after(self.clock.now())

    def run(self) -> None:
        """Fire on schedule until `stopping` is set; the thread's target."""
        if self.spec.trigger.run_on_startup:
            self._fire(self.clock.now(), past_due=False)
        while not self.stopping.wait(self.poll_seconds):
            now = self.clock.now()
            if now >= self._due:
                self._fire(now, past_due=now >= self.schedule.next_after(self._due))

    def _fire(self, now: float, past_due: bool) -> None:
        self._due = self.schedule.next_after(now)
        status = {
            "Last": _iso(self._last if self._last is not None else now),
            "Next": _iso(self._due),
            "LastUpdated": _iso(now),
        }
        self._last = now
        request = TimerRequest(
            past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True}
        )
        self.worker.invoke(self.spec, request)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).isoformat()
