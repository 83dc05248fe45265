"""create-node-pool: PUT the GPU pool, trying each capacity candidate in order (a capacity failure
deletes the pool and moves on); also its deletion, which cleanup starts when the policy says so."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.activity import NoInput, Started, on_arm, when
from functions.engine import Run, StepFailed, Steps, fail_on_error
from functions.operation import delete, operate
from functions.registry import activity

if TYPE_CHECKING:
    from shared.events import StepName

STEP: StepName = "create-node-pool"


class Candidate(Started):
    """One capacity try: the VM size and the zones to ask for."""

    vmSize: str  # noqa: N815 - the wire's camelCase
    zones: list[str]


@activity
def start_create_node_pool(payload: Any) -> dict[str, Any]:
    return on_arm(
        payload,
        Candidate,
        lambda arm, request, data: arm.start_create_pool(
            request, data["vmSize"], data["zones"], when(data)
        ),
    )


@activity
def start_delete_node_pool(payload: Any) -> dict[str, Any]:
    return on_arm(payload, NoInput, lambda arm, request, _: arm.start_delete_pool(request))


def _created(run: Run) -> None:
    run.created_pool = True


def orchestrate(run: Run) -> Steps:
    from shared.arm.pool import candidates

    tried: list[str] = []
    from shared.arm.pool import Candidate

    fitting = (
        [Candidate(vm_size=c.vm_size, zones=c.zones) for c in run.plan.fitting]
        if run.plan is not None
        else candidates(run.request)
    )  # only what the preflight found fitting is ever PUT
    for candidate in fitting:
        run.pool_since = run.now
        failure = yield from operate(
            run,
            start_create_node_pool,
            run.options.pool_minutes,
            owned=_created,
            inputs={"vmSize": candidate.vm_size, "zones": candidate.zones},
        )
        if failure is None:
            run.vm_size = candidate.vm_size
            return {"vmSize": candidate.vm_size, "zones": candidate.zones, "fellBackFrom": tried}
        if failure.error is None or failure.error.kind != "capacity":
            fail_on_error(STEP, failure)
            raise StepFailed(STEP, "the node pool was not created in time")
        tried.append(f"{candidate.vm_size} {'/'.join(candidate.zones) or 'regional'}")
        # The attempt failed; the step goes on: failed (this attempt), then started (the next).
        run.record(
            STEP,
            "failed",
            f"{candidate.vm_size}: {failure.error.code}; trying the next size or zone",
            error=failure.error.model_dump(mode="json"),
        )
        if run.created_pool:
            yield from delete(run, start_delete_node_pool)
            run.created_pool = False
        run.record(STEP, "started", "trying the next size or zone")
    raise StepFailed(
        STEP, f"no capacity for any of the requested sizes and zones ({'; '.join(tried)})"
    )
