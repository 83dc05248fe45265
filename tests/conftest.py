"""Shared fixtures: the project's paths, a settings object with the production defaults, and
`eventually`, the one way a test waits for a server that acts in its own thread or process."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
GPUPROV = str(Path(sys.executable).with_name("gpuprov"))
"""The installed command line, as a user runs it."""
T = TypeVar("T")


def eventually(
    probe: Callable[[], T | None], timeout: float, waiting_for: str, interval: float = 0.05
) -> T:
    """What `probe` returns once it is truthy; AssertionError naming `waiting_for` when it is
    not within `timeout` real seconds (generous: the machine is busy, nothing times a server)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"not within {timeout} s: {waiting_for}"
        time.sleep(interval)


@pytest.fixture
def settings() -> Settings:
    """The defaults an operator gets with no settings at all."""
    return Settings.from_env({})


# The in-process sandbox (ARM and Kubernetes simulators on one ManualClock) for the integration
# and orchestration tests.
pytest_plugins = ["tests.sandbox_fixtures"]
