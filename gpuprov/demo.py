"""`gpuprov demo` (`make demo`) and `gpuprov host`: the app's triggers running on the sandbox.

demo starts the sandbox (unless it runs) and the local Functions host with the real app, submits
the seed walkthrough through the Storage queue, follows its events on the Service Bus topic to
the final one, prints the summary, and stops what it started. The request gets a fresh id each
time, so a run never meets a previous run's instance or events. host runs the same local
Functions host in the foreground, for `gpuprov submit`/`watch` and HTTP calls from elsewhere.
"""

from __future__ import annotations

import errno
import json
import logging
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import TextIO

from gpuprov import front
from gpuprov.front import show_summary, submit, watch
from gpuprov.local import sandbox_clock, sandbox_values

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "examples" / "seed-walkthrough.json"
WATCH_SECONDS = 170.0
"""The demo's whole budget is three minutes; the sandbox run takes well under one."""
KEY_FILE = "function-key"


def demo(state_dir: Path | None, time_scale: float, out: TextIO = sys.stdout) -> int:
    """0 when the walkthrough completed; 1 otherwise (the events say why)."""
    from sandbox import control
    from sandbox.functions_host import LocalFunctionsHost

    where = state_dir or control.DEFAULT_STATE_DIR
    _, started = control.up(where, time_scale)
    print("sandbox: " + ("started" if started else "already running, reused"), file=out)
    try:
        values = sandbox_values(where)
        document = json.loads(SEED.read_text())
        request_id = document["requestId"] = f"seed-walkthrough-{uuid.uuid4().hex[:8]}"

        import function_app
        from shared.events import close_event_publisher

        clock = sandbox_clock(where, time_scale)
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
    from sandbox.functions_host import LocalFunctionsHost

    where = state_dir or control.DEFAULT_STATE_DIR
    if not control.status(where):
        print("gpuprov host: the sandbox is not running: start it with gpuprov sandbox up",
              file=sys.stderr)  # fmt: skip
        return 1
    values = sandbox_values(where)
    import function_app

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    clock = sandbox_clock(where, time_scale)
    show_app_logs(sys.stderr)
    durable_state = where / control.DURABLE_STATE_FILE  # runs survive a restart of the host
    running = LocalFunctionsHost(
        function_app.app, env=values, clock=clock, http_port=port, durable_state=durable_state
    )
    try:
        running.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(f"gpuprov host: port {port} is in use (another gpuprov host, or func?): pass "
              "--port with a free port, or --port 0 for any", file=sys.stderr)  # fmt: skip
        return 1
    key_file = where / KEY_FILE
    try:
        key_file.write_text(running.function_key)
        key_file.chmod(0o600)
        print(f"HTTP on {running.http_url}/api/ (function key in {key_file}); Ctrl-C stops",
              file=out, flush=True)  # fmt: skip
        stop.wait()
    finally:
        running.stop()
        key_file.unlink(missing_ok=True)
    return 0


APP_LOGGERS = ("functions", "shared")


def show_app_logs(stream: TextIO) -> None:
    """The app's INFO lines (accepted, duplicate, rejected, the reaper's report) on `stream`,
    one line each: the app starts each with the request id it is about."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    for name in APP_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
