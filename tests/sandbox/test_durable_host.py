# mypy: disallow-untyped-decorators=False
"""The local durable host runs real `azure-functions-durable` orchestrators the way Azure does.

Covers: indexing a DFApp like the Functions host; activity chains and their outputs; an activity
exception caught by the orchestrator, and failing the instance when not caught; activity retries
with their backoff timers on the ManualClock, and giving up after the last attempt; a 10-minute
durable timer taking no real time (and sped-up real time on a ScaledClock); the monitor pattern;
external events raised before and after they are awaited, and from another thread; task_any of a
timer against an event (cancel pattern); an orchestration returning with a timer pending (Running
until it fires); task_all; sub-orchestrations and their retries;
continue-as-new keeping history bounded and dropping unread events; custom status; starting the
same id twice; terminate; unknown orchestrators; and a non-deterministic replay reported as such.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest
from azure.durable_functions.models.OrchestrationRuntimeStatus import (
    OrchestrationRuntimeStatus as Status,
)

from sandbox.clock import ManualClock, ScaledClock
from sandbox.durable import InstanceExistsError, LocalDurableHost, index_app

bp = df.Blueprint()

# Attempts per flaky key, so a test can see how often the host retried an activity.
ATTEMPTS: dict[str, int] = {}
# Changed by a test to make `shifty` replay differently from what its history recorded.
SHIFTY_FIRST_STEP = {"name": "greet"}


@bp.activity_trigger(input_name="name")
def greet(name: str) -> str:
    return f"hello {name}"


@bp.activity_trigger(input_name="payload")
def add(payload: dict[str, int]) -> int:
    return payload["a"] + payload["b"]


@bp.activity_trigger(input_name="reason")
def explode(reason: str) -> None:
    raise RuntimeError(reason)


@bp.activity_trigger(input_name="key")
def flaky(key: str) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] < 3:
        raise ConnectionError(f"attempt {ATTEMPTS[key]} failed")
    return f"ok after {ATTEMPTS[key]}"


@bp.activity_trigger(input_name="key")
def poll_job(key: str) -> str:
    """Reports the job done on the fourth poll."""
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    return "done" if ATTEMPTS[key] >= 4 else "running"


@bp.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext) -> Any:
    first = yield context.call_activity("greet", context.get_input())
    total = yield context.call_activity("add", {"a": 2, "b": 3})
    return {"greeting": first, "total": total}


@bp.orchestration_trigger(context_name="context")
def catches(context: df.DurableOrchestrationContext) -> Any:
    try:
        yield context.call_activity("explode", "disk full")
    except Exception as exc:
        return f"caught: {exc}"
    return "not caught"


@bp.orchestration_trigger(context_name="context")
def uncaught(context: df.DurableOrchestrationContext) -> Any:
    yield context.call_activity("explode", "quota exceeded")
    return "unreachable"


@bp.orchestration_trigger(context_name="context")
def retries(context: df.DurableOrchestrationContext) -> Any:
    options = df.RetryOptions(first_retry_interval_in_milliseconds=30_000, max_number_of_attempts=3)
    return (yield context.call_activity_with_retry("flaky", options, context.get_input()))


@bp.orchestration_trigger(context_name="context")
def gives_up(context: df.DurableOrchestrationContext) -> Any:
    options = df.RetryOptions(first_retry_interval_in_milliseconds=1_000, max_number_of_attempts=2)
    try:
        yield context.call_activity_with_retry("flaky", options, context.get_input())
    except Exception as exc:
        return f"gave up: {exc}"
    return "succeeded"


@bp.orchestration_trigger(context_name="context")
def sleeper(context: df.DurableOrchestrationContext) -> Any:
    started = context.current_utc_datetime
    yield context.create_timer(started + timedelta(minutes=10))
    return (context.current_utc_datetime - started).total_seconds()


@bp.orchestration_trigger(context_name="context")
def monitor(context: df.DurableOrchestrationContext) -> Any:
    polls = 0
    while True:
        polls += 1
        state = yield context.call_activity("poll_job", context.get_input())
        context.set_custom_status({"polls": polls, "state": state})
        if state == "done":
            return polls
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=30))


@bp.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext) -> Any:
    context.set_custom_status("waiting for approval")
    decision = yield context.wait_for_external_event("approval")
    context.set_custom_status("approved")
    return decision


@bp.orchestration_trigger(context_name="context")
def cancellable(context: df.DurableOrchestrationContext) -> Any:
    timeout = context.create_timer(context.current_utc_datetime + timedelta(minutes=5))
    cancel = context.wait_for_external_event("cancel")
    winner = yield context.task_any([timeout, cancel])
    if winner == cancel:
        timeout.cancel()
        return f"cancelled: {cancel.result}"
    return "timed out"


@bp.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext) -> Any:
    names = context.get_input()
    return (yield context.task_all([context.call_activity("greet", n) for n in names]))


@bp.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext) -> Any:
    child = yield context.call_sub_orchestrator("chain", "child", instance_id="parent-child")
    try:
        yield context.call_sub_orchestrator("uncaught", None)
    except Exception as exc:
        return {"child": child, "failed_child": str(exc)}
    return {"child": child}


@bp.orchestration_trigger(context_name="context")
def counter(context: df.DurableOrchestrationContext) -> Any:
    count = context.get_input()
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
    yield context.call_activity("add", {"a": count, "b": 1})
    if count + 1 >= 20:
        return count + 1
    context.continue_as_new(count + 1)
    return None


@bp.orchestration_trigger(context_name="context")
def flaky_child(context: df.DurableOrchestrationContext) -> Any:
    return (yield context.call_activity("flaky", context.get_input()))


@bp.orchestration_trigger(context_name="context")
def retries_child(context: df.DurableOrchestrationContext) -> Any:
    options = df.RetryOptions(first_retry_interval_in_milliseconds=10_000, max_number_of_attempts=3)
    return (
        yield context.call_sub_orchestrator_with_retry("flaky_child", options, context.get_input())
    )


@bp.orchestration_trigger(context_name="context")
def mailbox(context: df.DurableOrchestrationContext) -> Any:
    if context.get_input() == "first":
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
        context.continue_as_new("second")
        return None
    return (yield context.wait_for_external_event("msg"))


@bp.orchestration_trigger(context_name="context")
def forgets_timer(context: df.DurableOrchestrationContext) -> Any:
    timeout = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    answer = context.wait_for_external_event("answer")
    yield context.task_any([answer, timeout])
    return "answered"  # the timer is neither awaited nor cancelled


@bp.orchestration_trigger(context_name="context")
def forever(context: df.DurableOrchestrationContext) -> Any:
    while True:
        yield context.create_timer(context.current_utc_datetime + timedelta(hours=1))


@bp.orchestration_trigger(context_name="context")
def shifty(context: df.DurableOrchestrationContext) -> Any:
    first = yield context.call_activity(SHIFTY_FIRST_STEP["name"], "one")
    yield context.wait_for_external_event("go")
    return first


@bp.queue_trigger(arg_name="msg", queue_name="requests", connection="AzureWebJobsStorage")
def on_request(msg: func.QueueMessage) -> None:
    """Not run by the durable host; listed for the trigger host."""


app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(bp)


@pytest.fixture
def host(clock: ManualClock) -> LocalDurableHost:
    ATTEMPTS.clear()
    SHIFTY_FIRST_STEP["name"] = "greet"
    return LocalDurableHost(app, clock)


def test_indexing_sorts_functions_by_trigger() -> None:
    index = index_app(app)
    assert set(index.orchestrators) >= {"chain", "monitor", "parent", "counter"}
    assert set(index.activities) == {"greet", "add", "explode", "flaky", "poll_job"}
    assert index.activities["add"].input_parameter == "payload"
    assert index.other_triggers == {"on_request": "queueTrigger"}
    assert index_app(app).orchestrators.keys() == index.orchestrators.keys()


def test_activity_chain_returns_outputs(host: LocalDurableHost) -> None:
    instance_id = host.start_new("chain", input="world")
    status = host.wait_for_completion(instance_id, timeout=10)
    assert status.runtime_status is Status.Completed
    assert status.output == {"greeting": "hello world", "total": 5}
    assert status.input == "world"
    kinds = [e["EventType"] for e in host.history(instance_id)]
    assert kinds.count(4) == 2  # TaskScheduled
    assert kinds.count(5) == 2  # TaskCompleted


def test_activity_exception_is_catchable_in_the_orchestrator(host: LocalDurableHost) -> None:
    status = host.wait_for_completion(host.start_new("catches"), timeout=10)
    assert status.runtime_status is Status.Completed
    assert "Activity function 'explode' failed: RuntimeError: disk full" in status.output


def test_uncaught_activity_exception_fails_the_instance(host: LocalDurableHost) -> None:
    status = host.wait_for_completion(host.start_new("uncaught"), timeout=10)
    assert status.runtime_status is Status.Failed
    assert status.error is not None
    assert "quota exceeded" in status.error


def test_retry_waits_the_backoff_then_succeeds(host: LocalDurableHost, clock: ManualClock) -> None:
    start = clock.now()
    instance_id = host.start_new("retries", input="arm-put")
    status = host.wait_for_completion(instance_id, timeout=10)
    assert status.runtime_status is Status.Completed
    assert status.output == "ok after 3"
    assert ATTEMPTS["arm-put"] == 3
    history = host.history(instance_id)
    assert [e["EventType"] for e in history if e["EventType"] in (4, 5, 6, 10, 11)] == [
        4, 6, 10, 11, 4, 6, 10, 11, 4, 5,
    ]  # fmt: skip
    assert clock.now() - start == pytest.approx(60.0)  # two 30 s retry timers, simulated


def test_retry_gives_up_after_max_attempts(host: LocalDurableHost) -> None:
    status = host.wait_for_completion(host.start_new("gives_up", input="flaky-2"), timeout=10)
    assert status.runtime_status is Status.Completed
    assert status.output.startswith("gave up: Activity function 'flaky' failed")
    assert "attempt 2 failed" in status.output
    assert ATTEMPTS["flaky-2"] == 2


def test_ten_minute_timer_takes_no_real_time(host: LocalDurableHost, clock: ManualClock) -> None:
    start = clock.now()
    began = time.monotonic()
    status = host.wait_for_completion(host.start_new("sleeper"), timeout=10)
    assert time.monotonic() - began < 1.0
    assert status.output == 600.0  # current_utc_datetime follows the host's clock
    assert clock.now() - start == pytest.approx(600.0)


def test_background_driver_runs_instances_while_the_caller_polls(clock: ManualClock) -> None:
    with LocalDurableHost(app, clock) as host:
        instance_id = host.start_new("monitor", input="job-bg")
        host.raise_event(approval_id := host.start_new("approval"), "approval", "bg")
        deadline = time.monotonic() + 10
        while host.get_status(instance_id).runtime_status is not Status.Completed:
            assert time.monotonic() < deadline, host.get_status(instance_id)
            time.sleep(0.01)
        assert host.get_status(instance_id).output == 4
        assert host.wait_for_completion(approval_id, timeout=10).output == "bg"
    assert not any(t.name == "local-durable-host" for t in threading.enumerate())


def test_timers_follow_real_time_on_a_scaled_clock() -> None:
    host = LocalDurableHost(app, ScaledClock(scale=2400))  # 10 simulated minutes in 0.25 s
    began = time.monotonic()
    status = host.wait_for_completion(host.start_new("sleeper"), timeout=10)
    assert 0.2 < time.monotonic() - began < 2.0
    assert status.output >= 600.0


def test_monitor_polls_until_done(host: LocalDurableHost, clock: ManualClock) -> None:
    start = clock.now()
    status = host.wait_for_completion(host.start_new("monitor", input="job-1"), timeout=10)
    assert status.output == 4
    assert status.custom_status == {"polls": 4, "state": "done"}
    assert clock.now() - start == pytest.approx(90.0)


def test_event_raised_after_it_is_awaited(host: LocalDurableHost) -> None:
    instance_id = host.start_new("approval")
    host.run_until_idle()
    waiting = host.get_status(instance_id)
    assert waiting.runtime_status is Status.Running
    assert waiting.custom_status == "waiting for approval"
    host.raise_event(instance_id, "approval", {"by": "ops"})
    status = host.wait_for_completion(instance_id, timeout=10)
    assert status.output == {"by": "ops"}
    assert status.custom_status == "approved"


def test_event_raised_before_it_is_awaited_is_kept(host: LocalDurableHost) -> None:
    instance_id = host.start_new("approval")
    host.raise_event(instance_id, "approval", "early")
    assert host.wait_for_completion(instance_id, timeout=10).output == "early"


def test_event_raised_from_another_thread_wakes_the_waiter(host: LocalDurableHost) -> None:
    instance_id = host.start_new("approval")
    host.run_until_idle()
    raiser = threading.Timer(0.2, host.raise_event, args=(instance_id, "approval", "late"))
    raiser.start()
    try:
        assert host.wait_for_completion(instance_id, timeout=10).output == "late"
    finally:
        raiser.join()


@pytest.mark.parametrize(
    ("raise_cancel", "expected", "simulated_seconds"),
    [(True, "cancelled: by user", 0.0), (False, "timed out", 300.0)],
    ids=["event-wins-and-timer-is-cancelled", "timer-wins"],
)
def test_task_any_timer_against_event(
    host: LocalDurableHost,
    clock: ManualClock,
    raise_cancel: bool,
    expected: str,
    simulated_seconds: float,
) -> None:
    start = clock.now()
    instance_id = host.start_new("cancellable")
    if raise_cancel:
        host.raise_event(instance_id, "cancel", "by user")
    status = host.wait_for_completion(instance_id, timeout=10)
    assert status.output == expected
    assert clock.now() - start == pytest.approx(simulated_seconds)


def test_returning_with_a_pending_timer_completes_when_it_fires(
    host: LocalDurableHost, clock: ManualClock
) -> None:
    """IDurableOrchestrationContext.CreateTimer: timers not cancelled keep the instance Running
    "even after the orchestrator function has completed" (azure-functions-durable-python#573
    reports the same for Python); the timer's firing lets it complete."""
    start = clock.now()
    instance_id = host.start_new("forgets_timer")
    host.run_until_idle(advance_clock=False)
    host.raise_event(instance_id, "answer", "yes")
    host.run_until_idle(advance_clock=False)
    assert host.get_status(instance_id).runtime_status is Status.Running
    status = host.wait_for_completion(instance_id, timeout=10)
    assert (status.runtime_status, status.output) == (Status.Completed, "answered")
    assert clock.now() - start == pytest.approx(3600)


