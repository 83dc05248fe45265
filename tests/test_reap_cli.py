"""`gpuprov reap` as a user runs it: the installed command against a running sandbox.

Covers: a dry run listing an owned cluster as left until its expiry, then — once the sandbox's
simulated clock (60× real time) passes an expiry that is minutes away in real time — as one it
would delete; the real run deleting it through ARM and saying so in its table; `--json` giving
the report with nothing left to start, and the cluster gone from ARM; an empty scope (no
subscription in the settings, none given) exiting 1 with the reason in the table, never a quiet
no-op.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.mgmt.containerservice.models import ManagedCluster

from shared.ownership import EXPIRES_AT_TAG, OWNER_TAG, REQUEST_ID_TAG
from tests.conftest import GPUPROV
from tests.sandbox_fixtures import RESOURCE_GROUP, sandbox_aks


def gpuprov(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([GPUPROV, *args], capture_output=True, text=True, check=False,
                          timeout=120)  # fmt: skip
    assert "Traceback" not in done.stderr + done.stdout
    return done


@pytest.mark.timeout(300)
def test_reap_on_the_sandbox_clock_dry_run_then_for_real(sandbox_dir: Path) -> None:
    expires = (datetime.now(UTC) + timedelta(minutes=10)).replace(microsecond=0)
    tags = {REQUEST_ID_TAG: "left-1", OWNER_TAG: "gpuprov",
            EXPIRES_AT_TAG: expires.isoformat().replace("+00:00", "Z")}  # fmt: skip
    body = {"location": "eastus", "tags": tags, "properties": {"dnsPrefix": "old",
            "agentPoolProfiles": [{"name": "system", "count": 1, "vmSize": "Standard_D4ds_v5",
                                   "mode": "System", "tags": tags}]}}  # fmt: skip
    with sandbox_aks(sandbox_dir) as client:
        client.managed_clusters.begin_create_or_update(
            RESOURCE_GROUP, "old", ManagedCluster(body)
        ).result()
    where = ["--sandbox", "--state-dir", str(sandbox_dir)]

    first = gpuprov("reap", "--dry-run", *where)
    assert first.returncode == 0, first.stderr
    assert "myResourceGroup/old" in first.stdout

    deadline = time.monotonic() + 120  # ten real minutes are ten simulated seconds
    while "would delete" not in (plan := gpuprov("reap", "--dry-run", *where)).stdout:
        assert "kept until it expires" in plan.stdout, plan.stdout
        assert time.monotonic() < deadline, plan.stdout
        time.sleep(1)
    assert "left-1" in plan.stdout

    done = gpuprov("reap", *where)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deleting" in done.stdout
    assert "expired" in done.stdout
    report = json.loads(gpuprov("reap", "--dry-run", "--json", *where).stdout)
    assert report["deletions"] == []  # deleting already, or gone: nothing to start again
    with sandbox_aks(sandbox_dir) as client:
        while "old" in [c.name for c in client.managed_clusters.list()]:
            assert time.monotonic() < deadline + 120, "the cluster was never deleted"
            time.sleep(1)


def test_an_empty_scope_says_so_and_exits_1(tmp_path: Path) -> None:
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": {"GPUPROV_ARM_ENDPOINT": "https://127.0.0.1:9"}}))
    done = gpuprov("reap", "--dry-run", "--settings", str(settings))
    assert done.returncode == 1
    assert "NoSubscriptions: no subscription to scan" in done.stdout
