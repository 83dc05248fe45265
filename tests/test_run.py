"""`gpuprov run FILE --sandbox` as a user runs it: the installed command in a subprocess.

Covers: the seed walkthrough runs against a sandbox it starts itself, prints one CloudEvent per
step outcome with --json, ends `completed` with the job's accuracy and exits 0; invalid input
exits 2 with JSON errors before anything starts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLES

GPUPROV = str(Path(sys.executable).with_name("gpuprov"))
SEED = next(p for p in EXAMPLES if p.stem == "seed-walkthrough")


def test_seed_walkthrough_runs_to_completed_on_the_sandbox(tmp_path: Path) -> None:
    state = str(tmp_path / "sandbox")
    try:
        result = subprocess.run(
            [GPUPROV, "run", str(SEED), "--sandbox", "--json", "--state-dir", state,
             "--time-scale", "120"],
            capture_output=True, text=True, check=False, timeout=240,
        )  # fmt: skip
    finally:
        subprocess.run([GPUPROV, "sandbox", "down", "--state-dir", state], check=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(e["specversion"] == "1.0" and e["subject"] == "seed-walkthrough-001" for e in events)
    steps = [(e["data"]["step"], e["data"]["status"]) for e in events]
    assert steps[0] == ("register-features", "started")
    assert ("verify-gpus", "succeeded") in steps
    assert steps[-1] == ("completed", "completed")
    assert events[-1]["data"]["details"]["jobResult"]["accuracy"] > 0.9


def test_invalid_request_exits_2_before_running(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"apiVersion": "gpuprov/v1", "nodePool": {"vmSize": "Standard_NC6"}}')
    result = subprocess.run(
        [GPUPROV, "run", str(bad)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 2
    paths = [e["path"] for e in json.loads(result.stdout)]
    assert "$.subscriptionId" in paths
    assert "Traceback" not in result.stderr
