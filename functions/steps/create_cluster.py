"""create-cluster: PUT the request's new managed cluster (system pool only) and wait for it;
also its deletion, which cleanup starts when the request's policy says so."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.activity import NoInput, Started, on_arm, when
from functions.engine import Run, StepFailed, Steps, fail_on_error
from functions.operation import operate
from functions.registry import activity

if TYPE_CHECKING:
    from shared.events import StepName

STEP: StepName = "create-cluster"


@activity
def start_create_cluster(payload: Any) -> dict[str, Any]:
    return on_arm(
        payload, Started, lambda arm, request, data: arm.start_create_cluster(request, when(data))
    )


@activity
def start_delete_cluster(payload: Any) -> dict[str, Any]:
    return on_arm(payload, NoInput, lambda arm, request, _: arm.start_delete_cluster(request))


def _created(run: Run) -> None:
    run.created_cluster = True


def orchestrate(run: Run) -> Steps:
    failure = yield from operate(
        run, start_create_cluster, run.options.cluster_minutes, owned=_created
    )
    if failure is not None:
        fail_on_error(STEP, failure)
        raise StepFailed(STEP, "the cluster was not created in time")
    return {"clusterName": run.request.target.cluster_name}
