"""Durable Functions runtime statuses: which mean a run is under way and which that it is over.

The Durable HTTP API and the Python client spell them `Running`, `ContinuedAsNew`...; some
stores write `continued_as_new`: `is_active` compares them folded.
"""

from __future__ import annotations

ACTIVE = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})
"""A run that is under way (or waiting to resume): it still acts on what it created."""
FINISHED = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
"""A run that is over: nothing more happens unless something starts it anew."""

_ACTIVE_FOLDED = frozenset(status.lower() for status in ACTIVE)


def is_active(runtime_status: str) -> bool:
    return runtime_status.replace("_", "").lower() in _ACTIVE_FOLDED
