"""preflight: before anything is created, read what Azure says about the request's candidates
(VM size and alternatives x zones): offered to the subscription there, vCPU quota (family and
regional, or low-priority for spot), hourly price; keep those that fit, in the request's order,
estimate the cost and hold it to the budget. Read-only: a request that cannot run fails here,
before any PUT, naming the limit and how to raise it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.activity import NoInput, on_arm
from functions.engine import Run, StepFailed, Steps, fail_on_error
from functions.registry import activity

if TYPE_CHECKING:
    from shared.events import StepName

STEP: StepName = "preflight"


@activity
def check_preflight(payload: Any) -> dict[str, Any]:
    return on_arm(payload, NoInput, lambda arm, request, _: arm.preflight(request))


def orchestrate(run: Run) -> Steps:
    from shared.preflight import Plan

    answer = yield from run.call(check_preflight)
    fail_on_error(STEP, answer)
    plan = Plan.model_validate(answer.value)
    details = plan.model_dump(mode="json", by_alias=True)
    if plan.error is not None:
        raise StepFailed(STEP, plan.error.message, plan.error.model_dump(mode="json"))
    run.plan = plan
    chosen = plan.chosen
    assert chosen is not None  # can_run
    dropped = len(plan.candidates) - len(plan.fitting)
    cost = f"; estimate {plan.estimate.cost:.2f} {plan.estimate.currency}" if plan.estimate else ""
    details["message"] = (
        f"{chosen.vm_size} first of {len(plan.fitting)} fitting candidate(s), {dropped} dropped"
        f"{cost}"
    )
    return details
