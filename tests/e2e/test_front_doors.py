"""The front doors and the reaper, end to end through the local Functions host.

Covers: a Storage-queue request followed on the events topic from `accepted` to `completed`;
malformed JSON, a contract violation and an out-of-policy request each answered by exactly one
`rejected` event, no orchestration and nothing left in the queue or the poison queue; the same
message delivered three times making one orchestration and one pool PUT; a request sent through
the Service Bus queue completing, and a bad one rejected once and dead-lettered; the HTTP API
(key required, submit 202 with status URLs, 400 with errors, 409 for a known id, status with the
current step, cancel ending the run failed with its cluster deleted, 404 for unknown ids); and the
timer reaper deleting an expired owned pool while leaving an unowned one, and a dry run deleting
nothing; and a message failing for a reason outside the request (a broken setting) retried
maxDequeueCount times, then parked in the poison queue with its body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import AgentPool, ManagedCluster
from azure.servicebus import ServiceBusClient, ServiceBusSubQueue

from sandbox.arm import ArmSimulator
from sandbox.clock import ScaledClock
from sandbox.servicebus import ServiceBusBroker
from sandbox.tls import TestCA
from shared.ownership import EXPIRES_AT_TAG, OWNER_TAG, REQUEST_ID_TAG
from tests.e2e.conftest import QUEUE, App, start_app
from tests.sandbox_fixtures import RESOURCE_GROUP, SUBSCRIPTION, aks_client

# whole runs through a local host: generous on a busy machine, they end as soon as they can
pytestmark = pytest.mark.timeout(300)

SEED_STEPS_START = [("accepted", "accepted"), ("preflight", "started")]


def pool_puts(arm: ArmSimulator) -> list[str]:
    return [r.path for r in arm.requests if r.method == "PUT" and "/agentPools/" in r.path]


def test_a_queued_request_runs_to_completed(app: App) -> None:
    request = app.request()
    app.enqueue(json.dumps(request))

    final = app.final_event(request["requestId"])

    assert final["step"] == "completed", final
    steps = app.steps_of(request["requestId"])
    assert steps[:2] == SEED_STEPS_START
    assert ("run-job", "succeeded") in steps
    assert final["details"]["jobResult"]["accuracy"] > 0.9
    assert app.runs() == [request["requestId"]]
    assert app.queue_messages(QUEUE) == []


@pytest.mark.parametrize(
    ("body", "where"),
    [
        pytest.param('{"requestId": "bad-json-1", ', "$", id="malformed-json"),
        pytest.param(None, "$.location", id="contract-violation"),
        pytest.param(None, "$.nodePool.nodeCount", id="out-of-policy"),
    ],
)
def test_bad_input_is_rejected_once_and_starts_nothing(
    app: App, body: str | None, where: str
) -> None:
    if body is None:
        request = app.request()
        if where == "$.location":
            request["location"] = 42
        else:
            request["nodePool"] = {**request["nodePool"], "nodeCount": 500}
        body = json.dumps(request)
    app.enqueue(body)

    rejected = app.wait_for(lambda: [e for e in app.events() if e["step"] == "rejected"])

    assert len(rejected) == 1
    (event,) = rejected
    assert any(error["path"] == where for error in event["details"]["errors"]), event
    assert event["details"]["source"] == "storage-queue"
    app.wait_for(lambda: not app.queue_messages(QUEUE))
    assert app.runs() == []
    assert app.queue_messages(f"{QUEUE}-poison") == []
    assert len([e for e in app.events() if e["step"] == "rejected"]) == 1


def test_the_same_message_three_times_makes_one_run(app: App) -> None:
    body = json.dumps(app.request())
    request_id = json.loads(body)["requestId"]
    for _ in range(3):
        app.enqueue(body)

    final = app.final_event(request_id)

    assert final["step"] == "completed"
    app.wait_for(lambda: not app.queue_messages(QUEUE))
    assert app.runs() == [request_id]
    assert len(pool_puts(app.arm)) == 1
    assert app.steps_of(request_id).count(("accepted", "accepted")) == 1


def test_a_service_bus_request_completes_and_a_bad_one_is_dead_lettered(app: App) -> None:
    request = app.request()
    app.send_to_service_bus(json.dumps(request))
    app.send_to_service_bus("not json at all", message_id="sb-bad-1")

    final = app.final_event(request["requestId"])

    assert final["step"] == "completed"
    assert app.steps_of(request["requestId"])[0] == ("accepted", "accepted")
    rejected = [e for e in app.events() if e["step"] == "rejected"]
    assert [(e["requestId"], e["details"]["source"]) for e in rejected] == [
        ("sb-bad-1", "service-bus")
    ]
    with ServiceBusClient.from_connection_string(app.broker.connection_string) as client:
        receiver = client.get_queue_receiver(QUEUE, sub_queue=ServiceBusSubQueue.DEAD_LETTER)
        with receiver:
            dead = app.wait_for(lambda: receiver.receive_messages(max_wait_time=1))
            for message in dead:
                receiver.complete_message(message)
    assert [str(m) for m in dead] == ["not json at all"]
    assert dead[0].dead_letter_reason
    assert app.runs() == [request["requestId"]]


def test_http_submit_status_and_cancel(app: App) -> None:
    base = f"{app.host.http_url}/api"
    key = {"x-functions-key": app.host.function_key}
    request = app.request()
    with requests.Session() as http:
        assert http.post(f"{base}/requests", json=request).status_code == 401

        invalid = http.post(f"{base}/requests", json={**request, "location": 42}, headers=key)
        assert invalid.status_code == 400
        assert any(e["path"] == "$.location" for e in invalid.json()["errors"])

        submitted = http.post(f"{base}/requests", json=request, headers=key)
        assert submitted.status_code == 202, submitted.text
        status_uri = submitted.json()["statusUri"]
        assert submitted.headers["Location"] == status_uri
        assert http.post(f"{base}/requests", json=request, headers=key).status_code == 409

        def creating() -> dict[str, Any] | None:
            status = http.get(status_uri, headers=key).json()
            return status if status["step"] == "create-cluster" else None

        status = app.wait_for(creating)
        assert status["runtimeStatus"] == "Running"
        assert ("accepted", "accepted") not in [(e["step"], e["status"]) for e in status["events"]]

        cancelled = http.post(submitted.json()["cancelUri"], headers=key)
        assert cancelled.status_code == 202
        final = app.final_event(request["requestId"])
        assert final["step"] == "failed"
        assert "cancel" in final["message"]

        over = http.get(status_uri, headers=key).json()
        assert over["runtimeStatus"] == "Completed"
        assert over["result"]["status"] == "failed"
        assert over["outcome"] == "failed"  # said next to runtimeStatus, and why they differ
        assert "runtimeStatus Completed is the orchestration's" in over["message"]
        assert http.post(submitted.json()["cancelUri"], headers=key).status_code == 409
        assert http.get(f"{base}/requests/nobody", headers=key).status_code == 404
        assert http.post(f"{base}/requests/nobody/cancel", headers=key).status_code == 404


# -- the reaper on its timer ------------------------------------------------------------------


def _tags(request_id: str, expires: datetime, owner: str = "gpuprov") -> dict[str, str]:
    return {
        REQUEST_ID_TAG: request_id,
        OWNER_TAG: owner,
        EXPIRES_AT_TAG: expires.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


@pytest.fixture
def leftovers(arm: ArmSimulator, ca: TestCA) -> Iterator[ContainerServiceClient]:
    """A cluster someone made, holding an expired pool of ours and an expired one of another
    deployment's, both made with the real SDK."""
    aks = aks_client(arm.url, ca.ca_path)
    expired = datetime.now(UTC) - timedelta(hours=1)
    cluster = {
        "location": "eastus",
        "properties": {
            "dnsPrefix": "shared",
            "agentPoolProfiles": [
                {"name": "system", "count": 1, "vmSize": "Standard_D4ds_v5", "mode": "System"}
            ],
        },
    }
    with aks:
        aks.managed_clusters.begin_create_or_update(
            RESOURCE_GROUP, "shared", ManagedCluster(cluster)
        ).result()
        for name, owner in (("ours", "gpuprov"), ("theirs", "another-team")):
            body = {"properties": {"count": 1, "vmSize": "Standard_NC4as_T4_v3", "mode": "User",
                                   "tags": _tags(f"old-{name}", expired, owner)}}  # fmt: skip
            aks.agent_pools.begin_create_or_update(
                RESOURCE_GROUP, "shared", name, AgentPool(body)
            ).result()
        arm.clear_requests()
        yield aks


