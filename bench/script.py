"""The baseline: the same steps as one long-lived script, the seed walkthrough's `az` way.

`az feature register` then `az feature show` until Registered, `az provider register`,
`az aks create` and `az aks nodepool add` (the SDK's `begin_*().result()`: its own poller,
honouring Retry-After), `az aks get-credentials`, `kubectl apply` of the device plugin, blocking
waits for it, the GPUs and the job, `kubectl logs`, then `az aks delete --yes` waited on. Such a
script is billed for as long as it is alive: the cloud's whole elapsed time plus its own work.

The SDK and the waits sleep on the simulators' ManualClock (a transport whose `sleep` advances it),
so the script's simulated lifetime is exact and costs no real time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.core.pipeline.transport import RequestsTransport

from sandbox.clock import ManualClock
from sandbox.world import World

FEATURE_POLL_SECONDS = 30.0
"""How often the script reads the feature (ARM gives no Retry-After there; ARM's own default)."""
KUBECTL_POLL_SECONDS = 5.0
"""How often the blocking waits look again (a `kubectl wait` loop)."""
_ENDED = ("succeeded", "failed", "pending-unschedulable", "not-found")


class SimulatedSleepTransport(RequestsTransport):  # type: ignore[misc]
    """Real HTTP; the pipeline's sleeps (poller, retries) move the simulated clock instead."""

    def __init__(self, clock: ManualClock, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._clock = clock

    def sleep(self, duration: float) -> None:
        self._clock.advance(duration)


@dataclass(frozen=True)
class ScriptRun:
    simulated_seconds: float
    """The script's lifetime on the cloud's clock: every wait it sat through."""
    work_seconds: float
    """Real seconds it spent doing anything but waiting (its own compute and HTTP)."""
    job_state: str
    marks: dict[str, float]
    """When it made the calls that matter to the GPU nodes (pool PUT, plugin apply, job create,
    delete), on the simulated clock."""

    @property
    def billed_seconds(self) -> float:
        return self.simulated_seconds + self.work_seconds


def run_script(cloud: World[ManualClock], document: dict[str, Any]) -> ScriptRun:
    """Run one request as a script would, start to finish, and time it."""
    from azure.mgmt.containerservice import ContainerServiceClient
    from azure.mgmt.containerservice.models import AgentPool, ManagedCluster
    from azure.mgmt.resource.features import FeatureClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    from shared.arm import ArmAdapter
    from shared.arm.cluster import cluster_body
    from shared.arm.pool import pool_body
    from shared.credentials import StaticTokenCredential
    from shared.kube import KubeAdapter
    from shared.settings import Settings
    from shared.validation import validate_document

    settings = Settings.from_env(cloud.settings())
    request = validate_document(document, settings)
    clock = cloud.clock
    credential = StaticTokenCredential(settings.static_token)
    options: dict[str, Any] = {
        "base_url": cloud.arm.url,
        "transport": SimulatedSleepTransport(clock, connection_verify=str(cloud.ca.ca_path)),
    }
    subscription, group = request.subscription_id, request.resource_group
    cluster, pool = request.target.cluster_name, request.node_pool.name
    vm_size = request.node_pool.vm_size
    began_clock, began = clock.now(), time.perf_counter()

    def wait(seconds: float) -> None:
        clock.advance(seconds)

    now = datetime.fromtimestamp(clock.now(), tz=UTC)
    marks: dict[str, float] = {}
    with (
        FeatureClient(credential, subscription, **options) as features,
        ResourceManagementClient(credential, subscription, **options) as resources,
        ContainerServiceClient(credential, subscription, **options) as aks,
    ):
        for feature in request.preview_features:
            features.features.register(feature.namespace, feature.name)
        for feature in request.preview_features:
            while _feature_state(features, feature.namespace, feature.name) != "Registered":
                wait(FEATURE_POLL_SECONDS)
        for namespace in sorted({f.namespace for f in request.preview_features}):
            resources.providers.register(namespace)
        aks.managed_clusters.begin_create_or_update(
            group, cluster, ManagedCluster(cluster_body(request, settings.owner, now))
        ).result()
        marks["pool_put"] = clock.now()
        aks.agent_pools.begin_create_or_update(
            group,
            cluster,
            pool,
            AgentPool(pool_body(request, vm_size, (), settings.owner, now)),
        ).result()
        with ArmAdapter(settings) as arm:
            credentials = arm.cluster_credentials(request)
        with KubeAdapter(credentials) as kube:
            marks["plugin_applied"] = clock.now()
            kube.install_device_plugin(request)
            while not kube.device_plugin_status(request).ready:
                wait(KUBECTL_POLL_SECONDS)
            while not kube.gpu_status(request, vm_size).ready:
                wait(KUBECTL_POLL_SECONDS)
            marks["job_created"] = clock.now()
            kube.start_job(request, vm_size)
            while (state := kube.job_status(request).state) not in _ENDED:
                wait(KUBECTL_POLL_SECONDS)
            kube.job_log_tail(request, settings.job_log_tail_bytes)
            kube.delete_job(request)
        marks["delete_started"] = clock.now()
        aks.managed_clusters.begin_delete(group, cluster).result()
    simulated = clock.now() - began_clock
    return ScriptRun(simulated, time.perf_counter() - began, state, marks)


def _feature_state(features: Any, namespace: str, name: str) -> str | None:
    """`az feature show --query properties.state`."""
    properties = features.features.get(namespace, name).properties
    return None if properties is None else str(properties.state)
