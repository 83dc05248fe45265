"""The GPU job: create it (GPU limit, tolerations and node selector for the pool), watch it,
read its log's tail in constant memory, delete it with its pods."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal

from kubernetes.client.exceptions import ApiException

from shared.errors import StepError
from shared.kube.client import (
    AGENTPOOL_LABEL,
    JSON,
    KubeClient,
    condition,
    count,
    name_of,
    namespace_of,
    pool_tolerations,
)
from shared.kube.gpus import GPU_RESOURCE
from shared.ownership import Ownership
from shared.request import ProvisionRequest
from shared.wire import HistoryModel

_LOG_CHUNK = 64 * 1024


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


def job_manifest(request: ProvisionRequest, vm_size: str, ownership: Ownership) -> JSON:
    """The job of the walkthrough: GPU limit, tolerations and node selector for the pool."""
    job = request.job
    labels = {**ownership.labels(), "app": job.name}
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


class Jobs(KubeClient):
    """The job operations."""

    def _own_job(self, request: ProvisionRequest) -> JSON | None:
        """The request's job; None when absent; an error when the name is someone else's."""
        job = request.job
        found = self._get(self._batch.read_namespaced_job, job.name, job.namespace)
        self.refuse_foreign(f"Job {job.namespace}/{job.name}", found, request)
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
                        job_manifest(request, vm_size, self.ownership(request)),
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
            namespace_of(job),
            label_selector=f"batch.kubernetes.io/controller-uid={uid}",
        )
        return sorted(
            pods,
            key=lambda pod: (str(pod["metadata"].get("creationTimestamp") or ""), name_of(pod)),
        )

    def job_status(self, request: ProvisionRequest) -> JobStatus:
        """One look at the job: its conditions, else its newest pod's phase and scheduling."""
        job_spec = request.job
        base = functools.partial(JobStatus, namespace=job_spec.namespace, name=job_spec.name)
        with self._errors(f"read Job {job_spec.namespace}/{job_spec.name}"):
            job = self._own_job(request)
            if job is None:
                return base(state="not-found")
            if _running(job):  # the Job's own status says so: no need to list its pods
                return base(state="running")
            pods = self._job_pods(job)
        pod = pods[-1] if pods else None
        pod_name = name_of(pod) if pod is not None else None
        for kind, state in (("Failed", "failed"), ("Complete", "succeeded")):
            found = condition(job, kind)
            if found is not None and found.get("status") == "True":
                return base(
                    state="failed" if state == "failed" else "succeeded",
                    reason=str(found.get("reason") or ""),
                    message=str(found.get("message") or ""),
                    pod=pod_name,
                    exit_code=_exit_code(pod),
                )
        if pod is None:
            return base(state="pending", reason="NoPod")
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Running":
            return base(state="running", pod=pod_name)
        scheduled = condition(pod, "PodScheduled")
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
            pod = name_of(pods[-1])
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
            return count(terminated["exitCode"])
    return None


def _waiting_reason(pod: JSON) -> str:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = ((status or {}).get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return str(waiting["reason"])
    return "Pending"


def _running(job: dict[str, Any]) -> bool:
    """A pod of the job is ready and the job has not ended (JobStatus.ready: "the number of
    active pods which have a Ready condition", Kubernetes API reference, batch/v1)."""
    status = job.get("status") or {}
    ended = any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return not ended and int(status.get("ready") or 0) >= 1
