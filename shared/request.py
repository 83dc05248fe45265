"""The provisioning request: the versioned wire contract of every front door (queues, HTTP).

camelCase on the wire, unknown fields rejected, strict JSON types. Defaults follow today's AKS
(PLATFORM-FACTS.md) and the seed walkthrough's MNIST job.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from shared.catalog import DEFAULT_GPU_VM_SIZE
from shared.naming import (
    ClusterName,
    DnsLabel,
    EnvName,
    FeatureName,
    FeatureNamespace,
    HeaderName,
    HeaderValue,
    ImageReference,
    KubernetesVersion,
    LabelKey,
    LabelValue,
    LinuxPoolName,
    Location,
    RequestId,
    ResourceGroupName,
    SubscriptionId,
    Taint,
    VmSizeName,
)
from shared.wire import WireModel

API_VERSION = "gpuprov/v1"
DEFAULT_GPU_TAINT = "sku=gpu:NoSchedule"
DEFAULT_DEVICE_PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin:v0.18.0"
DEFAULT_DEVICE_PLUGIN_NAMESPACE = "gpu-resources"
DEFAULT_JOB_IMAGE = "mcr.microsoft.com/azuredocs/samples-tf-mnist-demo:gpu"
MANAGED_GPU_FEATURE = "ManagedGPUExperiencePreview"
CONTAINER_SERVICE = "Microsoft.ContainerService"


class NewCluster(WireModel):
    """Create an AKS cluster with a small system pool, then add the GPU pool to it."""

    kind: Literal["newCluster"]
    cluster_name: ClusterName
    """AKS cluster name; with resource group and location it also names the node resource group."""
    kubernetes_version: KubernetesVersion | None = None
    """MAJOR.MINOR[.PATCH]; omitted means the AKS default version."""
    entra_id: bool = False
    """Microsoft Entra ID authentication with Azure RBAC and local accounts disabled."""
    system_node_vm_size: VmSizeName = "Standard_D4ds_v5"
    """VM size of the system pool for cluster add-ons (the GPU pool stays tainted for GPU work)."""
    system_node_count: int = Field(default=1, ge=1, le=10)
    """Nodes in the system pool."""


class ExistingCluster(WireModel):
    """Add the GPU pool to a cluster that already exists in the request's resource group."""

    kind: Literal["existingCluster"]
    cluster_name: ClusterName
    """Name of the existing AKS cluster."""


Target = Annotated[NewCluster | ExistingCluster, Field(discriminator="kind")]


class Spot(WireModel):
    """Spot priority: evicted VMs are deleted; AKS adds the spot taint, which the job tolerates."""

    max_price: float = -1.0
    """Highest price per hour in US dollars, up to 5 decimals; -1 pays up to the on-demand price."""


class NodePool(WireModel):
    """The GPU node pool to create."""

    name: LinuxPoolName = "gpunp"
    """Pool name: 1-12 lowercase letters or digits, starting with a letter."""
    vm_size: VmSizeName = DEFAULT_GPU_VM_SIZE
    """GPU VM size tried first."""
    alternative_vm_sizes: list[VmSizeName] = Field(default_factory=list, max_length=10)
    """Sizes tried in order when the first has no capacity (SkuNotAvailable, AllocationFailed)."""
    node_count: int = Field(default=1, ge=1, le=1000)
    """Nodes in the pool."""
    zones: list[Literal["1", "2", "3"]] = Field(default_factory=list, max_length=3)
    """Availability zones; empty means regional."""
    spot: Spot | None = None
    """Use spot VMs; omitted means regular priority."""
    taints: list[Taint] = Field(default_factory=lambda: [DEFAULT_GPU_TAINT], max_length=50)
    """Node taints (key=value:Effect); only settable when the pool is created."""
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=50)
    """Node labels."""
    os_disk_size_gb: int | None = Field(default=None, ge=30, le=2048)
    """OS disk size in GB; omitted means the AKS default for the size."""
    gpu_driver: Literal["Install", "None"] = "Install"
    """Install: AKS installs the NVIDIA driver. None: bring your own (e.g. NVIDIA GPU Operator)."""
    managed_gpu: bool = False
    """AKS-managed GPU stack (driver, device plugin, DCGM exporter); registers its preview."""
    mig_profile: Literal["MIG1g", "MIG2g", "MIG3g", "MIG4g", "MIG7g"] | None = None
    """Multi-instance GPU profile, for MIG-capable sizes (A100, H100)."""
    custom_headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict, max_length=20)
    """Sent as HTTP headers on the pool PUT, like `az aks nodepool add --aks-custom-headers`."""


class PreviewFeature(WireModel):
    """An ARM preview feature to register (then the provider is registered again)."""

    namespace: FeatureNamespace = CONTAINER_SERVICE
    """Resource provider namespace."""
    name: FeatureName
    """Feature name, e.g. ManagedGPUExperiencePreview."""


