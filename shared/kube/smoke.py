"""The smoke workload on the cluster: one pod per tool and node, pinned to the node, run one after
another on each node; each finished pod's log parsed into what it proves (shared/proof/smoke.py).

Stateless and safe to repeat: each look lists the request's smoke pods, creates the next one a
node needs (deterministic names, 409 = already created) and judges the finished ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from kubernetes.client.exceptions import ApiException
from pydantic import Field

from shared.catalog import lookup
from shared.errors import StepError
from shared.kube.client import (
    JSON,
    KubeClient,
    name_of,
    pool_tolerations,
)
from shared.proof.smoke import SMOKE_LABEL, TOOLS, Tool, judge, pod_name, smoke_pod, tools_for
from shared.request import ProvisionRequest
from shared.wire import HistoryModel


class ToolResult(HistoryModel):
    """One tool's run on one node."""

    tool: str
    test: str
    passed: bool
    message: str = ""
    duration_ms: int = 0
    found: dict[str, Any] = Field(default_factory=dict)


class NodeSmoke(HistoryModel):
    name: str
    state: Literal["running", "passed", "failed"]
    results: list[ToolResult] = Field(default_factory=list)
    waiting: str = ""
    """While running: the pod it waits on, its phase and the container's waiting reason."""


class SmokeStatus(HistoryModel):
    """The smoke workload on every node of the pool."""

    level: str
    nodes: list[NodeSmoke]
    done: bool
    failed: bool


def _terminated(pod: JSON) -> JSON:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        found = (status.get("state") or {}).get("terminated")
        if found:
            return dict(found)
    return {}


def _waiting_on(tool: Tool, pod: JSON) -> str:
    """`vectoradd pod Pending: ImagePullBackOff (Back-off pulling image ...)`: what a user would
    look at with `kubectl describe pod` when the workload does not end."""
    status = pod.get("status") or {}
    said = f"{tool} pod {status.get('phase') or 'Pending'}"
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            message = f" ({waiting['message']})" if waiting.get("message") else ""
            return f"{said}: {waiting['reason']}{message}"[:300]
    return said


def _duration_ms(pod: JSON, ended: JSON) -> int:
    began = ended.get("startedAt") or (pod.get("status") or {}).get("startTime")
    finished = ended.get("finishedAt")
    if not (began and finished):
        return 0
    seconds = (datetime.fromisoformat(finished) - datetime.fromisoformat(began)).total_seconds()
    return max(0, int(seconds * 1000))


class Smoke(KubeClient):
    """Smoke pods: start, judge, delete."""

    def _smoke_pods(self, request: ProvisionRequest) -> dict[str, JSON]:
        labels = self.ownership(request).labels()
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + f",{SMOKE_LABEL}"
        pods = self._items(
            self._core.list_namespaced_pod, request.job.namespace, label_selector=selector
        )
        return {name_of(pod): pod for pod in pods}

    def _start(self, request: ProvisionRequest, tool: Tool, node: str, gpus: int) -> None:
        body = smoke_pod(
            tool, node, gpus, request.request_id, self.ownership(request).labels(),
            pool_tolerations(request),
        )  # fmt: skip
        namespace = request.job.namespace
        for _ in range(2):
            try:
                self._json(self._core.create_namespaced_pod, namespace, body)
                return
            except ApiException as error:
                if error.status == 409:  # created by an earlier attempt of this activity
                    return
                if error.status != 404:
                    raise
                # a create into a missing namespace is 404 (NamespaceLifecycle admission):
                # create it once, then the pod
                self.ensure_namespace(namespace)

    def _result(self, pod: JSON, tool: Tool, node: str, gpus: int, busbw: float) -> ToolResult:
        status = pod.get("status") or {}
        ended = _terminated(pod)
        test = f"{TOOLS[tool].test} {node}"
        if not ended:  # rejected by the kubelet before it ran (e.g. OutOfnvidia.com/gpu)
            why = f"{status.get('reason') or 'Failed'}: {status.get('message') or ''}".strip(": ")
            return ToolResult(tool=tool, test=test, passed=False, message=f"{tool} pod {why}")
        log = self._pod_log(pod)
        exit_code = ended.get("exitCode")
        passed, message, found = judge(
            tool, log, exit_code if isinstance(exit_code, int) else None, gpus, busbw
        )
        return ToolResult(
            tool=tool, test=test, passed=passed, message=message,
            duration_ms=_duration_ms(pod, ended),
            found={key: value for key, value in found.items() if value is not None},
        )  # fmt: skip

    def smoke_status(
        self, request: ProvisionRequest, vm_size: str, nodes: list[str],
        before: SmokeStatus | None = None,
    ) -> SmokeStatus:  # fmt: skip
        """One look at `nodes` (those the GPU checks proved): judge the smoke pods that finished
        since `before` (the last look; what it judged is kept, its logs not read again), start
        the next tool each node needs. One read of the smoke pods, plus each new end's log."""
        size = lookup(vm_size)
        if size is None:
            raise StepError("permanent", "UnknownVmSize", f"{vm_size} is not a known GPU VM size")
        level = request.proof.level
        tools = tools_for(level, size.gpus)
        judged = {
            (node.name, result.tool): result
            for node in (before.nodes if before else [])
            for result in node.results
        }
        looked: list[NodeSmoke] = []
        with self._errors(f"run smoke pods on pool {request.node_pool.name}"):
            pods = self._smoke_pods(request)
            for node in sorted(nodes):
                results: list[ToolResult] = []
                state: Literal["running", "passed", "failed"] = "passed"
                waiting = ""
                for tool in tools:
                    result = judged.get((node, tool))
                    if result is None:
                        pod = pods.get(pod_name(tool, node, request.request_id))
                        if pod is None:
                            self._start(request, tool, node, size.gpus)
                            state, waiting = "running", f"{tool} pod created"
                            break
                        if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                            state, waiting = "running", _waiting_on(tool, pod)
                            break
                        result = self._result(pod, tool, node, size.gpus, size.busbw_gbps)
                    results.append(result)
                    if not result.passed:
                        state = "failed"
                        break
                looked.append(NodeSmoke(name=node, state=state, results=results, waiting=waiting))
        failed = any(node.state == "failed" for node in looked)
        done = failed or (bool(looked) and all(node.state == "passed" for node in looked))
        return SmokeStatus(level=level, nodes=looked, done=done, failed=failed)

    def delete_smoke(self, request: ProvisionRequest) -> int:
        """Delete the request's smoke pods (404 = already gone); how many were deleted."""
        deleted = 0
        with self._errors(f"delete smoke pods in {request.job.namespace}"):
            for name in self._smoke_pods(request):
                try:
                    self._json(self._core.delete_namespaced_pod, name, request.job.namespace)
                    deleted += 1
                except ApiException as error:
                    if error.status != 404:
                        raise
        return deleted
