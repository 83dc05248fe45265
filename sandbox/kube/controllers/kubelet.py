"""The kubelet: starts and finishes pods, runs the device plugin, serves container logs."""

from __future__ import annotations

import copy
import math

from sandbox.kube.controllers.gpu_health import GpuHealth
from sandbox.kube.kinds.base import parse_time
from sandbox.kube.logs import daemon_log, training_log
from sandbox.kube.objects import JSON
from sandbox.kube.store import ApiError, rfc3339

_GPU_FIELDS = ("capacity", "allocatable")


class Kubelet(GpuHealth):
    """Pod lifecycle on the nodes, and `nvidia.com/gpu` once a device plugin registers."""

    def _reconcile_node_gpus(self) -> bool:
        plugin_nodes: set[str] = set()
        for pod in self.items("pods"):
            since = self._running_since.get(pod["metadata"]["uid"])
            if (
                since is not None
                and not self._nvml_broken(pod)
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
            wanted = str(shape.gpus) if advertised else None
            if all(node["status"][f].get("nvidia.com/gpu") == wanted for f in _GPU_FIELDS):
                continue
            updated = copy.deepcopy(node)
            for field in _GPU_FIELDS:
                if advertised:
                    updated["status"][field]["nvidia.com/gpu"] = str(shape.gpus)
                else:
                    updated["status"][field].pop("nvidia.com/gpu", None)
            changed = self._put("nodes", updated) or changed
        return changed

    def _pod_address(self, node_name: str) -> str:
        """An address from the node's pod range (its `spec.podCIDR`), as the CNI assigns it."""
        node = self.store["nodes"].get(("", node_name))
        cidr = (node or {}).get("spec", {}).get("podCIDR") or "10.244.0.0/24"
        return f"{cidr.rsplit('.', 1)[0]}.{self._random.randint(2, 250)}"

    def _start_pod(self, uid: str) -> None:
        pod = self._find_pod(uid)
        if pod is None or pod["status"]["phase"] != "Pending":
            return
        if self._plugin_crashes(pod):
            return
        running = copy.deepcopy(pod)
        stamp = rfc3339(self.now)
        address = self._pod_address(running["spec"].get("nodeName", ""))
        running["status"].update(
            phase="Running",
            podIP=address,
            podIPs=[{"ip": address}],  # "the 0th entry must match the podIP field" (PodStatus)
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
        if self._smoke_started(running):
            return
        if self._job_of(running):
            lines = training_log(running, node, self.now)
            self._logs[uid] = (lines, self.now, self.now + self.timings.job_run)
            self._at(self.now + self.timings.job_run, lambda: self._finish_pod(uid))
        else:
            lines = (
                self._blocked_plugin_log()
                if self._nvml_broken(running)
                else daemon_log(running, node, self.now)
            )
            self._logs[uid] = (lines, self.now, self.now)
            self._at(self.now + self.timings.device_plugin_register, lambda: None)

    def _kubelet_started(self, pod: JSON) -> None:
        """What the kubelet reports while it starts a pod's containers."""
        node = pod["spec"].get("nodeName", "")
        start = pod["status"].get("startTime")
        pulled_in = self.now - parse_time(start) if start else 0.0
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

    def _finish_pod(self, uid: str) -> None:
        pod = self._find_pod(uid)
        if pod is None or pod["status"]["phase"] != "Running":
            return
        job_name = (pod["metadata"].get("labels") or {}).get("job-name", "")
        rule = next(
            (r for r in self._failure_rules if r.remaining and r.job_name.search(job_name)), None
        )
        lines, started, _ = self._logs[uid]
        exit_code = 0
        if rule is not None:
            rule.remaining -= 1
            exit_code = rule.exit_code
            lines = lines[: max(1, len(lines) // 3)] + rule.log.splitlines()
        self._logs[uid] = (lines, started, self.now)
        self._end_pod(uid, exit_code)

    def _end_pod(self, uid: str, exit_code: int) -> None:
        pod = self._find_pod(uid)
        if pod is None or pod["status"]["phase"] != "Running":
            return
        _, started, _ = self._logs[uid]
        phase, reason = ("Succeeded", "Completed") if exit_code == 0 else ("Failed", "Error")
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


def log_text(lines: list[str], pod: JSON, query: dict[str, str]) -> str:
    """A container's log as GET pods/<name>/log shapes it (tailLines, timestamps, limitBytes)."""
    if "tailLines" in query:
        tail = int(query["tailLines"])
        lines = lines[-tail:] if tail > 0 else []
    if query.get("timestamps") == "true":
        stamp = pod["status"].get("startTime", "")
        lines = [f"{stamp} {line}" for line in lines]
    text = "".join(f"{line}\n" for line in lines)
    if "limitBytes" in query:
        text = text.encode()[: int(query["limitBytes"])].decode(errors="ignore")
    return text
