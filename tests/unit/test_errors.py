"""How step failures are classified and what the user is told.

Covers: the four kinds by ARM code and HTTP status (throttling, server errors, a busy cluster,
capacity, quota, the rest); hints naming the quota family, the capacity alternatives and the
missing role; connection failures as transient; the wire form round-trips for history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import ServiceRequestError, ServiceResponseError

from shared.errors import (
    StepError,
    StepErrorWire,
    classify,
    classify_code,
    while_roles_propagate,
)


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        pytest.param("TooManyRequests", 429, "transient", id="throttled"),
        pytest.param("InternalServerError", 500, "transient", id="server-error"),
        pytest.param("GatewayTimeout", 504, "transient", id="gateway-timeout"),
        pytest.param("OperationNotAllowed", 409, "transient", id="cluster-busy"),
        pytest.param("SkuNotAvailable", 400, "capacity", id="sku-not-available"),
        pytest.param("AllocationFailed", None, "capacity", id="allocation-failed-operation"),
        pytest.param("ZonalAllocationFailed", None, "capacity", id="zonal-allocation"),
        pytest.param("OverconstrainedAllocationRequest", None, "capacity", id="overconstrained"),
        pytest.param("QuotaExceeded", 400, "quota", id="quota"),
        pytest.param("AuthorizationFailed", 403, "permanent", id="no-role"),
        pytest.param("InvalidParameter", 400, "permanent", id="bad-parameter"),
        pytest.param("MissingSubscriptionRegistration", 409, "permanent", id="unregistered"),
    ],
)
def test_codes_are_classified(code: str, status: int | None, kind: str) -> None:
    error = classify_code(code, "ARM says so.", status=status)
    assert (error.kind, error.code, error.message) == (kind, code, "ARM says so.")


def test_quota_hint_names_the_family_and_the_tools() -> None:
    error = classify_code(
        "QuotaExceeded", "cores quota", vm_size="Standard_NC24ads_A100_v4", location="eastus"
    )
    assert "NC_A100_v4" in error.hint
    assert "az quota" in error.hint
    assert "eastus" in error.hint


def test_capacity_hint_points_at_alternatives() -> None:
    error = classify_code("SkuNotAvailable", "no", vm_size="Standard_NC4as_T4_v3")
    assert "alternativeVmSizes" in error.hint
    assert "another region" in error.hint


def test_authorization_hint_names_the_action_and_the_manifest() -> None:
    # ARM's message, as az prints it for a missing right (AuthorizationFailed, 403).
    message = (
        "The client 'c' with object id 'c' does not have authorization to perform action "
        "'Microsoft.ContainerService/managedClusters/agentPools/write' over scope '/subscriptions/"
        "s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks/agentPools/"
        "gpu' or the scope is invalid. If access was recently granted, please refresh your "
        "credentials."
    )
    error = classify_code("AuthorizationFailed", message, status=403)
    assert error.kind == "permanent"
    assert "'Microsoft.ContainerService/managedClusters/agentPools/write'" in error.hint
    assert "infra/permissions.json" in error.hint
    assert "Contributor" not in error.hint, "no broader role than the manifest's"


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(ServiceRequestError("connection refused"), id="request"),
        pytest.param(ServiceResponseError("connection reset"), id="response"),
    ],
)
def test_connection_failures_are_transient(exc: ServiceRequestError) -> None:
    error = classify(exc)
    assert (error.kind, error.code) == ("transient", "ConnectionFailed")


def test_wire_form_round_trips() -> None:
    error = StepError("transient", "TooManyRequests", "slow down", "wait", retry_after=7)
    wire = StepErrorWire.model_validate_json(error.to_wire().model_dump_json())
    assert wire.retry_after == 7
    assert '"retryAfter":7' in error.to_wire().model_dump_json()
    again = StepError.from_wire(wire)
    assert (again.kind, again.code, again.message, again.hint) == (
        "transient",
        "TooManyRequests",
        "slow down",
        "wait",
    )


def test_parent_resource_not_found_hint_says_how_to_fix_it() -> None:
    hint = classify_code("ParentResourceNotFound", "Parent resource 'aks' not found.").hint
    assert "not in that resource group" in hint
    assert "newCluster" in hint


AUTH = StepError("permanent", "AuthorizationFailed", "no", "add it to infra/permissions.json")
DEPLOYED = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("error", "assigned_at", "minutes_later", "kind"),
    [
        (AUTH, DEPLOYED, 3, "transient"),
        (AUTH, DEPLOYED, 10, "transient"),
        (AUTH, DEPLOYED, 11, "permanent"),
        (AUTH, DEPLOYED, -1, "permanent"),
        (AUTH, None, 3, "permanent"),
        (StepError("permanent", "BadRequest", "no", ""), DEPLOYED, 3, "permanent"),
    ],
    ids=["just-deployed", "ten-minutes", "later", "before", "no-deployment-time", "other-code"],
)
def test_authorization_failed_is_retried_only_while_roles_propagate(
    error: StepError, assigned_at: datetime | None, minutes_later: int, kind: str
) -> None:
    now = DEPLOYED + timedelta(minutes=minutes_later)
    seen = while_roles_propagate(error, assigned_at, now)
    assert seen.kind == kind
    assert seen.code == error.code
    if kind == "transient":
        assert seen.retry_after == 120
        assert "up to 10 minutes" in seen.hint
        assert error.hint in seen.hint, "the permanent hint still says what to fix"
