"""`gpuprov run FILE [--sandbox]`: the whole durable sequence in this process.

The real orchestrator and activities run on the local Durable host; progress is read from the
orchestration's own history (the outcomes it hands to `publish_event`), so what is shown is
exactly what is published. With --sandbox the sandbox is started if needed and the app is pointed
at it; without, the same run targets Azure with DefaultAzureCredential.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from shared.settings import current_settings
from shared.validation import parse_request

_TASK_SCHEDULED = 4
_TERMINAL = {"Completed", "Failed", "Terminated"}
_MARKS = {"started": "…", "succeeded": "✓", "skipped": "–", "failed": "✗",
          "completed": "✓", }  # fmt: skip


def run(
    raw: bytes, *, sandbox: bool, json_lines: bool, state_dir: Path | None, time_scale: float
) -> int:
    """Run one request to its end; 0 completed, 1 failed. Invalid input raises InvalidRequest."""
    from sandbox.clock import ScaledClock
    from sandbox.durable import LocalDurableHost

    if sandbox:
        _point_at_sandbox(state_dir, time_scale)
    current_settings.cache_clear()
    request = parse_request(raw, current_settings())

    import function_app
    from functions.orchestrator import ORCHESTRATOR
    from shared.events import close_event_publisher
    from shared.sequence import RunInput

    host = LocalDurableHost(function_app.app, clock=ScaledClock(time_scale) if sandbox else None)
    out = sys.stdout
    shown: set[str] = set()
    began = time.monotonic()
    with host:
        instance = host.start_new(
            ORCHESTRATOR,
            instance_id=request.request_id,
            input=RunInput(request=request).model_dump(mode="json", by_alias=True),
        )
        while True:
            status = host.get_status(instance)
            for outcome in _outcomes(host.history(instance)):
                _show(outcome, shown, json_lines, out, began)
            if status.runtime_status.value in _TERMINAL:
                break
            time.sleep(0.1)
    close_event_publisher()
    output: dict[str, Any] = status.output if isinstance(status.output, dict) else {}
    if not json_lines:
        _summary(output, status.error, out)
    return 0 if output.get("status") == "completed" else 1


def _point_at_sandbox(state_dir: Path | None, time_scale: float) -> None:
    from sandbox import control

    where = state_dir or control.DEFAULT_STATE_DIR
    control.up(where, time_scale)
    values = json.loads((where / control.SETTINGS_FILE).read_text())["Values"]
    os.environ.update({str(k): str(v) for k, v in values.items()})


def _outcomes(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        json.loads(event["Input"])
        for event in history
        if event.get("EventType") == _TASK_SCHEDULED and event.get("Name") == "publish_event"
    ]


def _show(
    outcome: dict[str, Any], shown: set[str], json_lines: bool, out: TextIO, began: float
) -> None:
    from shared.events import Outcome, build_event, event_id, structured

    model = Outcome.model_validate(outcome)
    key = event_id(model)
    if key in shown:  # a retried publish schedules the same outcome again
        return
    shown.add(key)
    if json_lines:
        event = build_event(model, current_settings().owner)
        print(json.dumps(structured(event)), file=out, flush=True)
        return
    mark = _MARKS.get(model.status, "·")
    line = f"{time.monotonic() - began:6.1f}s  {mark} {model.step:<22} {model.status}"
    if model.message:
        line += f"  {model.message}"
    if model.error is not None:
        line += f" [{model.error.code}] {model.error.hint}".rstrip()
    print(line, file=out, flush=True)


def _summary(output: dict[str, Any], error: str | None, out: TextIO) -> None:
    if not output:
        print(f"\nthe run stopped: {error}", file=out)
        return
    print("\nsteps (seconds on the run's clock: simulated in the sandbox)", file=out)
    for step, seconds in (output.get("durations") or {}).items():
        print(f"  {step:<22} {seconds:8.0f} s", file=out)
    result = output.get("jobResult")
    if result:
        gpu = f" on {result['gpu']}" if result.get("gpu") else ""
        print(f"  job: accuracy {result['accuracy']} at step {result['step']}{gpu}", file=out)
    if output.get("left"):
        print(f"  left running: {', '.join(output['left'])} until {output['expiresAt']}", file=out)
    else:
        print("  left running: nothing", file=out)
    print(f"  outcome: {output.get('status')}", file=out)
