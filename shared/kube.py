"""Kubernetes adapter: the in-cluster steps of a request (namespace, device plugin, job, its log).

Every operation is safe to run twice (GET before create, server-side apply, 404 on delete = done),
answers at once without waiting on the cluster, touches only objects labelled with the request's
id, and returns a small frozen model for orchestration history that holds no token and no CA.
Responses are read as plain JSON (`_preload_content=False`): the client's all-Optional models
are skipped, and the pod log is streamed instead of loaded whole.
"""

from __future__ import annotations

import contextlib
import functools
import json
import ssl
from collections.abc import Callable, Iterator
from importlib import resources
from types import TracebackType
from typing import Any, Literal

import urllib3
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from shared.catalog import lookup
from shared.credentials import ClusterCredentials
from shared.errors import NOT_OWNED, StepError
from shared.request import ProvisionRequest
from shared.wire import HistoryModel

JSON = dict[str, Any]

MANAGER = "gpuprov"
REQUEST_ID_LABEL = "gpuprov/request-id"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
AGENTPOOL_LABEL = "kubernetes.azure.com/agentpool"
SPOT_TAINT = "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"
GPU_RESOURCE = "nvidia.com/gpu"
DEVICE_PLUGIN_IMAGE_MARK = "k8s-device-plugin"
DEVICE_PLUGIN_MANIFEST = "nvidia-device-plugin.yaml"
CONNECTION_FAILED = "ConnectionFailed"
TLS_FAILED = "TlsVerificationFailed"
_LOG_CHUNK = 64 * 1024


# --- what the operations return (kept in orchestration history) ------------------------------


class NamespaceResult(HistoryModel):
    """A namespace the request needs, and whether this call created it."""

    name: str
    created: bool


class DevicePluginResult(HistoryModel):
    """What applying the device plugin did (as `kubectl apply` says it), or why it was skipped."""

    action: Literal["created", "configured", "unchanged", "skipped"]
    namespace: str
    name: str
    reason: str = ""
    """Why it was skipped."""
    existing: str | None = None
    """namespace/name of a device plugin DaemonSet found in the cluster that made `auto` skip."""


class DevicePluginStatus(HistoryModel):
    """Whether the device plugin runs on every node of the pool."""

    ready: bool
    daemon_set: str | None
    """namespace/name of the DaemonSet checked; None when there is none to check."""
    generation: int = 0
    observed_generation: int = 0
    desired: int = 0
    """Pods the DaemonSet wants in the whole cluster."""
    number_ready: int = 0
    pool_nodes: int = 0
    pool_nodes_ready: int = 0
    """Nodes of the pool with a running, ready plugin pod."""
    reason: str = ""


class NodeGpus(HistoryModel):
    """One node of the pool: the GPUs the kubelet advertises as allocatable."""

    name: str
    allocatable: int
    node_ready: bool


class GpuStatus(HistoryModel):
    """The pool's schedulable GPUs against what its VM size and node count promise."""

    pool: str
    expected_nodes: int
    expected_gpus_per_node: int
    nodes: list[NodeGpus]
    ready: bool


class JobStarted(HistoryModel):
    """The job of the request: created now, or found already created by an earlier attempt."""

    namespace: str
    name: str
    uid: str
    created: bool


JobState = Literal[
    "pending", "pending-unschedulable", "running", "succeeded", "failed", "not-found"
]


class JobStatus(HistoryModel):
    """The job's state right now (a pod the scheduler cannot place is reported, not waited on)."""

    namespace: str
    name: str
    state: JobState
    reason: str = ""
    """BackoffLimitExceeded, DeadlineExceeded, Unschedulable, ContainerCreating, ..."""
    message: str = ""
    """The controller's or the scheduler's message."""
    pod: str | None = None
    exit_code: int | None = None


class LogTail(HistoryModel):
    """The end of the job pod's log, at most the requested bytes, starting at a line."""

    pod: str | None
    text: str
    truncated: bool
    """True when the log was longer than the cap, so its beginning is missing."""
    bytes_read: int
    """Log bytes streamed from the API server (the last lines asked for) to find the tail."""


class JobDeleted(HistoryModel):
    """Deleting the job (Background propagation removes its pods); False when already gone."""

    namespace: str
    name: str
    deleted: bool


# --- pure parts ------------------------------------------------------------------------------


def ownership_labels(request: ProvisionRequest) -> dict[str, str]:
    """The labels that mark a Kubernetes object as this request's."""
    return {REQUEST_ID_LABEL: request.request_id, MANAGED_BY_LABEL: MANAGER}


