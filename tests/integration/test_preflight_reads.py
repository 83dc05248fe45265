"""The preflight's Azure reads (ArmAdapter.preflight) on the real SDKs against the ARM simulator,
with the app's token held to infra/permissions.json.

Covers: the preflight only reads (GETs of Compute SKUs and usages and of each preview feature,
no write, no registration); a requested preview feature's state is reported as it stands; without
the subscription role
(no Compute reads granted) the SKU and quota checks are left unchecked, said so, and the
candidates kept — the PUT still meets the real limit.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.arm import ArmSimulator
from sandbox.arm.authorization import Grant, manifest_grants
from sandbox.world import allowed_resource_groups
from shared.arm import ArmAdapter
from shared.settings import Settings
from tests.builders import build_request


@pytest.fixture
def adapter(sandbox_settings: Settings) -> Iterator[ArmAdapter]:
    with ArmAdapter(sandbox_settings) as arm_adapter:
        yield arm_adapter


def test_the_preflight_only_reads_and_reports_feature_states(
    adapter: ArmAdapter, arm: ArmSimulator
) -> None:
    arm.clear_requests()
    request = build_request(previewFeatures=[{"name": "ManagedGPUExperiencePreview"}])
    plan = adapter.preflight(request)
    assert plan.can_run
    assert [(f.name, f.state) for f in plan.features] == [
        ("ManagedGPUExperiencePreview", "NotRegistered")
    ]
    assert {r.method for r in arm.requests} == {"GET"}
    assert all(r.status == 200 for r in arm.requests)


def test_without_compute_reads_the_checks_are_left_unchecked(
    adapter: ArmAdapter, arm: ArmSimulator
) -> None:
    compute = ("Microsoft.Compute/skus/read", "Microsoft.Compute/locations/usages/read")
    arm.set_app_permissions(
        tuple(
            Grant(g.scope, tuple(a for a in g.actions if a not in compute))
            for g in manifest_grants(allowed_resource_groups())
        )
    )
    plan = adapter.preflight(build_request(nodePool={"vmSize": "Standard_ND96isr_H100_v5"}))
    assert set(plan.unchecked) == {"skus", "usages"}
    assert "Microsoft.Compute/skus/read" in plan.unchecked["skus"]
    assert plan.can_run, "not judged by what could not be read"
    assert plan.candidates[0].quota == []
