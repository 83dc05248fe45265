"""Sandbox fixtures for every test that drives real clients into the simulators.

`sandbox_world` is the sandbox world (sandbox/world.py, as `gpuprov sandbox up` runs it): ARM and
Kubernetes on the `clock` fixture, with the example subscription's resource group; `arm`, `kube`
are its parts. `sandbox_settings` points the product at it (`app_settings`: endpoint, CA, token).
`aks` is the real azure-mgmt-containerservice client on `arm` (`sandbox_aks`: on a running
`gpuprov sandbox up`); `kube_client` a real kubernetes
client for one cluster. `broker` is the local Service Bus broker with the app's topology;
`running_broker` serves a module's own topology and checks the broker met no protocol error.
`cluster_api` (with `core`, `apps`, `batch`) is a kubernetes client on the cluster a module's
`access` fixture names. `sandbox_dir` is a `gpuprov sandbox up` per test module.
`azurite` is one Azurite per test module; `storage` its connection string with the app's
request queues there and empty.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.containerservice import ContainerServiceClient
from kubernetes import client as kubernetes_client

from sandbox.arm import ArmSimulator, ArmTimings
from sandbox.arm.kubeconfig import build_kubeconfig
from sandbox.azurite import Azurite, create_queues
from sandbox.clock import Clock, ManualClock
from sandbox.cloud import ClusterAccess
from sandbox.control import SETTINGS_FILE
from sandbox.kube import KubeSimulator
from sandbox.servicebus import CONFIG_PATH, ServiceBusBroker
from sandbox.tls import TestCA, make_ca
from sandbox.world import (
    LOCATION,
    REQUEST_QUEUES,
    RESOURCE_GROUP,
    SANDBOX_TOKEN,
    SUBSCRIPTION,
    World,
    aks_client,
    app_settings,
    open_world,
)
from shared.settings import Settings
from tests.conftest import GPUPROV

__all__ = ["LOCATION", "RESOURCE_GROUP", "SANDBOX_TOKEN", "SUBSCRIPTION", "TIMINGS", "aks_client"]

TIMINGS = ArmTimings(retry_after_seconds=1, cluster_create_seconds=600)
"""A ten-minute cluster creation: the clock, not the wall, pays for it."""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return make_ca(tmp_path / "ca")


@pytest.fixture
def sandbox_world(clock: Clock, ca: TestCA) -> Iterator[World[Any]]:
    with open_world(clock, ca, arm_timings=TIMINGS) as world:
        yield world


@pytest.fixture
def kube(sandbox_world: World[Any]) -> KubeSimulator:
    return sandbox_world.kube


@pytest.fixture
def arm(sandbox_world: World[Any]) -> ArmSimulator:
    return sandbox_world.arm


@pytest.fixture
def sandbox_settings(arm: ArmSimulator, ca: TestCA) -> Settings:
    return Settings.from_env(app_settings(arm.url, ca.ca_path))


@pytest.fixture
def aks(arm: ArmSimulator, ca: TestCA) -> Iterator[ContainerServiceClient]:
    with aks_client(arm.url, ca.ca_path) as client:
        yield client


def sandbox_aks(state_dir: Path, subscription: str = SUBSCRIPTION) -> ContainerServiceClient:
    """The real AKS client on a running `gpuprov sandbox up`, from the settings it wrote there."""
    values = json.loads((state_dir / SETTINGS_FILE).read_text())["Values"]
    return aks_client(values["GPUPROV_ARM_ENDPOINT"], values["GPUPROV_CA_BUNDLE"], subscription)


EXAMPLE_CLUSTER_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/myResourceGroup/"
    "providers/Microsoft.ContainerService/managedClusters/myAKSCluster"
)
"""The AKS docs' example cluster (`az aks get-credentials -g myResourceGroup -n myAKSCluster`)."""


def write_kubeconfig(access: ClusterAccess, path: Path) -> Path:
    """The kubeconfig `az aks get-credentials` writes for the example cluster, at `path`."""
    path.write_bytes(
        build_kubeconfig(
            cluster_name="myAKSCluster",
            resource_group="myResourceGroup",
            access=access,
            entra_tenant_id=None,
            credential_format=None,
        )
    )
    return path


def kube_client(access: ClusterAccess, token: str | None = None) -> kubernetes_client.ApiClient:
    """A real kubernetes client for one simulated cluster, as its kubeconfig would configure it;
    `token` instead of the cluster's own (an Entra token, a wrong one; "" sends none)."""
    configuration = kubernetes_client.Configuration()
    configuration.host = access.server
    configuration.ssl_ca_cert = access.ca_path
    bearer = access.token if token is None else token
    if bearer:
        configuration.api_key = {"BearerToken": bearer}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
    return kubernetes_client.ApiClient(configuration)


@pytest.fixture
def cluster_api(access: ClusterAccess) -> Iterator[kubernetes_client.ApiClient]:
    """A real kubernetes client on the cluster the test module's `access` fixture names, as a
    user with kubectl would look at it; `core`, `apps` and `batch` are its API groups."""
    with kube_client(access) as api:
        yield api


@pytest.fixture
def core(cluster_api: kubernetes_client.ApiClient) -> Any:
    return kubernetes_client.CoreV1Api(cluster_api)


@pytest.fixture
def apps(cluster_api: kubernetes_client.ApiClient) -> Any:
    return kubernetes_client.AppsV1Api(cluster_api)


@pytest.fixture
def batch(cluster_api: kubernetes_client.ApiClient) -> Any:
    return kubernetes_client.BatchV1Api(cluster_api)


def running_broker(
    config: Mapping[str, Any] | Path = CONFIG_PATH, clock: Clock | None = None
) -> Iterator[ServiceBusBroker]:
    """A fixture body: the broker with `config`'s topology (real time unless `clock`), which
    must have met no protocol error by the time it stops."""
    with ServiceBusBroker(config, clock) as running:
        yield running
    assert running.errors == []


@pytest.fixture
def broker() -> Iterator[ServiceBusBroker]:
    """The local Service Bus broker with the app's topology (sandbox/servicebus/Config.json)."""
    yield from running_broker()


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with Azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture
def storage(azurite: Azurite) -> str:
    """Azurite's connection string, with the app's request queues there and empty (one Azurite
    serves the module: every test starts with empty queues)."""
    from azure.storage.queue import QueueClient

    create_queues(azurite.connection_string, REQUEST_QUEUES)
    for queue in REQUEST_QUEUES:
        with QueueClient.from_connection_string(azurite.connection_string, queue) as client:
            client.clear_messages()
    return azurite.connection_string


@pytest.fixture(scope="module")
def sandbox_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A sandbox started with `gpuprov sandbox up --state-dir` for the test module, and stopped
    with `gpuprov sandbox down` after it."""
    where = tmp_path_factory.mktemp("sandbox")
    subprocess.run([GPUPROV, "sandbox", "up", "--state-dir", str(where)], check=True, timeout=120)
    try:
        yield where
    finally:
        subprocess.run([GPUPROV, "sandbox", "down", "--state-dir", str(where)], check=True,
                       timeout=60)  # fmt: skip
