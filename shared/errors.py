"""Why a provisioning step failed, in the four kinds the orchestrator acts on.

transient: try the same step again (after `retry_after` when ARM gave one);
capacity: move to the request's next VM size or zone; quota: stop, the user must raise a quota;
permanent: stop. The ARM code and message are kept as ARM sent them and `hint` says what the user
can do. The error crosses into orchestration history only as its wire form (`to_wire()`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Literal

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.policies import RetryPolicy
from azure.core.utils import case_insensitive_dict

from shared.catalog import lookup
from shared.wire import HistoryModel

ErrorKind = Literal["transient", "capacity", "quota", "permanent"]

TRANSIENT_CODES = frozenset({"OperationNotAllowed", "TooManyRequests", "RetryableError"})
AUTHORIZATION_CODES = frozenset({"AuthorizationFailed", "LinkedAuthorizationFailed"})
CAPACITY_CODES = frozenset(
    {
        "SkuNotAvailable",
        "AllocationFailed",
        "ZonalAllocationFailed",
        "OverconstrainedAllocationRequest",
    }
)
QUOTA_CODES = frozenset({"QuotaExceeded"})
CONNECTION_FAILED = "ConnectionFailed"


class StepErrorWire(HistoryModel):
    """A step's failure as it is kept in history and sent in events."""

    kind: ErrorKind
    code: str
    """ARM's error code, or the provisioner's own (NotOwned, ConnectionFailed, ...)."""
    message: str
    """ARM's message."""
    hint: str
    """What the user can do about it."""
    retry_after: int | None = None
    """Seconds the server asked to wait before trying again."""


class StepError(Exception):
    """A classified failure of one step (like kopf's TemporaryError/PermanentError)."""

    def __init__(
        self,
        kind: ErrorKind,
        code: str,
        message: str,
        hint: str = "",
        retry_after: int | None = None,
    ) -> None:
        super().__init__(f"{kind} {code}: {message}")
        self.kind: ErrorKind = kind
        self.code = code
        self.message = message
        self.hint = hint
        self.retry_after = retry_after

    def to_wire(self) -> StepErrorWire:
        return StepErrorWire(
            kind=self.kind,
            code=self.code,
            message=self.message,
            hint=self.hint,
            retry_after=self.retry_after,
        )

    @classmethod
    def from_wire(cls, wire: StepErrorWire) -> StepError:
        return cls(wire.kind, wire.code, wire.message, wire.hint, wire.retry_after)


def classify_code(
    code: str,
    message: str,
    *,
    status: int | None = None,
    retry_after: int | None = None,
    vm_size: str | None = None,
    location: str | None = None,
) -> StepError:
    """The kind and hint for an ARM error code (from an HTTP answer or a failed operation)."""
    if code in QUOTA_CODES:
        kind: ErrorKind = "quota"
    elif code in CAPACITY_CODES:
        kind = "capacity"
    elif code in TRANSIENT_CODES or status == 429 or (status is not None and status >= 500):
        kind = "transient"
    else:
        kind = "permanent"
    hint = _hint(code, kind, vm_size=vm_size, location=location, message=message)
    return StepError(kind, code, message, hint, retry_after)


ROLE_PROPAGATION = timedelta(minutes=10)
"""How long a new role assignment may take to apply: "Azure Resource Manager sometimes caches
configurations and data to improve performance. When you assign roles or remove role
assignments, it can take up to 10 minutes for changes to take effect" (learn.microsoft.com,
Troubleshoot Azure RBAC, "Role assignment changes are not being detected")."""
PROPAGATION_RETRY_SECONDS = 120
"""Retry-After given to such a retry: RunOptions' transient retries (5) at RunOptions'
longest poll (120 s) ride out the whole ten minutes."""


def while_roles_propagate(
    error: StepError, assigned_at: datetime | None, now: datetime
) -> StepError:
    """An AuthorizationFailed within ROLE_PROPAGATION of the deployment (re)assigning the
    identity's roles is transient: retried, not failed, while ARM's cache catches up. Later,
    or with no deployment time known (the sandbox), it stays permanent."""
    if error.code not in AUTHORIZATION_CODES or assigned_at is None:
        return error
    if not timedelta(0) <= now - assigned_at <= ROLE_PROPAGATION:
        return error
    return StepError(
        "transient",
        error.code,
        error.message,
        f"The roles were assigned at {assigned_at.isoformat()} and can take up to 10 minutes "
        f"to apply: the step is tried again. If it keeps failing: {error.hint}",
        PROPAGATION_RETRY_SECONDS,
    )


