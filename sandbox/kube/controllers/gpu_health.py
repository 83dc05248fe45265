"""GPU health on simulated AKS nodes: Node Problem Detector's GPU conditions, the smoke tools
a pod runs, and the failures a user can inject to rehearse them.

Conditions: AKS's NPD sets `GPUMissing`, `XIDErrors`, `NVLinkStatusInactive`,
`IBLinkFlapping` and `GPUClockThrottling` on GPU nodes (learn.microsoft.com/azure/aks/
node-problem-detector, "Node conditions", rows with compute type "GPU only";
gpu-health-monitoring.md for what each checks and on which sizes). `UnhealthyNvidiaDevicePlugin`
is for managed GPU pools only, and is not simulated (field reports find NPD absent there).
A healthy condition follows NPD's pattern in that page's `kubectl describe node` sample
(`VMEventScheduled False NoVMEventScheduled`): status False, reason `No<Type>`.

Faults wait for the next GPU node (or smoke pod) and then happen to it once:
- `gpu-missing`: the node registers one GPU fewer than its size (NVIDIA aicr#1858), and NPD
  reports GPUMissing;
- `xid-error`: NPD reports XIDErrors on the node;
- `plugin-crashloop`: the device plugin on the node cannot initialise NVML (driver/library
  mismatch, Azure/AKS#5869) and the kubelet restarts it with back-off: CrashLoopBackOff, a
  rising restart count, GPUs never advertised;
- `smoke-fails`: the next smoke pod's tool fails and its container exits 1.
"""

from __future__ import annotations

import copy

from sandbox.kube.controllers.base import ClusterBase
from sandbox.kube.gpu_stack import GpuStack, gpu_stack, npd_watches
from sandbox.kube.gpu_tools import plugin_crash_log, smoke_tool, tool_failure, tool_output
from sandbox.kube.objects import JSON
from sandbox.kube.store import rfc3339

NODE_FAULTS = ("gpu-missing", "xid-error", "plugin-crashloop")
SMOKE_RUN_SECONDS = 20.0
"""A smoke pod from Running to done (nvidia-smi and vectorAdd take seconds; DCGM r1 ~ 20 s)."""
CRASH_BACKOFF_CAP = 300.0
"""The kubelet's container restart back-off: 10 s doubling, capped at five minutes
(Kubernetes docs, "Pod Lifecycle", container restarts)."""

_NPD_CONDITIONS: tuple[tuple[str, str, str], ...] = (
    ("GPUMissing", "Observed GPU count does not match expected GPU count",
     "GPU count matches expected"),
    ("XIDErrors", "XID errors present in kernel log", "no XID errors in kernel log"),
    ("NVLinkStatusInactive", "NVLink status inactive", "NVLink is active"),
    ("IBLinkFlapping", "Intermittent InfiniBand device connectivity",
     "InfiniBand links are stable"),
    ("GPUClockThrottling", "Problematic GPU clock throttling detected",
     "no problematic GPU clock throttling"),
)  # fmt: skip


