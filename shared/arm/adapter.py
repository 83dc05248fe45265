"""ARM for one activity invocation: the management clients, and the run's and reaper's calls.

Each call is a line over a resource module and the one reconcile routine (shared/arm/reconcile):
safe to run again (GET before PUT, 404 on delete is done), never waiting for a long-running
operation (it answers a handle; `check_operation` polls once), and answering a small frozen
model for orchestration history with no secret in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from azure.core.credentials import TokenCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.resource.features import FeatureClient
from azure.mgmt.resource.resources import ResourceManagementClient

from shared.arm import access, features, operations, reconcile
from shared.arm.cluster import ManagedCluster
from shared.arm.compute import read_compute
from shared.arm.features import FeatureRegistration
from shared.arm.handles import JsonDict, OperationHandle, OperationStatus
from shared.arm.pool import AgentPool, Candidate
from shared.closing import Closing
from shared.credentials import ClusterCredentials, credential_for
from shared.errors import StepError, classified
from shared.ownership import Ownership
from shared.request import PreviewFeature, ProvisionRequest
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.preflight import Plan  # it imports shared.arm's resource modules

_Client = (
    ComputeManagementClient | ContainerServiceClient | FeatureClient | ResourceManagementClient
)


class ArmAdapter(Closing):
    """ARM operations for one activity invocation; close it (or use `with`) to free sockets.

    `sdk_retries` bounds the SDK's own retries (429 and 5xx with Retry-After, connection errors):
    beyond them the step fails as a transient StepError carrying `retry_after`, so a long throttle
    is waited out on a durable timer instead of inside the activity.
    """

    def __init__(
        self,
        settings: Settings,
        credential: TokenCredential | None = None,
        *,
        sdk_retries: int = 3,
    ) -> None:
        self._settings = settings
        self._owns_credential = credential is None
        self._credential = credential if credential is not None else credential_for(settings)
        self._sdk_retries = sdk_retries
        self._clients: dict[tuple[type[_Client], str], Any] = {}

    def close(self) -> None:
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            client.close()
        close = getattr(self._credential, "close", None)
        if self._owns_credential and callable(close):
            close()

    def _client(self, kind: type[_Client], subscription_id: str) -> Any:
        """One client of a kind per subscription, made on first use."""
        if (kind, subscription_id) not in self._clients:
            self._clients[kind, subscription_id] = kind(
                self._credential,
                subscription_id,
                base_url=self._settings.arm_endpoint,
                connection_verify=self._settings.ca_bundle or True,
                retry_total=self._sdk_retries,
            )
        return self._clients[kind, subscription_id]

    def aks(self, subscription_id: str) -> ContainerServiceClient:
        client: ContainerServiceClient = self._client(ContainerServiceClient, subscription_id)
        return client

    # -- the run -----------------------------------------------------------------------------

    def preflight(self, request: ProvisionRequest) -> Plan:
        """Read-only: the location's SKUs and quotas and the candidates' prices, judged."""
        from shared import preflight, prices

        sizes = list(
            dict.fromkeys([request.node_pool.vm_size, *request.node_pool.alternative_vm_sizes])
        )
        compute = self._client(ComputeManagementClient, request.subscription_id)
        view = read_compute(compute, request.location, sizes)
        spot = request.node_pool.spot is not None
        endpoint = self._settings.prices_endpoint
        found = {
            size.lower(): (
                prices.from_snapshot(size, spot=spot)
                if endpoint == "snapshot"
                else prices.fetch(endpoint, size, request.location, spot=spot,
                                  verify=self._settings.ca_bundle or True)
            )
            for size in sizes
        }  # fmt: skip
        settings = self._settings
        budget = preflight.budget_for(request, settings.default_budget, settings.max_budget)
        plan = preflight.judge(request, view, found, budget)
        if not request.preview_features:
            return plan
        try:
            client = self._client(FeatureClient, request.subscription_id)
            states = features.read_features(client, request.preview_features)
        except StepError as error:
            if error.code != "AuthorizationFailed":
                raise
            return plan.model_copy(
                update={"unchecked": {**plan.unchecked, "features": error.message}}
            )
        return plan.model_copy(update={"features": states})

    def register_features(
        self,
        subscription_id: str,
        wanted: Sequence[PreviewFeature],
        previous: FeatureRegistration | None = None,
    ) -> FeatureRegistration:
        return features.register_features(
            self._client(FeatureClient, subscription_id),
            self._client(ResourceManagementClient, subscription_id),
            wanted,
            previous,
        )

    def start_create_cluster(self, request: ProvisionRequest, now: datetime) -> OperationHandle:
        """Start creating the request's new cluster (system pool only), unless it already is."""
        cluster = ManagedCluster.of(request, self._settings.owner, now)
        return reconcile.create(self.aks(request.subscription_id), cluster)

    def start_delete_cluster(self, request: ProvisionRequest) -> OperationHandle:
        cluster = ManagedCluster.of(request, self._settings.owner)
        return reconcile.delete(self.aks(request.subscription_id), cluster)

    def start_create_pool(
        self, request: ProvisionRequest, vm_size: str, zones: Sequence[str], now: datetime
    ) -> OperationHandle:
        """Start creating the GPU pool for one candidate; the custom headers go on its PUT."""
        candidate = Candidate(vm_size=vm_size, zones=list(zones))
        pool = AgentPool.of(request, self._settings.owner, candidate, now)
        return reconcile.create(self.aks(request.subscription_id), pool)

    def start_delete_pool(self, request: ProvisionRequest) -> OperationHandle:
        pool = AgentPool.of(request, self._settings.owner)
        return reconcile.delete(self.aks(request.subscription_id), pool)

    def check_operation(self, handle: OperationHandle) -> OperationStatus:
        aks = self.aks(handle.subscription_id)
        return operations.check_operation(aks, self._settings.arm_endpoint, handle)

    def cluster_credentials(self, request: ProvisionRequest) -> ClusterCredentials:
        aks = self.aks(request.subscription_id)
        return access.cluster_credentials(aks, self._credential, request)

    # -- the reaper --------------------------------------------------------------------------

    def list_clusters(self, subscription_id: str) -> list[JsonDict]:
        """Every managed cluster of a subscription as JSON, its agentPoolProfiles included."""
        aks = self.aks(subscription_id)
        with classified():
            return [cluster.as_dict() for cluster in aks.managed_clusters.list()]

    def start_delete_owned(
        self,
        subscription_id: str,
        resource_group: str,
        cluster_name: str,
        pool_name: str | None,
        request_id: str,
    ) -> OperationHandle:
        """Start deleting a cluster (pool_name None) or pool of this deployment's `request_id`,
        its tags read again just before: tags changed since a list are honoured."""
        where = {
            "subscription_id": subscription_id,
            "resource_group": resource_group,
            "cluster_name": cluster_name,
            "ownership": Ownership(owner=self._settings.owner, request_id=request_id),
        }
        resource = (
            ManagedCluster(**where)  # type: ignore[arg-type]
            if pool_name is None
            else AgentPool(**where, pool=pool_name)  # type: ignore[arg-type]
        )
        return reconcile.delete(self.aks(subscription_id), resource)
