"""Sandbox fixtures for integration and orchestration tests: ARM and Kubernetes on one clock.

`arm` has the example subscription's resource group; `sandbox_settings` points the product at the
ARM simulator with its CA and token, as `gpuprov sandbox up` does for a local run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.arm import ArmSimulator, ArmTimings
from sandbox.clock import ManualClock
from sandbox.kube import KubeSimulator
from sandbox.tls import TestCA, make_ca
from shared.settings import Settings

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "myResourceGroup"
LOCATION = "eastus"
SANDBOX_TOKEN = "sandbox-token"
TIMINGS = ArmTimings(retry_after_seconds=1, cluster_create_seconds=600)
"""A ten-minute cluster creation: the clock, not the wall, pays for it."""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return make_ca(tmp_path / "ca")


@pytest.fixture
def kube(clock: ManualClock, ca: TestCA) -> Iterator[KubeSimulator]:
    with KubeSimulator(clock, ca, entra_token=SANDBOX_TOKEN) as simulator:
        yield simulator


@pytest.fixture
def arm(clock: ManualClock, ca: TestCA, kube: KubeSimulator) -> Iterator[ArmSimulator]:
    with ArmSimulator(clock, ca, kube, timings=TIMINGS) as simulator:
        simulator.add_resource_group(SUBSCRIPTION, RESOURCE_GROUP, LOCATION)
        yield simulator


@pytest.fixture
def sandbox_settings(arm: ArmSimulator, ca: TestCA) -> Settings:
    return Settings.from_env(
        {
            "GPUPROV_ARM_ENDPOINT": arm.url,
            "GPUPROV_CA_BUNDLE": str(ca.ca_path),
            "GPUPROV_STATIC_TOKEN": SANDBOX_TOKEN,
        }
    )
