"""`gpuprov run FILE [--sandbox]`: the whole durable sequence in this process.

The real orchestrator and activities run on the local Durable host; progress is read from the
orchestration's own history (the outcomes it hands to `publish_events`), so what is shown is
exactly what is published. With --sandbox the sandbox is started if needed and the app is pointed
at it; without, the same run targets Azure with DefaultAzureCredential.

Ctrl-C or SIGTERM cancels the run: it stops its current step, cleans up what it created and
ends `failed`, and the summary says what was deleted and what is left until when. A second one
leaves at once, saying what may be left and the command that removes it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from gpuprov.progress import Progress
from sandbox.clock import Clock
from shared.request import ProvisionRequest
from shared.settings import Settings, SettingsError, current_settings
from shared.validation import parse_request

_TASK_SCHEDULED = 4
_TERMINAL = {"Completed", "Failed", "Terminated"}
EXIT_LEFT_AT_ONCE = 130
"""A second Ctrl-C: the shell's code for a run ended by SIGINT."""


_CANCELLING = (
    "\ncancelling: the run stops its current step and deletes what it created "
    "(Ctrl-C again leaves at once)"
)


class _LeaveNow(Exception):
    """A second Ctrl-C or SIGTERM: stop waiting for the cleanup."""


class _Interrupts:
    """Counts SIGINT and SIGTERM while a run is under way; the second one leaves at once."""

    def __init__(self) -> None:
        self.count = 0
        self._previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in self._previous:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count > 1:
            raise _LeaveNow

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def run(
    raw: bytes, *, sandbox: bool, json_lines: bool, state_dir: Path | None, time_scale: float
) -> int:
    """Run one request to its end; 0 completed, 1 failed. Invalid input raises InvalidRequest,
    a missing setting SettingsError, both before anything starts."""
    from sandbox.durable import LocalDurableHost

    clock, remove_all = _point_at_sandbox(state_dir, time_scale) if sandbox else (None, None)
    current_settings.cache_clear()
    settings = current_settings()
    request = parse_request(raw, settings)
    _check_settings(settings)

    import function_app
    from functions.orchestrator import CANCEL_EVENT, ORCHESTRATOR
    from shared.durations import learned_options
    from shared.events import Outcome, build_event, close_event_publisher, structured
    from shared.sequence import RunInput

    host = LocalDurableHost(function_app.app, clock=clock)
    progress = Progress(sys.stdout, json_lines=json_lines)
    outcomes: list[Outcome] = []
    interrupts = _Interrupts()
    try:
        with host:
            instance = host.start_new(
                ORCHESTRATOR,
                instance_id=request.request_id,
                input=RunInput.of(request, learned_options(os.environ, request)).model_dump(
                    mode="json", by_alias=True
                ),
            )
            cancelled = False
            while True:
                if interrupts.count and not cancelled:
                    cancelled = True
                    host.raise_event(instance, CANCEL_EVENT)
                    print(_CANCELLING, file=sys.stderr, flush=True)
                status = host.get_status(instance)
                outcomes = [Outcome.model_validate(o) for o in _outcomes(host.history(instance))]
                for outcome in outcomes:
                    progress.show(structured(build_event(outcome, settings.owner)))
                if status.runtime_status.value in _TERMINAL:
                    break
                time.sleep(0.1)
    except _LeaveNow:
        _leave_at_once(request, outcomes, remove_all)
    finally:
        interrupts.restore()
    close_event_publisher()
    output: dict[str, Any] = status.output if isinstance(status.output, dict) else {}
    progress.summary(output, str(output.get("status")), status.error)
    return 0 if output.get("status") == "completed" else 1


def _check_settings(settings: Settings) -> None:
    """What every run needs, named before the first step rather than failing in it."""
    if not settings.service_bus_connection and not settings.service_bus_namespace:
        raise SettingsError(
            "no Service Bus to publish the run's events to: set ServiceBusConnection (a "
            "connection string) or ServiceBusConnection__fullyQualifiedNamespace (with az login) "
            "in the environment (docs/settings.md), or run against the sandbox with --sandbox"
        )


def _point_at_sandbox(state_dir: Path | None, time_scale: float) -> tuple[Clock, str]:
    """Start the sandbox unless it runs, say so, point the app at it; returns its clock and
    the command that stops it (and removes everything in it)."""
    from gpuprov.local import sandbox_clock, sandbox_values
    from sandbox import control

    where = state_dir or control.DEFAULT_STATE_DIR
    _, started = control.up(where, time_scale)
    down = "gpuprov sandbox down" + ("" if state_dir is None else f" --state-dir {where}")
    print(f"sandbox: {'started' if started else 'already running, reused'}; it stays up for "
          f"the next run (`{down}` stops it)", file=sys.stderr, flush=True)  # fmt: skip
    sandbox_values(where)
    return sandbox_clock(where, time_scale), down


def _outcomes(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        outcome
        for event in history
        if event.get("EventType") == _TASK_SCHEDULED and event.get("Name") == "publish_events"
        for outcome in json.loads(event["Input"])["outcomes"]
    ]


def may_be_left(request: ProvisionRequest, outcomes: list[Any]) -> list[str]:
    """What the run may have created and not deleted, judged from its published outcomes."""
    for outcome in outcomes:
        if outcome.step in ("completed", "failed"):
            return [str(item) for item in outcome.details.get("left") or []]
    seen = {(o.step, o.status) for o in outcomes}
    if ("cleanup", "succeeded") in seen:
        return []
    if request.creates_cluster and ("create-cluster", "started") in seen:
        return [f"cluster {request.target.cluster_name}"]  # its pools go with it
    if ("create-node-pool", "started") in seen:
        return [f"node pool {request.node_pool.name}"]
    return []


def delete_command(request: ProvisionRequest, what: str) -> str:
    """The `az` command that deletes a resource the run left."""
    where = f"--subscription {request.subscription_id} --resource-group {request.resource_group}"
    cluster = request.target.cluster_name
    if what.startswith("cluster "):
        return f"az aks delete {where} --name {cluster} --yes --no-wait"
    pool = what.removeprefix("node pool ")
    return f"az aks nodepool delete {where} --cluster-name {cluster} --name {pool} --no-wait"


def _leave_at_once(request: ProvisionRequest, outcomes: list[Any], remove_all: str | None) -> None:
    """Print what may be left and how to remove it, then exit without waiting for anything."""
    err = sys.stderr
    left = may_be_left(request, outcomes)
    if not left:
        print("\nleft at once; the run had left nothing running", file=err, flush=True)
        os._exit(EXIT_LEFT_AT_ONCE)
    began: datetime = outcomes[0].time
    expires = (began + timedelta(hours=request.cleanup.ttl_hours)).isoformat()
    print("\nleft at once, before the cleanup finished. What may be left:", file=err)
    for what in left:
        print(f"  {what}, tagged gpuprov-expires-at {expires} (the reaper deletes it then)",
              file=err)  # fmt: skip
        if remove_all is None:
            print(f"    remove it now: {delete_command(request, what)}", file=err)
    if remove_all is not None:
        print(f"  remove it now: {remove_all} (stops the sandbox and everything in it)",
              file=err)  # fmt: skip
    err.flush()
    sys.stdout.flush()
    os._exit(EXIT_LEFT_AT_ONCE)
