"""The ARM simulator's RBAC for the app's identity, driven by the real azure-mgmt clients and
azure-identity's managed-identity credential.

Covers: each ARM request mapped to ARM's action string (agent-pool PUT → `…/agentPools/write`,
a resource group's DELETE, a POST action, feature and provider registration; async-operation
status unchecked); the app's token refused what infra/permissions.json does not grant (deleting
a resource group) with ARM's 403 `AuthorizationFailed` body and message naming client, action
and scope, while an owner's token does it; a managed-identity token asked for with the app's
client id is the app's, one without it the owner's; a list at the subscription answers only the
clusters in resource groups the app holds rights on.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import ManagedIdentityCredential
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.resource.resources import ResourceManagementClient

from sandbox import tls
from sandbox.arm import ArmSimulator, ArmTimings
from sandbox.arm.authorization import manifest_grants, required_action
from sandbox.arm.identity import APP_CLIENT_ID, APP_OBJECT_ID
from sandbox.clock import ManualClock
from shared.credentials import StaticTokenCredential

SUBSCRIPTION = "0b1f6471-1bf0-4dda-aec3-111122223333"
APP_TOKEN = "sandbox-token"
OWNER_TOKEN = "owner-token"
SUB = f"/subscriptions/{SUBSCRIPTION}"
CS = "Microsoft.ContainerService"
MC = f"{SUB}/resourceGroups/rg/providers/{CS}/managedClusters/aks"
FEATURE = f"{SUB}/providers/Microsoft.Features/providers/{CS}/features/ManagedGPUExperiencePreview"


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        pytest.param(
            "PUT", MC + "/agentPools/gpu", f"{CS}/managedClusters/agentPools/write", id="pool-put"
        ),
        pytest.param(
            "DELETE",
            MC + "/agentPools/gpu",
            f"{CS}/managedClusters/agentPools/delete",
            id="pool-delete",
        ),
        pytest.param(
            "GET", MC + "/agentPools", f"{CS}/managedClusters/agentPools/read", id="pool-list"
        ),
        pytest.param("PUT", MC, f"{CS}/managedClusters/write", id="cluster-put"),
        pytest.param(
            "POST",
            MC + "/listClusterUserCredential",
            f"{CS}/managedClusters/listClusterUserCredential/action",
            id="credentials",
        ),
        pytest.param(
            "GET",
            f"{SUB}/providers/{CS}/managedClusters",
            f"{CS}/managedClusters/read",
            id="cluster-list",
        ),
        pytest.param(
            "DELETE",
            f"{SUB}/resourcegroups/rg",
            "Microsoft.Resources/subscriptions/resourcegroups/delete",
            id="group-delete",
        ),
        pytest.param(
            "GET", FEATURE, "Microsoft.Features/providers/features/read", id="feature-get"
        ),
        pytest.param(
            "POST",
            FEATURE + "/register",
            "Microsoft.Features/providers/features/register/action",
            id="feature-register",
        ),
        pytest.param(
            "GET",
            f"{SUB}/providers/{CS}",
            "Microsoft.Resources/subscriptions/providers/read",
            id="provider-get",
        ),
        pytest.param(
            "POST",
            f"{SUB}/providers/{CS}/register",
            f"{CS}/register/action",
            id="provider-register",
        ),
        pytest.param(
            "GET",
            f"{SUB}/providers/{CS}/locations/eastus/operations/1",
            None,
            id="operation-status",
        ),
    ],
)
def test_each_request_maps_to_arms_action(method: str, path: str, action: str | None) -> None:
    assert required_action(method, path) == action


@pytest.fixture
def arm(ca: tls.TestCA) -> Iterator[ArmSimulator]:
    tokens = frozenset({APP_TOKEN, OWNER_TOKEN})
    timings = ArmTimings(retry_after_seconds=0)
    allowed = ((SUBSCRIPTION, "rg-a"), (SUBSCRIPTION, "rg-b"))
    with ArmSimulator(
        ManualClock(), ca, tokens=tokens, timings=timings, app_resource_groups=allowed
    ) as server:
        for group in ("rg-a", "rg-b", "rg-not-allowed"):
            server.add_resource_group(SUBSCRIPTION, group)
            server.add_cluster(SUBSCRIPTION, group, f"aks-{group}")
        yield server


def resources(arm: ArmSimulator, credential: object) -> ResourceManagementClient:
    return ResourceManagementClient(
        credential,  # type: ignore[arg-type]
        SUBSCRIPTION,
        base_url=arm.url,
        connection_verify=str(arm.ca.ca_path),
        polling_interval=0.01,
        credential_scopes=[f"{arm.url}/.default"],  # the audience the sandbox's tokens carry
    )


def test_the_app_may_not_delete_a_resource_group_an_owner_may(arm: ArmSimulator) -> None:
    app = StaticTokenCredential(APP_TOKEN)
    with resources(arm, app) as client, pytest.raises(HttpResponseError) as refused:
        client.resource_groups.begin_delete("rg-a").result()
    assert refused.value.status_code == 403
    assert refused.value.error is not None
    assert refused.value.error.code == "AuthorizationFailed"
    assert refused.value.error.message == (
        f"The client '{APP_OBJECT_ID}' with object id '{APP_OBJECT_ID}' does not have "
        "authorization to perform action 'Microsoft.Resources/subscriptions/resourcegroups/delete' "
        f"over scope '/subscriptions/{SUBSCRIPTION}/resourcegroups/rg-a' or the scope is invalid. "
        "If access was recently granted, please refresh your credentials."
    )
    with resources(arm, StaticTokenCredential(OWNER_TOKEN)) as client:
        client.resource_groups.begin_delete("rg-a").result()
        assert not client.resource_groups.check_existence("rg-a")


def test_a_managed_identity_token_for_the_apps_client_id_is_the_apps(
    arm: ArmSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{arm.url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", arm.identity_header)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(arm.ca.ca_path))
    app = ManagedIdentityCredential(client_id=APP_CLIENT_ID, connection_verify=str(arm.ca.ca_path))
    with resources(arm, app) as client, pytest.raises(HttpResponseError) as refused:
        client.resource_groups.begin_delete("rg-b").result()
    assert refused.value.error is not None
    assert refused.value.error.code == "AuthorizationFailed"
    owner = ManagedIdentityCredential(connection_verify=str(arm.ca.ca_path))
    with resources(arm, owner) as client:
        client.resource_groups.begin_delete("rg-b").result()
        assert not client.resource_groups.check_existence("rg-b")


def test_the_app_holds_its_aks_role_only_on_the_allowed_resource_groups(
    arm: ArmSimulator,
) -> None:
    """infra/main.bicep assigns the resource-group role once per allowed resource group, so a
    group outside the list is as closed to the app as to a stranger; the owner still sees it."""
    with aks_for(arm, APP_TOKEN) as aks:
        assert aks.managed_clusters.get("rg-b", "aks-rg-b").name == "aks-rg-b"
        assert sorted(str(c.name) for c in aks.managed_clusters.list()) == ["aks-rg-a", "aks-rg-b"]
        with pytest.raises(HttpResponseError) as refused:
            aks.managed_clusters.get("rg-not-allowed", "aks-rg-not-allowed")
    assert refused.value.status_code == 403
    assert refused.value.error is not None
    assert refused.value.error.code == "AuthorizationFailed"
    assert (
        "'Microsoft.ContainerService/managedClusters/read' over scope "
        f"'/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-not-allowed/" in str(refused.value)
    )
    with aks_for(arm, OWNER_TOKEN) as aks:
        assert len(list(aks.managed_clusters.list())) == 3


def aks_for(arm: ArmSimulator, token: str) -> ContainerServiceClient:
    return ContainerServiceClient(
        StaticTokenCredential(token),
        SUBSCRIPTION,
        base_url=arm.url,
        connection_verify=str(arm.ca.ca_path),
    )


def test_a_subscription_list_shows_only_the_groups_the_app_holds_rights_on(
    arm: ArmSimulator,
) -> None:
    arm.set_app_permissions(manifest_grants([(SUBSCRIPTION, "rg-a")]))
    with aks_for(arm, APP_TOKEN) as aks:
        assert [c.name for c in aks.managed_clusters.list()] == ["aks-rg-a"]
        with pytest.raises(HttpResponseError) as refused:
            aks.managed_clusters.get("rg-b", "aks-rg-b")
    assert refused.value.status_code == 403
    assert "'Microsoft.ContainerService/managedClusters/read'" in str(refused.value.message)
