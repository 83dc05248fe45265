"""One simulated cluster: its nodes and controllers, on top of its object store.

The controllers (DaemonSets, device plugin → node GPUs, scheduler, kubelet, Jobs) run only when
`settle(now)` is called, stepping through their timers in simulated time, so a test that advances
a ManualClock by ten minutes sees the same sequence of states the cluster would have gone through.
Callers hold the simulator's lock.
"""

from __future__ import annotations

import copy
import hashlib
import heapq
import itertools
import math
import random
import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sandbox.cloud import PoolNodes
from sandbox.kube.aks_nodes import new_node, node_labels
from sandbox.kube.hardware import NodeShape, vm_shape
from sandbox.kube.logs import daemon_log, training_log
from sandbox.kube.objects import (
    JSON,
    node_selected,
    parse_aks_taint,
    pod_requests,
    untolerated_taint,
)
from sandbox.kube.quantity import value as quantity
from sandbox.kube.store import ApiError, Store, rfc3339


@dataclass(frozen=True)
class KubeTimings:
    """Simulated seconds the cluster takes for things that are not instant."""

    daemon_pod_start: float = 15.0
    """A DaemonSet pod from bound to Running (image pull, start)."""
    device_plugin_register: float = 5.0
    """A running device plugin until the kubelet advertises `nvidia.com/gpu`."""
    pod_start: float = 30.0
    """A job pod from bound to Running (the training image is large)."""
    job_run: float = 120.0
    """A job pod from Running to Succeeded/Failed."""
    backoff: float = 10.0
    """First delay before a failed job pod is replaced (doubles per failure, capped at 360)."""


@dataclass
class FailureRule:
    """Makes the next `remaining` job pods whose job name matches fail with this exit code."""

    job_name: re.Pattern[str]
    exit_code: int
    log: str
    remaining: int