class GpuHealth(ClusterBase):
    """NPD conditions, smoke tools and injected GPU faults."""

    def _gpu_node_conditions(self, vm_size: str, faults: set[str]) -> list[JSON]:
        """NPD's GPU conditions for a new node (none where NPD does not run GPU checks)."""
        if not (npd_watches(vm_size) or faults & {"gpu-missing", "xid-error"}):
            return []
        stamp = rfc3339(self.now)
        active = {"GPUMissing": "gpu-missing" in faults, "XIDErrors": "xid-error" in faults}
        conditions = []
        for kind, problem, fine in _NPD_CONDITIONS:
            bad = active.get(kind, False)
            message = problem
            if kind == "XIDErrors" and bad:
                message = f"{problem}: NVRM: Xid (PCI:0001:00:00): 79, GPU has fallen off the bus"
            conditions.append(
                {
                    "type": kind,
                    "status": "True" if bad else "False",
                    "reason": kind if bad else f"No{kind}",
                    "message": message if bad else fine,
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
            )
        return conditions

    def _take_node_faults(self) -> set[str]:
        taken = set(self._gpu_faults.node)
        self._gpu_faults.node.clear()
        return taken

    def _stack_of(self, pod: JSON) -> tuple[GpuStack | None, int]:
        node = self.store["nodes"].get(("", pod["spec"].get("nodeName", "")))
        shape = self.node_shapes.get(pod["spec"].get("nodeName", ""))
        if node is None or shape is None:
            return None, 0
        vm_size = node["metadata"]["labels"].get("node.kubernetes.io/instance-type", "")
        return gpu_stack(vm_size), shape.gpus

    def _smoke_started(self, pod: JSON) -> bool:
        """Run a smoke pod's GPU tool: its output now, its exit after SMOKE_RUN_SECONDS."""
        tool = smoke_tool(pod)
        stack, gpus = self._stack_of(pod)
        if tool is None or stack is None or self._job_of(pod):
            return False
        uid = pod["metadata"]["uid"]
        node = pod["spec"]["nodeName"]
        if self._gpu_faults.smoke > 0:
            self._gpu_faults.smoke -= 1
            lines, exit_code = tool_failure(tool, stack), 1
        else:
            lines, exit_code = tool_output(tool, stack, gpus, node, self.now), 0
        self._logs[uid] = (lines, self.now, self.now + SMOKE_RUN_SECONDS)
        self._at(self.now + SMOKE_RUN_SECONDS, lambda: self._end_pod(uid, exit_code))
        return True

    def _nvml_broken(self, pod: JSON) -> bool:
        """A device plugin pod on a node with `plugin-crashloop` (NVML cannot initialise)."""
        node = pod["spec"].get("nodeName", "")
        return "plugin-crashloop" in self.node_faults.get(node, set()) and any(
            "k8s-device-plugin" in (c.get("image") or "") for c in pod["spec"]["containers"]
        )

    def _plugin_crashes(self, pod: JSON) -> bool:
        """Start a broken plugin's crash cycle, unless FAIL_ON_INIT_ERROR=false: then the plugin
        logs the NVML error and blocks (Running, no GPUs), as upstream documents the flag
        ("failOnInitError ... otherwise block indefinitely", k8s-device-plugin README)."""
        if not self._nvml_broken(pod):
            return False
        env = [e for c in pod["spec"]["containers"] for e in c.get("env") or []]
        if any(e.get("name") == "FAIL_ON_INIT_ERROR" and e.get("value") == "false" for e in env):
            return False
        self._crash(pod["metadata"]["uid"])
        return True

    def _blocked_plugin_log(self) -> list[str]:
        """A broken plugin with FAIL_ON_INIT_ERROR=false: the error, then it waits."""
        lines = plugin_crash_log(self.now)[:-1]
        stamp = lines[0][1:21]
        return [*lines, f"I{stamp}       1 main.go:381] No devices found. Waiting indefinitely."]

    def _crash(self, uid: str) -> None:
        """The plugin exits 1 at start; the kubelet restarts it after a doubling back-off."""
        pod = self._find_pod(uid)
        if pod is None:
            return
        crashed = copy.deepcopy(pod)
        restarts = max(
            [int(s.get("restartCount") or 0) for s in pod["status"].get("containerStatuses") or []]
            + [0]
        )
        if pod["status"]["phase"] == "Running":
            restarts += 1
        backoff = min(CRASH_BACKOFF_CAP, 10.0 * 2 ** max(0, restarts - 1))
        stamp = rfc3339(self.now)
        name = pod["metadata"]["name"]
        statuses = []
        for container in pod["spec"]["containers"]:
            status = self._container_status(
                container,
                {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off {backoff:.0f}s restarting failed "
                        f"container={container['name']} pod={name}_"
                        f"{pod['metadata']['namespace']}({uid})",
                    }
                },
            )
            status["restartCount"] = restarts
            status["lastState"] = {
                "terminated": {
                    "exitCode": 1,
                    "reason": "Error",
                    "startedAt": stamp,
                    "finishedAt": stamp,
                }
            }
            statuses.append(status)
        crashed["status"].update(
            phase="Running",
            conditions=[
                self._condition("PodReadyToStartContainers", "True"),
                self._condition("Initialized", "True"),
                self._condition(
                    "Ready", "False", "ContainersNotReady",
                    f"containers with unready status: [{pod['spec']['containers'][0]['name']}]",
                ),
                self._condition(
                    "ContainersReady", "False", "ContainersNotReady",
                    f"containers with unready status: [{pod['spec']['containers'][0]['name']}]",
                ),
                self._condition("PodScheduled", "True"),
            ],
            containerStatuses=statuses,
        )  # fmt: skip
        self._write("pods", crashed, "MODIFIED")
        self._logs[uid] = (plugin_crash_log(self.now), self.now, self.now)
        for container in pod["spec"]["containers"]:
            self.record_event(
                crashed, "Warning", "BackOff",
                f"Back-off restarting failed container {container['name']} in pod "
                f"{name}_{pod['metadata']['namespace']}({uid})",
                "kubelet", pod["spec"].get("nodeName", ""),
            )  # fmt: skip
        self._at(self.now + backoff, lambda: self._crash(uid))

    def _end_pod(self, uid: str, exit_code: int) -> None:
        """A run-to-completion pod's container exits (restartPolicy Never or OnFailure)."""
        raise NotImplementedError
