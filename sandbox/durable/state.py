"""What the local Durable host knows about its instances, and how it survives a restart.

The extension's Azure Storage provider keeps every instance's history, its pending messages
(activity calls, timer messages, raised events) and its status in the task hub's tables and
queues, so a host that dies resumes from there: pending messages are delivered again (an activity
runs at least once), timers keep their fire time, nothing starts twice. `StateFile` plays that
part for the local host: one JSON document written atomically (write, fsync, rename) at each
point where the host's state is consistent, read back when the host starts.
"""

from __future__ import annotations

import fcntl
import json
import os
import weakref
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.durable_functions.models.actions import ActionType
from azure.durable_functions.models.OrchestrationRuntimeStatus import (
    OrchestrationRuntimeStatus as RuntimeStatus,
)

from sandbox.durable.history import Event

TERMINAL = frozenset({RuntimeStatus.Completed, RuntimeStatus.Failed, RuntimeStatus.Terminated})
FORMAT = 1

RETRY_TIMER = "retry-timer"
"""Follow-up of a failed call with retry options: create the backoff timer."""
RETRY_ATTEMPT = "retry-attempt"
"""Follow-up of a fired retry timer: call again, unless that was the last attempt."""


@dataclass
class Retry:
    """Host-side retry state of one -WithRetry call, as DurableTask's retry interceptor keeps it."""

    first_interval_ms: float
    max_attempts: int
    backoff_coefficient: float
    max_interval_ms: float
    attempt: int = 1

    @classmethod
    def from_json(cls, options: dict[str, Any]) -> Retry:
        return cls(
            first_interval_ms=float(options["firstRetryIntervalInMilliseconds"]),
            max_attempts=int(options["maxNumberOfAttempts"]),
            backoff_coefficient=float(options.get("backoffCoefficient", 1.0)),
            max_interval_ms=float(options.get("maxRetryIntervalInMilliseconds", 6 * 86_400_000)),
        )

    def delay_seconds(self) -> float:
        """Backoff before the next attempt: first × coefficient^(attempt-1), capped."""
        delay = self.first_interval_ms * self.backoff_coefficient ** (self.attempt - 1)
        return min(delay, self.max_interval_ms) / 1000.0


@dataclass
class Call:
    """An activity or sub-orchestration call, kept so a retry can repeat it."""

    kind: int  # ActionType.CALL_ACTIVITY, CALL_SUB_ORCHESTRATOR, CALL_ENTITY or SIGNAL_ENTITY
    name: str
    input_json: str | None
    instance_id: str | None = None
    retry: Retry | None = None
    request_id: str | None = None
    """An entity operation's request id: a call's answer is the EventRaised of that name."""


@dataclass
class Timer:
    fire_at: float
    fire_at_text: str
    retry_of: Call | None = None


@dataclass(frozen=True)
class ParentLink:
    instance_id: str
    execution: int
    task_id: int
    call: Call


@dataclass(frozen=True)
class ActivityRun:
    instance_id: str
    execution: int
    task_id: int
    call: Call


@dataclass(frozen=True)
class FollowUp:
    """Work the host does when an event enters the history (a retry's timer or next attempt)."""

    kind: str  # RETRY_TIMER | RETRY_ATTEMPT
    call: Call


@dataclass
class Instance:
    instance_id: str
    name: str
    input_json: str | None
    created: float
    parent: ParentLink | None = None
    status: RuntimeStatus = RuntimeStatus.Pending
    last_updated: float = 0.0
    custom_status: Any = None
    output: Any = None
    error: str | None = None
    execution: int = 0
    history: list[Event] = field(default_factory=list)
    inbox: deque[tuple[Event, FollowUp | None]] = field(default_factory=deque)
    recorded: list[tuple[str, list[int | None]]] = field(default_factory=list)
    """Per action of this execution: its signature and the ids of its atomic actions."""
    next_id: int = 0
    timers: dict[int, Timer] = field(default_factory=dict)
    waits: Counter[str] = field(default_factory=Counter)
    buffered: dict[str, deque[str]] = field(default_factory=dict)
    continue_input: str | None = None
    continuing: bool = False
    before_episode: dict[str, Any] | None = None
    """While an episode runs: the instance as it was before, which is what a restart resumes."""

    def allocate_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


# ---- JSON form ----------------------------------------------------------------------------


def dump_instance(inst: Instance) -> dict[str, Any]:
    return {
        "instanceId": inst.instance_id,
        "name": inst.name,
        "input": inst.input_json,
        "created": inst.created,
        "parent": None if inst.parent is None else _dump_link(inst.parent),
        "status": inst.status.value,
        "lastUpdated": inst.last_updated,
        "customStatus": inst.custom_status,
        "output": inst.output,
        "error": inst.error,
        "execution": inst.execution,
        "history": [dict(e) for e in inst.history],
        "inbox": [[e, None if f is None else _dump_follow_up(f)] for e, f in inst.inbox],
        "recorded": [[signature, list(ids)] for signature, ids in inst.recorded],
        "nextId": inst.next_id,
        "timers": [[task_id, _dump_timer(t)] for task_id, t in inst.timers.items()],
        "waits": dict(inst.waits),
        "buffered": {name: list(data) for name, data in inst.buffered.items()},
        "continueInput": inst.continue_input,
        "continuing": inst.continuing,
    }


