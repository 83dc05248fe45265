"""The Node.js `@azure/service-bus` SDK against the local broker: a second client we did not write.

Each check of `servicebus_node_conformance.js` runs in its own Node process with its own
entities: send/receive/complete, a message without message id, abandon (delivery count + 1,
modified properties applied, dead-lettered at MaxDeliveryCount), dead-letter, defer and receive
deferred, peek, scheduled messages and cancel, lock renewal, TTL expiry dead-lettered, sessions
(RequiresSession in Config.json) and what such a queue refuses (a message without session id,
a receiver that is not a session receiver), topic subscriptions with correlation rules, and each
subscription's rules listed by the SDK's rule manager (`$Default` alone, filtering where
Config.json puts the filter on it). The broker runs
on real time: these checks wait out short locks, schedules and time-to-live.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.servicebus import CONFIG_PATH, ServiceBusBroker
from tests.sandbox_fixtures import running_broker

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("servicebus_node_conformance.js")
SDK = ROOT / "node_modules" / "@azure" / "service-bus" / "package.json"
CHECKS = [
    "sendReceiveComplete",
    "noMessageId",
    "abandonCountsAndDeadLetters",
    "deadLetter",
    "deferAndReceiveDeferred",
    "peek",
    "scheduleAndCancel",
    "renewLock",
    "ttlExpiry",
    "sessions",
    "sessionRefusals",
    "topicRules",
    "defaultRule",
]


def _queue(name: str, **properties: Any) -> dict[str, Any]:
    return {"Name": name, "Properties": {"LockDuration": "PT30S", **properties}}


def _config() -> dict[str, Any]:
    document = json.loads(CONFIG_PATH.read_text())
    document["UserConfig"]["Namespaces"][0]["Queues"] += [
        _queue("node-basic"),
        _queue("node-no-id"),
        _queue("node-abandon", MaxDeliveryCount=3),
        _queue("node-dead-letter"),
        _queue("node-defer"),
        _queue("node-peek"),
        _queue("node-schedule"),
        _queue("node-renew", LockDuration="PT5S"),
        _queue("node-ttl", DeadLetteringOnMessageExpiration=True),
        _queue("node-sessions", RequiresSession=True),
        _queue("node-sessions-only", RequiresSession=True),
    ]
    return document


@pytest.fixture(scope="module")
def broker() -> Iterator[ServiceBusBroker]:
    if shutil.which("node") is None or not SDK.exists():
        pytest.fail("node and node_modules/@azure/service-bus are needed: run make setup")
    yield from running_broker(_config())


def test_the_script_runs_every_check() -> None:
    listed = subprocess.run(
        ["node", str(SCRIPT), "", "list"], capture_output=True, text=True, check=True, timeout=60
    )
    assert sorted(json.loads(listed.stdout)) == sorted(CHECKS)


def test_node_sdk_version_is_the_pinned_one() -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/@azure/service-bus"]["version"]
    assert json.loads(SDK.read_text())["version"] == pinned


@pytest.mark.parametrize("check", CHECKS)
def test_node_sdk(check: str, broker: ServiceBusBroker) -> None:
    done = subprocess.run(
        ["node", str(SCRIPT), broker.connection_string, check],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result from node (exit {done.returncode}): {done.stderr[-2000:]}"
    result = json.loads(lines[-1])
    assert result["ok"], f"{check}: {result['detail']}"
    assert broker.errors == []
