"""Policy: what a request may do, from the platform's facts and the app's settings.

The model checks each field on its own; this checks fields against each other, the GPU VM size
catalog and the settings' allow-lists and limits. Every rule returns a Problem that names the fix.
"""

from __future__ import annotations

from collections.abc import Iterator

from shared import catalog
from shared.naming import NODE_RESOURCE_GROUP_MAX, node_resource_group
from shared.problems import Problem, json_path
from shared.request import ExistingCluster, NewCluster, ProvisionRequest
from shared.settings import Settings

RETIRED_HEADER = "usegpudedicatedvhd"
RETIRED_FEATURE = "gpudedicatedvhdpreview"


def check(request: ProvisionRequest, settings: Settings) -> list[Problem]:
    """Every policy problem with the request; empty when it may run."""
    return [
        *_allow_lists(request, settings),
        *_vm_sizes(request, settings),
        *_consistency(request),
        *_limits(request, settings),
        *_retired_mechanisms(request),
    ]


def _allow_lists(request: ProvisionRequest, settings: Settings) -> Iterator[Problem]:
    checks = (
        ("subscriptionId", request.subscription_id, settings.allowed_subscriptions,
         "GPUPROV_ALLOWED_SUBSCRIPTIONS"),
        ("resourceGroup", request.resource_group, settings.allowed_resource_groups,
         "GPUPROV_ALLOWED_RESOURCE_GROUPS"),
        ("location", request.location, settings.allowed_locations, "GPUPROV_ALLOWED_LOCATIONS"),
    )  # fmt: skip
    for field, value, allowed, setting in checks:
        if allowed and value.lower() not in allowed:
            yield Problem(
                path=json_path(field),
                message=f"{value!r} is not allowed here; allowed: {', '.join(sorted(allowed))} "
                f"(the operators set this in {setting})",
            )


def _candidate_sizes(request: ProvisionRequest) -> Iterator[tuple[str, str]]:
    """(JSONPath, size) for the first size and every alternative, in the order they are tried."""
    yield json_path("nodePool", "vmSize"), request.node_pool.vm_size
    for index, size in enumerate(request.node_pool.alternative_vm_sizes):
        yield json_path("nodePool", "alternativeVmSizes", index), size


def _vm_sizes(request: ProvisionRequest, settings: Settings) -> Iterator[Problem]:
    pool = request.node_pool
    seen: set[str] = set()
    for path, name in _candidate_sizes(request):
        size = catalog.lookup(name)
        if name.lower() in seen:
            yield Problem(path=path, message=f"{name} is listed twice; list each size once")
            continue
        seen.add(name.lower())
        if size is None:
            yield Problem(path=path, message=_unknown_size(name))
            continue
        if size.retired:
            yield Problem(
                path=path,
                message=f"{size.name} ({size.family}, {size.gpu_model}) was retired on "
                f"{size.retired_on} and can no longer be deployed; use {size.replacement} instead",
            )
            continue
        if settings.allowed_vm_sizes and size.name.lower() not in settings.allowed_vm_sizes:
            yield Problem(
                path=path,
                message=f"{size.name} is not allowed here; allowed: "
                f"{', '.join(sorted(settings.allowed_vm_sizes))} "
                "(the operators set this in GPUPROV_ALLOWED_VM_SIZES)",
            )
        if size.needs_grid_driver and pool.gpu_driver == "Install":
            yield Problem(
                path=path,
                message=f"{size.name} ({size.gpu_model}) needs the NVIDIA GRID driver, which AKS "
                "does not install: set nodePool.gpuDriver to None and install it yourself, "
                "or use an NC-series size",
            )
        if pool.mig_profile and not size.mig_capable:
            yield Problem(
                path=path,
                message=f"{size.name} ({size.gpu_model}) does not support MIG profile "
                f"{pool.mig_profile}: use an A100 or H100 size, or drop nodePool.migProfile",
            )
        if request.job.gpus_per_pod > size.gpus:
            yield Problem(
                path=path,
                message=f"the job asks for {request.job.gpus_per_pod} GPUs per pod but {size.name} "
                f"has {size.gpus}: the pod would never schedule; lower job.gpusPerPod or pick "
                "a larger size",
            )


def _unknown_size(name: str) -> str:
    sizes = ", ".join(s.name for s in catalog.current_sizes())
    return f"{name} is not a GPU VM size this provisioner knows; current sizes: {sizes}"


