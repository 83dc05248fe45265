# mypy: disallow-untyped-decorators=False
"""The local durable host with a state file resumes every run after its process is gone.

A "killed" host here is one that is simply abandoned mid-work (never stopped, nothing flushed);
a new host on the same file and clock carries on, as the extension does from its task hub after
a crash. Covers: an activity that was running is run again (at least once) and the run completes
once; a pending timer keeps its fire time and fires; an event raised before the restart is
delivered after it; starting the same instance id again starts nothing new; an episode cut off
mid-replay is replayed; an entity's state outlives the host; a state file from another format is
refused with the way out named.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest
from azure.durable_functions.models.OrchestrationRuntimeStatus import (
    OrchestrationRuntimeStatus as Status,
)

from sandbox.clock import ManualClock
from sandbox.durable import LocalDurableHost

bp = df.Blueprint()
RUNS: list[str] = []
BLOCK = {"first": threading.Event(), "release": threading.Event()}


@bp.activity_trigger(input_name="name")
def slow_step(name: str) -> str:
    """The first run blocks (the host 'dies' while it runs); later runs return at once."""
    RUNS.append(name)
    if len(RUNS) == 1:
        BLOCK["first"].set()
        BLOCK["release"].wait(30)
    return f"done {name}"


@bp.orchestration_trigger(context_name="context")
def steps(context: df.DurableOrchestrationContext) -> Any:
    first = yield context.call_activity("slow_step", "one")
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=10))
    approval = yield context.wait_for_external_event("approve")
    return [first, approval]


@bp.entity_trigger(context_name="context")
def tally(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        value += context.get_input()
    context.set_result(value)
    context.set_state(value)


@bp.orchestration_trigger(context_name="context")
def add_or_read(context: df.DurableOrchestrationContext) -> Any:
    entity = df.EntityId("tally", "t")
    if context.get_input() == "add":
        context.signal_entity(entity, "add", 3)
        return None
    return (yield context.call_entity(entity, "get"))


app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(bp)


@pytest.fixture(autouse=True)
def _reset() -> Any:
    RUNS.clear()
    BLOCK["first"].clear()
    BLOCK["release"].clear()
    yield
    BLOCK["release"].set()


def _history_types(host: LocalDurableHost, instance_id: str) -> list[int]:
    return [e["EventType"] for e in host.history(instance_id)]


def test_a_run_survives_its_host(tmp_path: Path) -> None:
    state = tmp_path / "durable.json"
    clock = ManualClock()
    first = LocalDurableHost(app, clock, state_file=state)
    instance_id = first.start_new("steps", "req-1", input=None)
    first.start()  # the background driver runs the activity, which blocks
    assert BLOCK["first"].wait(10)
    # the host "dies" here: its activity never returns; a new host takes the file
    second = LocalDurableHost(app, clock, state_file=state)
    assert second.start_new("steps", "req-1") == "req-1"
    assert second.instance_ids() == ["req-1"], "a second orchestration was started"
    second.run_until_idle(advance_clock=False)
    assert RUNS == ["one", "one"], "the interrupted activity runs again"
    timer = [e for e in second.history(instance_id) if e["EventType"] == 10]
    assert len(timer) == 1
    fire_at = timer[0]["FireAt"]

    # "dies" again with the timer pending; the third host fires it at its time
    third = LocalDurableHost(app, clock, state_file=state)
    third.run_until_idle(advance_clock=False)
    assert third.get_status(instance_id).runtime_status is Status.Running
    clock.advance(10 * 60)
    third.run_until_idle(advance_clock=False)
    fired = [e for e in third.history(instance_id) if e["EventType"] == 11]
    assert [e["FireAt"] for e in fired] == [fire_at]

    # an event raised to one host is delivered by the next
    third.raise_event(instance_id, "approve", "yes")
    fourth = LocalDurableHost(app, clock, state_file=state)
    status = fourth.wait_for_completion(instance_id, timeout=20)
    assert status.runtime_status is Status.Completed
    assert status.output == ["done one", "yes"]
    assert _history_types(fourth, instance_id).count(5) == 1, "one TaskCompleted for the step"
    BLOCK["release"].set()
    first.stop()


def test_an_episode_cut_off_is_replayed(tmp_path: Path) -> None:
    """The state saved while an episode runs is the state before it."""
    BLOCK["release"].set()  # no host dies inside the activity here
    state = tmp_path / "durable.json"
    clock = ManualClock()
    host = LocalDurableHost(app, clock, state_file=state)
    host.start_new("steps", "req-2")
    saved_before = json.loads(state.read_text())
    inst = host._instances["req-2"]
    inst.before_episode = saved_before["instances"][0]
    inst.inbox.clear()  # as if the episode had taken the start event and were running
    host._dirty = True
    host._persist()
    resumed = LocalDurableHost(app, clock, state_file=state)
    resumed.run_until_idle(advance_clock=True)
    assert RUNS == ["one"]
    assert resumed.get_status("req-2").runtime_status is Status.Running


def test_an_entity_keeps_its_state_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "durable.json"
    clock = ManualClock()
    first = LocalDurableHost(app, clock, state_file=state)
    first.wait_for_completion(first.start_new("add_or_read", "add", input="add"), timeout=10)
    second = LocalDurableHost(app, clock, state_file=state)
    status = second.wait_for_completion(second.start_new("add_or_read", "read", "read"), 10)
    assert status.output == 3


def test_a_state_file_of_another_format_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "durable.json"
    state.write_text(json.dumps({"format": 99}))
    with pytest.raises(ValueError, match="delete it to start afresh"):
        LocalDurableHost(app, ManualClock(), state_file=state)
