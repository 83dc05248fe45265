"""`gpuprov host`, `submit` and a duplicate, as a user meets them on the sandbox.

Covers: the host logs the app's INFO lines on stderr, one line each starting with the request
id (accepted, then the duplicate a second delivery is); `gpuprov submit` of a request already
submitted says so with its run's state and that nothing started, exits 1 and sends nothing; a
second host on a busy port names the port and `--port` in one line, no traceback.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.builders import seed_document
from tests.conftest import EXAMPLES, GPUPROV

SEED = next(p for p in EXAMPLES if p.stem == "seed-walkthrough")


def gpuprov(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([GPUPROV, *args], capture_output=True, text=True, check=False,
                          timeout=120)  # fmt: skip
    assert "Traceback" not in done.stderr + done.stdout
    return done


def wait_for_line(path: Path, pattern: str, timeout: float = 90.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in path.read_text().splitlines():
            if re.search(pattern, line):
                return line
        time.sleep(0.2)
    raise AssertionError(f"no line matching {pattern!r} in:\n{path.read_text()[-3000:]}")


@pytest.mark.timeout(300)
def test_host_logs_duplicates_and_submit_says_already_submitted(
    sandbox_dir: Path, tmp_path: Path
) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(seed_document(requestId="host-dup-1")))
    where = ["--state-dir", str(sandbox_dir)]
    with socket.socket() as taken:  # a port something else listens on
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy_port = str(taken.getsockname()[1])
        busy = gpuprov("host", *where, "--port", busy_port)
    assert busy.returncode == 1
    assert busy.stderr.strip().splitlines() == [
        f"gpuprov host: port {busy_port} is in use (another gpuprov host, or func?): "
        "pass --port with a free port, or --port 0 for any"
    ]
    err = tmp_path / "host.err"
    with err.open("w") as stderr:
        host = subprocess.Popen([GPUPROV, "host", *where, "--port", "0"],
                                stdout=subprocess.PIPE, stderr=stderr, text=True)  # fmt: skip
    try:
        assert host.stdout is not None
        port = re.search(r"127\.0\.0\.1:(\d+)/api/", host.stdout.readline())
        assert port is not None

        second = gpuprov("host", *where, "--port", "0")
        assert second.returncode == 1
        assert "is in use by process" in second.stderr  # one host per sandbox state

        assert gpuprov("submit", str(request), "--sandbox", *where).stdout.strip() == "host-dup-1"
        wait_for_line(err, r"INFO +host-dup-1: accepted from the storage-queue")
        assert gpuprov("submit", str(request), "--sandbox", "--no-check", *where).returncode == 0
        duplicate = wait_for_line(err, r"host-dup-1: duplicate")
        assert re.search(r"already submitted \(its run is \w+\); nothing started", duplicate)

        again = gpuprov("submit", str(request), "--sandbox", *where)
        assert again.returncode == 1
        assert again.stdout == ""
        assert "host-dup-1 was already submitted (its run" in again.stderr
        assert "nothing started" in again.stderr
    finally:
        host.send_signal(signal.SIGINT)
        host.communicate(timeout=60)
    assert "Traceback" not in err.read_text()


def test_the_sandbox_files_with_connection_strings_are_private(sandbox_dir: Path) -> None:
    """They hold the storage key, the Service Bus key and the sandbox token: owner only, as
    the function key is."""
    from sandbox import control

    for name in (control.SETTINGS_FILE, control.ENV_FILE, control.STATE_FILE):
        assert (sandbox_dir / name).stat().st_mode & 0o777 == 0o600, name
