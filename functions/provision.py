"""The durable sequence's implementation (functions/orchestrator.py registers it).

One orchestration per request, instance id = request id:

register-features → create-cluster / create-node-pool → install-device-plugin → verify-gpus →
run-job → cleanup → completed | failed, each step publishing `started` then its outcome.
Deterministic: only `context.*` calls and the input; every wait is a durable timer in a waiting
sub-orchestration (monitor pattern, continue-as-new bounds its history); cleanup runs after
success, failure or a `cancel` event, deleting exactly what the request's cleanup policy says.
"""

from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

from functions.orchestrator import CANCEL_EVENT, WAITER, Steps
from shared.sequence import RunInput, RunOptions, StepAnswer, WaitInput, deadline
from shared.specs import candidates

_UNEXPECTED = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=3)


class StepFailed(Exception):
    """A step ended the run; `error` is the classified failure (a StepErrorWire as JSON)."""

    def __init__(self, step: str, message: str, error: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.step, self.message, self.error = step, message, error


class Cancelled(Exception):
    """The `cancel` event arrived while the run was waiting."""


class Run:
    """What one orchestration episode knows: the input, and what it has done so far."""

    def __init__(self, context: df.DurableOrchestrationContext) -> None:
        run = RunInput.model_validate(context.get_input())
        self.context = context
        self.request = run.request
        self.options: RunOptions = run.options
        self.wire: dict[str, Any] = run.request.model_dump(mode="json", by_alias=True)
        self.cancel = context.wait_for_external_event(CANCEL_EVENT)
        self.cancellable = True
        """Cleanup is not cancellable: once it starts, it finishes."""
        self.started = context.current_utc_datetime
        self.durations: dict[str, float] = {}
        self.attempts: dict[tuple[str, str], int] = {}
        self.trail: list[dict[str, str]] = []
        self.step_trace: dict[str, Any] = {"step": "request", "attempt": 1}
        """The step now running and its attempt: activities trace under that step's span."""
        self.step_began: datetime = self.started
        """The outcomes so far, in the custom status (what GET /api/requests/{id} shows)."""
        self.created_cluster = False
        self.created_pool = False
        self.started_job = False
        self.vm_size: str | None = None
        self.job_result: dict[str, Any] | None = None
        self.log_tail: str | None = None

    @property
    def now(self) -> datetime:
        now: datetime = self.context.current_utc_datetime
        return now

    def publish(self, step: str, status: str, message: str = "", **extra: Any) -> Any:
        """The publish activity for one step outcome; ids repeat only for the same attempt."""
        key = (step, status)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if status == "started":
            self.step_trace = {"step": step, "attempt": self.attempts[key]}
            self.step_began = self.now
        elif step in ("completed", "failed"):
            extra["startedAt"] = self.started.isoformat()
        elif step == self.step_trace["step"]:
            extra["startedAt"] = self.step_began.isoformat()
        self.trail.append(
            {"step": step, "status": status, "at": self.now.isoformat(), "message": message[:200]}
        )
        self.context.set_custom_status({"step": step, "status": status, "events": self.trail})
        outcome = {
            "requestId": self.request.request_id,
            "step": step,
            "status": status,
            "attempt": self.attempts[key],
            "message": message,
            "time": self.now.isoformat(),
            **extra,
        }
        return self.context.call_activity_with_retry("publish_event", _UNEXPECTED, outcome)

    def call(self, activity: str, until: datetime | None = None, **payload: Any) -> Steps:
        """Run an activity; transient errors are retried after a durable timer, a bounded number
        of times, or until `until` (cleanup rides out another operation still on the cluster)."""
        body = {"request": self.wire, "trace": self.step_trace, **payload}
        attempt = 0
        while True:
            raw = yield self.context.call_activity_with_retry(activity, _UNEXPECTED, body)
            answer = StepAnswer.model_validate(raw)
            error = answer.error
            if error is None or error.kind != "transient":
                return answer
            out_of_tries = attempt >= self.options.transient_retries
            if (self.now >= until) if until is not None else out_of_tries:
                return answer
            attempt += 1
            yield from self.sleep(self.options.poll_delay(error.retry_after or 2**attempt))

    def sleep(self, seconds: int) -> Steps:
        timer = self.context.create_timer(self.now + timedelta(seconds=seconds))
        if not self.cancellable:
            yield timer
            return
        winner = yield self.context.task_any([timer, self.cancel])
        if winner == self.cancel:
            # a timer left pending keeps the instance Running until it fires (CreateTimer docs)
            timer.cancel()
            raise Cancelled()

    def wait(self, activity: str, minutes: int, carry: str | None = None, **payload: Any) -> Steps:
        """Repeat a check activity in a waiting sub-orchestration until it says done."""
        job = WaitInput(
            activity=activity,
            payload={"request": self.wire, "trace": self.step_trace, **payload},
            deadline=deadline(self.now, minutes),
            options=self.options,
            carry=carry,
        )
        waiter = self.context.call_sub_orchestrator(
            WAITER, job.model_dump(mode="json", by_alias=True)
        )
        if not self.cancellable:
            return StepAnswer.model_validate((yield waiter))
        winner = yield self.context.task_any([waiter, self.cancel])
        if winner == self.cancel:
            raise Cancelled()
        if isinstance(waiter.result, Exception):
            raise StepFailed("", f"waiting for {activity} failed: {waiter.result}")
        return StepAnswer.model_validate(waiter.result)

    def step(self, name: str, body: Steps) -> Steps:
        """Publish started, run the body, publish its outcome (or failure) and time it."""
        yield self.publish(name, "started")
        began = self.now
        try:
            details = yield from body
        except StepFailed as failed:
            failed.step = failed.step or name
            self.durations[name] = (self.now - began).total_seconds()
            yield self.publish(name, "failed", failed.message, error=failed.error)
            raise
        except Cancelled:
            self.durations[name] = (self.now - began).total_seconds()
            yield self.publish(name, "failed", "cancelled by a cancel event")
            raise
        except Exception as unexpected:  # an activity that failed past its retries: still clean up
            self.durations[name] = (self.now - began).total_seconds()
            message = f"unexpected failure: {str(unexpected).splitlines()[0][:500]}"
            yield self.publish(name, "failed", message)
            raise StepFailed(name, message) from None
        self.durations[name] = (self.now - began).total_seconds()
        status = "skipped" if details and details.get("skipped") else "succeeded"
        yield self.publish(name, status, (details or {}).get("message", ""), details=details)
        return details


def _fail_on_error(step: str, answer: StepAnswer) -> None:
    if answer.error is not None:
        raise StepFailed(step, answer.error.message, answer.error.model_dump(mode="json"))


# -- the steps --------------------------------------------------------------------------------


def _register_features(run: Run) -> Steps:
    if not run.request.preview_features:
        return {"skipped": True, "message": "no preview feature requested"}
    answer = yield from run.wait(
        "register_features", run.options.feature_minutes, carry="previous", previous=None
    )
    _fail_on_error("register-features", answer)
    if not answer.done:
        raise StepFailed("register-features", "preview features did not register in time")
    return {"features": answer.value}


def _operation(run: Run, start: str, minutes: int, owned: str = "", **payload: Any) -> Steps:
    """Start an ARM operation, then wait for it; returns the failed answer or None.

    `owned` names the Run flag set as soon as the operation started, so a cancel or a failure
    while waiting still cleans up what may now exist.
    """
    until = deadline(run.now, minutes)
    started = yield from run.call(start, until=until, now=run.now.isoformat(), **payload)
    if started.error is not None:
        return started
    if owned:
        setattr(run, owned, True)
    waited = yield from run.wait("check_operation", minutes, handle=started.value)
    if waited.error is not None or not waited.done:
        return waited
    if (waited.value or {}).get("state") == "Failed":
        return waited
    return None


def _create_cluster(run: Run) -> Steps:
    failure = yield from _operation(
        run, "start_create_cluster", run.options.cluster_minutes, owned="created_cluster"
    )
    if failure is not None:
        _fail_on_error("create-cluster", failure)
        raise StepFailed("create-cluster", "the cluster was not created in time")
    return {"clusterName": run.request.target.cluster_name}


def _create_node_pool(run: Run) -> Steps:
    """Try each capacity candidate in order; a capacity failure deletes the pool, moves on."""
    tried: list[str] = []
    for candidate in candidates(run.request):
        failure = yield from _operation(
            run,
            "start_create_node_pool",
            run.options.pool_minutes,
            owned="created_pool",
            vmSize=candidate.vm_size,
            zones=candidate.zones,
        )
        if failure is None:
            run.vm_size = candidate.vm_size
            return {"vmSize": candidate.vm_size, "zones": candidate.zones, "fellBackFrom": tried}
        if failure.error is None or failure.error.kind != "capacity":
            _fail_on_error("create-node-pool", failure)
            raise StepFailed("create-node-pool", "the node pool was not created in time")
        tried.append(f"{candidate.vm_size} {'/'.join(candidate.zones) or 'regional'}")
        # The attempt failed; the step goes on: failed (this attempt), then started (the next).
        yield run.publish(
            "create-node-pool",
            "failed",
            f"{candidate.vm_size}: {failure.error.code}; trying the next size or zone",
            error=failure.error.model_dump(mode="json"),
        )
        if run.created_pool:
            yield from _delete(run, "start_delete_node_pool")
            run.created_pool = False
        yield run.publish("create-node-pool", "started", "trying the next size or zone")
    raise StepFailed(
        "create-node-pool",
        f"no capacity for any of the requested sizes and zones ({'; '.join(tried)})",
    )


def _install_device_plugin(run: Run) -> Steps:
    answer = yield from run.call("install_device_plugin")
    _fail_on_error("install-device-plugin", answer)
    result = answer.value or {}
    if result.get("action") == "skipped":
        return {"skipped": True, "message": result.get("reason", ""), **result}
    ready = yield from run.wait("check_device_plugin", run.options.device_plugin_minutes)
    _fail_on_error("install-device-plugin", ready)
    if not ready.done:
        raise StepFailed("install-device-plugin", "the device plugin did not become ready in time")
    return {**result, "status": ready.value}


def _verify_gpus(run: Run) -> Steps:
    answer = yield from run.wait("check_gpus", run.options.gpu_minutes, vmSize=run.vm_size)
    _fail_on_error("verify-gpus", answer)
    if not answer.done:
        raise StepFailed("verify-gpus", "the pool's GPUs did not become allocatable in time")
    return answer.value


def _run_job(run: Run) -> Steps:
    started = yield from run.call("start_job", vmSize=run.vm_size)
    _fail_on_error("run-job", started)
    run.started_job = True
    minutes = run.request.job.timeout_minutes + 5
    status = yield from run.wait("check_job", minutes, vmSize=run.vm_size)
    _fail_on_error("run-job", status)
    job = status.value or {}
    collected = yield from run.call("collect_job_log")
    log = (collected.value or {}).get("log") or {}
    run.job_result = (collected.value or {}).get("result")
    run.log_tail = log.get("text")
    details = {
        "job": job,
        "result": run.job_result,
        "logTail": run.log_tail,
        "logTruncated": log.get("truncated", False),
    }
    if job.get("state") != "succeeded":
        reason = job.get("reason") or job.get("state") or "unknown"
        message = f"the job did not succeed: {reason}"
        if job.get("message"):
            message += f" ({job['message']})"
        error = {"kind": "permanent", "code": str(reason), "message": message}
        raise StepFailed("run-job", message, {**error, "hint": _job_hint(job)})
    return details


def _completed_message(run: Run) -> str:
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


def _delete(run: Run, start: str) -> Steps:
    failure = yield from _operation(run, start, run.options.delete_minutes)
    if failure is not None:
        _fail_on_error("cleanup", failure)
        raise StepFailed("cleanup", "a deletion did not finish in time")


def _cleanup(run: Run) -> Steps:
    policy = run.request.cleanup
    deleted: list[str] = []
    left: list[str] = []
    if run.started_job and policy.delete_job:
        answer = yield from run.call("delete_job")
        _fail_on_error("cleanup", answer)
        deleted.append(f"job {run.request.job.name}")
    if run.created_cluster and policy.delete_cluster:
        yield from _delete(run, "start_delete_cluster")
        deleted.append(f"cluster {run.request.target.cluster_name}")
    elif run.created_pool and policy.delete_node_pool:
        yield from _delete(run, "start_delete_node_pool")
        deleted.append(f"node pool {run.request.node_pool.name}")
    expires = run.started + timedelta(hours=policy.ttl_hours)
    if run.created_cluster and not policy.delete_cluster:
        left.append(f"cluster {run.request.target.cluster_name}")
    if run.created_pool and not (policy.delete_node_pool or policy.delete_cluster):
        left.append(f"node pool {run.request.node_pool.name}")
    return {"deleted": deleted, "left": left, "expiresAt": expires.isoformat() if left else None}


# -- the orchestrators --------------------------------------------------------------------------


def provision(context: df.DurableOrchestrationContext) -> Steps:
    """The whole run of one request."""
    run = Run(context)
    failure: StepFailed | None = None
    try:
        yield from run.step("register-features", _register_features(run))
        if run.request.creates_cluster:
            yield from run.step("create-cluster", _create_cluster(run))
        yield from run.step("create-node-pool", _create_node_pool(run))
        yield from run.step("install-device-plugin", _install_device_plugin(run))
        yield from run.step("verify-gpus", _verify_gpus(run))
        yield from run.step("run-job", _run_job(run))
    except StepFailed as failed:
        failure = failed
    except Cancelled:
        failure = StepFailed("cancel", "cancelled by a cancel event")
    cleanup: dict[str, Any] = {}
    run.cancellable = False
    try:
        cleanup = yield from run.step("cleanup", _cleanup(run))
    except (StepFailed, Cancelled) as failed:
        failure = failure or StepFailed("cleanup", str(failed))
    summary = {
        "durations": run.durations,
        "vmSize": run.vm_size,
        "jobResult": run.job_result,
        "deleted": cleanup.get("deleted", []),
        "left": cleanup.get("left", []),
        "expiresAt": cleanup.get("expiresAt"),
        "totalSeconds": (run.now - run.started).total_seconds(),
    }
    if failure is None:
        yield run.publish("completed", "completed", _completed_message(run), details=summary)
        return {"status": "completed", **summary}
    summary["failedStep"] = failure.step
    yield run.publish("failed", "failed", failure.message, error=failure.error, details=summary)
    return {"status": "failed", "message": failure.message, **summary}


def wait_until_done(context: df.DurableOrchestrationContext) -> Steps:
    """Monitor pattern: check, then a durable timer honouring Retry-After, until done or late."""
    job = WaitInput.model_validate(context.get_input())
    polls = job.polls
    while True:
        raw = yield context.call_activity_with_retry(job.activity, _UNEXPECTED, job.payload)
        answer = StepAnswer.model_validate(raw)
        polls += 1
        permanent = answer.error is not None and answer.error.kind != "transient"
        if job.carry and answer.error is None:
            job.payload[job.carry] = answer.value
        if answer.done or permanent:
            return answer.model_dump(mode="json", by_alias=True)
        if context.current_utc_datetime >= job.deadline:
            return answer.model_copy(update={"done": False}).model_dump(mode="json", by_alias=True)
        delay = job.options.poll_delay(answer.retry_after)
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=delay))
        if polls - job.polls >= job.options.polls_per_execution:
            context.continue_as_new(
                job.model_copy(update={"polls": polls}).model_dump(mode="json", by_alias=True)
            )
            return None
