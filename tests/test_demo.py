"""`gpuprov demo`, the README's main-job command, as a user runs it.

Covers: on a stopped sandbox, the demo starts it, runs the seed walkthrough through the Storage
queue and the local Functions host, prints every step from `accepted` to `completed` as read from
the Service Bus topic, then the summary (durations, the job's accuracy, what is left), exits 0
and leaves no sandbox process running; the summary is the last thing it prints.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sandbox import control
from tests.conftest import ROOT


def test_demo_runs_the_walkthrough_and_stops_what_it_started(tmp_path: Path) -> None:
    state_dir = tmp_path / "sandbox"
    done = subprocess.run(
        [sys.executable, "-m", "gpuprov", "demo", "--state-dir", str(state_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "sandbox: started" in out
    lines = out.splitlines()
    events = [line.split()[2:4] for line in lines if " → " in line or " ✓ " in line]
    assert ["accepted", "from"] in events  # said once: `→ accepted  from the storage queue`
    assert not [line for line in lines if "accepted accepted" in line or "completed completed"
                in line]  # fmt: skip
    assert ["run-job", "succeeded"] in events
    assert any("job: accuracy 0.9" in line and "Tesla T4" in line for line in lines)
    assert "left running: nothing" in out
    assert "GPU proof: 5/5 passed (gpuprov proof " in out
    assert "outcome: completed" in out
    assert "sandbox: stopped" in out
    assert out.rstrip().endswith("outcome: completed")
    assert control.status(state_dir) == []
    assert "Traceback" not in done.stderr
