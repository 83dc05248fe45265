"""The preflight step in the durable sequence, on the sandbox (real SDKs into the ARM simulator,
whose default scenario has no ND H100 v5 quota anywhere — sandbox/arm/compute.py).

Covers: with an H100 first and an A100 alternative, the run picks the A100 and the H100 pool is
never PUT (no failed attempt); the H100 alone fails in the preflight, before any PUT, naming the
quota (limit, used, needed) and the quota request page; a budget below the estimate is refused
before any PUT with both numbers; the Compute reads are ones the permissions manifest grants.
"""

from __future__ import annotations

from typing import Any

from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from tests.builders import seed_document
from tests.orchestration.conftest import World

H100, A100 = "Standard_ND96isr_H100_v5", "Standard_NC24ads_A100_v4"


def finished(world: World, document: dict[str, Any]) -> dict[str, Any]:
    status = world.host.wait_for_completion(world.start(document), timeout=120)
    assert status.runtime_status == OrchestrationRuntimeStatus.Completed, status.error
    output: dict[str, Any] = status.output
    return output


def writes(world: World) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in world.arm.requests if r.method in ("PUT", "DELETE")]


def test_h100_without_quota_falls_to_the_a100_with_no_failed_attempt(world: World) -> None:
    document = seed_document(nodePool={"vmSize": H100, "alternativeVmSizes": [A100]})
    output = finished(world, document)
    assert output["status"] == "completed", output
    assert output["vmSize"] == A100
    events = world.events()
    assert ("create-node-pool", "failed") not in events
    assert events[:2] == [("preflight", "started"), ("preflight", "succeeded")]
    pool_puts = [r for r in world.arm.requests if r.method == "PUT" and "/agentPools/" in r.path]
    assert [r.body["properties"]["vmSize"] for r in pool_puts] == [A100], "H100 never PUT"
    reads = {r.path.rsplit("/", 1)[-1] for r in world.arm.requests if "Microsoft.Compute" in r.path}
    assert reads == {"skus", "usages"}
    assert all(r.status == 200 for r in world.arm.requests if "Microsoft.Compute" in r.path)


def test_h100_alone_fails_before_any_put_and_names_the_quota(world: World) -> None:
    status = world.host.wait_for_completion(
        world.start(seed_document(nodePool={"vmSize": H100})), timeout=120
    )
    assert status.output["status"] == "failed"
    assert status.output["failedStep"] == "preflight"
    assert writes(world) == [], "nothing was created, nothing deleted"
    assert world.events() == [
        ("preflight", "started"),
        ("preflight", "failed"),
        ("cleanup", "started"),
        ("cleanup", "succeeded"),
        ("failed", "failed"),
    ]
    message = status.output["message"]
    assert "needs 96 vCPUs of standardNDSH100v5Family in eastus: limit 0, used 0" in message
    assert status.output["cost"] is None


def test_a_budget_below_the_estimate_is_refused_before_any_put(world: World) -> None:
    document = seed_document(budget={"maxCost": 0.1, "currency": "USD"})
    status = world.host.wait_for_completion(world.start(document), timeout=120)
    assert status.output["status"] == "failed"
    assert status.output["failedStep"] == "preflight"
    assert writes(world) == []
    message = status.output["message"]
    # 1 node x 0.526 USD/h (NC4as_T4_v3) x (15 min provisioning + 30 min job timeout) = 0.39
    assert "The estimate 0.39 USD" in message
    assert "over the budget of 0.10 USD (request)" in message
