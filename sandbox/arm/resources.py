"""What ARM knows about managed clusters and agent pools, over groups, registrations, operations.

Not thread-safe by itself: the server calls it under one lock. Time comes in as `now` (simulated
seconds); operations whose time is up are completed by `settle`, which also tells the cluster
backend about pools that reached Succeeded or were deleted.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.mgmt.containerservice.models import AgentPool, ManagedCluster

from sandbox.arm import compute, defaults, schema
from sandbox.arm.features import require_features
from sandbox.arm.groups import ResourceGroups
from sandbox.arm.identity import SANDBOX_TENANT_ID
from sandbox.arm.kubeconfig import build_kubeconfig
from sandbox.arm.model import (
    SYNCHRONOUS_CAPACITY_CODES,
    ArmError,
    ArmTimings,
    CapacityRule,
    Reply,
)
from sandbox.arm.operations import ClusterKey, Operation, Operations
from sandbox.arm.registrations import CONTAINER_SERVICE, Registrations
from sandbox.arm.vm_sizes import gpus_per_node, refuse_retired
from sandbox.cloud import ClusterAccess, ClusterBackend, PoolNodes

SPOT_LABEL_KEY = "kubernetes.azure.com/scalesetpriority"
SPOT_TAINT = f"{SPOT_LABEL_KEY}=spot:NoSchedule"


@dataclass
class _Pool:
    name: str
    properties: dict[str, Any]
    state: str
    in_backend: bool = False


@dataclass
class _Cluster:
    subscription: str
    resource_group: str
    name: str
    location: str
    tags: dict[str, str]
    top_level: dict[str, Any]
    """identity, sku, ... as given on the PUT."""
    properties: dict[str, Any]
    state: str
    pools: dict[str, _Pool] = field(default_factory=dict)
    in_backend: bool = False

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/{CONTAINER_SERVICE}/managedClusters/{self.name}"
        )

    @property
    def entra_id(self) -> bool:
        return bool(self.properties.get("aadProfile"))


class ArmResources:
    """The simulator's state: groups, registrations and operations (each in its own module),
    and the managed clusters and agent pools with the ARM semantics of their routes."""

    def __init__(
        self,
        *,
        timings: ArmTimings,
        backend: ClusterBackend | None,
        ca_path: Path,
    ) -> None:
        self.timings = timings
        self.backend = backend
        self.ca_path = ca_path
        self.groups = ResourceGroups()
        self.registrations = Registrations(timings)
        self.operations = Operations(timings)
        self._clusters: dict[ClusterKey, _Cluster] = {}
        self._capacity: list[list[Any]] = []
        """[rule, remaining uses or None]"""

    @property
    def base_url(self) -> str:
        return self.operations.base_url

    @base_url.setter
    def base_url(self, url: str) -> None:
        self.operations.base_url = url

    # -- configuration -------------------------------------------------------------------------

    def add_capacity_rule(self, rule: CapacityRule) -> None:
        self._capacity.append([rule, rule.times])

    def clear_capacity_rules(self) -> None:
        self._capacity.clear()

    # -- time ----------------------------------------------------------------------------------

    def settle(self, now: float) -> None:
        """Finish registrations and operations whose simulated time is up."""
        self.registrations.settle(now)
        for op in self.operations.due(now):
            self._complete(op)

    def _complete(self, op: Operation) -> None:
        cluster = self._clusters[op.cluster_key]
        op.status = "Failed" if op.failure else "Succeeded"
        if op.action == "delete":
            if op.target == "managedClusters":
                del self._clusters[op.cluster_key]
                if cluster.in_backend and self.backend is not None:
                    self.backend.remove_cluster(cluster.resource_id)
            else:
                pool = cluster.pools.pop(op.target)
                if pool.in_backend and self.backend is not None:
                    self.backend.remove_pool(cluster.resource_id, pool.name)
            return
        new_state = "Failed" if op.failure else "Succeeded"
        if op.target == "managedClusters":
            cluster.state = new_state
        for pool_key in op.pool_keys:
            cluster.pools[pool_key].state = new_state
        if op.failure or self.backend is None:
            return
        if not cluster.in_backend:
            self.backend.ensure_cluster(cluster.resource_id, entra_id=cluster.entra_id)
            cluster.in_backend = True
        for pool_key in op.pool_keys:
            pool = cluster.pools[pool_key]
            self.backend.set_pool(cluster.resource_id, _pool_nodes(pool))
            pool.in_backend = True

    # -- resource groups -----------------------------------------------------------------------

    def group_delete(self, sub: str, rg: str) -> Reply:
        """Deletes the group and every cluster in it; 202 + Location as ARM answers."""
        self.groups.require(sub, rg)  # missing: 404 ResourceGroupNotFound, as `az` shows
        key = (sub.lower(), rg.lower())
        for cluster_key in [k for k in self._clusters if k[:2] == key]:
            cluster = self._clusters.pop(cluster_key)
            self.operations.cancel_for(cluster_key)
            if cluster.in_backend and self.backend is not None:
                self.backend.remove_cluster(cluster.resource_id)
        self.groups.remove(sub, rg)
        operation = f"{self.base_url}/subscriptions/{sub}/operationresults/{uuid.uuid4().hex}"
        return Reply(202, None, {"Location": f"{operation}?api-version=2024-03-01"})

    # -- managed clusters ----------------------------------------------------------------------

    def _cluster(self, sub: str, rg: str, name: str) -> _Cluster:
        self.groups.require(sub, rg)
        cluster = self._clusters.get((sub.lower(), rg.lower(), name.lower()))
        if cluster is None:
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource '{CONTAINER_SERVICE}/managedClusters/{name}' under resource group "
                f"'{rg}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
            )
        return cluster

    def _parent(self, sub: str, rg: str, name: str) -> _Cluster:
        self.groups.require(sub, rg)
        try:
            return self._cluster(sub, rg, name)
        except ArmError:
            raise ArmError(
                404,
                "ParentResourceNotFound",
                f"Can not perform requested operation on nested resource. Parent resource "
                f"'{name}' not found.",
            ) from None

    def _cluster_json(self, cluster: _Cluster) -> dict[str, Any]:
        properties = {
            **cluster.properties,
            "provisioningState": cluster.state,
            "powerState": {"code": "Running"},
            "agentPoolProfiles": [
                {"name": pool.name, **self._pool_properties_json(pool)}
                for pool in cluster.pools.values()
            ],
        }
        shown = {
            **cluster.top_level,
            "id": cluster.resource_id,
            "location": cluster.location,
            "name": cluster.name,
            "type": f"{CONTAINER_SERVICE}/ManagedClusters",
            "tags": cluster.tags,
            "properties": properties,
        }
        return dict(schema.without_write_only(shown, ManagedCluster))

    def _pool_properties_json(self, pool: _Pool) -> dict[str, Any]:
        return {
            **pool.properties,
            "provisioningState": pool.state,
            "powerState": {"code": "Running"},
        }

    def _pool_json(self, cluster: _Cluster, pool: _Pool) -> dict[str, Any]:
        shown = {
            "id": f"{cluster.resource_id}/agentPools/{pool.name}",
            "name": pool.name,
            "type": f"{CONTAINER_SERVICE}/managedClusters/agentPools",
            "properties": self._pool_properties_json(pool),
        }
        return dict(schema.without_write_only(shown, AgentPool))

    def cluster_list(self, sub: str, rg: str | None) -> Reply:
        if rg is not None:
            self.groups.require(sub, rg)
        found = [
            self._cluster_json(cluster)
            for (s, r, _), cluster in self._clusters.items()
            if s == sub.lower() and (rg is None or r == rg.lower())
        ]
        return Reply(200, {"value": found})

    def _accept_aks_put(self, sub: str, body: Any) -> None:
        """What ARM checks first on an AKS PUT: a JSON object, in a subscription registered
        for Microsoft.ContainerService."""
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid.")
        self.registrations.require_container_service(sub)

    def cluster_get(self, sub: str, rg: str, name: str) -> Reply:
        return Reply(200, self._cluster_json(self._cluster(sub, rg, name)))

    def cluster_put(
        self,
        sub: str,
        rg: str,
        name: str,
        body: Any,
        now: float,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        self._accept_aks_put(sub, body)
        self.groups.require(sub, rg)
        key = (sub.lower(), rg.lower(), name.lower())
        existing = self._clusters.get(key)
        if existing is not None:
            self.operations.refuse_if_busy(key)
        if not schema.CLUSTER_NAME.match(name):
            raise ArmError(
                400,
                "InvalidParameter",
                f"The value of parameter resourceName is invalid: '{name}'. Please see "
                "https://aka.ms/aks-naming-rules for more details.",
                target="resourceName",
            )
        body = schema.clean(body, ManagedCluster, "managedCluster")
        properties = dict(body.get("properties") or {})
        profiles = properties.pop("agentPoolProfiles", None) or []
        location = str(body.get("location") or (existing.location if existing else ""))
        if not location:
            raise ArmError(400, "LocationRequired", "The location property is required.")
        if existing is not None and _norm(location) != _norm(existing.location):
            raise ArmError(
                400,
                "InvalidResourceLocation",
                f"The resource '{name}' already exists in location '{existing.location}' in "
                f"resource group '{rg}'. A resource with the same name cannot be created in "
                f"location '{location}'. Please select a new resource name.",
            )
        if existing is None and not profiles:
            raise ArmError(
                400, "InvalidParameter", "The cluster must have at least one agent pool profile."
            )
        properties = defaults.cluster_defaults(
            properties, name=name, key="/".join(key), resource_group=rg, location=location
        )
        version = str(properties["kubernetesVersion"])
        pools: dict[str, _Pool] = {}
        for index, profile in enumerate(profiles):
            _check_pool_name(str(profile.get("name") or ""))
            mode = "System" if index == 0 else "User"
            pool_props = _pool_properties(profile, default_mode=mode, version=version)
            pools[str(profile["name"]).lower()] = _Pool(str(profile["name"]), pool_props, "")
        require_features(
            self.registrations.feature_state, sub, headers, [p.properties for p in pools.values()]
        )
        failure = self._capacity_check(pools.values())
        top_level = {
            k: v for k, v in body.items() if k not in ("properties", "location", "tags", "id")
        }
        top_level["identity"] = defaults.identity_defaults(top_level.get("identity"), "/".join(key))
        top_level["eTag"] = defaults.etag()
        action = "update" if existing else "create"
        if existing is None:
            cluster = _Cluster(
                subscription=sub,
                resource_group=rg,
                name=name,
                location=location,
                tags=dict(body.get("tags") or {}),
                top_level=top_level,
                properties=properties,
                state="Creating",
            )
            self._clusters[key] = cluster
        else:
            cluster = existing
            cluster.tags = dict(body.get("tags") or {})
            cluster.top_level = top_level
            cluster.properties = properties
            cluster.state = "Updating"
        for pool_key, pool in pools.items():
            pool.state = "Creating" if pool_key not in cluster.pools else "Updating"
            previous = cluster.pools.get(pool_key)
            pool.in_backend = previous.in_backend if previous else False
            cluster.pools[pool_key] = pool
        seconds = (
            self.timings.cluster_update_seconds if existing else self.timings.cluster_create_seconds
        )
        op = self.operations.start(
            cluster, "managedClusters", action, tuple(pools), now, seconds, failure
        )
        status = 200 if existing else 201
        return Reply(status, self._cluster_json(cluster), self.operations.headers(op, False))

    def seed_cluster(self, sub: str, rg: str, name: str, location: str, now: float) -> None:
        """A cluster that exists already (Succeeded, system pool `nodepool1`)."""
        if not self.groups.exists(sub, rg):
            self.groups.put(sub, rg, {"location": location})
        body = {
            "location": location,
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "dnsPrefix": f"{name}-dns",
                "agentPoolProfiles": [{"name": "nodepool1", "count": 2, "mode": "System"}],
            },
        }
        self.cluster_put(sub, rg, name, body, now)
        for op in self.operations.due(float("inf")):
            if op.cluster_key[1:] == (rg.lower(), name.lower()):
                op.due = now
        self.settle(now)

    def cluster_delete(self, sub: str, rg: str, name: str, now: float) -> Reply:
        self.groups.require(sub, rg)
        key = (sub.lower(), rg.lower(), name.lower())
        cluster = self._clusters.get(key)
        if cluster is None:
            return Reply(204)
        self.operations.refuse_if_busy(key)
        cluster.state = "Deleting"
        for pool in cluster.pools.values():
            pool.state = "Deleting"
        op = self.operations.start(
            cluster, "managedClusters", "delete", (), now, self.timings.cluster_delete_seconds
        )
        return Reply(202, None, self.operations.headers(op, True))

    def cluster_user_credential(
        self, sub: str, rg: str, name: str, credential_format: str | None
    ) -> Reply:
        cluster = self._cluster(sub, rg, name)
        if self.backend is not None:
            access = self.backend.ensure_cluster(cluster.resource_id, entra_id=cluster.entra_id)
            cluster.in_backend = True
        else:
            token = hashlib.sha256(cluster.resource_id.lower().encode()).hexdigest()
            access = ClusterAccess(
                server=f"https://{cluster.properties['fqdn']}:443",
                token=token,
                ca_path=str(self.ca_path),
            )
        tenant = None
        if cluster.entra_id:
            tenant = str(cluster.properties["aadProfile"].get("tenantID") or SANDBOX_TENANT_ID)
        kubeconfig = build_kubeconfig(
            cluster_name=cluster.name,
            resource_group=cluster.resource_group,
            access=access,
            entra_tenant_id=tenant,
            credential_format=credential_format,
        )
        value = base64.b64encode(kubeconfig).decode("ascii")
        return Reply(200, {"kubeconfigs": [{"name": "clusterUser", "value": value}]})

    # -- agent pools ---------------------------------------------------------------------------

    def pool_list(self, sub: str, rg: str, name: str) -> Reply:
        cluster = self._parent(sub, rg, name)
        return Reply(200, {"value": [self._pool_json(cluster, p) for p in cluster.pools.values()]})

    def pool_get(self, sub: str, rg: str, name: str, pool_name: str) -> Reply:
        cluster = self._parent(sub, rg, name)
        pool = cluster.pools.get(pool_name.lower())
        if pool is None:
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource '{CONTAINER_SERVICE}/managedClusters/{name}/agentPools/"
                f"{pool_name}' under resource group '{rg}' was not found.",
            )
        return Reply(200, self._pool_json(cluster, pool))

    def pool_put(
        self,
        sub: str,
        rg: str,
        name: str,
        pool_name: str,
        body: Any,
        now: float,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        self._accept_aks_put(sub, body)
        cluster = self._parent(sub, rg, name)
        _check_pool_name(pool_name)
        body = schema.clean(body, AgentPool, "agentPool")
        key = (sub.lower(), rg.lower(), name.lower())
        self.operations.refuse_if_busy(key)
        version = str(cluster.properties["kubernetesVersion"])
        properties = _pool_properties(
            dict(body.get("properties") or {}), default_mode="User", version=version
        )
        require_features(self.registrations.feature_state, sub, headers, [properties])
        pool_key = pool_name.lower()
        previous = cluster.pools.get(pool_key)
        pool = _Pool(previous.name if previous else pool_name, properties, "")
        others = [q for q in self.pools_in(sub, cluster.location) if q is not previous]
        compute.refuse_over_quota(cluster.location, [q.properties for q in others], properties)
        failure = self._capacity_check([pool])
        pool.state = "Updating" if previous else "Creating"
        pool.in_backend = previous.in_backend if previous else False
        cluster.pools[pool_key] = pool
        action = "update" if previous else "create"
        seconds = self.timings.pool_update_seconds if previous else self.timings.pool_create_seconds
        op = self.operations.start(cluster, pool_key, action, (pool_key,), now, seconds, failure)
        return Reply(
            200 if previous else 201,
            self._pool_json(cluster, pool),
            self.operations.headers(op, False),
        )

    def pool_delete(self, sub: str, rg: str, name: str, pool_name: str, now: float) -> Reply:
        cluster = self._parent(sub, rg, name)
        pool = cluster.pools.get(pool_name.lower())
        if pool is None:
            return Reply(204)
        self.operations.refuse_if_busy((sub.lower(), rg.lower(), name.lower()))
        pool.state = "Deleting"
        op = self.operations.start(
            cluster, pool_name.lower(), "delete", (), now, self.timings.pool_delete_seconds
        )
        return Reply(202, None, self.operations.headers(op, True))

    def pools_in(self, sub: str, location: str) -> list[_Pool]:
        """Every pool of the subscription in a location: what its vCPU quota is used by."""
        return [
            pool
            for key, cluster in self._clusters.items()
            if key[0] == sub.lower() and _norm(cluster.location) == _norm(location)
            for pool in cluster.pools.values()
        ]

    def sku_restrictions(self) -> list[tuple[str, str | None]]:
        """(size, zone or None) that standing SkuNotAvailable rules refuse: Resource SKUs lists
        them as restricted, as Azure does for a size it will not give this subscription."""
        return [
            (rule.vm_size, rule.zone)
            for rule, remaining in self._capacity
            if rule.code == "SkuNotAvailable" and rule.vm_size and remaining is None
            and rule.spot is None
        ]  # fmt: skip

    def _capacity_check(self, pools: Any) -> tuple[str, str] | None:
        """Answer synchronous capacity errors now; return the failure the operation will end in."""
        for pool in pools:
            props = pool.properties
            vm_size = str(props["vmSize"])
            zones = tuple(str(z) for z in props.get("availabilityZones") or ())
            spot = props.get("scaleSetPriority") == "Spot"
            for slot in self._capacity:
                rule, remaining = slot
                if remaining == 0 or not rule.matches(vm_size, zones, spot):
                    continue
                if remaining is not None:
                    slot[1] = remaining - 1
                if rule.code in SYNCHRONOUS_CAPACITY_CODES:
                    raise ArmError(400, rule.code, rule.describe(vm_size))
                return (rule.code, rule.describe(vm_size))
        return None


def _norm(location: str) -> str:
    """ARM compares locations without case or spaces ('East US' is 'eastus')."""
    return location.replace(" ", "").lower()


def _check_pool_name(pool_name: str) -> None:
    if not schema.AGENT_POOL_NAME.match(pool_name):
        raise ArmError(
            400,
            "InvalidParameter",
            "The value of parameter agentPoolProfile.name is invalid. Please see "
            "https://aka.ms/aks-naming-rules for more details.",
            target="agentPoolProfile.name",
        )


def _pool_properties(raw: dict[str, Any], *, default_mode: str, version: str) -> dict[str, Any]:
    """A pool's stored properties: the request's, AKS defaults filled in, spot marks added."""
    props = {k: v for k, v in raw.items() if k != "name"}
    count = props.setdefault("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ArmError(400, "InvalidParameter", f"The value of count ({count!r}) is invalid.")
    props = defaults.pool_defaults(props, mode=default_mode, cluster_version=version)
    refuse_retired(str(props["vmSize"]))
    if str(props.get("scaleSetPriority", "Regular")).lower() == "spot":
        props["scaleSetPriority"] = "Spot"
        props.setdefault("spotMaxPrice", -1)
        props.setdefault("scaleSetEvictionPolicy", "Delete")
        taints = list(props.get("nodeTaints") or [])
        if SPOT_TAINT not in taints:
            taints.append(SPOT_TAINT)
        props["nodeTaints"] = taints
        props["nodeLabels"] = {**(props.get("nodeLabels") or {}), SPOT_LABEL_KEY: "spot"}
    return props


def _pool_nodes(pool: _Pool) -> PoolNodes:
    props = pool.properties
    nvidia = (props.get("gpuProfile") or {}).get("nvidia") or {}
    return PoolNodes(
        pool_name=pool.name,
        vm_size=str(props["vmSize"]),
        count=int(props["count"]),
        gpus_per_node=gpus_per_node(str(props["vmSize"])),
        taints=tuple(str(t) for t in props.get("nodeTaints") or ()),
        labels={str(k): str(v) for k, v in (props.get("nodeLabels") or {}).items()},
        managed_gpu=str(nvidia.get("managementMode", "")).lower() == "managed",
        zones=tuple(str(z) for z in props.get("availabilityZones") or ()),
    )