def test_task_all_gathers_results_in_order(host: LocalDurableHost) -> None:
    status = host.wait_for_completion(host.start_new("fan_out", input=["a", "b", "c"]), timeout=10)
    assert status.output == ["hello a", "hello b", "hello c"]


def test_sub_orchestrations_report_output_and_failure(host: LocalDurableHost) -> None:
    status = host.wait_for_completion(host.start_new("parent", "p1"), timeout=10)
    assert status.runtime_status is Status.Completed
    assert status.output["child"] == {"greeting": "hello child", "total": 5}
    assert "quota exceeded" in status.output["failed_child"]
    assert host.get_status("parent-child").runtime_status is Status.Completed
    assert host.get_status("p1:1").runtime_status is Status.Failed


def test_sub_orchestration_with_retry_restarts_the_child(
    host: LocalDurableHost, clock: ManualClock
) -> None:
    start = clock.now()
    status = host.wait_for_completion(host.start_new("retries_child", input="child"), timeout=10)
    assert status.output == "ok after 3"
    assert clock.now() - start == pytest.approx(20.0)


def test_continue_as_new_drops_unread_events(host: LocalDurableHost) -> None:
    """The extension's out-of-process shim calls `ContinueAsNew(action.Input)`
    (OutOfProcOrchestrationShim.cs), so `preserveUnprocessedEvents` is false: an event the old
    execution never read is gone; the new execution waits for the next one."""
    instance_id = host.start_new("mailbox", input="first")
    host.run_until_idle(advance_clock=False)
    host.raise_event(instance_id, "msg", "raised before continue-as-new")
    host.run_until_idle()
    status = host.get_status(instance_id)
    assert (status.runtime_status, status.input) == (Status.Running, "second")
    host.raise_event(instance_id, "msg", "raised to the new execution")
    status = host.wait_for_completion(instance_id, timeout=10)
    assert status.output == "raised to the new execution"