def classify(
    exc: AzureError, *, vm_size: str | None = None, location: str | None = None
) -> StepError:
    """Turn an azure-core exception into a StepError; `vm_size`/`location` make hints exact."""
    if isinstance(exc, HttpResponseError):
        error = exc.error
        code = (error.code if error is not None else None) or str(exc.status_code or "Unknown")
        message = (error.message if error is not None else None) or exc.message or str(exc)
        return classify_code(
            code,
            message,
            status=exc.status_code,
            retry_after=retry_after(getattr(exc.response, "headers", None)),
            vm_size=vm_size,
            location=location,
        )
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return StepError(
            "transient",
            CONNECTION_FAILED,
            exc.message or str(exc),
            "Azure Resource Manager could not be reached; the step is tried again.",
        )
    return StepError("permanent", type(exc).__name__, exc.message or str(exc), "")


@contextmanager
def classified(*, vm_size: str | None = None, location: str | None = None) -> Iterator[None]:
    """Azure SDK errors leave an ARM call only as classified StepErrors."""
    try:
        yield
    except AzureError as exc:
        raise classify(exc, vm_size=vm_size, location=location) from exc


def retry_after(headers: Mapping[str, str] | None) -> int | None:
    """Retry-After in whole seconds (delay or HTTP date), as azure-core's retry policy reads it."""
    value = case_insensitive_dict(headers or {}).get("retry-after")
    if not value:
        return None
    try:
        return math.ceil(_RETRY_POLICY.parse_retry_after(str(value).strip()))
    except (TypeError, ValueError):
        return None


_RETRY_POLICY = RetryPolicy()


def _hint(
    code: str, kind: ErrorKind, *, vm_size: str | None, location: str | None, message: str = ""
) -> str:
    where = f" in {location}" if location else ""
    size = vm_size or "the requested VM size"
    if kind == "quota":
        size_entry = lookup(vm_size) if vm_size else None
        family = f"the {size_entry.family} family" if size_entry else f"the family of {size}"
        return (
            f"Raise the vCPU quota of {family} (VM size {size}){where}: `az quota update` or the "
            f"portal's Quotas page (`az vm list-usage --location {location or '<region>'}` shows "
            f"current use), or list a size of another family in nodePool.alternativeVmSizes."
        )
    if kind == "capacity":  # `--all`: without it az hides a size restricted in the whole region
        return (
            f"Azure has no capacity for {size}{where} right now: add sizes to "
            "nodePool.alternativeVmSizes, allow other zones, or use another region "
            f"(`az vm list-skus --location {location or '<region>'} --size {size} --all "
            "--output table` shows restrictions)."
        )
    if code == "MissingSubscriptionRegistration":
        return (
            "The subscription is not registered for the resource provider named in the message: "
            "run `az provider register --namespace Microsoft.ContainerService` once (it needs "
            "Contributor on the subscription and takes a few minutes), then submit again."
        )
    if code in AUTHORIZATION_CODES:
        # ARM names the action: "... does not have authorization to perform action '<action>'".
        named = re.search(r"perform action '([^']+)'", message)
        action = f"'{named.group(1)}'" if named else "the action in the message"
        return (
            f"The provisioner's identity may not perform {action} there: the resource group "
            "must be in GPUPROV_ALLOWED_RESOURCE_GROUPS (then `azd provision`), and the action "
            "must be listed in infra/permissions.json, whose roles the deployment assigns."
        )
    if code == "ParentResourceNotFound":
        return (
            "The cluster named in target.clusterName is not in that resource group (or "
            "subscription): create it first, fix target.clusterName/resourceGroup, or use "
            'target.kind "newCluster" to have the provisioner create one.'
        )
    if code == "OperationNotAllowed":
        return "Another operation is running on the cluster; the step is tried again after it."
    if kind == "transient":
        return "Azure is busy or throttling; the step is tried again after the server's delay."
    return ""
