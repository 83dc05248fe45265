"""infra/permissions.json against what uses it: the Bicep, docs/deploy.md and the sandbox.

Covers: each custom role is built by the Bicep module the manifest names from the manifest
itself (loadJsonContent and a for over its actions), with a role name unique per scope and identity
and its assignment depending on the new definition; every built-in role the Bicep assigns is in
the manifest and every one in the manifest is assigned where it says, on the resource its
`assignedTo` names, with each of its data actions said what it is for; no role broader than the
manifest (no Contributor, no AKS Contributor Role); docs/deploy.md's table is the manifest's;
the sandbox enforces exactly the manifest's actions (on the allowed resource groups only); the
deployment's region is one offering Flex Consumption and the Flex site sets no ftpsState.
"""

from __future__ import annotations

import json
import re

import pytest

from sandbox.arm.authorization import manifest_grants
from tests.conftest import ROOT
from tests.infra.bicep import read, resources, target_scope
from tests.infra.permissions_table import DEPLOY_DOC, MANIFEST, render, table_in

INFRA = ROOT / "infra"
PERMISSIONS = json.loads(MANIFEST.read_text(encoding="utf-8"))
CUSTOM_ROLES = sorted(PERMISSIONS["customRoles"].items())
BUILT_IN_ROLES = PERMISSIONS["builtInRoles"]
ROLE_ID = re.compile(r"'Microsoft.Authorization/roleDefinitions', '([0-9a-f-]{36})'")


def test_the_deploy_docs_table_is_the_manifests() -> None:
    assert table_in(read(DEPLOY_DOC)) == render(PERMISSIONS), (
        "docs/deploy.md is stale: run `.venv/bin/python -m tests.infra.permissions_table`"
    )


@pytest.mark.parametrize(("key", "role"), CUSTOM_ROLES, ids=[key for key, _ in CUSTOM_ROLES])
def test_each_custom_role_is_built_from_the_manifest(key: str, role: dict) -> None:
    text = read(ROOT / role["bicep"])
    assert "loadJsonContent('../permissions.json')" in text
    if "var role = permissions.customRoles[roleKey]" in text:  # one module, several roles
        assert f"'{role['bicep'].removeprefix('infra/')}'" in read(INFRA / "main.bicep")
        assert re.search(rf"^    roleKey: '{key}'$", read(INFRA / "main.bicep"), re.M)
    else:
        assert re.search(rf"^var role = permissions\.customRoles\.{key}$", text, re.M)
    (definition,) = [r for r in resources(text) if r.type.endswith("/roleDefinitions")]
    properties = definition.body["properties"]
    assert isinstance(properties, dict)
    assert properties["permissions"] == [
        {"actions": "[for entry in role.actions: entry.action]", "notActions": []}
    ]
    assert properties["roleName"] == "'${role.roleName} (${roleId})'", "unique per tenant"
    assert re.search(r"^var roleId = guid\(\w+\(\)\.id, principalId, '[\w${}-]+'\)$", text, re.M)
    (assignment,) = [
        r
        for r in resources(text)
        if r.type.endswith("/roleAssignments")
        and isinstance(r.body["properties"], dict)
        and r.body["properties"]["roleDefinitionId"] == f"{definition.symbol}.id"
    ]
    assigned = assignment.body["properties"]
    assert isinstance(assigned, dict)
    assert assigned["principalType"] == "ServicePrincipal"


def test_built_in_roles_are_the_manifests_at_the_manifests_modules() -> None:
    assigned = {
        (path.relative_to(ROOT).as_posix(), role_id)
        for path in INFRA.rglob("*.bicep")
        for role_id in ROLE_ID.findall(read(path))
    }
    listed = {(role["bicep"], role["id"]) for role in PERMISSIONS["builtInRoles"]}
    assert assigned == listed


@pytest.mark.parametrize("role", BUILT_IN_ROLES, ids=[r["role"] for r in BUILT_IN_ROLES])
def test_each_built_in_role_is_assigned_on_the_manifests_resource(role: dict) -> None:
    """The data plane's roles at the narrowest scope the manifest names (the events topic, not
    the namespace), and each of the role's data actions said what it is for."""
    text = read(ROOT / role["bicep"])
    var = re.search(
        rf"^var (\w+) = subscriptionResourceId\('Microsoft.Authorization/roleDefinitions', "
        rf"'{role['id']}'\)$",
        text,
        re.M,
    )
    assert var, f"{role['bicep']} names no variable for {role['role']} {role['id']}"
    (assignment,) = [
        r
        for r in resources(text)
        if r.type == "Microsoft.Authorization/roleAssignments"
        and isinstance(r.body["properties"], dict)
        and r.body["properties"]["roleDefinitionId"] == var.group(1)
    ]
    assert assignment.body.get("scope", f"{target_scope(text)}()") == role["assignedTo"]
    assert role["dataActions"], f"{role['role']}: list the data actions its definition grants"
    for entry in role["dataActions"]:
        assert re.fullmatch(r"Microsoft\.\w+/[\w*/]+", entry["dataAction"]), entry
        assert len(entry["for"].split()) >= 4, f"{entry['dataAction']}: say what needs it"


@pytest.mark.parametrize(
    "role_id",
    ["b24988ac-6180-42a0-ab88-20f7382dd24c", "ed7f3fbd-7b88-4dd4-9017-9adb7ce333f8"],
    ids=["contributor", "aks-contributor-role"],
)
def test_no_broader_built_in_role_is_assigned(role_id: str) -> None:
    for path in INFRA.rglob("*.bicep"):
        assert role_id not in read(path), f"{path.name} assigns {role_id}"


def test_the_sandbox_enforces_exactly_the_manifests_actions() -> None:
    grants = manifest_grants([("sub", "group")])
    enforced = {action for grant in grants for action in grant.actions}
    listed = {e["action"] for _, role in CUSTOM_ROLES for e in role["actions"]}
    assert enforced == listed


def test_the_region_offers_flex_consumption_and_the_site_sets_no_ftps_state() -> None:
    main = read(INFRA / "main.bicep")
    allowed = re.search(
        r"@allowed\(\[\n(.*?)\]\)\n@metadata\(\{ azd: \{ type: 'location' \} \}\)", main, re.S
    )
    assert allowed, "param location has no @allowed list of Flex Consumption regions"
    regions = re.findall(r"'(\w+)'", allowed.group(1))
    assert "eastus" in regions
    assert "westeurope" in regions
    assert not re.search(r"^\s*ftpsState:", read(INFRA / "modules" / "functionapp.bicep"), re.M)
