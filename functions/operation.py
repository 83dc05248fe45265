"""A long ARM operation inside a step: start it, then wait for it on durable timers.

The start activity (a step's own) answers an operation handle; `check_operation` polls it once;
`operate` waits between checks in the waiting sub-orchestration. Steps that create or delete an
Azure resource use these two and nothing else of ARM's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from typing_extensions import TypedDict

from functions.activity import on_arm
from functions.engine import Run, StepFailed, Steps, fail_on_error
from functions.registry import activity

if TYPE_CHECKING:
    from shared.arm import ArmAdapter
    from shared.events import StepName
    from shared.request import ProvisionRequest
    from shared.sequence import StepAnswer


class Handle(TypedDict):
    """The operation a start activity answered (an OperationHandle as JSON)."""

    handle: dict[str, Any]


@activity
def check_operation(payload: Any) -> dict[str, Any]:
    def check(arm: ArmAdapter, request: ProvisionRequest, data: Handle) -> StepAnswer:
        from functions.activity import dump
        from shared.arm import OperationHandle
        from shared.sequence import StepAnswer

        handle = OperationHandle.model_validate(data["handle"])
        if handle.done:
            return StepAnswer(value={"state": "Succeeded"}, done=True)
        status = arm.check_operation(handle)
        return StepAnswer(
            value=dump(status),
            error=status.error,
            done=status.state != "InProgress",
            retry_after=status.retry_after,
        )

    return on_arm(payload, Handle, check)


def operate(
    run: Run,
    start: Callable[[Any], Any],
    minutes: int,
    owned: Callable[[Run], None] | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> Steps:
    """Start an ARM operation, then wait for it; returns the failed answer or None.

    `owned` marks the run as soon as the operation started, so a cancel or a failure while
    waiting still cleans up what may now exist.
    """
    from shared.sequence import deadline

    until = deadline(run.now, minutes)
    started = yield from run.call(start, {"now": run.now.isoformat(), **(inputs or {})}, until)
    if started.error is not None:
        return started
    if owned is not None:
        owned(run)
    # GPU nodes wait on the answer only when the operation creates them (a pool's PUT): a
    # deletion stops their billing whenever it is seen, a cluster's PUT has no GPU pool.
    waited = yield from run.wait(
        check_operation,
        minutes,
        {"handle": started.value},
        expected=start.__name__,
        vm_size=(inputs or {}).get("vmSize"),
        # just accepted (201/202 with an operation to poll): "the Retry-After header indicates
        # how long the client should wait before polling the operation status" (typespec-azure,
        # ARM rule `retry-after`). An operation found from an earlier start is checked at once.
        sleep_first=(started.value or {}).get("poll") in ("asyncOperation", "location"),
    )
    if waited.error is not None or not waited.done:
        return waited
    if (waited.value or {}).get("state") == "Failed":
        return waited
    return None


def delete(run: Run, start: Callable[[Any], Any], step: StepName = "cleanup") -> Steps:
    """Start a deletion and wait for it; a failure ends `step`."""
    failure = yield from operate(run, start, run.options.delete_minutes)
    if failure is not None:
        fail_on_error(step, failure)
        raise StepFailed(step, "a deletion did not finish in time")
