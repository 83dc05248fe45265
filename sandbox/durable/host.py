"""A local stand-in for the Durable Functions extension: runs the REAL replay engine in-process.

Each episode builds the orchestration context JSON the extension sends, calls the orchestrator
handle registered by `azure.durable_functions`, and carries out the actions it returns the way
DurableTask does: activities (with host-side retries), durable timers, external events,
sub-orchestrations, continue-as-new and entity operations, all recorded as history events with
the event ids the library expects. The host delivers one new history event per episode, so the
ids it allocates for retry timers and re-attempts come in the same order as the library's replay
allocates them.

Activities and entity operations run sequentially in the thread that drives the host
(`run_until_idle`, `wait_for_completion`, or the background driver of `start()`); client calls
(`start_new`, `raise_event`, ...) are safe from any thread. With a `state_file` the host saves
its state after each unit of work and resumes from it when started again (sandbox.durable.state).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import traceback
import uuid
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.durable_functions.models.actions import ActionType
from azure.durable_functions.models.history import HistoryEventType as EventType
from azure.durable_functions.models.OrchestrationRuntimeStatus import (
    OrchestrationRuntimeStatus as RuntimeStatus,
)

from sandbox.clock import Clock, ManualClock, ScaledClock
from sandbox.durable.entities import (
    Outcome,
    entity_name,
    request_message,
    response_message,
    run_operation,
)
from sandbox.durable.history import Event, context_json, event, parse_fire_at, timestamp
from sandbox.durable.indexing import FunctionIndex, index_app
from sandbox.durable.state import (
    RETRY_ATTEMPT,
    RETRY_TIMER,
    TERMINAL,
    ActivityRun,
    Call,
    FollowUp,
    Instance,
    ParentLink,
    Retry,
    StateFile,
    Timer,
    dump_instance,
)
from sandbox.kit.service import Service

_OUT_OF_PROC_DATA = "$OutOfProcData$:"
_REAL_TIME_POLL = 0.05  # seconds between timer checks when the clock is not a ManualClock
_IDLE_WAIT = 0.5  # the background driver's longest sleep (a ManualClock moved by hand is not seen)


class NonDeterminismError(Exception):
    """A replay scheduled different actions than the history recorded."""


class InstanceExistsError(Exception):
    """start_new was asked for an id whose instance already finished, without restart=True."""


@dataclass(frozen=True)
class InstanceStatus:
    """What `get_status` reports, as the durable client's status query does."""

    instance_id: str
    name: str
    runtime_status: RuntimeStatus
    input: Any
    output: Any
    custom_status: Any
    error: str | None
    created_time: datetime
    last_updated_time: datetime
    history_length: int


@dataclass(frozen=True)
class DurableInvocation:
    """One orchestrator episode or activity run: `seconds` of real time inside the function
    (what Consumption billing counts), `started` on the host's clock, and for an episode the
    number of history events the replay was given."""

    kind: str
    """Either orchestrator or activity."""
    name: str
    instance_id: str
    started: float
    seconds: float
    history_events: int = 0


def _signature(action: dict[str, Any]) -> str:
    """What must match between a replay and the history: kind and target of each action."""
    kind = ActionType(action["actionType"])
    if kind in (ActionType.WHEN_ALL, ActionType.WHEN_ANY):
        children = ", ".join(_signature(a) for a in action["compoundActions"])
        return f"{kind.name}[{children}]"
    if "functionName" in action:
        return f"{kind.name}({action['functionName']!r})"
    if "operation" in action:
        return f"{kind.name}({action['instanceId']!r}, {action['operation']!r})"
    if kind is ActionType.WAIT_FOR_EXTERNAL_EVENT:
        return f"{kind.name}({action['externalEventName']!r})"
    return kind.name


def _atomic_actions(action: dict[str, Any]) -> list[dict[str, Any]]:
    if action["actionType"] in (ActionType.WHEN_ALL, ActionType.WHEN_ANY):
        return [leaf for child in action["compoundActions"] for leaf in _atomic_actions(child)]
    return [action]


