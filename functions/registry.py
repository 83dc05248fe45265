"""The durable functions' names, and the activities registered from their own definitions.

A step module marks each activity with `@activity`: it is registered with the Functions host
under its function name (input binding `payload`), and the orchestration calls it by the same
function object, so a name is written once (functions/activities.py imports the modules that
define them). Nothing here imports shared/: a cold start pays for no SDK and no pydantic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import azure.durable_functions as df

bp = df.Blueprint()

ORCHESTRATOR = "provision_gpu_pool"
WAITER = "wait_until_done"
CANCEL_EVENT = "cancel"

Activity = Callable[[Any], Any]
A = TypeVar("A", bound=Activity)

ACTIVITIES: dict[str, Activity] = {}
"""Every registered activity by name: what the host indexes."""


def activity(function: A) -> A:
    """Register `function` as an activity under its own name."""
    name = function.__name__
    if name in ACTIVITIES:
        raise ValueError(f"two activities are named {name}")
    bp.activity_trigger(input_name="payload")(function)
    ACTIVITIES[name] = function
    return function
