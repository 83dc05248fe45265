"""The Azure Resource Manager steps of a provisioning run, on the real management SDKs.

Every operation is safe to run again (GET before PUT, 404 on delete is done), never waits for a
long-running operation (it starts it and returns a handle; `check_operation` polls once), and
returns a small frozen model for orchestration history with no secret in it. Anything that exists
under our names without this request's `gpuprov-request-id` tag is refused, never modified.
Only activities import this module, so the SDK imports at its top cost nothing at app start.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import yaml
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.core.pipeline import PipelineResponse
from azure.core.polling import PollingMethod
from azure.core.rest import HttpRequest
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import AgentPool, ManagedCluster
from azure.mgmt.core.exceptions import ARMErrorFormat
from azure.mgmt.resource.features import FeatureClient
from azure.mgmt.resource.resources import ResourceManagementClient
from pydantic import Field

from shared.credentials import ClusterCredentials, credential_for
from shared.errors import (
    StepError,
    StepErrorWire,
    classify,
    classify_code,
    not_owned,
)
from shared.request import NewCluster, PreviewFeature, ProvisionRequest
from shared.settings import Settings
from shared.specs import (
    OWNER_TAG,
    REQUEST_ID_TAG,
    JsonDict,
    cluster_body,
    matches,
    owned_by,
    pool_body,
)
from shared.wire import HistoryModel

AKS_SERVER_SCOPE = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"
"""The AKS Entra ID server application: an Entra ID cluster's API server accepts its tokens."""
REGISTERED = "Registered"
REGISTERING = "Registering"
IN_PROGRESS_STATES = frozenset({"Creating", "Updating", "Scaling", "Upgrading", "Starting"})
_OPERATION_DONE = {"succeeded": "Succeeded", "failed": "Failed", "canceled": "Failed"}

_T = TypeVar("_T")


# -- what the operations return (all of it may enter orchestration history) -------------------


class FeatureState(HistoryModel):
    namespace: str
    name: str
    state: str
    """NotRegistered, Registering, Registered, ... as Microsoft.Features reports it."""


class ProviderState(HistoryModel):
    namespace: str
    state: str
    """registrationState of the resource provider."""


class FeatureRegistration(HistoryModel):
    """Where preview-feature registration stands; pass it back as `previous` on the next call."""

    features: list[FeatureState]
    providers: list[ProviderState] = Field(default_factory=list)
    """The providers registered again after the features (empty until that happens)."""
    provider_refresh_needed: bool = False
    """Some feature was not Registered when first read: its provider must be registered again."""

    @property
    def done(self) -> bool:
        return all(f.state == REGISTERED for f in self.features) and (
            not self.provider_refresh_needed
            or (bool(self.providers) and all(p.state == REGISTERED for p in self.providers))
        )


class OperationHandle(HistoryModel):
    """A started (or already finished) ARM operation; `check_operation` polls it once."""

    action: Literal["create", "delete"]
    resource_id: str
    subscription_id: str
    resource_group: str
    cluster_name: str
    pool_name: str | None = None
    """None for the cluster itself."""
    poll: Literal["none", "asyncOperation", "location", "resource"]
    """none: already done; asyncOperation/location: GET `operation_url`; resource: GET the
    resource's provisioningState (an operation this request started earlier)."""
    operation_url: str | None = None
    retry_after: int | None = None
    """Seconds ARM asked to wait before the first poll."""
    vm_size: str | None = None
    location: str | None = None

    @property
    def done(self) -> bool:
        return self.poll == "none"


class OperationStatus(HistoryModel):
    """One poll's answer: failures of the operation itself are classified in `error`."""

    state: Literal["InProgress", "Succeeded", "Failed"]
    retry_after: int | None = None
    error: StepErrorWire | None = None


# -- the adapter --------------------------------------------------------------------------------


