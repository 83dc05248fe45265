"""`gpuprov host` killed with SIGKILL in the middle of a cluster creation, then started again.

As a user runs it: `gpuprov sandbox up`, `gpuprov host`, `gpuprov submit` of the seed
walkthrough (a new cluster, deleted at the end). When the `create-cluster` step has started, the
host process is killed with SIGKILL (no cleanup, nothing flushed) and started again on the same
state directory. The request must still complete: one `accepted` event, the same orchestration
instance (created once, not started again), and nothing left in the sandbox's ARM. A second
`gpuprov host` on the same state directory, while the first runs, is refused.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusReceiveMode

from tests.builders import seed_document
from tests.conftest import GPUPROV, ROOT, eventually
from tests.sandbox_fixtures import sandbox_aks

TIME_SCALE = "60"
T = TypeVar("T")

pytestmark = pytest.mark.timeout(420)


def _gpuprov(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [GPUPROV, *args], capture_output=True, text=True, check=False, timeout=180, cwd=ROOT
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


class Host:
    """One `gpuprov host` process; its output goes to a file the test reads."""

    def __init__(self, state_dir: Path, log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [GPUPROV, "host", "--state-dir", str(state_dir), "--port", "0",
                 "--time-scale", TIME_SCALE],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
            )  # fmt: skip
        line = _until(lambda: self._http_line(), 90, f"the host to serve HTTP ({log})")
        self.url = line.split("HTTP on ", 1)[1].split("/api/", 1)[0]
        self.key = (state_dir / "function-key").read_text()

    def _http_line(self) -> str | None:
        assert self.process.poll() is None, self.log.read_text(errors="replace")[-3000:]
        return next((x for x in self.log.read_text().splitlines() if "HTTP on " in x), None)

    def status(self, instance_id: str) -> dict[str, Any]:
        url = f"{self.url}/runtime/webhooks/durabletask/instances/{instance_id}?code={self.key}"
        with urllib.request.urlopen(url, timeout=30) as response:
            return dict(json.loads(response.read()))

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


_until = partial(eventually, interval=0.3)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Path]:
    state_dir = tmp_path / "sandbox"
    started = _gpuprov("sandbox", "up", "--state-dir", str(state_dir), "--time-scale", TIME_SCALE)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield state_dir
    finally:
        _gpuprov("sandbox", "down", "--state-dir", str(state_dir))


def test_sigkill_mid_cluster_creation_resumes_to_completed(sandbox: Path, tmp_path: Path) -> None:
    settings = json.loads((sandbox / "local.settings.json").read_text())["Values"]
    request = seed_document(requestId=f"restart-{uuid.uuid4().hex[:8]}")
    request_id = request["requestId"]
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(request))
    events: list[dict[str, Any]] = []

    def drain() -> list[tuple[str, str]]:
        with ServiceBusClient.from_connection_string(settings["ServiceBusConnection"]) as client:
            receiver = client.get_subscription_receiver(
                "gpu-provisioning-events",
                "all",
                receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE,
            )
            with receiver:
                while batch := receiver.receive_messages(max_message_count=100, max_wait_time=1):
                    events.extend(json.loads(str(m)) for m in batch)
        return [(e["data"]["step"], e["data"]["status"]) for e in events]

    host = Host(sandbox, tmp_path / "host-1.log")
    try:
        second = _gpuprov("host", "--state-dir", str(sandbox), "--port", "0")
        assert second.returncode == 1, second.stdout + second.stderr
        assert "in use by process" in second.stderr, "two hosts on one state file"
        submitted = _gpuprov(
            "submit", str(request_file), "--settings", str(sandbox / "local.settings.json")
        )
        assert submitted.returncode == 0, submitted.stderr
        _until(lambda: ("create-cluster", "started") in drain(), 120, "create-cluster to start")
        created = host.status(request_id)["createdTime"]
        host.kill()
        before_kill = drain()
        assert ("create-cluster", "succeeded") not in before_kill, before_kill
    finally:
        host.stop()

    host = Host(sandbox, tmp_path / "host-2.log")
    try:
        final = _until(
            lambda: next((s for s in drain() if s[0] in ("completed", "failed")), None),
            240,
            f"the request to finish after the restart ({tmp_path / 'host-2.log'})",
        )
        status = host.status(request_id)
    finally:
        host.stop()

    steps = drain()
    assert final == ("completed", "completed"), steps
    assert steps.count(("accepted", "accepted")) == 1, steps
    assert steps.count(("create-cluster", "succeeded")) == 1, steps
    assert status["runtimeStatus"] == "Completed"
    assert status["createdTime"] == created, "the run was started again instead of resumed"
    clusters = sandbox_aks(
        sandbox, request["subscriptionId"]
    ).managed_clusters.list_by_resource_group(request["resourceGroup"])
    assert [c.name for c in clusters] == [], "the sandbox's ARM still holds a cluster"
