"""The app's ARM calls against infra/permissions.json, with the sandbox enforcing it.

Covers: the examples (a new cluster, a pool on an existing cluster, a spot pool with a preview
feature) complete with the app held to the manifest, every ARM call they make maps to an action
the manifest grants, and every action of the manifest's resource-group and subscription roles is
used by them (nothing granted "just in case"); removing one action fails the step that needs it
with ARM's `AuthorizationFailed` and a hint naming the action and the manifest.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus
from azure.servicebus import ServiceBusClient, ServiceBusReceiveMode

from sandbox.arm.authorization import Grant, load_manifest, manifest_grants, required_action
from tests.conftest import EXAMPLES
from tests.orchestration.conftest import TOPIC, World

ON_OTHER_PATHS = {
    "Microsoft.Resources/subscriptions/providers/read": "read while a provider is still "
    "Registering after register-features registered it again (shared/arm.py _refresh_providers); "
    "the sandbox registers it at once",
}
"""Actions the manifest grants for paths these runs do not take, and which path."""


def example(stem: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(next(p for p in EXAMPLES if p.stem == stem).read_text())
    return document


def granted_actions() -> set[str]:
    roles = load_manifest()["customRoles"].values()
    return {entry["action"] for role in roles for entry in role["actions"]}


def run(world: World, document: dict[str, Any]) -> dict[str, Any]:
    status = world.host.wait_for_completion(world.start(document), timeout=120)
    assert status.runtime_status == OrchestrationRuntimeStatus.Completed, status.error
    output: dict[str, Any] = status.output
    return output


def test_every_example_runs_within_the_manifest_and_uses_all_of_it(world: World) -> None:
    world.existing_cluster("platform-rg", "platform-aks", "westeurope")
    world.existing_cluster("batch-rg", "batch-aks", "eastus2")
    world.arm.clear_requests()
    for stem in ("seed-walkthrough", "existing-cluster-gpu-pool", "spot-pool-with-fallback"):
        assert run(world, example(stem))["status"] == "completed", stem
    requests = world.arm.requests
    assert [r for r in requests if r.status == 403] == []
    used = {action for r in requests if (action := required_action(r.method, r.path))}
    grants = manifest_grants()
    assert all(any(g.allows(action) for g in grants) for action in used), used
    unused = {a for a in granted_actions() if not any(Grant("/", (a,)).allows(u) for u in used)}
    unused -= set(ON_OTHER_PATHS)
    assert unused == set(), f"the manifest grants what no example needs: {sorted(unused)}"


def failed_events(world: World) -> list[dict[str, Any]]:
    """The CloudEvents the `failures` subscription received (its filter: status = failed)."""
    found: list[dict[str, Any]] = []
    with ServiceBusClient.from_connection_string(world.broker.connection_string) as client:
        receiver = client.get_subscription_receiver(
            TOPIC, "failures", receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE
        )
        with receiver:
            while batch := receiver.receive_messages(max_message_count=100, max_wait_time=1):
                found.extend(json.loads(str(message)) for message in batch)
    return found


def without(action: str) -> tuple[Grant, ...]:
    return tuple(
        Grant(g.scope, tuple(a for a in g.actions if a != action)) for g in manifest_grants()
    )


@pytest.mark.parametrize(
    ("stem", "action", "step"),
    [
        ("seed-walkthrough", "Microsoft.ContainerService/managedClusters/write", "create-cluster"),
        (
            "seed-walkthrough",
            "Microsoft.ContainerService/managedClusters/agentPools/write",
            "create-node-pool",
        ),
        (
            "seed-walkthrough",
            "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
            "install-device-plugin",
        ),
        (
            "spot-pool-with-fallback",
            "Microsoft.Features/providers/features/read",
            "register-features",
        ),
    ],
    ids=["cluster-write", "pool-write", "user-credentials", "feature-read"],
)
def test_a_missing_action_fails_its_step_naming_the_action(
    world: World, stem: str, action: str, step: str
) -> None:
    world.existing_cluster("batch-rg", "batch-aks", "eastus2")
    world.arm.set_app_permissions(without(action))
    output = run(world, example(stem))
    assert output["status"] == "failed"
    assert output["failedStep"] == step
    failures = failed_events(world)
    assert {e["data"]["status"] for e in failures} == {"failed"}, "the subscription filters"
    (event,) = [e for e in failures if e["data"]["step"] == step]
    error = event["data"]["error"]
    assert event["data"]["errorCode"] == error["code"]
    assert error["code"] == "AuthorizationFailed"
    assert f"perform action '{action}'" in error["message"]
    assert action in error["hint"]
    assert "infra/permissions.json" in error["hint"]