class _StartOnly(PollingMethod[None]):
    """Keeps the first answer of a long-running operation and reports it finished, so the SDK's
    LROPoller starts no polling thread; the operation is polled later with `check_operation`."""

    def __init__(self) -> None:
        self.status_code = 0
        self.headers: dict[str, str] = {}
        self.body: JsonDict | None = None

    def initialize(
        self,
        client: Any,
        initial_response: PipelineResponse[Any, Any],
        deserialization_callback: Callable[[Any], None],
    ) -> None:
        response = initial_response.http_response
        self.status_code = int(response.status_code)
        self.headers = dict(response.headers.items())
        text = response.text()
        self.body = json.loads(text) if text else None

    def run(self) -> None:
        """Nothing to wait for: polling is `check_operation`'s job."""

    def status(self) -> str:
        return "Started"

    def finished(self) -> bool:
        return True

    def resource(self) -> None:
        return None


class ArmAdapter:
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
        self._aks: dict[str, ContainerServiceClient] = {}
        self._features: dict[str, FeatureClient] = {}
        self._resources: dict[str, ResourceManagementClient] = {}

    def __enter__(self) -> ArmAdapter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        clients: list[ContainerServiceClient | FeatureClient | ResourceManagementClient] = [
            *self._aks.values(),
            *self._features.values(),
            *self._resources.values(),
        ]
        self._aks.clear()
        self._features.clear()
        self._resources.clear()
        for client in clients:
            client.close()
        close = getattr(self._credential, "close", None)
        if self._owns_credential and callable(close):
            close()

    # -- clients ------------------------------------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        return {
            "base_url": self._settings.arm_endpoint,
            "connection_verify": self._settings.ca_bundle or True,
            "retry_total": self._sdk_retries,
        }

    def _aks_client(self, subscription_id: str) -> ContainerServiceClient:
        if subscription_id not in self._aks:
            self._aks[subscription_id] = ContainerServiceClient(
                self._credential, subscription_id, **self._client_options()
            )
        return self._aks[subscription_id]

    def _feature_client(self, subscription_id: str) -> FeatureClient:
        if subscription_id not in self._features:
            self._features[subscription_id] = FeatureClient(
                self._credential, subscription_id, **self._client_options()
            )
        return self._features[subscription_id]

    def _resource_client(self, subscription_id: str) -> ResourceManagementClient:
        if subscription_id not in self._resources:
            self._resources[subscription_id] = ResourceManagementClient(
                self._credential, subscription_id, **self._client_options()
            )
        return self._resources[subscription_id]

    # -- preview features ---------------------------------------------------------------------

    def register_features(
        self,
        subscription_id: str,
        features: Sequence[PreviewFeature],
        previous: FeatureRegistration | None = None,
    ) -> FeatureRegistration:
        """Register what is not yet registered; once all are, register their providers again.

        Called until `done`, each time with the previous answer. Nothing is written when every
        feature was already Registered at the first read.
        """
        client = self._feature_client(subscription_id)
        states: list[FeatureState] = []
        with _classified():
            for feature in features:
                found = client.features.get(feature.namespace, feature.name)
                state = _feature_state(found.properties)
                if state not in (REGISTERED, REGISTERING):
                    registered = client.features.register(feature.namespace, feature.name)
                    state = _feature_state(registered.properties)
                states.append(
                    FeatureState(namespace=feature.namespace, name=feature.name, state=state)
                )
        refresh_needed = any(s.state != REGISTERED for s in states) or (
            previous is not None and previous.provider_refresh_needed
        )
        providers: list[ProviderState] = []
        if refresh_needed and all(s.state == REGISTERED for s in states):
            providers = self._refresh_providers(
                subscription_id,
                sorted({f.namespace for f in features}),
                already=previous is not None and bool(previous.providers),
            )
        return FeatureRegistration(
            features=states, providers=providers, provider_refresh_needed=refresh_needed
        )

    def _refresh_providers(
        self, subscription_id: str, namespaces: list[str], *, already: bool
    ) -> list[ProviderState]:
        """Register the providers once (so AKS picks the features up), then only read them."""
        client = self._resource_client(subscription_id)
        providers: list[ProviderState] = []
        with _classified():
            for namespace in namespaces:
                if already:
                    provider = client.providers.get(namespace)
                else:
                    provider = client.providers.register(namespace)
                state = provider.registration_state or "Unknown"
                providers.append(ProviderState(namespace=namespace, state=state))
        return providers

    # -- clusters -----------------------------------------------------------------------------

    def start_create_cluster(self, request: ProvisionRequest, now: datetime) -> OperationHandle:
        """Start creating the request's new cluster (system pool only), unless it already is."""
        target = _new_cluster(request)
        desired = cluster_body(request, self._settings.owner, now)
        aks = self._aks_client(request.subscription_id)
        base = self._base_handle(request, None)
        existing = self._get_cluster(request)
        if existing is not None:
            handle = _handle_for_existing(base, existing, existing.get("tags"), desired, request)
            if handle is not None:
                return handle
        start = _StartOnly()
        with _classified(location=request.location):
            aks.managed_clusters.begin_create_or_update(
                request.resource_group,
                target.cluster_name,
                ManagedCluster(desired),
                polling=start,
            )
        return _started(base, start)

    def start_delete_cluster(self, request: ProvisionRequest) -> OperationHandle:
        """Start deleting the request's new cluster; gone already is done."""
        target = _new_cluster(request)
        aks = self._aks_client(request.subscription_id)
        base = self._base_handle(request, None).model_copy(update={"action": "delete"})
        existing = self._get_cluster(request)
        if existing is None:
            return base
        if not owned_by(existing.get("tags"), request):
            raise not_owned(f"Managed cluster {target.cluster_name}", request.request_id)
        if _provisioning_state(existing) == "Deleting":
            return base.model_copy(update={"poll": "resource"})
        start = _StartOnly()
        with _classified():
            aks.managed_clusters.begin_delete(
                request.resource_group, target.cluster_name, polling=start
            )
        return _started(base, start)

    # -- the GPU pool -------------------------------------------------------------------------

    def start_create_pool(
        self,
        request: ProvisionRequest,
        vm_size: str,
        zones: Sequence[str],
        now: datetime,
    ) -> OperationHandle:
        """Start creating the GPU pool for one candidate; the custom headers go on its PUT.

        A pool of this request left Failed with another size or zones is not changed in place
        (AKS cannot): delete it with `start_delete_pool` before the next candidate.
        """
        pool_name = request.node_pool.name
        desired = pool_body(request, vm_size, tuple(zones), self._settings.owner, now)
        aks = self._aks_client(request.subscription_id)
        base = self._base_handle(request, pool_name).model_copy(
            update={"vm_size": vm_size, "location": request.location}
        )
        existing = self._get_pool(request, pool_name)
        if existing is not None:
            properties = existing.get("properties") or {}
            handle = _handle_for_existing(base, existing, properties.get("tags"), desired, request)
            if handle is not None:
                return handle
            if not _same_candidate(properties, desired["properties"]):
                raise StepError(
                    "permanent",
                    "PoolHasOtherSize",
                    f"Agent pool {pool_name} exists with VM size {properties.get('vmSize')} and "
                    f"zones {properties.get('availabilityZones') or []}.",
                    "AKS cannot change a pool's size or zones: delete the pool, then create it "
                    "with the next candidate.",
                )
        start = _StartOnly()
        with _classified(vm_size=vm_size, location=request.location):
            aks.agent_pools.begin_create_or_update(
                request.resource_group,
                request.target.cluster_name,
                pool_name,
                AgentPool(desired),
                headers=dict(request.node_pool.custom_headers),
                polling=start,
            )
        return _started(base, start)

    def start_delete_pool(self, request: ProvisionRequest, pool_name: str) -> OperationHandle:
        """Start deleting a pool this request created; gone (or its cluster gone) is done."""
        aks = self._aks_client(request.subscription_id)
        base = self._base_handle(request, pool_name).model_copy(update={"action": "delete"})
        existing = self._get_pool(request, pool_name)
        if existing is None:
            return base
        properties = existing.get("properties") or {}
        if not owned_by(properties.get("tags"), request):
            raise not_owned(
                f"Agent pool {pool_name} of cluster {request.target.cluster_name}",
                request.request_id,
            )
        if _provisioning_state(existing) == "Deleting":
            return base.model_copy(update={"poll": "resource"})
        start = _StartOnly()
        with _classified():
            aks.agent_pools.begin_delete(
                request.resource_group, request.target.cluster_name, pool_name, polling=start
            )
        return _started(base, start)

    # -- what the reaper needs ----------------------------------------------------------------

    def list_clusters(self, subscription_id: str) -> list[JsonDict]:
        """Every managed cluster of a subscription as JSON, its agentPoolProfiles included."""
        aks = self._aks_client(subscription_id)
        with _classified():
            return [cluster.as_dict() for cluster in aks.managed_clusters.list()]

    def start_delete_tagged(
        self,
        subscription_id: str,
        resource_group: str,
        cluster_name: str,
        pool_name: str | None,
        request_id: str,
    ) -> None:
        """Start deleting a cluster (pool_name None) or pool that still carries this deployment's
        owner tag and `request_id`, read again just before: tags changed since a list are honoured.
        Gone or already deleting is done."""
        aks = self._aks_client(subscription_id)
        if pool_name is None:
            existing = self._get_cluster_by_name(subscription_id, resource_group, cluster_name)
            tags = (existing or {}).get("tags")
            what = f"Managed cluster {cluster_name}"
        else:
            existing = self._get_pool_by_name(
                subscription_id, resource_group, cluster_name, pool_name
            )
            tags = ((existing or {}).get("properties") or {}).get("tags")
            what = f"Agent pool {pool_name} of cluster {cluster_name}"
        if existing is None or _provisioning_state(existing) == "Deleting":
            return
        tags = tags or {}
        if tags.get(OWNER_TAG) != self._settings.owner or tags.get(REQUEST_ID_TAG) != request_id:
            raise not_owned(what, request_id)
        start = _StartOnly()
        with _classified(), contextlib.suppress(ResourceNotFoundError):
            if pool_name is None:
                aks.managed_clusters.begin_delete(resource_group, cluster_name, polling=start)
            else:
                aks.agent_pools.begin_delete(resource_group, cluster_name, pool_name, polling=start)

    # -- polling ------------------------------------------------------------------------------

    def check_operation(self, handle: OperationHandle) -> OperationStatus:
        """Poll once. A failed operation is `Failed` with its classified error; a failure to poll
        (throttling, connection) raises a StepError."""
        if handle.poll == "none":
            return OperationStatus(state="Succeeded")
        if handle.poll == "resource":
            return self._check_resource(handle)
        url = handle.operation_url or ""
        self._refuse_foreign_url(url)
        aks = self._aks_client(handle.subscription_id)
        with _classified(), aks.send_request(HttpRequest("GET", url)) as response:
            retry_after = _int_header(response.headers.get("Retry-After"))
            if response.status_code >= 400:
                error = HttpResponseError(response=response, error_format=ARMErrorFormat)
                if handle.poll == "location" and response.status_code < 500:
                    failed = classify(error, vm_size=handle.vm_size, location=handle.location)
                    return OperationStatus(state="Failed", error=failed.to_wire())
                raise error
            if handle.poll == "location":
                return OperationStatus(
                    state="InProgress" if response.status_code == 202 else "Succeeded",
                    retry_after=retry_after,
                )
            body = response.json()
        status = _OPERATION_DONE.get(str(body.get("status", "")).lower(), "InProgress")
        if status != "Failed":
            return OperationStatus(
                state="InProgress" if status == "InProgress" else "Succeeded",
                retry_after=retry_after,
            )
        error_body = body.get("error") or {}
        failed = classify_code(
            str(error_body.get("code") or "OperationFailed"),
            str(error_body.get("message") or "The operation failed."),
            vm_size=handle.vm_size,
            location=handle.location,
        )
        return OperationStatus(state="Failed", error=failed.to_wire())

    def _check_resource(self, handle: OperationHandle) -> OperationStatus:
        """Watch an operation started earlier through the resource's provisioningState."""
        if handle.pool_name is None:
            existing = self._get_cluster_by_name(
                handle.subscription_id, handle.resource_group, handle.cluster_name
            )
        else:
            existing = self._get_pool_by_name(
                handle.subscription_id, handle.resource_group, handle.cluster_name, handle.pool_name
            )
        if existing is None:
            if handle.action == "delete":
                return OperationStatus(state="Succeeded")
            gone = StepError("permanent", "ResourceGone", f"{handle.resource_id} disappeared.")
            return OperationStatus(state="Failed", error=gone.to_wire())
        state = _provisioning_state(existing)
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

    def _refuse_foreign_url(self, url: str) -> None:
        """Only follow operation URLs on our ARM endpoint: the bearer token goes with the GET."""
        endpoint = urlsplit(self._settings.arm_endpoint)
        target = urlsplit(url)
        if (target.scheme, target.netloc.lower()) != (endpoint.scheme, endpoint.netloc.lower()):
            raise StepError(
                "permanent",
                "ForeignOperationUrl",
                "The operation URL is not on the configured ARM endpoint.",
            )

    # -- cluster credentials (secret: only for use inside one activity) ------------------------

    def cluster_credentials(self, request: ProvisionRequest) -> ClusterCredentials:
        """How to reach the cluster's API server: the user kubeconfig's server and CA, with its
        token (local accounts) or an Entra token for the AKS server app (Entra ID clusters)."""
        aks = self._aks_client(request.subscription_id)
        name = request.target.cluster_name
        with _classified():
            cluster = aks.managed_clusters.get(request.resource_group, name)
            results = aks.managed_clusters.list_cluster_user_credentials(
                request.resource_group, name
            )
        kubeconfigs = results.kubeconfigs or []
        if not kubeconfigs or kubeconfigs[0].value is None:
            raise StepError("permanent", "NoKubeconfig", f"Cluster {name} returned no kubeconfig.")
        server, ca_pem, user = _parse_kubeconfig(bytes(kubeconfigs[0].value))
        properties = cluster.properties
        if properties is not None and properties.aad_profile is not None:
            token = self._credential.get_token(AKS_SERVER_SCOPE).token
        else:
            token = str(user.get("token") or "")
            if not token:
                raise StepError(
                    "permanent",
                    "NoTokenInKubeconfig",
                    f"The user kubeconfig of cluster {name} has no bearer token.",
                )
        return ClusterCredentials(server=server, ca_pem=ca_pem, token=token)

    # -- reads --------------------------------------------------------------------------------

    def _base_handle(self, request: ProvisionRequest, pool_name: str | None) -> OperationHandle:
        cluster_id = (
            f"/subscriptions/{request.subscription_id}/resourceGroups/{request.resource_group}"
            f"/providers/Microsoft.ContainerService/managedClusters/{request.target.cluster_name}"
        )
        return OperationHandle(
            action="create",
            resource_id=cluster_id if pool_name is None else f"{cluster_id}/agentPools/{pool_name}",
            subscription_id=request.subscription_id,
            resource_group=request.resource_group,
            cluster_name=request.target.cluster_name,
            pool_name=pool_name,
            poll="none",
        )

    def _get_cluster(self, request: ProvisionRequest) -> JsonDict | None:
        return self._get_cluster_by_name(
            request.subscription_id, request.resource_group, request.target.cluster_name
        )

    def _get_pool(self, request: ProvisionRequest, pool_name: str) -> JsonDict | None:
        return self._get_pool_by_name(
            request.subscription_id,
            request.resource_group,
            request.target.cluster_name,
            pool_name,
        )

    def _get_cluster_by_name(self, subscription_id: str, group: str, name: str) -> JsonDict | None:
        aks = self._aks_client(subscription_id)
        return _found(lambda: aks.managed_clusters.get(group, name).as_dict())

    def _get_pool_by_name(
        self, subscription_id: str, group: str, cluster: str, pool: str
    ) -> JsonDict | None:
        aks = self._aks_client(subscription_id)
        return _found(lambda: aks.agent_pools.get(group, cluster, pool).as_dict())


