"""The durable orchestrators as the Functions host indexes them.

The sequence itself is in functions/provision.py, imported on the first replay rather than at
app start, so a cold start does not pay for building the request models.
"""

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

bp = df.Blueprint()

ORCHESTRATOR = "provision_gpu_pool"
WAITER = "wait_until_done"
CANCEL_EVENT = "cancel"

Steps = Generator[Any, Any, Any]


@bp.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR)
def provision_gpu_pool(context: df.DurableOrchestrationContext) -> Steps:
    """One request: register-features → cluster → pool → device plugin → GPUs → job → cleanup."""
    from functions.provision import provision

    return (yield from provision(context))


@bp.orchestration_trigger(context_name="context", orchestration=WAITER)
def wait_until_done(context: df.DurableOrchestrationContext) -> Steps:
    """Repeats a check activity on durable timers until it says done (the monitor pattern)."""
    from functions.provision import wait_until_done as waiting

    return (yield from waiting(context))
