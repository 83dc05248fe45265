"""Azure RBAC for the app's identity: each ARM request mapped to its action, checked against
infra/permissions.json, refused with ARM's `AuthorizationFailed` otherwise.

Who is who: the app signs in with the sandbox's static token (GPUPROV_STATIC_TOKEN) or with a
managed-identity token issued for APP_CLIENT_ID (identity.py); both are the app's identity and
get only what the manifest grants. Every other accepted token (the Azure CLI's through `gpuprov
sandbox env`, tests' owner token) keeps owner rights, as the person who deploys has them.

The action of a request follows ARM's operation names (the provider operations list and the
built-in role definitions use the same strings): the resource type path, then `read` (GET,
HEAD), `write` (PUT, PATCH), `delete`, or `<name>/action` for a POST to a resource's action,
e.g. PUT agentPools → `Microsoft.ContainerService/managedClusters/agentPools/write`, DELETE a
resource group → `Microsoft.Resources/subscriptions/resourceGroups/delete`.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.arm.model import ArmError

MANIFEST_PATH = Path(__file__).resolve().parents[2] / "infra" / "permissions.json"

_VERBS = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}
_UNCHECKED_TYPES = frozenset({"operations", "operationresults", "operationstatuses"})
"""Async-operation status URLs: ARM gives them to the caller that started the operation and no
role grants them separately (the built-in AKS Contributor Role has only managedClusters
read/write, yet `az aks create` with it polls its operation), so they are not checked here."""


@dataclass(frozen=True)
class Grant:
    """Actions (ARM wildcards allowed) at a scope and everything under it, as a role assignment
    is inherited; a `*` segment of `scope` stands for any one segment (every group)."""

    scope: str
    actions: tuple[str, ...]

    def covers(self, scope: str, action: str) -> bool:
        granted, asked = _segments(self.scope), _segments(scope)
        inside = len(asked) >= len(granted) and all(
            g in ("*", a) for g, a in zip(granted, asked, strict=False)
        )
        return inside and self.allows(action)

    def narrower_than(self, scope: str) -> bool:
        """The grant's scope lies strictly inside `scope` (e.g. a group inside a subscription)."""
        granted, asked = _segments(self.scope), _segments(scope)
        return len(granted) > len(asked) and all(
            g in ("*", a) for g, a in zip(granted, asked, strict=False)
        )

    def allows(self, action: str) -> bool:
        return any(fnmatch.fnmatch(action.lower(), granted.lower()) for granted in self.actions)


def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


def manifest_grants(
    resource_groups: Iterable[tuple[str, str]], manifest: dict[str, Any] | None = None
) -> tuple[Grant, ...]:
    """The manifest's custom roles where the deployment assigns them: the resource-group role on
    each allowed (subscription, resource group) and nowhere else (infra/main.bicep deploys
    target-group-roles.bicep once per entry of `allowedResourceGroups`), and the
    subscription roles at those groups' subscriptions: the capacity reader always, and feature
    registration as deployed with grantFeatureRegistration=true (so the examples' preview feature
    can be registered)."""
    roles = (manifest or load_manifest())["customRoles"]

    def actions(role: str) -> tuple[str, ...]:
        return tuple(entry["action"] for entry in roles[role]["actions"])

    groups = tuple(resource_groups)
    subscriptions = dict.fromkeys(subscription.lower() for subscription, _ in groups)
    return (
        *(
            Grant(f"/subscriptions/{sub}/resourceGroups/{name}", actions("resourceGroup"))
            for sub, name in groups
        ),
        *(
            Grant(f"/subscriptions/{sub}", actions("subscription") + actions("capacity"))
            for sub in subscriptions
        ),
    )


def required_action(method: str, path: str) -> str | None:
    """The RBAC action ARM checks for this request, or None where it checks none."""
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        return None  # /subscriptions, /tenants: ARM lists what the caller may see
    rest = parts[2:]
    verb = _VERBS.get(method.upper())
    if not rest:
        return f"Microsoft.Resources/subscriptions/{verb or 'read'}"
    if rest[0].lower() == "resourcegroups":
        if len(rest) <= 2:  # ARM spells the type as the URL does ('resourcegroups' from az)
            return f"Microsoft.Resources/subscriptions/{rest[0]}/{verb or 'read'}"
        rest = rest[2:]
    if rest[0].lower() != "providers":
        return None
    if len(rest) == 1:
        return "Microsoft.Resources/subscriptions/providers/read"
    namespace, segments = rest[1], rest[2:]
    if not segments:
        return "Microsoft.Resources/subscriptions/providers/read"
    if any(name.lower() in _UNCHECKED_TYPES for name in segments[0::2]):
        return None
    if method.upper() == "POST":
        if len(segments) == 1:  # POST /providers/{ns}/register
            return f"{namespace}/{segments[0]}/action"
        types = segments[0:-1:2]
        return f"{namespace}/{'/'.join(types)}/{segments[-1]}/action"
    types = segments[0::2]
    return f"{namespace}/{'/'.join(types)}/{verb or 'read'}"


def authorize(grants: tuple[Grant, ...], object_id: str, method: str, path: str) -> bool:
    """Raise ARM's AuthorizationFailed when no grant covers the request.

    Returns True when the request lists a collection the caller may read only in part (a list
    at a subscription with rights on some of its groups): ARM answers it with only the items
    inside granted scopes (`visible` filters them).
    """
    action = required_action(method, path)
    if action is None or any(grant.covers(path, action) for grant in grants):
        return False
    if method.upper() == "GET" and any(
        grant.allows(action) and grant.narrower_than(path.lower().split("/providers/")[0])
        for grant in grants
    ):
        return True
    # ARM's words (as az prints them, e.g. for `az group delete` without the right):
    # "The client '<id>' with object id '<id>' does not have authorization to perform action
    # 'Microsoft.Resources/subscriptions/resourcegroups/delete' over scope '/subscriptions/<sub>/
    # resourcegroups/<name>' or the scope is invalid. If access was recently granted, please
    # refresh your credentials."
    raise ArmError(
        403,
        "AuthorizationFailed",
        f"The client '{object_id}' with object id '{object_id}' does not have authorization to "
        f"perform action '{action}' over scope '{path}' or the scope is invalid. If access was "
        "recently granted, please refresh your credentials.",
    )


def visible(grants: tuple[Grant, ...], method: str, path: str, body: Any) -> Any:
    """A partly readable list's body with only the items the caller may read."""
    action = required_action(method, path)
    if action is None or not isinstance(body, dict) or not isinstance(body.get("value"), list):
        return body
    items = [
        item
        for item in body["value"]
        if any(grant.covers(str(item.get("id", "")), action) for grant in grants)
    ]
    return {**body, "value": items}


def _segments(scope: str) -> list[str]:
    return [part.lower() for part in scope.split("/") if part]