class DevicePlugin(WireModel):
    """The NVIDIA device plugin DaemonSet that makes GPUs schedulable."""

    install: Literal["auto", "always", "never"] = "auto"
    """auto: skip when the pool's GPU stack or an existing plugin provides it; always; never."""
    image: ImageReference = DEFAULT_DEVICE_PLUGIN_IMAGE
    """Device plugin image."""
    namespace: DnsLabel = DEFAULT_DEVICE_PLUGIN_NAMESPACE
    """Namespace of the DaemonSet (created when missing)."""


class Job(WireModel):
    """The GPU job that proves the pool works; its pod log is captured."""

    name: DnsLabel = "samples-tf-mnist-demo"
    """Job name."""
    image: ImageReference = DEFAULT_JOB_IMAGE
    """Container image."""
    command: list[str] = Field(default_factory=list, max_length=100)
    """Entrypoint override; empty keeps the image's."""
    args: list[str] = Field(default_factory=lambda: ["--max_steps", "500"], max_length=100)
    """Arguments."""
    env: dict[EnvName, str] = Field(default_factory=dict, max_length=100)
    """Environment variables. Plain values only: the run's history keeps them, so no secrets."""
    gpus_per_pod: int = Field(default=1, ge=1, le=8)
    """`nvidia.com/gpu` limit of the pod."""
    timeout_minutes: int = Field(default=30, ge=1, le=1440)
    """Deadline of the job (activeDeadlineSeconds)."""
    namespace: DnsLabel = "default"
    """Namespace of the job (created when missing)."""
    backoff_limit: int = Field(default=0, ge=0, le=10)
    """Pod retries before the job counts as failed."""


class Proof(WireModel):
    """How deeply verify-gpus proves each node of the pool (a CTRF record per request)."""

    level: Literal["basic", "standard", "deep"] = "standard"
    """basic: per-node checks and `nvidia-smi -q`; standard: also NVIDIA's CUDA vectorAdd
    sample; deep: also `dcgmi diag -r 1` and, on multi-GPU sizes, an NCCL all-reduce against
    the size's bus bandwidth."""


class Cleanup(WireModel):
    """What to delete when the run ends (success, failure or cancel); how long the rest may live."""

    delete_job: bool = True
    """Delete the job and its pods."""
    delete_node_pool: bool = True
    """Delete the GPU pool."""
    delete_cluster: bool | None = None
    """Delete the cluster; defaults to true for a new cluster. Never allowed for an existing one."""
    ttl_hours: int = Field(default=24, ge=1, le=8760)
    """Whatever stays is tagged to expire after this many hours; the reaper deletes it then."""


class Budget(WireModel):
    """The most the run may cost; it is refused before anything is created when the estimate
    (nodes x hourly price x expected hours) is over it."""

    max_cost: float = Field(gt=0, le=1_000_000)
    """Most the run may cost, in `currency` (Azure retail list prices)."""
    currency: Literal["USD"] = "USD"
    """Currency of maxCost; prices are the Retail Prices API's US dollar list prices."""


class ProvisionRequest(WireModel):
    """Give me a working GPU pool, prove it with a job, and clean up."""

    model_config = ConfigDict(title="ProvisionRequest")

    api_version: Literal["gpuprov/v1"]
    """Version of this contract."""
    request_id: RequestId = Field(default_factory=lambda: str(uuid.uuid4()))
    """Idempotency key and Durable instance id; generated when absent."""
    subscription_id: SubscriptionId
    """Azure subscription (GUID)."""
    resource_group: ResourceGroupName
    """Resource group of the cluster (must exist)."""
    location: Location
    """Azure region short name, e.g. eastus."""
    target: Target
    """Where the GPU pool goes: a new cluster, or an existing one."""
    node_pool: NodePool = Field(default_factory=NodePool)
    """The GPU pool."""
    preview_features: list[PreviewFeature] = Field(default_factory=list, max_length=20)
    """Preview features to register before creating anything."""
    device_plugin: DevicePlugin = Field(default_factory=DevicePlugin)
    """NVIDIA device plugin."""
    job: Job = Field(default_factory=Job)
    """GPU job that proves the pool."""
    cleanup: Cleanup = Field(default_factory=Cleanup)
    """Cleanup policy."""
    budget: Budget | None = None
    """Most the run may cost; omitted means the operator's default (GPUPROV_DEFAULT_BUDGET)."""
    proof: Proof = Field(default_factory=Proof)
    """How deeply the GPUs are proven before the job runs."""

    @property
    def creates_cluster(self) -> bool:
        return isinstance(self.target, NewCluster)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the wire contract (committed as schemas/provision-request.schema.json)."""
    schema = ProvisionRequest.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:gpuprov:provision-request:{API_VERSION.rsplit('/', 1)[-1]}",
        **schema,
    }
