"""The running sandbox as the commands use it: its settings and its one simulated clock.

Every process of a sandbox (the simulators, `gpuprov run`, `host`, `reap`) reads time from a
clock anchored at the sandbox's start, so an expiry tag written by one is due for the others at
the same simulated moment.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sandbox import control
from sandbox.clock import ScaledClock


def sandbox_values(where: Path) -> dict[str, str]:
    """The sandbox's settings, also put in the environment, where the app reads them."""
    from shared.settings import current_settings

    raw = json.loads((where / control.SETTINGS_FILE).read_text())["Values"]
    values = {str(k): str(v) for k, v in raw.items()}
    os.environ.update(values)
    current_settings.cache_clear()
    return values


def sandbox_clock(where: Path, time_scale: float) -> ScaledClock:
    """The sandbox's simulated clock (its own speed-up when it recorded one)."""
    state = control.read_state(where) or {}
    scale = float(state.get("timeScale") or time_scale)
    started = state.get("startedAt")
    return ScaledClock(scale, origin=float(started) if started is not None else None)