def test_continue_as_new_keeps_history_bounded(host: LocalDurableHost) -> None:
    instance_id = host.start_new("counter", input=0)
    longest = 0
    while host.get_status(instance_id).runtime_status not in (Status.Completed, Status.Failed):
        host.run_until_idle(advance_clock=False)
        longest = max(longest, host.get_status(instance_id).history_length)
        host.clock.advance(60)  # type: ignore[attr-defined]
    status = host.get_status(instance_id)
    assert status.output == 20
    assert status.input == 19
    assert 0 < longest <= 12  # one execution's worth, not twenty


def test_starting_a_running_id_twice_starts_it_once(host: LocalDurableHost) -> None:
    first = host.start_new("approval", "job-42")
    second = host.start_new("approval", "job-42")
    assert first == second == "job-42"
    host.raise_event("job-42", "approval", "yes")
    assert host.wait_for_completion("job-42", timeout=10).output == "yes"
    assert host.instance_ids() == ["job-42"]
    with pytest.raises(InstanceExistsError, match="already ran"):
        host.start_new("approval", "job-42")
    host.start_new("approval", "job-42", restart=True)
    assert host.get_status("job-42").runtime_status is Status.Pending


def test_terminate_stops_a_waiting_instance(host: LocalDurableHost) -> None:
    instance_id = host.start_new("approval")
    host.run_until_idle()
    host.terminate(instance_id, "operator said stop")
    status = host.get_status(instance_id)
    assert status.runtime_status is Status.Terminated
    assert status.output == "operator said stop"
    with pytest.raises(ValueError, match="Terminated"):
        host.raise_event(instance_id, "approval", "too late")


