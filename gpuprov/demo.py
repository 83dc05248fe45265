"""`gpuprov demo` (`make demo`) and `gpuprov host`: the app's triggers running on the sandbox.

demo starts the sandbox (unless it runs) and the local Functions host with the real app, submits
the seed walkthrough through the Storage queue, follows its events on the Service Bus topic to
the final one, prints the summary, and stops what it started. The request gets a fresh id each
time, so a run never meets a previous run's instance or events. host runs the same local
Functions host in the foreground, for `gpuprov submit`/`watch` and HTTP calls from elsewhere.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import TextIO

from gpuprov import front
from gpuprov.front import show_summary, submit, watch

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "examples" / "seed-walkthrough.json"
WATCH_SECONDS = 170.0
"""The demo's whole budget is three minutes; the sandbox run takes well under one."""
KEY_FILE = "function-key"


def demo(state_dir: Path | None, time_scale: float, out: TextIO = sys.stdout) -> int:
    """0 when the walkthrough completed; 1 otherwise (the events say why)."""
    from sandbox import control
    from sandbox.clock import ScaledClock
    from sandbox.functions_host import LocalFunctionsHost

    where = state_dir or control.DEFAULT_STATE_DIR
    _, started = control.up(where, time_scale)
    print("sandbox: " + ("started" if started else "already running, reused"), file=out)
    try:
        values = _point_at_sandbox(where)
        document = json.loads(SEED.read_text())
        request_id = document["requestId"] = f"seed-walkthrough-{uuid.uuid4().hex[:8]}"

        import function_app
        from shared.events import close_event_publisher

        clock = ScaledClock(time_scale)
        with LocalFunctionsHost(function_app.app, env=values, clock=clock, http_port=0) as host:
            print(f"functions host: the app's triggers running, HTTP on {host.http_url}", file=out)
            submit(json.dumps(document).encode(), values, "queue")
            print(f"submitted {request_id} to the Storage queue provisioning-requests;",
                  "its events on the Service Bus topic:\n", file=out, flush=True)  # fmt: skip
            code = watch(
                values,
                request_id=request_id,
                subscription="all",
                out=out,
                json_lines=False,
                timeout=WATCH_SECONDS,
                summary=False,
            )
        close_event_publisher()
    finally:
        if started:
            control.down(where)
            print("\nsandbox: stopped; functions host: stopped", file=out)
    if front.last_final:
        show_summary(front.last_final, out)
    return code


def host(state_dir: Path | None, time_scale: float, port: int, out: TextIO = sys.stdout) -> int:
    """Serve the app's triggers against the running sandbox until SIGINT or SIGTERM."""
    from sandbox import control
    from sandbox.clock import ScaledClock
    from sandbox.functions_host import LocalFunctionsHost

    where = state_dir or control.DEFAULT_STATE_DIR
    if not control.status(where):
        print("the sandbox is not running: start it with gpuprov sandbox up", file=out)
        return 1
    values = _point_at_sandbox(where)
    import function_app

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    clock = ScaledClock(time_scale)
    durable_state = where / control.DURABLE_STATE_FILE  # runs survive a restart of the host
    with LocalFunctionsHost(
        function_app.app, env=values, clock=clock, http_port=port, durable_state=durable_state
    ) as running:
        key_file = where / KEY_FILE
        key_file.write_text(running.function_key)
        key_file.chmod(0o600)
        print(f"HTTP on {running.http_url}/api/ (function key in {key_file}); Ctrl-C stops",
              file=out, flush=True)  # fmt: skip
        stop.wait()
    key_file.unlink(missing_ok=True)
    return 0


def _point_at_sandbox(where: Path) -> dict[str, str]:
    """The sandbox's settings, also put in the environment, where the app reads them."""
    from sandbox import control
    from shared.settings import current_settings

    raw = json.loads((where / control.SETTINGS_FILE).read_text())["Values"]
    values = {str(k): str(v) for k, v in raw.items()}
    os.environ.update(values)
    current_settings.cache_clear()
    return values
