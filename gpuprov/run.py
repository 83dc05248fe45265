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
from typing import Any

from gpuprov.progress import Progress
from shared.settings import current_settings
from shared.validation import parse_request

_TASK_SCHEDULED = 4
_TERMINAL = {"Completed", "Failed", "Terminated"}


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
    from shared.events import Outcome, build_event, close_event_publisher, structured
    from shared.sequence import RunInput

    host = LocalDurableHost(function_app.app, clock=ScaledClock(time_scale) if sandbox else None)
    progress = Progress(sys.stdout, json_lines=json_lines)
    owner = current_settings().owner
    with host:
        instance = host.start_new(
            ORCHESTRATOR,
            instance_id=request.request_id,
            input=RunInput(request=request).model_dump(mode="json", by_alias=True),
        )
        while True:
            status = host.get_status(instance)
            for outcome in _outcomes(host.history(instance)):
                progress.show(structured(build_event(Outcome.model_validate(outcome), owner)))
            if status.runtime_status.value in _TERMINAL:
                break
            time.sleep(0.1)
    close_event_publisher()
    output: dict[str, Any] = status.output if isinstance(status.output, dict) else {}
    progress.summary(output, str(output.get("status")), status.error)
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
