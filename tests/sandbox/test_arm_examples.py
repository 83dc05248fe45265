"""Every request in examples/ completes on a fresh sandbox, as `gpuprov run FILE --sandbox`.

Covers: `gpuprov sandbox up` comes with what the examples refer to — their resource groups and
the existing clusters `platform-aks` (platform-rg) and `batch-aks` (batch-rg), each with a system
pool the provisioner does not own — so the existing-cluster examples run to `completed` without
ParentResourceNotFound.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, GPUPROV


@pytest.mark.timeout(300)
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_completes_on_a_fresh_sandbox(tmp_path: Path, example: Path) -> None:
    request = json.loads(example.read_text())
    state = str(tmp_path / "sandbox")
    try:
        result = subprocess.run(
            [GPUPROV, "run", str(example), "--sandbox", "--json", "--state-dir", state,
             "--time-scale", "120"],
            capture_output=True, text=True, check=False, timeout=280,
        )  # fmt: skip
    finally:
        subprocess.run([GPUPROV, "sandbox", "down", "--state-dir", state], check=True, timeout=60)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert {e["subject"] for e in events} == {request["requestId"]}
    failed = [e["data"] for e in events if e["data"]["status"] == "failed"]
    assert failed == []
    last = events[-1]["data"]
    assert (last["step"], last["status"]) == ("completed", "completed")
    assert last["details"]["jobResult"]["accuracy"] > 0.9
