"""Resource groups and the subscription and tenant lists ARM answers with."""

from __future__ import annotations

from typing import Any

from sandbox.arm import identity
from sandbox.arm.model import ArmError, Reply


class ResourceGroups:
    """Resource groups per subscription, and the routes over them."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], dict[str, Any]] = {}

    def put(self, sub: str, rg: str, body: Any) -> Reply:
        if not isinstance(body, dict) or not body.get("location"):
            raise ArmError(400, "LocationRequired", "The location property is required.")
        key = (sub.lower(), rg.lower())
        existing = self._groups.get(key)
        group = {
            "id": f"/subscriptions/{sub}/resourceGroups/{existing['name'] if existing else rg}",
            "name": existing["name"] if existing else rg,
            "type": "Microsoft.Resources/resourceGroups",
            "location": existing["location"] if existing else body["location"],
            "tags": dict(body.get("tags") or {}),
            "properties": {"provisioningState": "Succeeded"},
        }
        self._groups[key] = group
        return Reply(200 if existing else 201, group)

    def require(self, sub: str, rg: str) -> dict[str, Any]:
        group = self._groups.get((sub.lower(), rg.lower()))
        if group is None:
            raise ArmError(
                404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found."
            )
        return group

    def get(self, sub: str, rg: str) -> Reply:
        return Reply(200, self.require(sub, rg))

    def exists_reply(self, sub: str, rg: str) -> Reply:
        return Reply(204 if (sub.lower(), rg.lower()) in self._groups else 404)

    def exists(self, sub: str, rg: str) -> bool:
        return (sub.lower(), rg.lower()) in self._groups

    def remove(self, sub: str, rg: str) -> None:
        self.require(sub, rg)
        del self._groups[(sub.lower(), rg.lower())]

    def operation_result(self, sub: str, operation_id: str) -> Reply:
        """A resource-group deletion's result: done (the simulator deletes groups at once)."""
        return Reply(200)

    def subscription_list(self) -> Reply:
        known = {identity.SANDBOX_SUBSCRIPTION_ID} | {s for s, _ in self._groups}
        return Reply(200, {"value": [identity.subscription_json(s) for s in sorted(known)]})

    def subscription_get(self, sub: str) -> Reply:
        return Reply(200, identity.subscription_json(sub))

    def listing(self, sub: str) -> Reply:
        found = [g for (s, _), g in self._groups.items() if s == sub.lower()]
        return Reply(200, {"value": found})
