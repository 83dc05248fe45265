"""`gpuprov run FILE --sandbox` as a user runs it: the installed command in a subprocess.

Covers: the seed walkthrough runs against a sandbox it starts itself (and says it leaves it
running), prints one CloudEvent per step outcome with --json, ends `completed` with the job's
accuracy and exits 0; invalid input exits 2 with JSON errors before anything starts; without
--sandbox and without a Service Bus setting it names the setting before any step; SIGTERM while
the cluster is being created cancels the run, deletes the cluster and says so; a second Ctrl-C
leaves at once, naming the cluster left, its expiry and the command that removes it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from functools import partial
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, GPUPROV, eventually
from tests.sandbox_fixtures import sandbox_aks

SEED = next(p for p in EXAMPLES if p.stem == "seed-walkthrough")


def test_seed_walkthrough_runs_to_completed_on_the_sandbox(tmp_path: Path) -> None:
    state = str(tmp_path / "sandbox")
    try:
        result = subprocess.run(
            [GPUPROV, "run", str(SEED), "--sandbox", "--json", "--state-dir", state,
             "--time-scale", "120"],
            capture_output=True, text=True, check=False, timeout=240,
        )  # fmt: skip
        proof = subprocess.run(
            [GPUPROV, "proof", "seed-walkthrough-001", "--sandbox", "--state-dir", state],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
    finally:
        subprocess.run([GPUPROV, "sandbox", "down", "--state-dir", state], check=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    assert proof.returncode == 0, proof.stdout + proof.stderr
    assert proof.stdout.startswith("proof of seed-walkthrough-001: 5/5 passed"), proof.stdout
    assert "Tesla T4" in proof.stdout
    assert "sandbox: started; it stays up for the next run" in result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(e["specversion"] == "1.0" and e["subject"] == "seed-walkthrough-001" for e in events)
    steps = [(e["data"]["step"], e["data"]["status"]) for e in events]
    assert steps[0] == ("preflight", "started")
    assert ("verify-gpus", "succeeded") in steps
    verified = next(e for e in events if e["data"]["step"] == "verify-gpus"
                    and e["data"]["status"] == "succeeded")  # fmt: skip
    [node] = verified["data"]["details"]["nodes"]
    assert (node["gpuModel"], node["gpus"], node["driver"], node["cuda"]) == (
        "Tesla T4", 1, "570.172.08", "12.8")  # fmt: skip
    assert steps[-1] == ("completed", "completed")
    assert events[-1]["data"]["details"]["jobResult"]["accuracy"] > 0.9
    cost = events[-1]["data"]["details"]["cost"]
    assert cost["estimate"] > 0, "the estimate before is reported"
    assert cost["actual"] > 0, "and the actual cost after"


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


def test_without_a_service_bus_setting_it_names_it_before_any_step(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    env |= {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}
    result = subprocess.run(
        [GPUPROV, "run", str(SEED)], capture_output=True, text=True, env=env, check=False,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == ""
    assert "ServiceBusConnection" in result.stderr
    assert "--sandbox" in result.stderr
    assert "Traceback" not in result.stderr


def clusters(sandbox_dir: Path) -> list[str]:
    """The managed clusters in the sandbox, as the real SDK lists them."""
    subscription = json.loads(SEED.read_text())["subscriptionId"]
    with sandbox_aks(sandbox_dir, subscription) as aks:
        return [c.name for c in aks.managed_clusters.list() if c.name]


def start_run(sandbox_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [GPUPROV, "run", str(SEED), "--sandbox", "--state-dir", str(sandbox_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


wait_until = partial(eventually, timeout=120.0, waiting_for="the sandbox to change", interval=0.2)


@pytest.mark.timeout(300)
def test_sigterm_cancels_cleans_up_and_says_what_was_deleted(sandbox_dir: Path) -> None:
    run = start_run(sandbox_dir)
    try:
        wait_until(lambda: "myAKSCluster" in clusters(sandbox_dir))
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=240)
    finally:
        run.kill()
        run.wait()
    assert run.returncode == 1, err[-3000:]
    assert "cancelling: the run stops its current step" in err
    assert "Traceback" not in err
    assert "deleted: cluster myAKSCluster" in out
    assert "left running: nothing" in out
    assert "myAKSCluster" not in clusters(sandbox_dir)


@pytest.mark.timeout(300)
def test_a_second_ctrl_c_leaves_at_once_naming_what_is_left(sandbox_dir: Path) -> None:
    run = start_run(sandbox_dir)
    try:
        wait_until(lambda: "myAKSCluster" in clusters(sandbox_dir))
        run.send_signal(signal.SIGINT)
        time.sleep(0.5)
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=30)
    finally:
        run.kill()
        run.wait()
    assert run.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    assert "cluster myAKSCluster, tagged gpuprov-expires-at" in err
    assert f"remove it now: gpuprov sandbox down --state-dir {sandbox_dir}" in err
    assert "myAKSCluster" in clusters(sandbox_dir)  # it really is left, as said
