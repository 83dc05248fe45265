"""The durable orchestrators as the Functions host indexes them.

The run's order is functions/flow.py and the waiting is functions/engine.py, imported on the
first replay rather than at app start, so a cold start does not pay for the request models.
"""

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from functions.registry import CANCEL_EVENT, ORCHESTRATOR, WAITER

bp = df.Blueprint()

__all__ = ["CANCEL_EVENT", "ORCHESTRATOR", "WAITER", "bp"]


@bp.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR)
def provision_gpu_pool(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """One request: register-features → cluster → pool → device plugin → GPUs → job → cleanup."""
    from functions.flow import provision

    return (yield from provision(context))


@bp.orchestration_trigger(context_name="context", orchestration=WAITER)
def wait_until_done(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Repeats a check activity on durable timers until it says done (the monitor pattern)."""
    from functions.engine import wait_until_done as waiting

    return (yield from waiting(context))