# -- helpers ------------------------------------------------------------------------------------


@contextmanager
def _classified(*, vm_size: str | None = None, location: str | None = None) -> Iterator[None]:
    """Azure SDK errors leave an operation only as classified StepErrors."""
    try:
        yield
    except AzureError as exc:
        raise classify(exc, vm_size=vm_size, location=location) from exc


def _found(read: Callable[[], _T]) -> _T | None:
    """The resource, or None when ARM answers 404 (a missing parent cluster included)."""
    with _classified():
        try:
            return read()
        except ResourceNotFoundError:
            return None


def _new_cluster(request: ProvisionRequest) -> NewCluster:
    if not isinstance(request.target, NewCluster):
        raise StepError(
            "permanent",
            "NotANewCluster",
            f"Cluster {request.target.cluster_name} was not created by the provisioner.",
            "Only a newCluster target's cluster is created or deleted; an existing cluster is "
            "left as it is.",
        )
    return request.target


def _provisioning_state(resource: Mapping[str, Any]) -> str:
    return str((resource.get("properties") or {}).get("provisioningState") or "")


def _handle_for_existing(
    base: OperationHandle,
    existing: JsonDict,
    tags: Any,
    desired: JsonDict,
    request: ProvisionRequest,
) -> OperationHandle | None:
    """A handle without a PUT when the resource is ours and done or busy; None means PUT."""
    if not owned_by(tags if isinstance(tags, dict) else None, request):
        kind = "Managed cluster" if base.pool_name is None else "Agent pool"
        raise not_owned(f"{kind} {base.pool_name or base.cluster_name}", request.request_id)
    state = _provisioning_state(existing)
    if state in IN_PROGRESS_STATES:
        return base.model_copy(update={"poll": "resource"})
    if state == "Succeeded" and matches(existing, desired):
        return base
    return None


