"""Polling a started ARM operation once: its operation URL, or the resource's provisioningState.

A failed operation answers `Failed` with its classified error; a failure to poll (throttling,
connection) raises a StepError. Operation URLs are followed only on the configured ARM endpoint,
as the bearer token goes with the GET.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.core.exceptions import ARMErrorFormat

from shared.arm.cluster import ManagedCluster
from shared.arm.handles import OperationHandle, OperationStatus, provisioning_state
from shared.arm.pool import AgentPool
from shared.arm.reconcile import Resource, read
from shared.errors import StepError, classified, classify, classify_code, retry_after
from shared.ownership import Ownership

_OPERATION_DONE = {"succeeded": "Succeeded", "failed": "Failed", "canceled": "Failed"}


def check_operation(
    aks: ContainerServiceClient, arm_endpoint: str, handle: OperationHandle
) -> OperationStatus:
    """Poll once."""
    if handle.poll == "none":
        return OperationStatus(state="Succeeded")
    if handle.poll == "resource":
        return _check_resource(aks, handle)
    url = handle.operation_url or ""
    _refuse_foreign_url(arm_endpoint, url)
    with classified(), aks.send_request(HttpRequest("GET", url)) as response:
        wait = retry_after(response.headers)
        if response.status_code >= 400:
            error = HttpResponseError(response=response, error_format=ARMErrorFormat)
            if handle.poll == "location" and response.status_code < 500:
                failed = classify(error, vm_size=handle.vm_size, location=handle.location)
                return OperationStatus(state="Failed", error=failed.to_wire())
            raise error
        if handle.poll == "location":
            return OperationStatus(
                state="InProgress" if response.status_code == 202 else "Succeeded",
                retry_after=wait,
            )
        body = response.json()
    status = _OPERATION_DONE.get(str(body.get("status", "")).lower(), "InProgress")
    if status != "Failed":
        return OperationStatus(
            state="InProgress" if status == "InProgress" else "Succeeded", retry_after=wait
        )
    error_body = body.get("error") or {}
    failed = classify_code(
        str(error_body.get("code") or "OperationFailed"),
        str(error_body.get("message") or "The operation failed."),
        vm_size=handle.vm_size,
        location=handle.location,
    )
    return OperationStatus(state="Failed", error=failed.to_wire())


def _located(handle: OperationHandle) -> Resource:
    """The resource a handle is about, to read it (reading asks no ownership)."""
    where = {
        "subscription_id": handle.subscription_id,
        "resource_group": handle.resource_group,
        "cluster_name": handle.cluster_name,
        "ownership": Ownership(owner="", request_id=""),
    }
    if handle.pool_name is None:
        return ManagedCluster(**where)  # type: ignore[arg-type]
    return AgentPool(**where, pool=handle.pool_name)  # type: ignore[arg-type]


def _check_resource(aks: ContainerServiceClient, handle: OperationHandle) -> OperationStatus:
    """Watch an operation started earlier through the resource's provisioningState."""
    existing = read(aks, _located(handle))
    if existing is None:
        if handle.action == "delete":
            return OperationStatus(state="Succeeded")
        gone = StepError("permanent", "ResourceGone", f"{handle.resource_id} disappeared.")
        return OperationStatus(state="Failed", error=gone.to_wire())
    state = provisioning_state(existing)
    if handle.action == "create" and state == "Succeeded":
        return OperationStatus(state="Succeeded")
    if handle.action == "create" and state in ("Failed", "Canceled"):
        failed = StepError(
            "permanent",
            "ProvisioningFailed",
            f"{handle.resource_id} is in provisioning state {state}.",
            "Starting the step again sends a new PUT, which retries a failed resource.",
        )
        return OperationStatus(state="Failed", error=failed.to_wire())
    return OperationStatus(state="InProgress")


def _refuse_foreign_url(arm_endpoint: str, url: str) -> None:
    endpoint = urlsplit(arm_endpoint)
    target = urlsplit(url)
    if (target.scheme, target.netloc.lower()) != (endpoint.scheme, endpoint.netloc.lower()):
        raise StepError(
            "permanent",
            "ForeignOperationUrl",
            "The operation URL is not on the configured ARM endpoint.",
        )