def pool_tolerations(request: ProvisionRequest) -> list[JSON]:
    """A toleration for each of the pool's taints, plus the taint AKS puts on spot pools."""
    pool = request.node_pool
    taints = list(pool.taints) + ([SPOT_TAINT] if pool.spot is not None else [])
    tolerations: list[JSON] = []
    for taint in dict.fromkeys(taints):
        key_value, _, effect = taint.rpartition(":")
        key, has_value, value = key_value.partition("=")
        toleration: JSON = {"key": key, "operator": "Equal" if has_value else "Exists"}
        if has_value:
            toleration["value"] = value
        toleration["effect"] = effect
        tolerations.append(toleration)
    return tolerations


def device_plugin_manifest(request: ProvisionRequest) -> JSON:
    """The DaemonSet to apply: the packaged manifest with this request's image and tolerations."""
    text = resources.files("shared").joinpath("manifests", DEVICE_PLUGIN_MANIFEST).read_text()
    manifest: JSON = yaml.safe_load(text)
    plugin = request.device_plugin
    metadata = manifest["metadata"]
    metadata["namespace"] = plugin.namespace
    metadata["labels"] = {**(metadata.get("labels") or {}), **ownership_labels(request)}
    template = manifest["spec"]["template"]
    template["metadata"]["labels"] = {
        **template["metadata"]["labels"],
        MANAGED_BY_LABEL: MANAGER,
    }
    pod_spec = template["spec"]
    known = list(pod_spec.get("tolerations") or [])
    pod_spec["tolerations"] = known + [t for t in pool_tolerations(request) if t not in known]
    for container in pod_spec["containers"]:
        container["image"] = plugin.image
    return manifest


def job_manifest(request: ProvisionRequest, vm_size: str) -> JSON:
    """The job of the walkthrough: GPU limit, tolerations and node selector for the pool."""
    job = request.job
    labels = {**ownership_labels(request), "app": job.name}
    container: JSON = {
        "name": job.name,
        "image": job.image,
        "args": list(job.args),
        "env": [{"name": name, "value": value} for name, value in job.env.items()],
        "resources": {"limits": {GPU_RESOURCE: str(job.gpus_per_pod)}},
    }
    if job.command:
        container["command"] = list(job.command)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job.name,
            "namespace": job.namespace,
            "labels": labels,
            "annotations": {"gpuprov/vm-size": vm_size},
        },
        "spec": {
            "backoffLimit": job.backoff_limit,
            "activeDeadlineSeconds": job.timeout_minutes * 60,
            # A safety net: the job and its pods go away with the rest of what the run leaves.
            "ttlSecondsAfterFinished": request.cleanup.ttl_hours * 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container],
                    "tolerations": pool_tolerations(request),
                    "nodeSelector": {AGENTPOOL_LABEL: request.node_pool.name},
                },
            },
        },
    }


def tail_text(window: bytes, max_bytes: int) -> str:
    """The last `max_bytes` of a log window, decoded, starting at a whole line when cut.

    The window keeps one byte more than the cap when the log was longer, so a cut that falls
    exactly on a line start keeps that line.
    """
    if len(window) <= max_bytes:
        return window.decode("utf-8", errors="replace")
    tail = window[-max_bytes:]
    if window[-max_bytes - 1 : -max_bytes] != b"\n":
        newline = tail.find(b"\n")
        if 0 <= newline < len(tail) - 1:
            tail = tail[newline + 1 :]
        else:  # one line longer than the cap: start at a whole character
            start = 0
            while start < len(tail) and tail[start] & 0xC0 == 0x80:  # UTF-8 continuation byte
                start += 1
            tail = tail[start:]
    return tail.decode("utf-8", errors="replace")


