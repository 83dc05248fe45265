"""The app's ARM calls against infra/permissions.json, with the sandbox enforcing it.

Covers: the examples (a new cluster, a pool on an existing cluster, a spot pool with a preview
feature) complete with the app held to the manifest, every ARM call they make maps to an action
the manifest grants, and every action of the manifest's resource-group and subscription roles is
used by them (nothing granted "just in case"); the app's AKS role only on the resource groups
its settings allow; removing any one action of the manifest fails the step that needs it with
ARM's `AuthorizationFailed` and a hint naming the action and the manifest; a role still
propagating right after the deployment is waited out, while long after it the step fails at once.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus
from azure.servicebus import ServiceBusClient, ServiceBusReceiveMode

from sandbox.arm.authorization import Grant, load_manifest, manifest_grants, required_action
from sandbox.world import allowed_resource_groups
from shared.settings import current_settings
from tests.conftest import EXAMPLES
from tests.orchestration.conftest import TOPIC, World
from tests.sandbox_fixtures import SUBSCRIPTION

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
    grants = world.arm.app_grants
    assert all(any(g.allows(action) for g in grants) for action in used), used
    unused = {a for a in granted_actions() if not any(Grant("/", (a,)).allows(u) for u in used)}
    unused -= set(ON_OTHER_PATHS)
    assert unused == set(), f"the manifest grants what no example needs: {sorted(unused)}"


def test_the_app_holds_its_aks_role_on_the_groups_its_settings_allow(world: World) -> None:
    """As infra/main.bicep: one resource-group role per allowed resource group, the same names
    in GPUPROV_ALLOWED_RESOURCE_GROUPS, and no role on any other group."""
    allowed = current_settings().allowed_resource_groups
    granted = {
        scope.split("/")[-1].lower()  # the allow-list compares names case-insensitively
        for grant in world.arm.app_grants
        if "/resourceGroups/" in (scope := grant.scope)
    }
    assert granted == set(allowed) == {"myresourcegroup", "platform-rg", "batch-rg"}
    world.arm.add_resource_group(SUBSCRIPTION, "someone-elses-rg")
    other = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/someone-elses-rg"
    read = "Microsoft.ContainerService/managedClusters/read"
    assert not any(grant.covers(other, read) for grant in world.arm.app_grants)


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
    """The sandbox deployment's grants with one action taken out of the manifest."""
    manifest = load_manifest()
    for role in manifest["customRoles"].values():
        role["actions"] = [entry for entry in role["actions"] if entry["action"] != action]
    return manifest_grants(allowed_resource_groups(), manifest)


CS = "Microsoft.ContainerService/managedClusters"
MISSING = {
    f"{CS}/read": ("seed-walkthrough", "create-cluster"),
    f"{CS}/write": ("seed-walkthrough", "create-cluster"),
    f"{CS}/delete": ("seed-walkthrough", "cleanup"),
    f"{CS}/agentPools/read": ("existing-cluster-gpu-pool", "create-node-pool"),
    f"{CS}/agentPools/write": ("seed-walkthrough", "create-node-pool"),
    f"{CS}/agentPools/delete": ("existing-cluster-gpu-pool", "cleanup"),
    f"{CS}/listClusterUserCredential/action": ("seed-walkthrough", "install-device-plugin"),
    "Microsoft.Features/providers/features/read": ("spot-pool-with-fallback", "register-features"),
    "*/register/action": ("spot-pool-with-fallback", "register-features"),
}
"""Each action of the manifest, the example that needs it and the step that fails without it."""


SUBSUMED = {
    "Microsoft.Features/providers/features/register/action": "*/register/action",
}
"""Actions the manifest lists for the reader that a wildcard it also grants covers: ARM's `*`
matches any characters, `/` included ("*/read" grants every resource type's read: Azure RBAC
docs, "Azure resource provider operations" and role definitions, wildcard permissions)."""


DEGRADES = {
    "Microsoft.Compute/skus/read": "preflight leaves SKU restrictions unchecked and says so",
    "Microsoft.Compute/locations/usages/read": "preflight leaves vCPU quota unchecked and says so",
}
"""Actions whose absence does not fail a step: the preflight is advice, and without these reads it
reports what it could not check (tests/integration/test_preflight_reads.py)."""


def test_every_granted_action_has_a_step_that_fails_without_it() -> None:
    unfailing = set(ON_OTHER_PATHS) | set(SUBSUMED) | set(DEGRADES)
    assert set(MISSING) == granted_actions() - unfailing
    for action, wildcard in SUBSUMED.items():
        assert Grant("/", (wildcard,)).allows(action)


@pytest.mark.parametrize(
    ("action", "stem", "step"),
    [(action, stem, step) for action, (stem, step) in MISSING.items()],
    ids=[action.removeprefix(CS + "/") for action in MISSING],
)
def test_a_missing_action_fails_its_step_naming_the_action(
    world: World, action: str, stem: str, step: str
) -> None:
    world.existing_cluster("platform-rg", "platform-aks", "westeurope")
    world.existing_cluster("batch-rg", "batch-aks", "eastus2")
    world.arm.set_app_permissions(without(action))
    assert world.arm.app_grants != manifest_grants(allowed_resource_groups())
    output = run(world, example(stem))
    assert output["status"] == "failed"
    assert output["failedStep"] == step
    failures = failed_events(world)
    assert {e["data"]["status"] for e in failures} == {"failed"}, "the subscription filters"
    (event,) = [e for e in failures if e["data"]["step"] == step]
    error = event["data"]["error"]
    assert event["data"]["errorCode"] == error["code"]
    assert error["code"] == "AuthorizationFailed"
    named = re.search(r"perform action '([^']+)'", error["message"])
    assert named, error["message"]
    assert Grant("/", (action,)).allows(named.group(1)), "ARM names the concrete action"
    assert named.group(1) in error["hint"]
    assert "infra/permissions.json" in error["hint"]


def test_a_role_still_propagating_after_deployment_is_waited_out(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right after `azd provision` (GPUPROV_ROLES_ASSIGNED_AT) the pool role has not reached
    ARM yet: create-node-pool's AuthorizationFailed is retried until it has, and the run
    completes instead of failing."""
    monkeypatch.setenv("GPUPROV_ROLES_ASSIGNED_AT", datetime.now(UTC).isoformat())
    current_settings.cache_clear()
    world.existing_cluster("platform-rg", "platform-aks", "westeurope")
    world.arm.set_app_permissions(without(f"{CS}/agentPools/write"))
    world.arm.set_app_permissions(
        manifest_grants(allowed_resource_groups()), effective_at=world.clock.now() + 300
    )
    assert run(world, example("existing-cluster-gpu-pool"))["status"] == "completed"
    refused = [r for r in world.arm.requests if r.status == 403]
    assert refused, "the pool PUT was refused while the role propagated"
    assert all(r.method == "PUT" and "/agentPools/" in r.path for r in refused)


def test_a_missing_action_long_after_deployment_fails_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPUPROV_ROLES_ASSIGNED_AT", "2020-01-01T00:00:00Z")
    current_settings.cache_clear()
    world.arm.set_app_permissions(without(f"{CS}/agentPools/write"))
    output = run(world, example("seed-walkthrough"))
    assert (output["status"], output["failedStep"]) == ("failed", "create-node-pool")
    assert len([r for r in world.arm.requests if r.status == 403]) == 1
