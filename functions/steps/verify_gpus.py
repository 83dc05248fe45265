"""verify-gpus: wait until every node of the pool advertises its VM size's GPUs as allocatable."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typing_extensions import TypedDict

from functions.activity import dump, on_cluster
from functions.engine import Run, StepFailed, Steps, fail_on_error
from functions.registry import activity

if TYPE_CHECKING:
    from shared.events import StepName
    from shared.kube import KubeAdapter
    from shared.request import ProvisionRequest
    from shared.sequence import StepAnswer

STEP: StepName = "verify-gpus"


class PoolSize(TypedDict):
    """The VM size the pool was created with (the candidate that had capacity)."""

    vmSize: str


@activity
def check_gpus(payload: Any) -> dict[str, Any]:
    def check(kube: KubeAdapter, request: ProvisionRequest, data: PoolSize) -> StepAnswer:
        from shared.sequence import StepAnswer

        status = kube.gpu_status(request, data["vmSize"])
        return StepAnswer(value=dump(status), done=status.ready)

    return on_cluster(payload, PoolSize, check)


def orchestrate(run: Run) -> Steps:
    answer = yield from run.wait(check_gpus, run.options.gpu_minutes, {"vmSize": run.vm_size})
    fail_on_error(STEP, answer)
    if not answer.done:
        raise StepFailed(STEP, "the pool's GPUs did not become allocatable in time")
    return answer.value