class Cluster(Store):
    """Nodes, DaemonSets, scheduler, kubelet and Jobs of one simulated cluster."""

    def __init__(
        self,
        cluster_id: str,
        key: str,
        token: str,
        *,
        entra_id: bool,
        location: str,
        timings: KubeTimings,
        failure_rules: list[FailureRule],
        now: float,
    ) -> None:
        self.cluster_id = cluster_id
        self.key = key
        self.token = token
        self.entra_id = entra_id
        self.location = location
        self.timings = timings
        self._failure_rules = failure_rules
        self.node_shapes: dict[str, NodeShape] = {}
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        self._running_since: dict[str, float] = {}
        self._logs: dict[str, tuple[list[str], float, float]] = {}
        self._job_terminal: dict[str, dict[str, str]] = {}
        self._job_last_failure: dict[str, float] = {}
        super().__init__(cluster_id, now)

    def _delete_pod(self, pod: JSON) -> None:
        self._running_since.pop(pod["metadata"]["uid"], None)
        super()._delete_pod(pod)

    # --- nodes from ARM ------------------------------------------------------------------

    def set_pool(self, pool: PoolNodes) -> None:
        existing = [
            node
            for node in self.items("nodes")
            if node["metadata"]["labels"].get("kubernetes.azure.com/agentpool") == pool.pool_name
        ]
        scale_set = int(hashlib.sha256(f"{self.key}/{pool.pool_name}".encode()).hexdigest(), 16)
        prefix = f"aks-{pool.pool_name}-{scale_set % 10**8:08d}-vmss"
        wanted = {f"{prefix}{index:06d}": index for index in range(pool.count)}
        for stale in existing:
            if stale["metadata"]["name"] not in wanted:
                self._remove_node(stale)
        _, _, model, capability = vm_shape(pool.vm_size)
        for name, index in wanted.items():
            self.node_shapes[name] = NodeShape(
                pool.pool_name, pool.gpus_per_node, model, capability, pool.managed_gpu
            )
            current = self.store["nodes"].get(("", name))
            if current is None:
                address = f"10.224.0.{4 + len(self.store['nodes'])}"
                node = new_node(self.cluster_id, self.location, pool, prefix, index, address)
                node["status"]["conditions"] = self._node_conditions()
                created = self.create("nodes", node)
                self._renew_lease(created)
                self.record_event(created, "Normal", "Starting", "Starting kubelet.", "kubelet", name)
                self.record_event(
                    created, "Normal", "RegisteredNode",
                    f"Node {name} event: Registered Node {name} in Controller", "node-controller",
                )  # fmt: skip
                continue
            node = copy.deepcopy(current)
            node["metadata"]["labels"] = node_labels(
                self.cluster_id, self.location, pool, name, index
            )
            taints = [parse_aks_taint(taint) for taint in pool.taints]
            if taints:
                node["spec"]["taints"] = taints
            else:
                node["spec"].pop("taints", None)
            self._put("nodes", node)
        self.reconcile()

    def _renew_lease(self, node: JSON) -> None:
        """The kubelet's heartbeat Lease in kube-node-lease, owned by its node."""
        name = node["metadata"]["name"]
        stamp = datetime.fromtimestamp(self.now, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease = {
            "metadata": {
                "name": name,
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "name": name,
                        "uid": node["metadata"]["uid"],
                    }
                ],
            },
            "spec": {
                "holderIdentity": name,
                "leaseDurationSeconds": 40,
                "renewTime": stamp,
            },
        }
        current = self.store["leases"].get(("kube-node-lease", name))
        if current is None:
            self.create("leases", lease, "kube-node-lease")
        else:
            renewed = copy.deepcopy(current)
            renewed["spec"] = lease["spec"]
            self._put("leases", renewed)

    def _node_conditions(self) -> list[JSON]:
        stamp = rfc3339(self.now)
        conditions = [
            ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID"),
            ("Ready", "True", "KubeletReady"),
        ]
        return [
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": "kubelet is posting ready status"
                if kind == "Ready"
                else f"kubelet has {reason[10:]}",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
            for kind, status, reason in conditions
        ]

    def remove_pool(self, pool_name: str) -> None:
        for node in self.items("nodes"):
            if node["metadata"]["labels"].get("kubernetes.azure.com/agentpool") == pool_name:
                self._remove_node(node)
        self.reconcile()

    def _remove_node(self, node: JSON) -> None:
        self.delete("nodes", "", node["metadata"]["name"], "Background")
        self.node_shapes.pop(node["metadata"]["name"], None)

    # --- time ------------------------------------------------------------------------------

    def _at(self, due: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (due, next(self._timer_seq), action))

    def settle(self, now: float) -> None:
        """Run timers and controllers in order up to `now` (simulated seconds)."""
        self.reconcile()
        while self._timers and self._timers[0][0] <= now:
            due, _, action = heapq.heappop(self._timers)
            self.now = max(self.now, due)
            action()
            self.reconcile()
        self.now = max(self.now, now)
        self.reconcile()

    def reconcile(self) -> None:
        """Run every controller until none changes anything (bounded)."""
        for _ in range(10):
            changed = self._reconcile_daemonsets()
            changed = self._reconcile_node_gpus() or changed
            changed = self._reconcile_jobs() or changed
            changed = self._schedule_pods() or changed
            if not changed:
                return

    # --- DaemonSet controller --------------------------------------------------------------

    def _node_ready(self, node: JSON) -> bool:
        return any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in node["status"].get("conditions") or []
        ) and not node["spec"].get("unschedulable")

    def _reconcile_daemonsets(self) -> bool:
        changed = False
        nodes = self.items("nodes")
        for ds in self.items("daemonsets"):
            pod_spec = ds["spec"]["template"].get("spec") or {}
            eligible = {
                node["metadata"]["name"]
                for node in nodes
                if self._node_ready(node)
                and node_selected(pod_spec, node)
                and untolerated_taint(pod_spec, node) is None
            }
            generation = str(ds["metadata"]["generation"])
            placed: dict[str, JSON] = {}
            for pod in self._owned_pods(ds):
                node_name = pod["spec"].get("nodeName", "")
                labels = pod["metadata"].get("labels") or {}
                if (
                    node_name not in eligible
                    or node_name in placed
                    or labels.get("pod-template-generation") != generation
                ):
                    self._delete_pod(pod)
                    changed = True
                else:
                    placed[node_name] = pod
            for node_name in sorted(eligible - placed.keys()):
                placed[node_name] = self._create_daemon_pod(ds, node_name, generation)
                changed = True
            running = sum(1 for pod in placed.values() if pod["status"]["phase"] == "Running")
            status = {
                "currentNumberScheduled": len(placed),
                "desiredNumberScheduled": len(eligible),
                "numberMisscheduled": 0,
                "numberReady": running,
                "numberAvailable": running,
                "numberUnavailable": len(eligible) - running,
                "updatedNumberScheduled": len(placed),
                "observedGeneration": ds["metadata"]["generation"],
            }
            if not status["numberAvailable"]:
                status.pop("numberAvailable")
            if not status["numberUnavailable"]:
                status.pop("numberUnavailable")
            if ds["status"] != status:
                updated = copy.deepcopy(ds)
                updated["status"] = status
                changed = self._put("daemonsets", updated) or changed
        return changed

    def _create_daemon_pod(self, ds: JSON, node_name: str, generation: str) -> JSON:
        template = copy.deepcopy(ds["spec"]["template"])
        meta = template.get("metadata") or {}
        labels = {**(meta.get("labels") or {}), "pod-template-generation": generation}
        tolerations = template["spec"].setdefault("tolerations", [])
        tolerations.append(
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}
        )
        template["spec"]["nodeName"] = node_name
        pod = self.create(
            "pods",
            {
                "metadata": {
                    "generateName": f"{ds['metadata']['name']}-",
                    "labels": labels,
                    "annotations": meta.get("annotations") or {},
                    "ownerReferences": [self._owner_reference(ds)],
                },
                "spec": template["spec"],
            },
            ds["metadata"]["namespace"],
        )
        self.record_event(
            ds, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
            "daemonset-controller",
        )  # fmt: skip
        self._bind(pod, node_name, self.timings.daemon_pod_start)
        return self.get("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])

    @staticmethod
    def _owner_reference(owner: JSON) -> JSON:
        return {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }

    # --- kubelet: device plugin and pod lifecycle -----------------------------------------

    def _reconcile_node_gpus(self) -> bool:
        plugin_nodes: set[str] = set()
        for pod in self.items("pods"):
            since = self._running_since.get(pod["metadata"]["uid"])
            if (
                since is not None
                and self.now >= since + self.timings.device_plugin_register
                and any(
                    "k8s-device-plugin" in (c.get("image") or "") for c in pod["spec"]["containers"]
                )
            ):
                plugin_nodes.add(pod["spec"].get("nodeName", ""))
        changed = False
        for node in self.items("nodes"):
            shape = self.node_shapes.get(node["metadata"]["name"])
            if shape is None or not shape.gpus:
                continue
            advertised = shape.managed_gpu or node["metadata"]["name"] in plugin_nodes
            updated = copy.deepcopy(node)
            for field in ("capacity", "allocatable"):
                if advertised:
                    updated["status"][field]["nvidia.com/gpu"] = str(shape.gpus)
                else:
                    updated["status"][field].pop("nvidia.com/gpu", None)
            changed = self._put("nodes", updated) or changed
        return changed

    def _bind(self, pod: JSON, node_name: str, start_delay: float) -> None:
        bound = copy.deepcopy(pod)
        bound["spec"]["nodeName"] = node_name
        node = self.store["nodes"].get(("", node_name))
        host_ip = node["status"]["addresses"][0]["address"] if node else "10.224.0.4"
        bound["status"] = {
            "phase": "Pending",
            "qosClass": pod["status"].get("qosClass", "BestEffort"),
            "hostIP": host_ip,
            "startTime": rfc3339(self.now),
            "conditions": [self._condition("PodScheduled", "True")],
            "containerStatuses": [
                self._container_status(c, {"waiting": {"reason": "ContainerCreating"}})
                for c in bound["spec"]["containers"]
            ],
        }
        self._write("pods", bound, "MODIFIED")
        meta = pod["metadata"]
        self.record_event(
            bound, "Normal", "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {node_name}",
            "default-scheduler",
        )  # fmt: skip
        uid = pod["metadata"]["uid"]
        self._at(self.now + start_delay, lambda: self._start_pod(uid))

    def _condition(self, kind: str, status: str, reason: str = "", message: str = "") -> JSON:
        condition: JSON = {
            "type": kind,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": rfc3339(self.now),
        }
        if reason:
            condition["reason"] = reason
        if message:
            condition["message"] = message
        return condition

    @staticmethod
    def _container_status(container: JSON, state: JSON, *, ready: bool = False) -> JSON:
        return {
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": "",
            "ready": ready,
            "restartCount": 0,
            "started": "running" in state,
            "state": state,
        }

    def _find_pod(self, uid: str) -> JSON | None:
        return next(
            (pod for pod in self.store["pods"].values() if pod["metadata"]["uid"] == uid), None
        )

    def _start_pod(self, uid: str) -> None:
        pod = self._find_pod(uid)
        if pod is None or pod["status"]["phase"] != "Pending":
            return
        running = copy.deepcopy(pod)
        stamp = rfc3339(self.now)
        running["status"].update(
            phase="Running",
            podIP=f"10.244.{len(self._running_since) % 250}.{self._random.randint(2, 250)}",
            conditions=[
                self._condition("PodReadyToStartContainers", "True"),
                self._condition("Initialized", "True"),
                self._condition("Ready", "True"),
                self._condition("ContainersReady", "True"),
                self._condition("PodScheduled", "True"),
            ],
            containerStatuses=[
                self._container_status(c, {"running": {"startedAt": stamp}}, ready=True)
                for c in running["spec"]["containers"]
            ],
        )
        self._write("pods", running, "MODIFIED")
        self._kubelet_started(running)
        self._running_since[uid] = self.now
        node = self.node_shapes.get(running["spec"].get("nodeName", ""))
        if self._job_of(running):
            lines = training_log(running, node, self.now)
            self._logs[uid] = (lines, self.now, self.now + self.timings.job_run)
            self._at(self.now + self.timings.job_run, lambda: self._finish_pod(uid))
        else:
            lines = daemon_log(running, node, self.now)
            self._logs[uid] = (lines, self.now, self.now)
            self._at(self.now + self.timings.device_plugin_register, lambda: None)

    def _kubelet_started(self, pod: JSON) -> None:
        """What the kubelet reports while it starts a pod's containers."""
        node = pod["spec"].get("nodeName", "")
        start = pod["status"].get("startTime")
        pulled_in = self.now - _parse_time(start) if start else 0.0
        for container in pod["spec"]["containers"]:
            image, name = container.get("image", ""), container["name"]
            for reason, message in (
                ("Pulling", f'Pulling image "{image}"'),
                (
                    "Pulled",
                    f'Successfully pulled image "{image}" in {pulled_in:.0f}s '
                    f"({pulled_in:.0f}s including waiting)",
                ),
                ("Created", f"Created container: {name}"),
                ("Started", f"Started container {name}"),
            ):
                self.record_event(pod, "Normal", reason, message, "kubelet", node)

    @staticmethod
    def _job_of(pod: JSON) -> str:
        return next(
            (
                ref["uid"]
                for ref in pod["metadata"].get("ownerReferences") or []
                if ref.get("kind") == "Job"
            ),
            "",
        )

    def _finish_pod(self, uid: str) -> None:
        pod = self._find_pod(uid)
        if pod is None or pod["status"]["phase"] != "Running":
            return
        job_name = (pod["metadata"].get("labels") or {}).get("job-name", "")
        rule = next(
            (r for r in self._failure_rules if r.remaining and r.job_name.search(job_name)), None
        )
        lines, started, _ = self._logs[uid]
        if rule is None:
            exit_code, phase, reason = 0, "Succeeded", "Completed"
        else:
            rule.remaining -= 1
            exit_code, phase, reason = rule.exit_code, "Failed", "Error"
            lines = lines[: max(1, len(lines) // 3)] + rule.log.splitlines()
        self._logs[uid] = (lines, started, self.now)
        self._running_since.pop(uid, None)
        done = copy.deepcopy(pod)
        started_at = rfc3339(started)
        done["status"].update(
            phase=phase,
            conditions=[
                self._condition("PodReadyToStartContainers", "False"),
                self._condition("Initialized", "True", "PodCompleted"),
                self._condition("Ready", "False", "PodCompleted"),
                self._condition("ContainersReady", "False", "PodCompleted"),
                self._condition("PodScheduled", "True"),
            ],
            containerStatuses=[
                self._container_status(
                    c,
                    {
                        "terminated": {
                            "exitCode": exit_code,
                            "reason": reason,
                            "startedAt": started_at,
                            "finishedAt": rfc3339(self.now),
                        }
                    },
                )
                for c in done["spec"]["containers"]
            ],
        )
        self._write("pods", done, "MODIFIED")
        if phase == "Failed" and done["spec"].get("restartPolicy") == "OnFailure":
            for container in done["spec"]["containers"]:
                self.record_event(
                    done, "Warning", "BackOff",
                    f"Back-off restarting failed container {container['name']} in pod "
                    f"{done['metadata']['name']}_{done['metadata']['namespace']}"
                    f"({done['metadata']['uid']})",
                    "kubelet", done["spec"].get("nodeName", ""),
                )  # fmt: skip

    def pod_log(self, pod: JSON, container: str | None) -> list[str]:
        """The container's output so far (a running job shows the part it has printed)."""
        names = [c["name"] for c in pod["spec"]["containers"]]
        name = container or names[0]
        pod_name = pod["metadata"]["name"]
        if name not in names:
            raise ApiError(
                400,
                "BadRequest",
                f"container {name} is not valid for pod {pod_name}",
            )
        if container is None and len(names) > 1:
            raise ApiError(
                400,
                "BadRequest",
                f"a container name must be specified for pod {pod_name}, choose one of: {names}",
            )
        entry = self._logs.get(pod["metadata"]["uid"])
        if entry is None:
            raise ApiError(
                400,
                "BadRequest",
                f'container "{name}" in pod "{pod_name}" is waiting to start: ContainerCreating',
            )
        lines, started, finished = entry
        if finished <= started or self.now >= finished:
            return lines
        shown = math.ceil(len(lines) * (self.now - started) / (finished - started))
        return lines[:shown]

    # --- scheduler ---------------------------------------------------------------------------

    def _schedule_pods(self) -> bool:
        changed = False
        nodes = list(self.items("nodes"))
        used: dict[str, Counter[str]] = {node["metadata"]["name"]: Counter() for node in nodes}
        for pod in self.items("pods"):
            node_name = pod["spec"].get("nodeName")
            if node_name in used and pod["status"]["phase"] in ("Pending", "Running"):
                used[node_name].update(pod_requests(pod))
        for pod in self.items("pods"):
            if pod["spec"].get("nodeName") or pod["status"]["phase"] != "Pending":
                continue
            requests = pod_requests(pod)
            reasons: Counter[str] = Counter()
            chosen = None
            for node in nodes:
                failures = self._unfit(pod, requests, node, used[node["metadata"]["name"]])
                if not failures:
                    chosen = node["metadata"]["name"]
                    break
                reasons.update(failures)
            if chosen is not None:
                used[chosen].update(requests)
                self._bind(pod, chosen, self.timings.pod_start)
                changed = True
                continue
            message = unschedulable_message(len(nodes), reasons)
            updated = copy.deepcopy(pod)
            existing = next(
                (c for c in pod["status"].get("conditions") or [] if c["type"] == "PodScheduled"),
                None,
            )
            if existing and existing.get("message") == message:
                continue
            updated["status"]["conditions"] = [
                self._condition("PodScheduled", "False", "Unschedulable", message)
            ]
            changed = self._put("pods", updated) or changed
            self.record_event(updated, "Warning", "FailedScheduling", message, "default-scheduler")
        return changed

    def _unfit(
        self, pod: JSON, requests: dict[str, float], node: JSON, used: Counter[str]
    ) -> list[str]:
        if node["spec"].get("unschedulable"):
            return ["node(s) were unschedulable"]
        taint = untolerated_taint(pod["spec"], node)
        if taint is not None:
            return [f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"]
        if not node_selected(pod["spec"], node):
            return ["node(s) didn't match Pod's node affinity/selector"]
        allocatable = node["status"].get("allocatable") or {}
        return [
            f"Insufficient {resource}"
            for resource, amount in sorted(requests.items())
            if amount > 0
            and amount > quantity(allocatable.get(resource, "0")) - used.get(resource, 0.0)
        ]

    # --- Job controller ----------------------------------------------------------------------

    def _reconcile_jobs(self) -> bool:
        changed = False
        for job in self.items("jobs"):
            if any(
                c["type"] in ("Complete", "Failed") and c["status"] == "True"
                for c in job["status"].get("conditions") or []
            ):
                continue
            changed = self._reconcile_job(job) or changed
        return changed

    def _reconcile_job(self, job: JSON) -> bool:
        spec = job["spec"]
        uid = job["metadata"]["uid"]
        terminal = self._job_terminal.setdefault(uid, {})
        pods = self._owned_pods(job)
        active = []
        for pod in pods:
            phase = pod["status"]["phase"]
            pod_uid = pod["metadata"]["uid"]
            if phase in ("Succeeded", "Failed"):
                if pod_uid not in terminal and phase == "Failed":
                    self._job_last_failure[uid] = self.now
                    failures = sum(1 for p in terminal.values() if p == "Failed") + 1
                    delay = min(360.0, self.timings.backoff * 2 ** (failures - 1))
                    self._at(self.now + delay, lambda: None)
                terminal[pod_uid] = phase
            else:
                active.append(pod)
        succeeded = sum(1 for phase in terminal.values() if phase == "Succeeded")
        failed = sum(1 for phase in terminal.values() if phase == "Failed")
        status = copy.deepcopy(job["status"])
        if "startTime" not in status and not spec.get("suspend"):
            status["startTime"] = rfc3339(self.now)
            deadline = spec.get("activeDeadlineSeconds")
            if deadline:
                self._at(self.now + float(deadline), lambda: None)
        started = _parse_time(status["startTime"]) if "startTime" in status else self.now
        deadline = spec.get("activeDeadlineSeconds")
        conditions: list[JSON] = []
        if deadline and self.now >= started + float(deadline):
            conditions = self._job_failed(
                "DeadlineExceeded", "Job was active longer than specified deadline"
            )
        elif succeeded >= spec.get("completions", 1):
            conditions = [
                self._condition(
                    "SuccessCriteriaMet",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ),
                self._condition(
                    "Complete",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ),
            ]
            status["completionTime"] = rfc3339(self.now)
            self.record_event(job, "Normal", "Completed", "Job completed", "job-controller")
        elif failed > spec.get("backoffLimit", 6):
            conditions = self._job_failed(
                "BackoffLimitExceeded", "Job has reached the specified backoff limit"
            )
        elif not spec.get("suspend"):
            backoff_until = self._job_last_failure.get(uid, -math.inf) + min(
                360.0, self.timings.backoff * 2 ** max(0, failed - 1)
            )
            wanted = min(spec.get("parallelism", 1), spec.get("completions", 1) - succeeded)
            while len(active) < wanted and (not failed or self.now >= backoff_until):
                active.append(self._create_job_pod(job))
        if conditions and conditions[-1]["type"] == "Failed":
            self.record_event(
                job, "Warning", conditions[-1]["reason"], conditions[-1]["message"],
                "job-controller",
            )  # fmt: skip
        if conditions:
            for pod in active:
                self._delete_pod(pod)
            active = []
            status["conditions"] = conditions
            ttl = spec.get("ttlSecondsAfterFinished")
            if ttl is not None:
                self._at(self.now + float(ttl), lambda: self._expire_job(uid))
        status["active"] = len(active)
        status["ready"] = sum(1 for pod in active if pod["status"]["phase"] == "Running")
        status["succeeded"] = succeeded
        status["failed"] = failed
        status["terminating"] = 0
        status["uncountedTerminatedPods"] = {}
        for field in ("active", "succeeded", "failed"):
            if not status[field]:
                status.pop(field)
        if status == job["status"]:
            return False
        updated = copy.deepcopy(job)
        updated["status"] = status
        return self._put("jobs", updated)

    def _expire_job(self, uid: str) -> None:
        """ttlSecondsAfterFinished: the TTL controller deletes the job and its pods."""
        for job in self.items("jobs"):
            if job["metadata"]["uid"] == uid:
                meta = job["metadata"]
                self.delete("jobs", meta["namespace"], meta["name"], "Background")

    def _job_failed(self, reason: str, message: str) -> list[JSON]:
        return [
            self._condition("FailureTarget", "True", reason, message),
            self._condition("Failed", "True", reason, message),
        ]

    def _create_job_pod(self, job: JSON) -> JSON:
        template = copy.deepcopy(job["spec"]["template"])
        meta = template.get("metadata") or {}
        pod = self.create(
            "pods",
            {
                "metadata": {
                    "generateName": f"{job['metadata']['name']}-",
                    "labels": meta.get("labels") or {},
                    "annotations": {
                        **(meta.get("annotations") or {}),
                        "batch.kubernetes.io/job-tracking": "",
                    },
                    "ownerReferences": [self._owner_reference(job)],
                },
                "spec": template["spec"],
            },
            job["metadata"]["namespace"],
        )
        self.record_event(
            job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
            "job-controller",
        )  # fmt: skip
        return pod


def _parse_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def unschedulable_message(node_count: int, reasons: Counter[str]) -> str:
    """kube-scheduler's FitError text: per-reason node counts, sorted."""
    if node_count == 0:
        return "no nodes available to schedule pods"
    parts = sorted(f"{count} {reason}" for reason, count in reasons.items())
    return (
        f"0/{node_count} nodes are available: {', '.join(parts)}. preemption: 0/{node_count} "
        f"nodes are available: {node_count} Preemption is not helpful for scheduling."
    )


def random_token() -> str:
    """A per-cluster bearer token (the simulated admin credential)."""
    alphabet = string.ascii_lowercase + string.digits
    rng = random.SystemRandom()
    return "".join(rng.choice(alphabet) for _ in range(64))
