"""What the provisioner owns: the tag and label names it writes, and the one rule that says
whether an Azure resource or a Kubernetes object is a request's.

A resource is a request's when it carries this deployment's owner and the request's id, as
tags (ARM) or labels (Kubernetes). The run and the reaper ask the same rule (`Ownership.owns`),
and anything that fails it is refused with `not_owned`, never modified (CAPZ's rule for
unmanaged resources).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from shared.errors import StepError

REQUEST_ID_TAG = "gpuprov-request-id"
OWNER_TAG = "gpuprov-owner"
EXPIRES_AT_TAG = "gpuprov-expires-at"
REQUEST_ID_LABEL = "gpuprov/request-id"
"""On the GPU pool's nodes and on every Kubernetes object the request creates."""
OWNER_LABEL = "gpuprov/owner"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "gpuprov"
"""The managed-by label's value and the server-side apply field manager."""
NOT_OWNED = "NotOwned"
DEFAULT_OWNER = "gpuprov"
"""The owner of a deployment that sets no GPUPROV_OWNER."""
MAX_REQUEST_ID = 63
"""A request id is a Kubernetes label value: at most 63 characters."""

Marks = Literal["tags", "labels"]
_KEYS: dict[Marks, tuple[str, str]] = {
    "tags": (OWNER_TAG, REQUEST_ID_TAG),
    "labels": (OWNER_LABEL, REQUEST_ID_LABEL),
}


def request_of(marks: Mapping[str, str] | None, owner: str, kind: Marks = "tags") -> str | None:
    """The request a resource belongs to when `owner` (this deployment) made it, else None."""
    owner_key, request_key = _KEYS[kind]
    found = marks or {}
    request_id = found.get(request_key, "")
    if found.get(owner_key) != owner or not 0 < len(request_id) <= MAX_REQUEST_ID:
        return None
    return request_id


@dataclass(frozen=True)
class Ownership:
    """One request of one deployment: what it writes on what it creates, and what it may touch."""

    owner: str
    request_id: str

    def owns(self, marks: Mapping[str, str] | None, kind: Marks = "tags") -> bool:
        return request_of(marks, self.owner, kind) == self.request_id

    def tags(self, now: datetime, ttl_hours: int) -> dict[str, str]:
        """Tags on everything the request creates; the reaper deletes it after the expiry."""
        expires = now.astimezone(UTC) + timedelta(hours=ttl_hours)
        return {
            REQUEST_ID_TAG: self.request_id,
            OWNER_TAG: self.owner,
            EXPIRES_AT_TAG: expires.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        }

    def labels(self) -> dict[str, str]:
        """Labels on every Kubernetes object the request creates."""
        return {
            REQUEST_ID_LABEL: self.request_id,
            OWNER_LABEL: self.owner,
            MANAGED_BY_LABEL: MANAGER,
        }


def not_owned(what: str, ownership: Ownership, kind: Marks = "tags") -> StepError:
    """Something with our name exists but this request did not create it: never touch it."""
    marked = "tagged" if kind == "tags" else "labelled"
    return StepError(
        "permanent",
        NOT_OWNED,
        f"{what} exists and is not {marked} {_KEYS[kind][1]}={ownership.request_id}.",
        "It was not created by this request, so the provisioner leaves it alone: choose another "
        "name in the request, or delete it yourself if it is no longer needed.",
    )