@pytest.mark.parametrize("dry_run", [False, True], ids=["deletes", "dry-run"])
def test_the_timer_reaps_an_expired_owned_pool_only(
    app_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    clock: ScaledClock,
    tmp_path: Path,
    arm: ArmSimulator,
    broker: ServiceBusBroker,
    leftovers: ContainerServiceClient,
    dry_run: bool,
) -> None:
    env = {
        **app_env,
        "GPUPROV_REAPER_SCHEDULE": "0 */5 * * * *",  # every 5 simulated minutes: ½ s here
        "GPUPROV_REAPER_DRY_RUN": str(dry_run).lower(),
        "GPUPROV_ALLOWED_SUBSCRIPTIONS": SUBSCRIPTION,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    running = start_app(env, clock, tmp_path, arm, broker)
    app = next(running)
    try:
        app.wait_for(
            lambda: sum(i.function_name == "reap_expired" for i in app.host.invocations) >= 2
        )
        deletes = [r.path for r in arm.requests if r.method == "DELETE"]
        reaped = [e for e in app.events() if e["step"] == "reaped"]
        if dry_run:
            assert deletes == []
            assert reaped == []
        else:
            assert [d.rsplit("/", 1)[1] for d in deletes] == ["ours"]
            assert [(e["requestId"], e["details"]["kind"]) for e in reaped] == [
                ("old-ours", "pool")
            ]
    finally:
        running.close()
    assert all(i.succeeded for i in app.host.invocations if i.function_name == "reap_expired")


def test_a_message_the_app_keeps_failing_on_is_parked_in_the_poison_queue(
    app_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    clock: ScaledClock,
    tmp_path: Path,
    arm: ArmSimulator,
    broker: ServiceBusBroker,
) -> None:
    """A broken setting is not the request's fault: retried maxDequeueCount times, then parked
    with its body intact, no event and no run."""
    env = {**app_env, "GPUPROV_MAX_NODES_PER_REQUEST": "many"}
    monkeypatch.setenv("GPUPROV_MAX_NODES_PER_REQUEST", "many")
    running = start_app(env, clock, tmp_path, arm, broker)
    app = next(running)
    try:
        body = json.dumps(app.request())
        app.enqueue(body)
        parked = app.wait_for(lambda: app.queue_messages(f"{QUEUE}-poison"))
        tries = [i for i in app.host.invocations if i.function_name == "request_from_storage_queue"]
        assert parked == [body]
        assert len(tries) == 5
        assert not any(i.succeeded for i in tries)
        assert app.queue_messages(QUEUE) == []
        assert app.events() == []
        assert app.runs() == []
    finally:
        running.close()


@pytest.mark.timeout(180)
def test_the_timer_reaps_on_the_hosts_clock_where_requests_went_without_settings(
    app_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    clock: ScaledClock,
    tmp_path: Path,
    arm: ArmSimulator,
    broker: ServiceBusBroker,
    leftovers: ContainerServiceClient,
) -> None:
    """No subscription setting: the reaper scans the subscription a request named. A pool
    expiring in an hour of real time is due once the host's (600× faster) clock passes it."""
    in_an_hour = datetime.now(UTC) + timedelta(hours=1)
    body = {"properties": {"count": 1, "vmSize": "Standard_NC4as_T4_v3", "mode": "User",
                           "tags": _tags("soon-1", in_an_hour)}}  # fmt: skip
    leftovers.agent_pools.begin_create_or_update(
        RESOURCE_GROUP, "shared", "soon", AgentPool(body)
    ).result()
    arm.clear_requests()
    env = {**app_env, "GPUPROV_REAPER_SCHEDULE": "0 */5 * * * *"}
    monkeypatch.setenv("GPUPROV_REAPER_SCHEDULE", env["GPUPROV_REAPER_SCHEDULE"])
    running = start_app(env, clock, tmp_path, arm, broker)
    app = next(running)
    try:
        app.enqueue(json.dumps(app.request()))  # its subscription is now one the app uses
        reaped = app.wait_for(
            lambda: [e for e in app.events() if e["step"] == "reaped"
                     and e["requestId"] == "soon-1"], timeout=120,
        )  # fmt: skip
    finally:
        running.close()
    assert reaped[0]["details"]["expiresAt"] == _tags("soon-1", in_an_hour)[EXPIRES_AT_TAG]
    assert any(r.path.endswith("/agentPools/soon") for r in arm.requests if r.method == "DELETE")
