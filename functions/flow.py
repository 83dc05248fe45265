"""The order of the steps: the whole run of one request, and nothing else.

preflight → register-features → create-cluster (new clusters only) → create-node-pool →
install-device-plugin → verify-gpus → run-job → cleanup → completed | failed.
Each step is a module of functions/steps/; adding one is that module and a line here.
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from functions.engine import Cancelled, Run, StepFailed, Steps
from functions.steps import (
    cleanup,
    create_cluster,
    create_node_pool,
    install_device_plugin,
    preflight,
    register_features,
    run_job,
    verify_gpus,
)


def provision(context: df.DurableOrchestrationContext) -> Steps:
    run = Run(context)
    failure: StepFailed | None = None
    try:
        yield from run.step(preflight)
        yield from run.step(register_features)
        if run.request.creates_cluster:
            yield from run.step(create_cluster)
        yield from run.step(create_node_pool)
        yield from run.step(install_device_plugin)
        yield from run.step(verify_gpus)
        yield from run.step(run_job)
    except StepFailed as failed:
        failure = failed
    except Cancelled:
        failure = StepFailed("cancel", "cancelled by a cancel event")
    run.cancellable = False
    details: dict[str, Any] = {}
    try:
        details = yield from run.step(cleanup)
    except (StepFailed, Cancelled) as failed:
        failure = failure or StepFailed("cleanup", str(failed))
    return (yield from run.conclude(failure, details, run_job.completed_message(run)))