def _labels(obj: JSON) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def _name(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _namespace(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def _int(value: object) -> int:
    """A count from the API (int or quantity string such as '1'); anything else counts as 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def _condition(obj: JSON, kind: str) -> JSON | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == kind:
            return condition
    return None


def _is_true(obj: JSON, kind: str) -> bool:
    condition = _condition(obj, kind)
    return condition is not None and condition.get("status") == "True"


def _images(obj: JSON) -> list[str]:
    pod_spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [str(c.get("image") or "") for c in pod_spec.get("containers") or []]


def _not_owned(what: str, request: ProvisionRequest) -> StepError:
    return StepError(
        "permanent",
        NOT_OWNED,
        f"{what} exists and is not labelled {REQUEST_ID_LABEL}={request.request_id}.",
        "It was not created by this request, so the provisioner leaves it alone: choose another "
        "name in the request, or delete it yourself if it is no longer needed.",
    )


def _unreachable(action: str, error: Exception) -> StepError:
    return StepError(
        "transient",
        CONNECTION_FAILED,
        f"{action}: the cluster's API server could not be reached ({type(error).__name__})",
        "The step is tried again.",
    )


def _classify(error: ApiException, action: str) -> StepError:
    """An API answer as a StepError: 429, 5xx and write conflicts are tried again."""
    status = error.status if isinstance(error.status, int) else 0
    reason, message = str(error.reason or status), ""
    with contextlib.suppress(ValueError, TypeError):
        body = json.loads(error.body or "")
        if isinstance(body, dict):
            reason = str(body.get("reason") or reason)
            message = str(body.get("message") or "")
    retry_after = None
    headers = error.headers or {}
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        retry_after = int(str(headers.get("Retry-After")))
    transient = status == 429 or status >= 500 or (status == 409 and reason == "Conflict")
    hints = {
        401: "The cluster refused the credentials: they may have expired or been rotated; "
        "fetch the cluster's credentials again.",
        403: "The provisioner's identity lacks a Kubernetes role for this (cluster admin or "
        "'Azure Kubernetes Service RBAC Cluster Admin').",
    }
    hint = hints.get(status, "The cluster is busy; the step is tried again." if transient else "")
    return StepError(
        "transient" if transient else "permanent",
        reason,
        f"{action}: {message or error.reason or status}",
        hint,
        retry_after,
    )


# --- the adapter -----------------------------------------------------------------------------


class KubeAdapter:
    """The in-cluster operations of one request, against one cluster's API server."""

    def __init__(self, credentials: ClusterCredentials, *, timeout_seconds: float = 30.0) -> None:
        configuration = client.Configuration(
            host=credentials.server.rstrip("/"),
            api_key={"authorization": credentials.token},
            api_key_prefix={"authorization": "Bearer"},
            # PEM text: bytes would be read as DER by ssl's cadata.
            ca_cert_data=credentials.ca_pem.decode("ascii"),
        )
        self._server = credentials.server
        self._timeout = timeout_seconds
        self._api = client.ApiClient(configuration)
        self._core = client.CoreV1Api(self._api)
        self._apps = client.AppsV1Api(self._api)
        self._batch = client.BatchV1Api(self._api)

    def close(self) -> None:
        """Close the connection pool (the client keeps sockets open between calls)."""
        self._api.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> KubeAdapter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KubeAdapter({self._server!r})"

    # --- calls --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """SDK and connection failures leave an operation only as a StepError."""
        try:
            yield
        except ApiException as error:
            raise _classify(error, action) from None
        except urllib3.exceptions.MaxRetryError as error:
            if isinstance(error.reason, urllib3.exceptions.SSLError | ssl.SSLError):
                raise StepError(
                    "permanent",
                    TLS_FAILED,
                    f"{action}: the API server's certificate is not signed by the cluster's CA",
                    "The cluster credentials do not match its API server: fetch them again.",
                ) from None
            raise _unreachable(action, error) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise _unreachable(action, error) from None

    def _json(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> JSON:
        """Call an API method and return its answer as a JSON object (404 etc. raise)."""
        response = call(*args, _preload_content=False, _request_timeout=self._timeout, **kwargs)
        try:
            data = response.data
        finally:
            response.release_conn()
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise StepError("transient", "BadResponse", "the API server did not answer JSON")
        return parsed

    def _get(self, call: Callable[..., Any], *args: Any) -> JSON | None:
        """GET one object; None when it does not exist."""
        try:
            return self._json(call, *args)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def _items(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> list[JSON]:
        items = self._json(call, *args, **kwargs).get("items") or []
        return [item for item in items if isinstance(item, dict)]

    # --- namespace ----------------------------------------------------------------------

    def ensure_namespace(self, name: str) -> NamespaceResult:
        """Create the namespace when missing; one that exists (anyone's) is used as it is."""
        with self._errors(f"create namespace {name}"):
            if self._get(self._core.read_namespace, name) is not None:
                return NamespaceResult(name=name, created=False)
            body = {"metadata": {"name": name, "labels": {MANAGED_BY_LABEL: MANAGER}}}
            try:
                self._json(self._core.create_namespace, body)
            except ApiException as error:
                if error.status == 409:
                    return NamespaceResult(name=name, created=False)
                raise
            return NamespaceResult(name=name, created=True)

    # --- device plugin ------------------------------------------------------------------

    def _device_plugins(self) -> list[JSON]:
        """Every DaemonSet in the cluster running NVIDIA's device plugin image."""
        return [
            ds
            for ds in self._items(self._apps.list_daemon_set_for_all_namespaces)
            if any(DEVICE_PLUGIN_IMAGE_MARK in image for image in _images(ds))
        ]

    @staticmethod
    def _skip_reason(request: ProvisionRequest) -> str:
        if request.node_pool.managed_gpu:
            return "the pool's GPU stack is managed by AKS (managedGpu), which runs the plugin"
        if request.device_plugin.install == "never":
            return "devicePlugin.install is never"
        return ""

    def install_device_plugin(self, request: ProvisionRequest) -> DevicePluginResult:
        """Server-side apply the plugin DaemonSet, unless the pool or the cluster has one."""
        manifest = device_plugin_manifest(request)
        namespace, name = request.device_plugin.namespace, _name(manifest)
        skip = self._skip_reason(request)
        if skip:
            return DevicePluginResult(action="skipped", namespace=namespace, name=name, reason=skip)
        with self._errors(f"apply DaemonSet {namespace}/{name}"):
            current = self._get(self._apps.read_namespaced_daemon_set, name, namespace)
            if current is not None and _labels(current).get(REQUEST_ID_LABEL) != request.request_id:
                if request.device_plugin.install == "auto" and any(
                    DEVICE_PLUGIN_IMAGE_MARK in image for image in _images(current)
                ):
                    return self._skipped_for(current, namespace, name)
                raise _not_owned(f"DaemonSet {namespace}/{name}", request)
            if current is None and request.device_plugin.install == "auto":
                for plugin in self._device_plugins():
                    if _labels(plugin).get(REQUEST_ID_LABEL) != request.request_id:
                        return self._skipped_for(plugin, namespace, name)
        self.ensure_namespace(namespace)
        with self._errors(f"apply DaemonSet {namespace}/{name}"):
            applied = self._json(
                self._apps.patch_namespaced_daemon_set,
                name,
                namespace,
                manifest,
                field_manager=MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
            )
        if current is None:
            action: Literal["created", "configured", "unchanged"] = "created"
        elif (applied.get("metadata") or {}).get("resourceVersion") == current["metadata"].get(
            "resourceVersion"
        ):
            action = "unchanged"
        else:
            action = "configured"
        return DevicePluginResult(action=action, namespace=namespace, name=name)

    @staticmethod
    def _skipped_for(plugin: JSON, namespace: str, name: str) -> DevicePluginResult:
        found = f"{_namespace(plugin)}/{_name(plugin)}"
        return DevicePluginResult(
            action="skipped",
            namespace=namespace,
            name=name,
            reason=f"a device plugin DaemonSet exists: {found} ({', '.join(_images(plugin))})",
            existing=found,
        )

    def device_plugin_status(self, request: ProvisionRequest) -> DevicePluginStatus:
        """Whether the plugin (ours, or the one `auto` found) runs ready on the pool's nodes."""
        skip = self._skip_reason(request)
        if skip:
            return DevicePluginStatus(
                ready=True,
                daemon_set=None,
                reason=f"not installed by gpuprov: {skip}; gpu_status shows the GPUs",
            )
        namespace = request.device_plugin.namespace
        name = _name(device_plugin_manifest(request))
        with self._errors(f"read DaemonSet {namespace}/{name}"):
            plugin = self._get(self._apps.read_namespaced_daemon_set, name, namespace)
            if plugin is None:
                plugin = next(iter(self._device_plugins()), None)
            if plugin is None:
                return DevicePluginStatus(
                    ready=False, daemon_set=None, reason="no device plugin DaemonSet in the cluster"
                )
            pool_nodes = {
                _name(node)
                for node in self._items(
                    self._core.list_node,
                    label_selector=f"{AGENTPOOL_LABEL}={request.node_pool.name}",
                )
            }
            selector = ((plugin.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            pods = self._items(
                self._core.list_namespaced_pod,
                _namespace(plugin),
                label_selector=",".join(f"{k}={v}" for k, v in sorted(selector.items())),
            )
        ready_nodes = {
            str((pod.get("spec") or {}).get("nodeName") or "")
            for pod in pods
            if (pod.get("status") or {}).get("phase") == "Running" and _is_true(pod, "Ready")
        }
        status = plugin.get("status") or {}
        generation = _int((plugin.get("metadata") or {}).get("generation"))
        observed = _int(status.get("observedGeneration"))
        pool_ready = len(pool_nodes & ready_nodes)
        ready = observed >= generation and bool(pool_nodes) and pool_ready == len(pool_nodes)
        if not pool_nodes:
            reason = f"the pool {request.node_pool.name} has no nodes yet"
        elif not ready:
            reason = f"the plugin is ready on {pool_ready} of {len(pool_nodes)} nodes of the pool"
        else:
            reason = ""
        return DevicePluginStatus(
            ready=ready,
            daemon_set=f"{_namespace(plugin)}/{_name(plugin)}",
            generation=generation,
            observed_generation=observed,
            desired=_int(status.get("desiredNumberScheduled")),
            number_ready=_int(status.get("numberReady")),
            pool_nodes=len(pool_nodes),
            pool_nodes_ready=pool_ready,
            reason=reason,
        )

    # --- GPUs -----------------------------------------------------------------------------

    def gpu_status(self, request: ProvisionRequest, vm_size: str) -> GpuStatus:
        """`nvidia.com/gpu` allocatable on each node of the pool against its VM size's GPUs."""
        size = lookup(vm_size)
        if size is None:
            raise StepError("permanent", "UnknownVmSize", f"{vm_size} is not a known GPU VM size")
        pool = request.node_pool.name
        with self._errors(f"list nodes of pool {pool}"):
            nodes = self._items(self._core.list_node, label_selector=f"{AGENTPOOL_LABEL}={pool}")
        counts = [
            NodeGpus(
                name=_name(node),
                allocatable=_int(
                    ((node.get("status") or {}).get("allocatable") or {}).get(GPU_RESOURCE)
                ),
                node_ready=_is_true(node, "Ready"),
            )
            for node in sorted(nodes, key=_name)
        ]
        ready = len(counts) >= request.node_pool.node_count and all(
            node.node_ready and node.allocatable >= size.gpus for node in counts
        )
        return GpuStatus(
            pool=pool,
            expected_nodes=request.node_pool.node_count,
            expected_gpus_per_node=size.gpus,
            nodes=counts,
            ready=ready,
        )

    # --- job ------------------------------------------------------------------------------

    def _own_job(self, request: ProvisionRequest) -> JSON | None:
        """The request's job; None when absent; an error when the name is someone else's."""
        job = request.job
        found = self._get(self._batch.read_namespaced_job, job.name, job.namespace)
        if found is not None and _labels(found).get(REQUEST_ID_LABEL) != request.request_id:
            raise _not_owned(f"Job {job.namespace}/{job.name}", request)
        return found

    def start_job(self, request: ProvisionRequest, vm_size: str) -> JobStarted:
        """Create the job unless this request did already; a foreign job by that name is refused."""
        job = request.job
        where = f"{job.namespace}/{job.name}"
        with self._errors(f"create Job {where}"):
            existing = self._own_job(request)
        if existing is None:
            self.ensure_namespace(job.namespace)
            with self._errors(f"create Job {where}"):
                try:
                    created = self._json(
                        self._batch.create_namespaced_job,
                        job.namespace,
                        job_manifest(request, vm_size),
                    )
                    return JobStarted(
                        namespace=job.namespace,
                        name=job.name,
                        uid=str(created["metadata"]["uid"]),
                        created=True,
                    )
                except ApiException as error:
                    if error.status != 409:
                        raise
                existing = self._own_job(request)  # created by a concurrent attempt
                if existing is None:
                    raise StepError("transient", "Conflict", f"Job {where} vanished while created")
        return JobStarted(
            namespace=job.namespace,
            name=job.name,
            uid=str(existing["metadata"]["uid"]),
            created=False,
        )

    def _job_pods(self, job: JSON) -> list[JSON]:
        """The job's pods, newest last."""
        uid = str(job["metadata"]["uid"])
        pods = self._items(
            self._core.list_namespaced_pod,
            _namespace(job),
            label_selector=f"batch.kubernetes.io/controller-uid={uid}",
        )
        return sorted(
            pods,
            key=lambda pod: (str(pod["metadata"].get("creationTimestamp") or ""), _name(pod)),
        )

    def job_status(self, request: ProvisionRequest) -> JobStatus:
        """One look at the job: its conditions, else its newest pod's phase and scheduling."""
        job_spec = request.job
        with self._errors(f"read Job {job_spec.namespace}/{job_spec.name}"):
            job = self._own_job(request)
            pods = self._job_pods(job) if job is not None else []
        base = functools.partial(JobStatus, namespace=job_spec.namespace, name=job_spec.name)
        if job is None:
            return base(state="not-found")
        pod = pods[-1] if pods else None
        pod_name = _name(pod) if pod is not None else None
        for kind, state in (("Failed", "failed"), ("Complete", "succeeded")):
            condition = _condition(job, kind)
            if condition is not None and condition.get("status") == "True":
                return base(
                    state="failed" if state == "failed" else "succeeded",
                    reason=str(condition.get("reason") or ""),
                    message=str(condition.get("message") or ""),
                    pod=pod_name,
                    exit_code=_exit_code(pod),
                )
        if pod is None:
            return base(state="pending", reason="NoPod")
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Running":
            return base(state="running", pod=pod_name)
        scheduled = _condition(pod, "PodScheduled")
        if (
            scheduled is not None
            and scheduled.get("status") == "False"
            and scheduled.get("reason") == "Unschedulable"
        ):
            return base(
                state="pending-unschedulable",
                reason="Unschedulable",
                message=str(scheduled.get("message") or ""),
                pod=pod_name,
            )
        return base(state="pending", reason=_waiting_reason(pod), pod=pod_name)

    def job_log_tail(self, request: ProvisionRequest, max_bytes: int) -> LogTail:
        """The last `max_bytes` bytes of the newest job pod's log, streamed in constant memory.

        `limitBytes` would give the head of the log, so ask for the last `max_bytes + 1` lines
        (every line holds at least its newline, so they contain the last `max_bytes` bytes) and
        keep a rolling buffer of the stream: a 50 MB line costs the cap, not 50 MB.
        """
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        job_spec = request.job
        with self._errors(f"read the log of Job {job_spec.namespace}/{job_spec.name}"):
            job = self._own_job(request)
            pods = self._job_pods(job) if job is not None else []
            if not pods:
                return LogTail(pod=None, text="", truncated=False, bytes_read=0)
            pod = _name(pods[-1])
            try:
                read_log: Callable[..., Any] = self._core.read_namespaced_pod_log
                response = read_log(
                    pod,
                    job_spec.namespace,
                    tail_lines=max_bytes + 1,
                    _preload_content=False,
                    _request_timeout=self._timeout,
                )
            except ApiException as error:
                if error.status == 400:  # the container has not started: no log yet
                    return LogTail(pod=pod, text="", truncated=False, bytes_read=0)
                raise
            buffer = bytearray()
            seen = 0
            try:
                for chunk in response.stream(_LOG_CHUNK):
                    seen += len(chunk)
                    buffer += chunk
                    if len(buffer) > 2 * max_bytes + 1:
                        del buffer[: len(buffer) - max_bytes - 1]
            finally:
                response.release_conn()
        text = tail_text(bytes(buffer), max_bytes)
        return LogTail(pod=pod, text=text, truncated=seen > max_bytes, bytes_read=seen)

    def delete_job(self, request: ProvisionRequest) -> JobDeleted:
        """Delete the request's job and (in the background) its pods; gone already is done."""
        job_spec = request.job
        base = {"namespace": job_spec.namespace, "name": job_spec.name}
        with self._errors(f"delete Job {job_spec.namespace}/{job_spec.name}"):
            job = self._own_job(request)
            if job is None:
                return JobDeleted(**base, deleted=False)
            body = {
                "propagationPolicy": "Background",
                "preconditions": {"uid": job["metadata"]["uid"]},
            }
            try:
                self._json(
                    self._batch.delete_namespaced_job,
                    job_spec.name,
                    job_spec.namespace,
                    propagation_policy="Background",
                    body=body,
                )
            except ApiException as error:
                if error.status == 404:
                    return JobDeleted(**base, deleted=False)
                raise
        return JobDeleted(**base, deleted=True)


def _exit_code(pod: JSON | None) -> int | None:
    if pod is None:
        return None
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = ((status or {}).get("state") or {}).get("terminated") or {}
        if "exitCode" in terminated:
            return _int(terminated["exitCode"])
    return None


def _waiting_reason(pod: JSON) -> str:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = ((status or {}).get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return str(waiting["reason"])
    return "Pending"
