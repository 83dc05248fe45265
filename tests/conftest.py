"""Shared fixtures: the project's paths and a settings object with the production defaults."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
GPUPROV = str(Path(sys.executable).with_name("gpuprov"))
"""The installed command line, as a user runs it."""


@pytest.fixture
def settings() -> Settings:
    """The defaults an operator gets with no settings at all."""
    return Settings.from_env({})


# The in-process sandbox (ARM and Kubernetes simulators on one ManualClock) for the integration
# and orchestration tests.
pytest_plugins = ["tests.sandbox_fixtures"]
