"""Groups 1 and 2: what one request costs in billed compute and in cloud calls.

One request through the app (queue → intake → orchestration → activities) on realistic cloud
timings, against the same steps as one script (bench/script.py) on fresh simulators.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import cost
from bench.flex_meter import Execution
from bench.gpu_idle import CloudTimes
from bench.script import FEATURE_POLL_SECONDS, KUBECTL_POLL_SECONDS, run_script
from bench.stack import (
    REALISTIC_ARM,
    REALISTIC_KUBE,
    AppStack,
    app_stack,
    bench_request,
    cloud,
)
from sandbox.arm import ArmRequest
from sandbox.kube.server import KubeRequest

BILLING_FLOOR_SECONDS = 0.1
"""What-if: each execution rounded up to 100 ms (the Consumption plan's per-execution minimum)."""
APP_POLL_SECONDS = 30.0
"""The run's default poll interval (shared.sequence.RunOptions), used where no Retry-After is
given: feature reads and Kubernetes checks."""
_OPERATION_READ = re.compile(r"/(operations|operationresults)/", re.IGNORECASE)
_REGISTRATION_READ = re.compile(r"/providers/[^/]+(/features/[^/]+)?$", re.IGNORECASE)


def measure(timeout: float = 120.0) -> dict[str, dict[str, Any]]:
    """Run one request through the app and one through the script; groups 1 and 2, and the
    cost groups (bench/cost.py), for which a second request runs on two ND H100 v5 nodes."""
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        with app_stack(Path(workdir) / "app") as app:
            request = bench_request(1, "billed")
            began = app.world.clock.now()
            app.submit([request])
            outcome = app.wait_for_final([request["requestId"]], timeout)[request["requestId"]]
            simulated = app.world.clock.now() - began
            triggers = [i.seconds for i in app.host.invocations]
            durable = app.host.durable.invocations
            arm_requests, kube_requests = app.world.arm.requests, app.world.kube.requests
            history = history_events(app.host.durable, request["requestId"])
            runs = {cost.T4: _app_run(app, request, cost.T4, durable, app.host.invocations)}
            pricey = sized_request(bench_request(2, "h100"), cost.H100, cost.SIZES[cost.H100])
            with h100_quota(cost.SIZES[cost.H100]):
                app.submit([pricey])
                app.wait_for_final([pricey["requestId"]], timeout)
            runs[cost.H100] = _app_run(
                app, pricey, cost.H100, app.host.durable.invocations, app.host.invocations
            )
        with cloud(Path(workdir) / "script") as simulators:
            script = run_script(simulators, bench_request(1, "script"))
            script_arm, script_kube = simulators.arm.requests, simulators.kube.requests
    episodes = [i.seconds for i in durable if i.kind == "orchestrator"]
    activities = [i.seconds for i in durable if i.kind == "activity"]
    every = triggers + episodes + activities
    app_seconds = sum(every)
    billed = {
        "value": app_seconds,
        "baseline": script.billed_seconds,
        "ratio": app_seconds / script.billed_seconds,
        "goal": "< 0.01",
        "unit": "s",
        "app": {
            "outcome": outcome,
            "simulated_seconds": simulated,
            "trigger_invocations": {"count": len(triggers), "seconds": sum(triggers)},
            "orchestrator_episodes": {"count": len(episodes), "seconds": sum(episodes)},
            "activity_invocations": {"count": len(activities), "seconds": sum(activities)},
            "seconds_with_100ms_floor": sum(max(s, BILLING_FLOOR_SECONDS) for s in every),
            **history,
        },
        "script": {
            "job_state": script.job_state,
            "simulated_seconds": script.simulated_seconds,
            "work_seconds": script.work_seconds,
        },
    }
    billed["app"]["ratio_with_100ms_floor"] = (
        billed["app"]["seconds_with_100ms_floor"] / script.billed_seconds
    )
    actual = {"arm": classify_arm(arm_requests), "kubernetes": classify_kube(kube_requests)}
    least = minimum_calls()
    total, least_total = _total(actual), _total(least)
    calls = {
        "value": total,
        "baseline": least_total,
        "ratio": total / least_total,
        "goal": "close to 1",
        "unit": "requests",
        "app": actual,
        "minimum": least,
        "script": {"arm": classify_arm(script_arm), "kubernetes": classify_kube(script_kube)},
        "script_intervals": {
            "feature_poll_seconds": FEATURE_POLL_SECONDS,
            "kubectl_poll_seconds": KUBECTL_POLL_SECONDS,
        },
    }
    priced = cost.groups(runs, script.billed_seconds, script.marks, cloud_times())
    return {"billed_compute": billed, "cloud_calls": calls, **priced}


@contextmanager
def h100_quota(nodes: int) -> Iterator[None]:
    """A subscription with ND H100 v5 quota approved (the sandbox grants none by default)."""
    from sandbox.arm import compute

    family = "standardNDSH100v5Family"
    saved = compute.DEFAULT_LIMITS[family]
    compute.DEFAULT_LIMITS[family] = 96 * nodes
    try:
        yield
    finally:
        compute.DEFAULT_LIMITS[family] = saved


def history_events(durable: Any, request_id: str) -> dict[str, int]:
    """The request's history: events stored at its end (the orchestration and its waits; a wait
    that continued as new keeps only its last execution's), and events written over the run
    (each execution's largest replay, summed)."""
    mine = [i for i in durable.instance_ids() if i.split(":")[0] == request_id]
    written = 0
    for instance in mine:
        previous = 0
        for run in durable.invocations:
            if run.instance_id != instance or run.kind != "orchestrator":
                continue
            if run.history_events < previous:  # continued as new: a fresh history
                written += previous
            previous = run.history_events
        written += previous
    return {
        "history_events": sum(len(durable.history(i)) for i in mine),
        "history_events_written": written,
    }


def sized_request(document: dict[str, Any], vm_size: str, nodes: int) -> dict[str, Any]:
    """The same request on another VM size and node count."""
    pool = {**document.get("nodePool", {}), "vmSize": vm_size, "nodeCount": nodes}
    return {**document, "nodePool": pool}


def cloud_times() -> CloudTimes:
    """The simulators' durations for what happens to the GPU nodes (bench/stack.py)."""
    arm, kube = REALISTIC_ARM, REALISTIC_KUBE
    return CloudTimes(
        pool_create=arm.pool_create_seconds,
        plugin_rollout=kube.daemon_pod_start + kube.device_plugin_register,
        pod_start=kube.pod_start,
        job_run=kube.job_run,
        delete=arm.cluster_delete_seconds,  # the bench's request creates its cluster
    )


def _app_run(
    app: AppStack, document: dict[str, Any], vm_size: str, durable: list[Any], triggers: list[Any]
) -> cost.AppRun:
    """One request's executions (its intake trigger, episodes and activities) and marks."""
    request_id = document["requestId"]
    mine = [i for i in durable if i.instance_id.split(":")[0] == request_id]
    first, last = min(i.started for i in mine), max(i.started for i in mine)
    intake = [i for i in triggers if first - 1 <= i.started <= last]
    executions = [Execution(i.started, i.seconds) for i in mine + intake]
    marks = cost.app_marks((i.name, i.started) for i in mine if i.kind == "activity")
    return cost.AppRun(vm_size, document["nodePool"]["nodeCount"], executions, marks)


def classify_arm(requests: list[ArmRequest]) -> dict[str, int]:
    """Writes, polling reads (operations, registrations), and other reads (resource GETs and
    credential fetches, which the minimum does not need)."""
    counts: Counter[str] = Counter()
    for request in requests:
        if request.method in ("PUT", "DELETE", "PATCH") or request.path.endswith("/register"):
            counts["writes"] += 1
        elif request.method == "GET" and (
            _OPERATION_READ.search(request.path) or _REGISTRATION_READ.search(request.path)
        ):
            counts["polling_reads"] += 1
        else:
            counts["other_reads"] += 1
    return {key: counts[key] for key in ("writes", "polling_reads", "other_reads")}


def classify_kube(requests: list[KubeRequest]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for request in requests:
        counts["reads" if request.method == "GET" else "writes"] += 1
    return {"writes": counts["writes"], "polling_reads": counts["reads"], "other_reads": 0}


def minimum_calls() -> dict[str, dict[str, int]]:
    """One write per resource; one read per poll interval the server asked for (Retry-After on
    ARM operations; the run's default interval where the server names none). The GPU proof at
    the default level on the bench's one T4 node: per smoke pod one create, one delete and one
    read of its end with its log (shared/proof/smoke.py's tools), which the script does not do."""
    from shared.proof.smoke import tools_for

    arm, kube = REALISTIC_ARM, REALISTIC_KUBE
    smoke_pods = len(tools_for("standard", 1))
    after = float(arm.retry_after_seconds)
    arm_reads = (
        _polls(arm.feature_registration_seconds, APP_POLL_SECONDS)
        + _polls(arm.cluster_create_seconds, after)
        + _polls(arm.pool_create_seconds, after)
        + _polls(arm.cluster_delete_seconds, after)
    )
    plugin_ready = kube.daemon_pod_start + kube.device_plugin_register
    kube_reads = (
        _polls(plugin_ready, APP_POLL_SECONDS)  # device plugin ready
        + 1  # GPUs allocatable: ready once the plugin is
        + _polls(kube.pod_start + kube.job_run, APP_POLL_SECONDS)  # job ended
        + 1  # its log
        + smoke_pods  # each smoke pod's end and log
    )
    return {
        # feature register, provider register, cluster PUT, pool PUT, cluster DELETE
        "arm": {"writes": 5, "polling_reads": arm_reads, "other_reads": 0},
        # namespace, device plugin DaemonSet, job, job delete; each smoke pod's create and delete
        "kubernetes": {"writes": 4 + 2 * smoke_pods, "polling_reads": kube_reads, "other_reads": 0},
    }


def _polls(seconds: float, interval: float) -> int:
    return max(1, math.ceil(seconds / interval))


def _total(calls: dict[str, dict[str, int]]) -> int:
    return sum(sum(kinds.values()) for kinds in calls.values())