def load_instance(raw: dict[str, Any]) -> Instance:
    parent = raw["parent"]
    return Instance(
        instance_id=raw["instanceId"],
        name=raw["name"],
        input_json=raw["input"],
        created=raw["created"],
        parent=None if parent is None else _load_link(parent),
        status=RuntimeStatus(raw["status"]),
        last_updated=raw["lastUpdated"],
        custom_status=raw["customStatus"],
        output=raw["output"],
        error=raw["error"],
        execution=raw["execution"],
        history=list(raw["history"]),
        inbox=deque((e, None if f is None else _load_follow_up(f)) for e, f in raw["inbox"]),
        recorded=[(signature, list(ids)) for signature, ids in raw["recorded"]],
        next_id=raw["nextId"],
        timers={int(task_id): _load_timer(t) for task_id, t in raw["timers"]},
        waits=Counter(raw["waits"]),
        buffered={name: deque(data) for name, data in raw["buffered"].items()},
        continue_input=raw["continueInput"],
        continuing=raw["continuing"],
    )


def dump_run(run: ActivityRun) -> dict[str, Any]:
    return {
        "instanceId": run.instance_id,
        "execution": run.execution,
        "taskId": run.task_id,
        "call": _dump_call(run.call),
    }


def load_run(raw: dict[str, Any]) -> ActivityRun:
    return ActivityRun(raw["instanceId"], raw["execution"], raw["taskId"], _load_call(raw["call"]))


def _dump_call(call: Call) -> dict[str, Any]:
    retry = call.retry
    return {
        "kind": int(call.kind),
        "name": call.name,
        "input": call.input_json,
        "instanceId": call.instance_id,
        "retry": None if retry is None else retry.__dict__.copy(),
        "requestId": call.request_id,
    }


def _load_call(raw: dict[str, Any]) -> Call:
    retry = raw["retry"]
    return Call(
        ActionType(raw["kind"]),
        raw["name"],
        raw["input"],
        raw["instanceId"],
        None if retry is None else Retry(**retry),
        raw.get("requestId"),
    )


def _dump_link(link: ParentLink) -> dict[str, Any]:
    return {**dump_run(ActivityRun(link.instance_id, link.execution, link.task_id, link.call))}


def _load_link(raw: dict[str, Any]) -> ParentLink:
    run = load_run(raw)
    return ParentLink(run.instance_id, run.execution, run.task_id, run.call)


def _dump_timer(timer: Timer) -> dict[str, Any]:
    retry_of = timer.retry_of
    return {
        "fireAt": timer.fire_at,
        "fireAtText": timer.fire_at_text,
        "retryOf": None if retry_of is None else _dump_call(retry_of),
    }


def _load_timer(raw: dict[str, Any]) -> Timer:
    retry_of = raw["retryOf"]
    return Timer(
        raw["fireAt"], raw["fireAtText"], None if retry_of is None else _load_call(retry_of)
    )


def _dump_follow_up(follow_up: FollowUp) -> dict[str, Any]:
    return {"kind": follow_up.kind, "call": _dump_call(follow_up.call)}


def _load_follow_up(raw: dict[str, Any]) -> FollowUp:
    return FollowUp(raw["kind"], _load_call(raw["call"]))


# ---- the file -----------------------------------------------------------------------------


@dataclass
class Snapshot:
    instances: dict[str, Instance]
    activities: deque[ActivityRun]
    next_execution: int
    clock: float
    """The host clock when saved: a restarted host's clock does not go back before it."""
    entities: dict[str, str]
    """Each entity's state (JSON text) by its scheduler id (`@counter@k`)."""


class StateFile:
    """One task hub's state in one JSON file; `save` replaces it atomically.

    One process at a time: a second process asking for the same file is refused (a POSIX record
    lock on `<file>.lock`, which the kernel drops when the holder dies, even by SIGKILL), where
    two hosts would otherwise each run, and overwrite, the other's instances.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = path.with_name(path.name + ".lock")
        self._lock_file = lock_path.open("a+", encoding="utf-8")
        try:
            fcntl.lockf(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.seek(0)
            holder = self._lock_file.read().strip() or "another process"
            self._lock_file.close()
            raise ValueError(
                f"{path} is in use by {holder}: stop that local host first (one host per "
                "state file)"
            ) from None
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(f"process {os.getpid()}")
        self._lock_file.flush()
        # held for the life of this object (the process, for `gpuprov host`)
        weakref.finalize(self, self._lock_file.close)

    def load(self) -> Snapshot | None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise ValueError(
                f"{self.path}: the durable host's saved state cannot be read ({error}); "
                "delete the file to start with no instances"
            ) from error
        if raw.get("format") != FORMAT:
            raise ValueError(
                f"{self.path}: saved by another version of the local durable host (format "
                f"{raw.get('format')!r}, expected {FORMAT}); delete it to start afresh"
            )
        return Snapshot(
            instances={i["instanceId"]: load_instance(i) for i in raw["instances"]},
            activities=deque(load_run(r) for r in raw["activities"]),
            next_execution=raw["nextExecution"],
            clock=raw["clock"],
            entities=dict(raw.get("entities", {})),
        )

    def save(
        self,
        instances: list[dict[str, Any]],
        activities: list[ActivityRun],
        next_execution: int,
        clock: float,
        entities: dict[str, str],
    ) -> None:
        document = {
            "format": FORMAT,
            "clock": clock,
            "nextExecution": next_execution,
            "instances": instances,
            "activities": [dump_run(run) for run in activities],
            "entities": entities,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".tmp")
        with partial.open("w", encoding="utf-8") as out:
            json.dump(document, out)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(self.path)