def test_an_endless_orchestration_does_not_hang_the_caller(host: LocalDurableHost) -> None:
    endless = host.start_new("forever")
    finite = host.start_new("sleeper")
    assert host.wait_for_completion(finite, timeout=5).output == 600.0
    with pytest.raises(TimeoutError, match="still Running"):
        host.wait_for_completion(endless, timeout=0.2)
    with pytest.raises(TimeoutError, match="still busy"):
        host.run_until_idle(timeout=0.2)


def test_unknown_orchestrator_is_refused(host: LocalDurableHost) -> None:
    with pytest.raises(ValueError, match="no orchestrator function 'nope'"):
        host.start_new("nope")


def test_non_deterministic_replay_fails_the_instance(host: LocalDurableHost) -> None:
    instance_id = host.start_new("shifty")
    host.run_until_idle()
    assert host.get_status(instance_id).runtime_status is Status.Running
    SHIFTY_FIRST_STEP["name"] = "explode"  # the code changed while the instance was waiting
    host.raise_event(instance_id, "go")
    status = host.wait_for_completion(instance_id, timeout=10)
    assert status.runtime_status is Status.Failed
    assert status.error == (
        "NonDeterminismError: orchestrator 'shifty' replayed action #0 as "
        "CALL_ACTIVITY('explode') but the history recorded CALL_ACTIVITY('greet')"
    )


def test_deterministic_replay_of_the_same_code_completes(host: LocalDurableHost) -> None:
    instance_id = host.start_new("shifty")
    host.run_until_idle()
    host.raise_event(instance_id, "go")
    assert host.wait_for_completion(instance_id, timeout=10).output == "hello one"