def _same_candidate(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    return str(existing.get("vmSize", "")).lower() == str(desired["vmSize"]).lower() and sorted(
        existing.get("availabilityZones") or []
    ) == sorted(desired.get("availabilityZones") or [])


def _started(base: OperationHandle, start: _StartOnly) -> OperationHandle:
    """The handle of an operation ARM just accepted, from its first answer's headers."""
    headers = {name.lower(): value for name, value in start.headers.items()}
    retry_after = _int_header(headers.get("retry-after"))
    if base.action == "delete" and start.status_code == 204:
        return base
    if headers.get("azure-asyncoperation"):
        poll: Literal["asyncOperation", "location", "resource"] = "asyncOperation"
        url: str | None = headers["azure-asyncoperation"]
    elif headers.get("location"):
        poll, url = "location", headers["location"]
    else:
        state = _provisioning_state(start.body or {})
        if base.action == "create" and state == "Succeeded":
            return base
        poll, url = "resource", None
    return base.model_copy(update={"poll": poll, "operation_url": url, "retry_after": retry_after})


def _int_header(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


def _feature_state(properties: Any) -> str:
    return str(getattr(properties, "state", None) or "NotRegistered")


def _parse_kubeconfig(raw: bytes) -> tuple[str, bytes, dict[str, Any]]:
    """(server, CA PEM, user entry) of the kubeconfig's current context."""
    config = yaml.safe_load(raw)
    if not isinstance(config, dict):
        raise StepError("permanent", "BadKubeconfig", "The cluster's kubeconfig is not a mapping.")
    contexts = {c["name"]: c["context"] for c in config.get("contexts") or []}
    context: dict[str, Any] = contexts.get(config.get("current-context")) or next(
        iter(contexts.values()), {}
    )
    clusters = {c["name"]: c["cluster"] for c in config.get("clusters") or []}
    users = {u["name"]: u["user"] for u in config.get("users") or []}
    cluster = clusters.get(context.get("cluster")) or {}
    server = str(cluster.get("server") or "")
    ca_data = str(cluster.get("certificate-authority-data") or "")
    if not server or not ca_data:
        raise StepError(
            "permanent", "BadKubeconfig", "The cluster's kubeconfig names no server or CA."
        )
    user = users.get(context.get("user")) or {}
    return server, base64.b64decode(ca_data), user if isinstance(user, dict) else {}
