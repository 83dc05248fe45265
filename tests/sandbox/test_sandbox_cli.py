"""`gpuprov sandbox up | status | down` as a user runs them.

Covers: `up` starts four live endpoints and writes the settings that point the product at them;
`up` again starts nothing; `down` stops exactly the processes `up` started and leaves none.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import GPUPROV


def gpuprov(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [GPUPROV, *args], capture_output=True, text=True, check=False, timeout=120
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def pids(state_dir: Path) -> list[int]:
    state = json.loads((state_dir / "state.json").read_text())
    return sorted(p["pid"] for p in state["processes"].values())


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_up_status_down(tmp_path: Path) -> None:
    state_dir = tmp_path / "sandbox"
    try:
        started = gpuprov("sandbox", "up", "--state-dir", str(state_dir))
        assert started.returncode == 0, started.stderr + started.stdout
        assert "sandbox started" in started.stdout
        first = pids(state_dir)

        status = gpuprov("sandbox", "status", "--state-dir", str(state_dir))
        assert status.returncode == 0, status.stdout
        live = [line for line in status.stdout.splitlines() if line.endswith(" live")]
        assert [line.split()[0] for line in live] == ["arm", "kubernetes", "servicebus", "azurite"]

        settings = json.loads((state_dir / "local.settings.json").read_text())["Values"]
        assert settings["AzureWebJobsStorage"].startswith("DefaultEndpointsProtocol=http;")
        assert settings["ServiceBusConnection"].endswith("UseDevelopmentEmulator=true")
        assert settings["GPUPROV_ARM_ENDPOINT"].startswith("https://127.0.0.1:")
        assert Path(settings["GPUPROV_CA_BUNDLE"]).read_text().startswith("-----BEGIN CERTIFICATE")
        assert (state_dir / "sandbox.env").read_text().count("export ") == len(settings)

        again = gpuprov("sandbox", "up", "--state-dir", str(state_dir))
        assert again.returncode == 0
        assert "already running" in again.stdout
        assert pids(state_dir) == first, "up twice must not start twice"
    finally:
        stopped = gpuprov("sandbox", "down", "--state-dir", str(state_dir))
    assert stopped.returncode == 0
    assert all(str(pid) in stopped.stdout for pid in first)
    assert not any(alive(pid) for pid in first)
    assert not (state_dir / "state.json").exists()
    after = gpuprov("sandbox", "status", "--state-dir", str(state_dir))
    assert after.returncode == 1
    assert "not running" in after.stdout


def test_down_leaves_foreign_processes_alone(tmp_path: Path) -> None:
    """A PID in the state file that now belongs to another program is not killed."""
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        state_dir = tmp_path / "sandbox"
        state_dir.mkdir()
        state = {"processes": {"simulators": {"pid": bystander.pid, "marker": "sandbox.serve"}}}
        (state_dir / "state.json").write_text(json.dumps(state))
        result = gpuprov("sandbox", "down", "--state-dir", str(state_dir))
        assert result.returncode == 0
        assert "was not running" in result.stdout
        assert bystander.poll() is None
        os.kill(bystander.pid, 0)
    finally:
        bystander.kill()
        bystander.wait()