def _quiet_codec_advisories() -> None:
    """Ignore the library's one-time serializer advisories, as the Functions worker does.

    They are DeprecationWarnings, which the worker never shows; under a warnings-as-errors
    test run they would otherwise abort the orchestrator or activity that triggered them.
    """
    warnings.filterwarnings(
        "ignore",
        message=r"azure\.functions (df_loads was called|Durable JSON codec)",
        category=DeprecationWarning,
    )


class LocalDurableHost(Service):
    """Runs an app's orchestrations in memory with the real `azure-functions-durable` engine."""

    def __init__(
        self, app: func.FunctionApp, clock: Clock | None = None, *, state_file: Path | None = None
    ) -> None:
        """`state_file`: keep the instances there and resume them on the next start, as the
        extension's storage provider does; None keeps them in memory only."""
        self.index: FunctionIndex = index_app(app)
        self.clock: Clock = clock if clock is not None else ScaledClock(1.0)
        self._instances: dict[str, Instance] = {}
        self._activities: deque[ActivityRun] = deque()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._changes = 0
        self._driving = threading.Lock()
        self._next_execution = 0
        self._entity_states: dict[str, str] = {}
        self._store = None if state_file is None else StateFile(state_file)
        self._dirty = False
        if self._store is not None:
            self._resume(self._store)
        self._driver: threading.Thread | None = None
        self._stopping = threading.Event()
        self._invocations: list[DurableInvocation] = []

    # ---- persistence ----------------------------------------------------------------------

    def _resume(self, store: StateFile) -> None:
        """Pick up where a previous host left off: instances, pending activities (run again),
        timers (fire at their time), raised events; the clock never goes back."""
        snapshot = store.load()
        if snapshot is None:
            return
        for name in {i.name for i in snapshot.instances.values() if not i.terminal}:
            if name not in self.index.orchestrators:
                raise ValueError(
                    f"{store.path}: saved instances run orchestrator {name!r}, which the app "
                    "no longer has; delete the file to start afresh"
                )
        self._instances = snapshot.instances
        self._activities = snapshot.activities
        self._next_execution = snapshot.next_execution
        self._entity_states = snapshot.entities
        behind = snapshot.clock - self.clock.now()
        if behind > 0 and isinstance(self.clock, ManualClock):
            self.clock.advance(behind)
        elif behind > 0:
            self.clock = _ShiftedClock(self.clock, behind)

    def _persist(self) -> None:
        """Save the state if it changed. An instance whose episode is running is saved as it
        was before the episode, so a restart replays that episode (as a lost work item is
        delivered again by the extension)."""
        if self._store is None:
            return
        with self._lock:
            if not self._dirty:
                return
            instances = [
                i.before_episode if i.before_episode is not None else dump_instance(i)
                for i in self._instances.values()
            ]
            activities = [run for run in self._activities if self._saved_before(run)]
            self._store.save(
                instances,
                activities,
                self._next_execution,
                self.clock.now(),
                self._entity_states,
            )
            self._dirty = False

    def _saved_before(self, run: ActivityRun) -> bool:
        """False for an activity scheduled by a running episode: its replay schedules it."""
        inst = self._instances.get(run.instance_id)  # None: a client's signal
        checkpoint = None if inst is None else inst.before_episode
        return checkpoint is None or (
            run.execution == checkpoint["execution"] and run.task_id < checkpoint["nextId"]
        )

    def _wait_for_episode(self, inst: Instance) -> None:
        """Client calls wait for a running episode of the instance, so what they change is
        saved with it rather than lost with a restart."""
        while inst.before_episode is not None:
            self._changed.wait(_REAL_TIME_POLL)

    # ---- background driving ---------------------------------------------------------------

    def start(self) -> None:
        """Drive the host from a daemon thread, for callers that only poll `get_status`."""
        if self._driver is not None:
            return
        self._stopping.clear()
        self._driver = threading.Thread(target=self._drive, name="local-durable-host", daemon=True)
        self._driver.start()

    def stop(self) -> None:
        """Stop the background driver after its current episode or activity; idempotent."""
        driver, self._driver = self._driver, None
        if driver is None:
            return
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        driver.join()

    def _drive(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                seen = self._changes
            # Busy past run_until_idle's timeout is load, not a runaway: keep driving rather
            # than let the thread die and every instance stall.
            with contextlib.suppress(TimeoutError):
                self.run_until_idle()
            self._wait_for_change(seen, _IDLE_WAIT)

    def _wait_for_change(self, seen: int, longest: float) -> None:
        """Sleep until a client call changes something, the next real-time timer, or `longest`."""
        wait = longest
        if self._earliest_timer() is not None and not isinstance(self.clock, ManualClock):
            wait = min(wait, _REAL_TIME_POLL)
        with self._changed:
            if self._changes == seen and not self._stopping.is_set():
                self._changed.wait(wait)

    # ---- durable client API -------------------------------------------------------------

    def start_new(
        self,
        orchestrator_name: str,
        instance_id: str | None = None,
        input: Any = None,
        *,
        restart: bool = False,
    ) -> str:
        """Start an orchestration; an id that is still running is returned as is, not restarted.

        An id whose instance already finished is refused unless `restart` is true.
        """
        started = self._start(orchestrator_name, instance_id, json.dumps(input), None, restart)
        self._persist()
        return started

    def get_status(self, instance_id: str) -> InstanceStatus:
        with self._lock:
            inst = self._instance(instance_id)
            return InstanceStatus(
                instance_id=inst.instance_id,
                name=inst.name,
                runtime_status=inst.status,
                input=None if inst.input_json is None else json.loads(inst.input_json),
                output=inst.output,
                custom_status=inst.custom_status,
                error=inst.error,
                created_time=datetime.fromtimestamp(inst.created, tz=UTC),
                last_updated_time=datetime.fromtimestamp(inst.last_updated, tz=UTC),
                history_length=len(inst.history),
            )

    def history(self, instance_id: str) -> list[Event]:
        """The current execution's history events, as sent to the orchestrator."""
        with self._lock:
            return [dict(e) for e in self._instance(instance_id).history]

    @property
    def invocations(self) -> list[DurableInvocation]:
        """Every orchestrator episode and activity run so far, oldest first."""
        with self._lock:
            return list(self._invocations)

    def instance_ids(self) -> list[str]:
        with self._lock:
            return list(self._instances)

    def raise_event(self, instance_id: str, event_name: str, event_data: Any = None) -> None:
        """Deliver an external event; kept for the orchestrator if it is not waiting for it yet."""
        data = json.dumps(event_data)
        with self._lock:
            inst = self._instance(instance_id)
            self._wait_for_episode(inst)
            if inst.terminal:
                raise ValueError(
                    f"instance {instance_id!r} is {inst.status.value}; event {event_name!r} "
                    "was not delivered"
                )
            if inst.waits[event_name] > 0:
                inst.waits[event_name] -= 1
                self._deliver(inst, self._event_raised(event_name, data))
            else:
                inst.buffered.setdefault(event_name, deque()).append(data)
            self._touch(inst)
            self._persist()

    def signal_entity(
        self, name: str, key: str, operation: str, input_json: str | None = None
    ) -> None:
        """A client's signal to an entity (`DurableOrchestrationClient.signal_entity`)."""
        scheduler_id = f"@{name.lower()}@{key}"
        call = Call(ActionType.SIGNAL_ENTITY, operation, input_json, scheduler_id)
        with self._lock:
            self._activities.append(ActivityRun("", -1, -1, call))
            self._dirty = True
            self._changes += 1
            self._changed.notify_all()
            self._persist()

    def read_entity_state(self, name: str, key: str) -> str | None:
        """The entity's state as JSON text, or None when it does not exist."""
        with self._lock:
            return self._entity_states.get(f"@{name.lower()}@{key}")

    def terminate(self, instance_id: str, reason: str) -> None:
        """Stop an instance at once; a finished instance is left as it is."""
        with self._lock:
            inst = self._instance(instance_id)
            self._wait_for_episode(inst)
            if inst.terminal:
                return
            inst.status = RuntimeStatus.Terminated
            inst.output = reason
            inst.history.append(
                event(EventType.EXECUTION_TERMINATED, self.clock.now(), Input=json.dumps(reason))
            )
            self._finish(inst)
            self._persist()

    # ---- driving ------------------------------------------------------------------------

    def run_until_idle(self, *, advance_clock: bool = True, timeout: float = 60.0) -> None:
        """Run episodes, activities and due timers until nothing more can happen now.

        With a ManualClock and `advance_clock`, a pending durable timer does not count as idle:
        the host moves the clock to the earliest timer and carries on, so simulated waits take
        no real time. Waiting for an external event does not hold the clock back. An instance
        that never stops scheduling work raises TimeoutError after `timeout` real seconds.
        """
        deadline = time.monotonic() + timeout
        with self._driving:
            while not self._stopping.is_set() and self._step(advance_clock):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the durable host was still busy after {timeout} s")

    def wait_for_completion(self, instance_id: str, timeout: float = 60.0) -> InstanceStatus:
        """Drive the host until the instance finishes; TimeoutError after `timeout` real seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                seen = self._changes
            with self._driving:
                while not self._finished(instance_id) and self._step(advance_clock=True):
                    if time.monotonic() > deadline:
                        break
            status = self.get_status(instance_id)
            if status.runtime_status in TERMINAL:
                return status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"instance {instance_id!r} still {status.runtime_status.value} "
                    f"after {timeout} s"
                )
            self._wait_for_change(seen, remaining)

    def _finished(self, instance_id: str) -> bool:
        with self._lock:
            return self._instance(instance_id).terminal

    def _step(self, advance_clock: bool) -> bool:
        """One unit of work: an activity, an episode, due timers, or (ManualClock) a clock jump."""
        if self._run_one_activity() or self._run_one_episode() or self._fire_due_timers():
            self._persist()
            return True
        if advance_clock and isinstance(self.clock, ManualClock):
            earliest = self._earliest_timer()
            if earliest is not None:
                self.clock.advance(max(0.0, earliest - self.clock.now()))
                return True
        return False

    # ---- internals: instances -----------------------------------------------------------

    def _instance(self, instance_id: str) -> Instance:
        try:
            return self._instances[instance_id]
        except KeyError:
            raise KeyError(f"no orchestration instance {instance_id!r}") from None

    def _touch(self, inst: Instance) -> None:
        inst.last_updated = self.clock.now()
        self._dirty = True
        self._changes += 1
        self._changed.notify_all()

    def _start(
        self,
        name: str,
        instance_id: str | None,
        input_json: str | None,
        parent: ParentLink | None,
        restart: bool,
    ) -> str:
        if name not in self.index.orchestrators:
            known = ", ".join(sorted(self.index.orchestrators)) or "none"
            raise ValueError(f"no orchestrator function {name!r} (the app has: {known})")
        instance_id = instance_id or uuid.uuid4().hex
        with self._lock:
            existing = self._instances.get(instance_id)
            if existing is not None and not existing.terminal:
                return instance_id
            if existing is not None and not restart:
                raise InstanceExistsError(
                    f"instance {instance_id!r} already ran and is {existing.status.value}; "
                    "pass restart=True to start it again"
                )
            now = self.clock.now()
            inst = Instance(instance_id, name, input_json, created=now, parent=parent)
            self._instances[instance_id] = inst
            self._begin_execution(inst, now)
            self._touch(inst)
        return instance_id

    def _begin_execution(self, inst: Instance, now: float) -> None:
        """Queue ExecutionStarted under a new execution id; work of older ones is dropped."""
        inst.execution = self._next_execution
        self._next_execution += 1
        parent = None
        if inst.parent is not None:
            parent = {"OrchestrationInstance": {"InstanceId": inst.parent.instance_id}}
        started = event(
            EventType.EXECUTION_STARTED,
            now,
            Name=inst.name,
            Version="",
            Input=inst.input_json,
            OrchestrationInstance={"InstanceId": inst.instance_id, "ExecutionId": uuid.uuid4().hex},
            ParentInstance=parent,
        )
        inst.inbox.append((started, None))

    def _deliver(self, inst: Instance, new_event: Event, follow_up: FollowUp | None = None) -> None:
        inst.inbox.append((new_event, follow_up))
        self._touch(inst)

    def _event_raised(self, name: str, data: str) -> Event:
        return event(EventType.EVENT_RAISED, self.clock.now(), Name=name, Input=data)

    # ---- internals: episodes ------------------------------------------------------------

    def _run_one_episode(self) -> bool:
        with self._lock:
            inst = next((i for i in self._instances.values() if i.inbox and not i.terminal), None)
            if inst is None:
                return False
            if self._store is not None:
                inst.before_episode = dump_instance(inst)
            now = self.clock.now()
            for past in inst.history:
                past["IsPlayed"] = True
            inst.history.append(event(EventType.ORCHESTRATOR_STARTED, now))
            new_event, follow_up = inst.inbox.popleft()
            inst.history.append(new_event)
            if follow_up is not None:
                self._follow(inst, follow_up, now)
            inst.status = RuntimeStatus.Running
            parent_id = inst.parent.instance_id if inst.parent else None
            payload = context_json(inst.history, inst.instance_id, inst.input_json, parent_id)
            handle = self.index.orchestrators[inst.name]
            execution = inst.execution
            replayed = len(inst.history)
        began = time.perf_counter()
        state = self._invoke_orchestrator(handle, payload)
        seconds = time.perf_counter() - began
        with self._lock:
            inst.before_episode = None
            self._invocations.append(
                DurableInvocation(
                    "orchestrator", inst.name, inst.instance_id, now, seconds, replayed
                )
            )
            if inst.terminal or inst.execution != execution:
                return True  # terminated while the episode ran
            try:
                self._apply(inst, state, now)
            except NonDeterminismError as exc:
                self._fail(inst, f"{type(exc).__name__}: {exc}")
            except ValueError as exc:
                self._fail(inst, str(exc))
            if not inst.terminal and not inst.continuing:
                inst.history.append(event(EventType.ORCHESTRATOR_COMPLETED, self.clock.now()))
            if inst.continuing:
                self._continue_as_new(inst, now)
            self._touch(inst)
        return True

    @staticmethod
    def _invoke_orchestrator(handle: Callable[[str], str], payload: str) -> dict[str, Any]:
        _quiet_codec_advisories()
        try:
            return dict(json.loads(handle(payload)))
        except Exception as exc:
            message = str(exc)
            if _OUT_OF_PROC_DATA in message:
                return dict(json.loads(message.split(_OUT_OF_PROC_DATA, 1)[1]))
            return {"isDone": False, "actions": [], "error": f"{type(exc).__name__}: {exc}"}

    def _apply(self, inst: Instance, state: dict[str, Any], now: float) -> None:
        if "customStatus" in state:
            inst.custom_status = state["customStatus"]
        if state.get("error"):
            self._fail(inst, str(state["error"]))
            return
        actions = [a for group in state.get("actions", []) for a in group]
        for position, (action, (recorded, ids)) in enumerate(
            zip(actions, inst.recorded, strict=False)
        ):
            replayed = _signature(action)
            if replayed != recorded:
                raise NonDeterminismError(
                    f"orchestrator {inst.name!r} replayed action #{position} as {replayed} "
                    f"but the history recorded {recorded}"
                )
            self._cancel_timers(inst, action, ids)
        for action in actions[len(inst.recorded) :]:
            ids = self._schedule(inst, action, now)
            inst.recorded.append((_signature(action), ids))
        if not state.get("isDone"):
            return
        if inst.continue_input is not None:
            inst.continuing = True
            return
        if inst.timers:
            # "All durable timers created using this method must either expire or be cancelled
            # ... Otherwise the underlying framework will keep the instance in the Running state
            # even after the orchestrator function has completed" (IDurableOrchestrationContext.
            # CreateTimer): the timer's firing replays the orchestrator, which completes then.
            return
        inst.status = RuntimeStatus.Completed
        inst.output = state.get("output")
        inst.history.append(
            event(
                EventType.EXECUTION_COMPLETED,
                now,
                OrchestrationStatus="Completed",
                Result=json.dumps(inst.output),
            )
        )
        self._finish(inst)

    def _cancel_timers(self, inst: Instance, action: dict[str, Any], ids: list[int | None]) -> None:
        for leaf, task_id in zip(_atomic_actions(action), ids, strict=True):
            if leaf.get("isCanceled") and task_id is not None:
                inst.timers.pop(task_id, None)

    def _schedule(self, inst: Instance, action: dict[str, Any], now: float) -> list[int | None]:
        """Carry out one new action; returns the event ids given to its atomic actions."""
        kind = action["actionType"]
        if kind in (ActionType.WHEN_ALL, ActionType.WHEN_ANY):
            return [
                i for child in action["compoundActions"] for i in self._schedule(inst, child, now)
            ]
        if kind == ActionType.WAIT_FOR_EXTERNAL_EVENT:
            self._await_event(inst, action["externalEventName"])
            return [None]
        if kind == ActionType.CONTINUE_AS_NEW:
            inst.continue_input = action.get("input")
            return [None]
        if kind in (ActionType.CALL_ENTITY, ActionType.SIGNAL_ENTITY):
            return [self._send_to_entity(inst, action, now)]
        if kind == ActionType.CREATE_TIMER:
            task_id = inst.allocate_id()
            fire_at_text = action["fireAt"]
            inst.history.append(event(EventType.TIMER_CREATED, now, task_id, FireAt=fire_at_text))
            if not action.get("isCanceled"):
                inst.timers[task_id] = Timer(parse_fire_at(fire_at_text), fire_at_text)
            return [task_id]
        retry = Retry.from_json(action["retryOptions"]) if "retryOptions" in action else None
        if kind in (ActionType.CALL_ACTIVITY, ActionType.CALL_ACTIVITY_WITH_RETRY):
            call = Call(ActionType.CALL_ACTIVITY, action["functionName"], action.get("input"))
        elif kind in (
            ActionType.CALL_SUB_ORCHESTRATOR,
            ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY,
        ):
            call = Call(
                ActionType.CALL_SUB_ORCHESTRATOR,
                action["functionName"],
                action.get("input"),
                action.get("instanceId"),
            )
        else:
            raise ValueError(
                f"the local durable host does not support {ActionType(kind).name} actions "
                "(scheduled entity signals and durable HTTP calls run only on Azure's Durable "
                "extension)"
            )
        call.retry = retry
        return [self._call(inst, call, now)]

    def _send_to_entity(self, inst: Instance, action: dict[str, Any], now: float) -> int:
        """An EventSent to the entity, and its operation queued (see sandbox.durable.entities)."""
        task_id = inst.allocate_id()
        signal = action["actionType"] == ActionType.SIGNAL_ENTITY
        request_id = str(uuid.uuid4())
        operation, input_json = action["operation"], action.get("input")
        message = request_message(request_id, operation, input_json, signal)
        inst.history.append(
            event(
                EventType.EVENT_SENT,
                now,
                task_id,
                InstanceId=action["instanceId"],
                Name="op",
                Input=message,
            )
        )
        call = Call(
            action["actionType"], operation, input_json, action["instanceId"], None, request_id
        )
        self._activities.append(ActivityRun(inst.instance_id, inst.execution, task_id, call))
        return task_id

    def _run_entity_operation(self, run: ActivityRun, inst: Instance | None) -> None:
        """One operation on an entity's saved state; a call gets its answer as an EventRaised."""
        call = run.call
        scheduler_id = call.instance_id or ""
        name, _ = entity_name(scheduler_id)
        handle = next((h for n, h in self.index.entities.items() if n.lower() == name), None)
        if handle is None:
            outcome = Outcome(
                self._entity_states.get(scheduler_id),
                True,
                json.dumps(f"The function '{name}' doesn't exist or is not an entity function."),
            )
        else:
            _quiet_codec_advisories()
            outcome = run_operation(
                handle, scheduler_id, self._entity_states.get(scheduler_id), call.name,
                call.input_json,
            )  # fmt: skip
        with self._lock:
            self._activities.popleft()
            if outcome.state is None:
                self._entity_states.pop(scheduler_id, None)
            else:
                self._entity_states[scheduler_id] = outcome.state
            self._dirty = True
            if call.kind == ActionType.SIGNAL_ENTITY or call.request_id is None or inst is None:
                return
            if inst.terminal or inst.execution != run.execution:
                return
            answer = event(
                EventType.EVENT_RAISED,
                self.clock.now(),
                Name=call.request_id,
                Input=response_message(outcome),
            )
            self._deliver(inst, answer)

    def _call(self, inst: Instance, call: Call, now: float) -> int:
        task_id = inst.allocate_id()
        if call.kind == ActionType.CALL_ACTIVITY:
            inst.history.append(
                event(EventType.TASK_SCHEDULED, now, task_id, Name=call.name, Input=call.input_json)
            )
            self._activities.append(ActivityRun(inst.instance_id, inst.execution, task_id, call))
            return task_id
        child_id = call.instance_id or f"{inst.instance_id}:{task_id}"
        inst.history.append(
            event(
                EventType.SUB_ORCHESTRATION_INSTANCE_CREATED,
                now,
                task_id,
                Name=call.name,
                InstanceId=child_id,
                Input=call.input_json,
            )
        )
        link = ParentLink(inst.instance_id, inst.execution, task_id, call)
        try:
            self._start(call.name, child_id, call.input_json, link, restart=True)
        except ValueError as exc:
            self._deliver(inst, *self._failure(inst, task_id, call, str(exc), str(exc)))
        return task_id

    def _failure(
        self, inst: Instance, task_id: int, call: Call, reason: str, details: str
    ) -> tuple[Event, FollowUp | None]:
        kind = (
            EventType.TASK_FAILED
            if call.kind == ActionType.CALL_ACTIVITY
            else EventType.SUB_ORCHESTRATION_INSTANCE_FAILED
        )
        failed = event(
            kind, self.clock.now(), TaskScheduledId=task_id, Reason=reason, Details=details
        )
        return failed, (FollowUp(RETRY_TIMER, call) if call.retry is not None else None)

    def _follow(self, inst: Instance, follow_up: FollowUp, now: float) -> None:
        """A retry's next step, as DurableTask's retry interceptor takes it, when the event
        that triggers it enters the history."""
        call, retry = follow_up.call, follow_up.call.retry
        if retry is None:
            return
        if follow_up.kind == RETRY_TIMER:  # the failure: a backoff timer
            task_id = inst.allocate_id()
            fire_at = now + retry.delay_seconds()
            text = timestamp(fire_at)
            inst.history.append(event(EventType.TIMER_CREATED, now, task_id, FireAt=text))
            inst.timers[task_id] = Timer(fire_at, text, retry_of=call)
        elif retry.attempt < retry.max_attempts:  # the timer fired: the next attempt
            # DurableTask creates a timer after the last failed attempt too; the library
            # fails the task only when that timer fires.
            retry.attempt += 1
            self._call(inst, call, now)

    def _await_event(self, inst: Instance, name: str) -> None:
        waiting = inst.buffered.get(name)
        if waiting:
            self._deliver(inst, self._event_raised(name, waiting.popleft()))
        else:
            inst.waits[name] += 1

    def _continue_as_new(self, inst: Instance, now: float) -> None:
        """A new execution with the new input and an empty history.

        Unread external events are dropped: the extension's out-of-process shim calls
        `ContinueAsNew(action.Input)` (OutOfProcOrchestrationShim.InvokeAPIFromAction), whose
        `preserveUnprocessedEvents` defaults to false.
        """
        inst.status = RuntimeStatus.ContinuedAsNew
        inst.input_json = inst.continue_input
        inst.history = []
        inst.inbox.clear()
        inst.recorded = []
        inst.next_id = 0
        inst.timers.clear()
        inst.waits.clear()
        inst.buffered.clear()
        inst.continue_input = None
        inst.continuing = False
        self._begin_execution(inst, now)

    def _fail(self, inst: Instance, error: str) -> None:
        inst.status = RuntimeStatus.Failed
        inst.error = error
        inst.output = f"Orchestrator function '{inst.name}' failed: {error}"
        inst.history.append(
            event(
                EventType.EXECUTION_COMPLETED,
                self.clock.now(),
                OrchestrationStatus="Failed",
                Result=json.dumps(inst.output),
            )
        )
        self._finish(inst)

    def _finish(self, inst: Instance) -> None:
        """A terminal instance drops its pending work and tells its parent, if any."""
        inst.timers.clear()
        inst.inbox.clear()
        self._touch(inst)
        link = inst.parent
        if link is None:
            return
        parent = self._instances.get(link.instance_id)
        if parent is None or parent.terminal or parent.execution != link.execution:
            return
        if inst.status is RuntimeStatus.Completed:
            done = event(
                EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
                self.clock.now(),
                TaskScheduledId=link.task_id,
                Result=json.dumps(inst.output),
            )
            self._deliver(parent, done)
            return
        reason = f"Sub-orchestration '{inst.name}' ({inst.instance_id}) {inst.status.value}"
        details = str(inst.error if inst.error is not None else inst.output)
        self._deliver(parent, *self._failure(parent, link.task_id, link.call, reason, details))

    # ---- internals: activities and timers -----------------------------------------------

    def _run_one_activity(self) -> bool:
        with self._lock:
            if not self._activities:
                return False
            # Left in the queue until its result is in: a restart runs it again.
            run = self._activities[0]
            if run.call.kind in (ActionType.CALL_ENTITY, ActionType.SIGNAL_ENTITY):
                # a message already sent: it reaches the entity whatever became of the sender
                sender = self._instances.get(run.instance_id)
            else:
                inst = self._instances[run.instance_id]
                if inst.terminal or inst.execution != run.execution:
                    self._activities.popleft()
                    return True
                activity = self.index.activities.get(run.call.name)
        if run.call.kind in (ActionType.CALL_ENTITY, ActionType.SIGNAL_ENTITY):
            self._run_entity_operation(run, sender)
            return True
        result: str | None = None
        reason = details = ""
        if activity is None:
            reason = f"The function '{run.call.name}' doesn't exist or is not an activity function."
            details = reason
        else:
            _quiet_codec_advisories()
            started = self.clock.now()
            began = time.perf_counter()
            try:
                result = activity.invoke(run.call.input_json)
            except Exception as exc:
                reason = f"Activity function '{run.call.name}' failed: {type(exc).__name__}: {exc}"
                details = "".join(traceback.format_exception(exc))
            seconds = time.perf_counter() - began
            with self._lock:
                self._invocations.append(
                    DurableInvocation("activity", run.call.name, run.instance_id, started, seconds)
                )
        with self._lock:
            self._activities.popleft()
            self._dirty = True
            if inst.terminal or inst.execution != run.execution:
                return True
            if result is not None:
                done = event(
                    EventType.TASK_COMPLETED,
                    self.clock.now(),
                    TaskScheduledId=run.task_id,
                    Result=result,
                )
                self._deliver(inst, done)
            else:
                self._deliver(inst, *self._failure(inst, run.task_id, run.call, reason, details))
        return True

    def _fire_due_timers(self) -> bool:
        fired = False
        with self._lock:
            now = self.clock.now()
            for inst in self._instances.values():
                if inst.terminal:
                    continue
                due = sorted(
                    (t.fire_at, task_id) for task_id, t in inst.timers.items() if t.fire_at <= now
                )
                for _, task_id in due:
                    timer = inst.timers.pop(task_id)
                    fired_event = event(
                        EventType.TIMER_FIRED, now, TimerId=task_id, FireAt=timer.fire_at_text
                    )
                    retried = timer.retry_of
                    follow_up = (
                        FollowUp(RETRY_ATTEMPT, retried)
                        if retried is not None and retried.retry is not None
                        else None
                    )
                    self._deliver(inst, fired_event, follow_up)
                    fired = True
        return fired

    def _earliest_timer(self) -> float | None:
        with self._lock:
            fire_times = [
                t.fire_at
                for i in self._instances.values()
                if not i.terminal
                for t in i.timers.values()
            ]
        return min(fire_times, default=None)


class _ShiftedClock:
    """A resumed host's clock: the given one moved forward to where the saved state left off,
    so timers and `current_utc_datetime` never go back across a restart."""

    def __init__(self, base: Clock, offset: float) -> None:
        self._base = base
        self._offset = offset

    def now(self) -> float:
        return self._base.now() + self._offset
