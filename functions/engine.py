"""The orchestration engine every step runs on: `Run` (one episode's state), the waits, the
publishing of step outcomes, and the waiting sub-orchestration.

Deterministic: only `context.*` calls and the input; every wait is a durable timer in a waiting
sub-orchestration (monitor pattern, continue-as-new bounds its history). shared/ is imported in
the bodies, on the first replay, never at app start.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Generator, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import azure.durable_functions as df

from functions.registry import CANCEL_EVENT, WAITER
from functions.reports import publish_events, remember_durations

if TYPE_CHECKING:
    from shared.events import StepName
    from shared.preflight import Plan
    from shared.sequence import RunOptions, StepAnswer, WaitInput

Steps = Generator[Any, Any, Any]
THE_POOL = "<the run's pool>"
"""Run.wait's default `vm_size`: the run's GPU pool, once created."""
_UNEXPECTED = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=3)


class StepFailed(Exception):
    """A step ended the run; `error` is the classified failure (a StepErrorWire as JSON) and
    `details` what the step found anyway (its failed event carries them)."""

    def __init__(
        self,
        step: str,
        message: str,
        error: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.step, self.message, self.error, self.details = step, message, error, details


class Cancelled(Exception):
    """The `cancel` event arrived while the run was waiting."""


class Step(Protocol):
    """A step module: its public name and its orchestration (functions/steps/*.py)."""

    STEP: StepName

    def orchestrate(self, run: Run) -> Steps: ...


def fail_on_error(step: StepName, answer: StepAnswer) -> None:
    if answer.error is not None:
        raise StepFailed(step, answer.error.message, answer.error.model_dump(mode="json"))


class Run:
    """What one orchestration episode knows: the input, and what it has done so far."""

    def __init__(self, context: df.DurableOrchestrationContext) -> None:
        from shared.sequence import RunInput

        run = RunInput.model_validate(context.get_input())
        self.input = run
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
        """The outcomes so far, in the custom status (what GET /api/requests/{id} shows)."""
        self.step_trace: dict[str, Any] = {"step": "request", "attempt": 1}
        """The step now running and its attempt: activities trace under that step's span."""
        self.step_began: datetime = self.started
        self.created_cluster = False
        self.created_pool = False
        self.started_job = False
        self.vm_size: str | None = None
        self.plan: Plan | None = None
        """The preflight's verdict: the candidates that fit, their prices, the estimate."""
        self.pool_since: datetime | None = None
        self.pool_until: datetime | None = None
        """When the GPU pool's creation started and its deletion ended: its billed time."""
        self.job_result: dict[str, Any] | None = None
        self.log_tail: str | None = None
        self.proof: dict[str, Any] | None = None
        """The proof record's link and summary, once verify-gpus wrote it."""
        self.started_smoke = False
        self.observed: dict[str, float] = {}
        """Seconds each learned wait took (shared/durations.py), stored when the run ends."""
        self.unsent: list[dict[str, Any]] = []
        """Outcomes noted and not yet published (`flush` sends them before any other call)."""

    @property
    def now(self) -> datetime:
        now: datetime = self.context.current_utc_datetime
        return now

    def record(self, step: StepName, status: str, message: str = "", **extra: Any) -> None:
        """Note one step outcome (in the custom status at once). The next `flush` sends it, before
        any other call, with the outcomes noted after it (one activity for a step's end and the
        next one's start: fewer history events and wake-ups, the same order and times)."""
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
        self.unsent.append(
            {
                "requestId": self.request.request_id,
                "step": step,
                "status": status,
                "attempt": self.attempts[key],
                "message": message,
                "time": self.now.isoformat(),
                **extra,
            }
        )

    def flush(self) -> Steps:
        """Publish the outcomes noted and not yet sent, in order, in one activity."""
        if not self.unsent:
            return
        outcomes, self.unsent = self.unsent, []
        yield self.context.call_activity_with_retry(
            publish_events.__name__, _UNEXPECTED, {"outcomes": outcomes}
        )

    def _input(self, inputs: Mapping[str, Any] | None) -> dict[str, Any]:
        return {"request": self.wire, "trace": self.step_trace, **(inputs or {})}

    def call(
        self,
        activity: Callable[[Any], Any],
        inputs: Mapping[str, Any] | None = None,
        until: datetime | None = None,
    ) -> Steps:
        """Run an activity; transient errors are retried after a durable timer, a bounded number
        of times, or until `until` (cleanup rides out another operation still on the cluster)."""
        from shared.sequence import StepAnswer

        yield from self.flush()
        body = self._input(inputs)
        attempt = 0
        while True:
            raw = yield self.context.call_activity_with_retry(activity.__name__, _UNEXPECTED, body)
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
        yield from self.flush()
        timer = self.context.create_timer(self.now + timedelta(seconds=seconds))
        if not self.cancellable:
            yield timer
            return
        winner = yield self.context.task_any([timer, self.cancel])
        if winner == self.cancel:
            # a timer left pending keeps the instance Running until it fires (CreateTimer docs)
            timer.cancel()
            raise Cancelled()

    def wait(
        self,
        check: Callable[[Any], Any],
        minutes: int,
        inputs: Mapping[str, Any] | None = None,
        carry: str | None = None,
        *,
        expected: str | None = None,
        vm_size: str | None = THE_POOL,
        sleep_first: bool = False,
    ) -> Steps:
        """Repeat a check activity in a waiting sub-orchestration until it says done.

        The checks are spaced by shared.polling: the first near the expected duration of
        `expected` (an activity name in RunOptions.expected_seconds; default: the check's own),
        then as the server asks or as the idle GPU nodes of `vm_size` justify (THE_POOL: the
        run's pool once it exists; None: no GPU node waits on this answer). With `sleep_first`
        the first check waits too (what it checks was just started); such a wait, learned per
        deployment (shared/durations.py), notes how long it took, stored when the run ends.
        """
        from shared.durations import LEARNED, learned_seconds, wait_key
        from shared.sequence import WaitInput, WaitResult, deadline

        yield from self.flush()
        size = (self.vm_size if self.created_pool else None) if vm_size == THE_POOL else vm_size
        price = self.input.wait_price(size)
        name = expected or check.__name__
        key = wait_key(name, vm_size if vm_size != THE_POOL else None)
        expectations = self.options.expected_seconds
        began = self.now
        job = WaitInput(
            activity=check.__name__,
            payload=self._input(inputs),
            deadline=deadline(self.now, minutes),
            options=self.options,
            carry=carry,
            sleep_first=sleep_first,
            started=self.now,
            expected=expectations.get(key, expectations.get(name)),
            check_usd=price.check_usd,
            gpu_usd_per_hour=price.gpu_usd_per_hour,
        )
        waiter = self.context.call_sub_orchestrator(
            WAITER, job.model_dump(mode="json", by_alias=True)
        )
        if self.cancellable:
            winner = yield self.context.task_any([waiter, self.cancel])
            if winner == self.cancel:
                raise Cancelled()
            if isinstance(waiter.result, Exception):
                raise StepFailed("", f"waiting for {check.__name__} failed: {waiter.result}")
            result = WaitResult.model_validate(waiter.result)
        else:
            result = WaitResult.model_validate((yield waiter))
        answer = result.answer
        failed = answer.error is not None or (answer.value or {}).get("state") == "Failed"
        if name in LEARNED and sleep_first and answer.done and not failed:  # waited for a start
            self.observed[key] = learned_seconds(began, result.pending_at, self.now)
        return answer

    def step(self, step: Step) -> Steps:
        """Note started, run the step, note its outcome (or failure) and time it; outcomes go out
        before the next call (`flush`)."""
        name = step.STEP
        self.record(name, "started")
        began = self.now
        try:
            details = yield from step.orchestrate(self)
        except StepFailed as failed:
            failed.step = failed.step or name
            self.durations[name] = (self.now - began).total_seconds()
            found = {"details": failed.details} if failed.details else {}
            self.record(name, "failed", failed.message, error=failed.error, **found)
            raise
        except Cancelled:
            self.durations[name] = (self.now - began).total_seconds()
            self.record(name, "failed", "cancelled by a cancel event")
            raise
        except Exception as unexpected:  # an activity that failed past its retries: still clean up
            self.durations[name] = (self.now - began).total_seconds()
            message = f"unexpected failure: {str(unexpected).splitlines()[0][:500]}"
            self.record(name, "failed", message)
            raise StepFailed(name, message) from None
        self.durations[name] = (self.now - began).total_seconds()
        status = "skipped" if details and details.get("skipped") else "succeeded"
        self.record(name, status, (details or {}).get("message", ""), details=details)
        return details

    def cost(self) -> dict[str, Any] | None:
        """The estimate before, and the actual cost: the pool's node-seconds x its price (up to
        now when it is left running)."""
        from shared.preflight import actual_cost

        if self.plan is None:
            return None
        estimate = self.plan.estimate
        cost: dict[str, Any] = {
            "currency": "USD",
            "estimate": estimate.cost if estimate else None,
            "actual": 0.0 if self.pool_since is None else None,
        }
        prices = {c.vm_size.lower(): c.hourly for c in self.plan.candidates}
        hourly = prices.get((self.vm_size or "").lower())
        if self.pool_since is not None and hourly is not None:
            seconds = ((self.pool_until or self.now) - self.pool_since).total_seconds()
            nodes = self.request.node_pool.node_count
            cost |= {
                "actual": actual_cost(nodes, hourly, seconds),
                "nodeSeconds": nodes * seconds,
                "hourly": hourly,
                "stillRunning": self.pool_until is None,
            }
        return cost

    def conclude(self, failure: StepFailed | None, cleanup: dict[str, Any], done: str) -> Steps:
        """Publish `completed` (with `done` as its message) or `failed`, with the run's summary."""
        summary = {
            "durations": self.durations,
            "vmSize": self.vm_size,
            "jobResult": self.job_result,
            "proof": self.proof,
            "deleted": cleanup.get("deleted", []),
            "left": cleanup.get("left", []),
            "expiresAt": cleanup.get("expiresAt"),
            "totalSeconds": (self.now - self.started).total_seconds(),
            "cost": self.cost(),
        }
        if failure is None:
            self.record("completed", "completed", done, details=summary)
        else:
            summary["failedStep"] = failure.step
            self.record("failed", "failed", failure.message, error=failure.error, details=summary)
        yield from self.flush()
        if self.observed:  # best effort: what was learned never decides the run's outcome
            location = self.request.location
            with contextlib.suppress(Exception):
                yield self.context.call_activity(
                    remember_durations.__name__,
                    {"location": location, "observed": self.observed, **self._input(None)},
                )
        if failure is None:
            return {"status": "completed", **summary}
        return {"status": "failed", "message": failure.message, **summary}


def wait_until_done(context: df.DurableOrchestrationContext) -> Steps:
    """Monitor pattern: check, then a durable timer honouring Retry-After, until done or late."""
    from shared.sequence import StepAnswer, WaitInput, WaitResult

    job = WaitInput.model_validate(context.get_input())
    polls = job.polls
    if job.sleep_first and polls == 0:
        delay = _delay(job, context.current_utc_datetime)
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=delay))
    pending_at = job.pending_at
    while True:
        checked = context.current_utc_datetime
        raw = yield context.call_activity_with_retry(job.activity, _UNEXPECTED, job.payload)
        answer = StepAnswer.model_validate(raw)
        polls += 1
        permanent = answer.error is not None and answer.error.kind != "transient"
        if job.carry and answer.error is None:
            job.payload[job.carry] = answer.value
        if answer.done or permanent:
            return WaitResult(answer=answer, pending_at=pending_at).model_dump(mode="json")
        pending_at = checked
        if context.current_utc_datetime >= job.deadline:
            late = answer.model_copy(update={"done": False})
            return WaitResult(answer=late, pending_at=pending_at).model_dump(mode="json")
        delay = _delay(job, context.current_utc_datetime, answer.retry_after)
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=delay))
        if polls - job.polls >= job.options.polls_per_execution:
            again = job.model_copy(update={"polls": polls, "pending_at": pending_at})
            context.continue_as_new(again.model_dump(mode="json", by_alias=True))
            return None


def _delay(job: WaitInput, now: datetime, retry_after: int | None = None) -> int:
    """The next sleep of a wait, by the polling policy (shared.polling)."""
    from shared.polling import WaitPrice, next_delay

    elapsed = 0.0 if job.started is None else (now - job.started).total_seconds()
    to_deadline = math.ceil((job.deadline - now).total_seconds())
    return min(
        max(to_deadline, 1),
        next_delay(
            elapsed=elapsed,
            expected=job.expected,
            retry_after=retry_after,
            price=WaitPrice(job.check_usd, job.gpu_usd_per_hour),
            bounds=job.options.bounds(),
        ),
    )  # never past the wait's deadline: one last check there
