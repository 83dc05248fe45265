"""Time for the simulators: a clock the tests move by hand, or real time sped up for the demo.

Long-running operations count progress in simulated seconds, so a 10-minute cluster creation
takes no real time in a test (ManualClock.advance) and seconds in the demo (ScaledClock).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Simulated seconds since the Unix epoch."""
        ...


class ManualClock:
    """Stands still until `advance` is called; thread-safe."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go back")
        with self._lock:
            self._now += seconds


class ScaledClock:
    """Real time, `scale` times faster: scale=60 makes one real second a simulated minute."""

    def __init__(self, scale: float = 1.0, origin: float | None = None) -> None:
        """`origin`: the real epoch second simulated time started from (default: now). The
        processes of one sandbox pass its start, so they all read the same simulated time."""
        if scale <= 0:
            raise ValueError("scale must be positive")
        self._scale = scale
        self._origin_real = time.monotonic()
        self._origin = time.time()
        if origin is not None:  # simulated time already ran since `origin`
            self._origin = origin + (self._origin - origin) * scale

    def now(self) -> float:
        return self._origin + (time.monotonic() - self._origin_real) * self._scale


def utc(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock.now(), tz=UTC)
