"""GPUPROV_TRACE_CONSOLE=true: spans for a person at a terminal.

Covers: the spans go to stderr, one line each, so stdout keeps only the command's own lines
(progress, or the JSON lines of --json); each line names the span, its ids, its duration, the
request's attributes and the service (`gpuprov`, not `unknown_service:python`).
"""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
from datetime import UTC, datetime, timedelta
from shared.events import Outcome
from shared.telemetry import record_outcome
now = datetime.now(UTC)
for step, status in (("verify-gpus", "succeeded"), ("completed", "completed")):
    record_outcome(Outcome(request_id="r1", step=step, status=status, time=now,
                           started_at=now - timedelta(seconds=3)))
print("a progress line")
"""


def test_console_spans_go_to_stderr_one_line_each_named_gpuprov() -> None:
    env = {**os.environ, "GPUPROV_TRACE_CONSOLE": "true"}
    env.pop("APPLICATIONINSIGHTS_CONNECTION_STRING", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, check=True, timeout=60)  # fmt: skip
    assert done.stdout == "a progress line\n"
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    assert all(line.startswith("span ") and "service=gpuprov " in line for line in lines)
    assert "verify-gpus" in lines[0]
    assert "gpuprov.request_id=r1" in lines[0]
    assert "3000.0 ms" in lines[0]
    assert "provision r1" in lines[1]
