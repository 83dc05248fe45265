"""run-job: create the GPU job, wait until it ends (or can never run), read its log's tail and
what it reports; also its deletion, which cleanup does when the request's policy says so.

Which job states end the wait (`ENDED`) and which one is a success (`SUCCEEDED`) are said here,
once, for the activity and the orchestration alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.activity import NoInput, dump, on_cluster
from functions.engine import Run, StepFailed, Steps, fail_on_error
from functions.registry import activity
from functions.steps.verify_gpus import PoolSize

if TYPE_CHECKING:
    from shared.events import StepName
    from shared.kube import KubeAdapter
    from shared.request import ProvisionRequest
    from shared.sequence import StepAnswer

STEP: StepName = "run-job"
SUCCEEDED = "succeeded"
ENDED = frozenset({SUCCEEDED, "failed", "pending-unschedulable", "not-found"})
"""Job states that end the wait: it ended, or can never run (unschedulable is reported)."""


@activity
def start_job(payload: Any) -> dict[str, Any]:
    return on_cluster(
        payload, PoolSize, lambda kube, request, data: kube.start_job(request, data["vmSize"])
    )


@activity
def check_job(payload: Any) -> dict[str, Any]:
    def check(kube: KubeAdapter, request: ProvisionRequest, _: PoolSize) -> StepAnswer:
        from shared.sequence import StepAnswer

        status = kube.job_status(request)
        return StepAnswer(value=dump(status), done=status.state in ENDED)

    return on_cluster(payload, PoolSize, check)


@activity
def collect_job_log(payload: Any) -> dict[str, Any]:
    """The pod log's tail (capped) and what the job reported in it."""

    def collect(kube: KubeAdapter, request: ProvisionRequest, _: NoInput) -> StepAnswer:
        from shared.job_result import parse_job_result
        from shared.sequence import StepAnswer
        from shared.settings import current_settings

        tail = kube.job_log_tail(request, current_settings().job_log_tail_bytes)
        result = parse_job_result(tail.text)
        return StepAnswer(value={"log": dump(tail), "result": dump(result) if result else None})

    return on_cluster(payload, NoInput, collect)


@activity
def delete_job(payload: Any) -> dict[str, Any]:
    return on_cluster(payload, NoInput, lambda kube, request, _: kube.delete_job(request))


def orchestrate(run: Run) -> Steps:
    size = {"vmSize": run.vm_size}
    started = yield from run.call(start_job, size)
    fail_on_error(STEP, started)
    run.started_job = True
    # a job created now has no pod running yet (scheduling, image pull): the first check waits;
    # one found from an earlier attempt may have ended already
    created = bool((started.value or {}).get("created"))
    status = yield from run.wait(
        check_job, run.request.job.timeout_minutes + 5, size, sleep_first=created
    )
    fail_on_error(STEP, status)
    job = status.value or {}
    collected = yield from run.call(collect_job_log)
    log = (collected.value or {}).get("log") or {}
    run.job_result = (collected.value or {}).get("result")
    run.log_tail = log.get("text")
    details = {
        "job": job,
        "result": run.job_result,
        "logTail": run.log_tail,
        "logTruncated": log.get("truncated", False),
    }
    if job.get("state") != SUCCEEDED:
        reason = job.get("reason") or job.get("state") or "unknown"
        message = f"the job did not succeed: {reason}"
        if job.get("message"):
            message += f" ({job['message']})"
        error = {"kind": "permanent", "code": str(reason), "message": message}
        raise StepFailed(STEP, message, {**error, "hint": _job_hint(job)})
    return details


def completed_message(run: Run) -> str:
    """The run's `completed` message: what the job proved."""
    result = run.job_result or {}
    if "accuracy" in result:
        return (
            f"GPUs proven: the job reached accuracy {result['accuracy']} at step {result['step']}"
        )
    return "GPUs proven: the job succeeded"


def _job_hint(job: dict[str, Any]) -> str:
    if job.get("state") == "pending-unschedulable":
        return "No node of the pool can take the pod: check job.gpusPerPod and the pool's taints."
    return "Read the log tail in this event's details."