def _consistency(request: ProvisionRequest) -> Iterator[Problem]:
    pool, cleanup = request.node_pool, request.cleanup
    if isinstance(request.target, ExistingCluster) and cleanup.delete_cluster:
        yield Problem(
            path=json_path("cleanup", "deleteCluster"),
            message="the provisioner never deletes a cluster it did not create: set it to false, "
            "or target a newCluster",
        )
    if pool.managed_gpu and pool.gpu_driver == "None":
        yield Problem(
            path=json_path("nodePool", "managedGpu"),
            message="a managed GPU pool needs the driver AKS installs: set gpuDriver to Install, "
            "or managedGpu to false",
        )
    if pool.managed_gpu and request.device_plugin.install == "always":
        yield Problem(
            path=json_path("devicePlugin", "install"),
            message="AKS installs the device plugin on managed GPU pools, so a second one would "
            "conflict: use auto or never",
        )
    for field, values in (("zones", pool.zones), ("taints", pool.taints)):
        for index, value in enumerate(values):
            if value in values[:index]:
                yield Problem(
                    path=json_path("nodePool", field, index),
                    message=f"{value!r} is listed twice; list it once",
                )
    spot = pool.spot
    if (
        spot is not None
        and spot.max_price != -1
        and (spot.max_price <= 0 or round(spot.max_price, 5) != spot.max_price)
    ):
        yield Problem(
            path=json_path("nodePool", "spot", "maxPrice"),
            message=f"{spot.max_price} is not a spot price: give -1 (up to the on-demand price) "
            "or a positive amount in US dollars with at most 5 decimals",
        )
    seen_features: set[tuple[str, str]] = set()
    for index, feature in enumerate(request.preview_features):
        key = (feature.namespace.lower(), feature.name.lower())
        if key in seen_features:
            yield Problem(
                path=json_path("previewFeatures", index),
                message=f"{feature.namespace}/{feature.name} is listed twice; list it once",
            )
        seen_features.add(key)
    if isinstance(request.target, NewCluster):
        node_group = node_resource_group(
            request.resource_group, request.target.cluster_name, request.location
        )
        if len(node_group) > NODE_RESOURCE_GROUP_MAX:
            yield Problem(
                path=json_path("target", "clusterName"),
                message=f"AKS names the node resource group {node_group!r} ({len(node_group)} "
                f"characters) and refuses more than {NODE_RESOURCE_GROUP_MAX}: shorten the cluster "
                "or resource group name",
            )


def _limits(request: ProvisionRequest, settings: Settings) -> Iterator[Problem]:
    pool = request.node_pool
    if pool.node_count > settings.max_nodes_per_request:
        yield Problem(
            path=json_path("nodePool", "nodeCount"),
            message=f"{pool.node_count} nodes is more than the {settings.max_nodes_per_request} "
            "one request may have (GPUPROV_MAX_NODES_PER_REQUEST)",
        )
    for path, name in _candidate_sizes(request):
        size = catalog.lookup(name)
        if size is None or size.retired:
            continue
        gpus = pool.node_count * size.gpus
        if gpus > settings.max_gpus_per_request:
            yield Problem(
                path=path,
                message=f"{pool.node_count} × {size.name} is {gpus} GPUs, more than the "
                f"{settings.max_gpus_per_request} one request may have "
                "(GPUPROV_MAX_GPUS_PER_REQUEST): lower nodePool.nodeCount or pick a smaller size",
            )
    if settings.max_budget and request.budget and request.budget.max_cost > settings.max_budget:
        yield Problem(
            path=json_path("budget", "maxCost"),
            message=f"a budget of {request.budget.max_cost:g} {request.budget.currency} is more "
            f"than the {settings.max_budget:g} USD allowed (GPUPROV_MAX_BUDGET): lower it",
        )
    if request.cleanup.ttl_hours > settings.max_ttl_hours:
        yield Problem(
            path=json_path("cleanup", "ttlHours"),
            message=f"{request.cleanup.ttl_hours} hours is longer than the "
            f"{settings.max_ttl_hours} allowed (GPUPROV_MAX_TTL_HOURS)",
        )


def _retired_mechanisms(request: ProvisionRequest) -> Iterator[Problem]:
    for header in request.node_pool.custom_headers:
        if header.lower() == RETIRED_HEADER:
            yield Problem(
                path=json_path("nodePool", "customHeaders", header),
                message="the AKS GPU image (UseGPUDedicatedVHD) was retired on 2025-01-10 and new "
                "pools cannot use it: remove the header; AKS installs the NVIDIA driver and the "
                "install-device-plugin step installs the plugin (or set nodePool.managedGpu)",
            )
    for index, feature in enumerate(request.preview_features):
        if feature.name.lower() == RETIRED_FEATURE:
            yield Problem(
                path=json_path("previewFeatures", index, "name"),
                message="GPUDedicatedVHDPreview belongs to the AKS GPU image retired on "
                "2025-01-10: "
                "remove it (for an AKS-managed GPU stack use ManagedGPUExperiencePreview with "
                "nodePool.managedGpu)",
            )
