"""Groups flex_billing, gpu_idle and overhead_cost: what waiting costs, priced as Azure bills it.

The app's executions go through the Flex Consumption meter (bench/flex_meter.py); its GPU nodes'
life is split into workload, cloud-needed idle and orchestration-caused idle (bench/gpu_idle.py).
The overhead of a request is what the orchestration itself adds: the Flex meter plus the
orchestration-caused idle GPU. The script's is the same for a script: its host, billed as one
instance of the same memory for as long as it is alive, plus the idle GPU its polling causes.
Prices: shared/prices.py (VM list prices and the Flex on-demand meters, dated snapshots).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench import flex_meter
from bench.flex_meter import Execution
from bench.gpu_idle import CloudTimes, IdleSplit, Marks, split

T4 = "Standard_NC4as_T4_v3"
H100 = "Standard_ND96isr_H100_v5"
SIZES = {T4: 1, H100: 2}
"""The two cases priced: VM size → nodes in the pool."""


@dataclass(frozen=True)
class AppRun:
    """One request through the app: its executions and when it made its GPU-relevant calls."""

    vm_size: str
    nodes: int
    executions: list[Execution]
    marks: Marks


def app_marks(activities: Iterable[tuple[str, float]]) -> Marks:
    """The marks from the app's activity runs (name, simulated start), in order: the last pool
    PUT, the device plugin's apply, the job's creation, the deletion that removes the nodes, and
    verify-gpus' looks (first and last: GPUs, then the smoke pods)."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for name, started in activities:
        first.setdefault(name, started)
        last[name] = started
    delete = last.get("start_delete_cluster", last.get("start_delete_node_pool"))
    if delete is None or "start_job" not in last:
        raise ValueError("the request did not run to its job and cleanup")
    return Marks(
        pool_put=last["start_create_node_pool"],
        plugin_applied=last.get("install_device_plugin"),
        job_created=last["start_job"],
        delete_started=delete,
        proof=(first["check_gpus"], last["check_gpus"]) if "check_gpus" in last else None,
    )


def groups(
    apps: dict[str, AppRun],
    script_seconds: float,
    script_marks: dict[str, float],
    cloud: CloudTimes,
) -> dict[str, dict[str, Any]]:
    from shared.catalog import lookup
    from shared.prices import flex_on_demand, from_snapshot

    flex = flex_on_demand()
    memory_gb = flex_meter.DEFAULT_MEMORY_MB / 1024
    script_gb_s = flex_meter.billed_seconds(script_seconds) * memory_gb
    script_idle = split(Marks(**script_marks), cloud)
    meters = {
        size: flex_meter.read(flex_meter.lay_out(run.executions)) for size, run in apps.items()
    }
    t4 = meters[T4]
    flex_billing = {
        "value": t4.gb_seconds,
        "baseline": script_gb_s,
        "ratio": t4.gb_seconds / script_gb_s,
        "unit": "GB-s",
        "wake_ups": t4.wake_ups,
        "executions": t4.executions,
        "active_seconds": t4.active_seconds,
        "memory_mb": flex_meter.DEFAULT_MEMORY_MB,
        "sizes": {
            s: {"gb_seconds": m.gb_seconds, "wake_ups": m.wake_ups, "executions": m.executions}
            for s, m in meters.items()
        },
    }
    gpu_sizes: dict[str, Any] = {}
    cost_sizes: dict[str, Any] = {}
    for size, run in apps.items():
        gpus = run.nodes * (info.gpus if (info := lookup(size)) else 1)
        price = from_snapshot(size, spot=False)
        if price is None:
            raise ValueError(f"no list price for {size} in shared/retail_prices_snapshot.json")
        per_gpu_second = price.hourly * run.nodes / gpus / 3600
        app_idle = split(run.marks, cloud)
        gpu_sizes[size] = {
            "nodes": run.nodes,
            "gpus": gpus,
            "app": _gpu_seconds(app_idle, gpus),
            "script": _gpu_seconds(script_idle, gpus),
        }
        meter = meters[size]
        app_flex = meter.gb_seconds * flex.gb_second + meter.executions * flex.execution
        app_gpu = app_idle.orchestration * gpus * per_gpu_second
        script_host = script_gb_s * flex.gb_second + flex.execution
        script_gpu = script_idle.orchestration * gpus * per_gpu_second
        value, baseline = app_flex + app_gpu, script_host + script_gpu
        cost_sizes[size] = {
            "value": value,
            "baseline": baseline,
            "ratio": value / baseline,
            "app": {"flex_usd": app_flex, "idle_gpu_usd": app_gpu},
            "script": {"host_usd": script_host, "idle_gpu_usd": script_gpu},
            "hourly_usd_per_node": price.hourly,
            "price_source": price.source,
        }
    idle_t4 = gpu_sizes[T4]
    gpu_idle = {
        "value": idle_t4["app"]["orchestration"],
        "baseline": idle_t4["script"]["orchestration"],
        "ratio": _ratio(idle_t4["app"]["orchestration"], idle_t4["script"]["orchestration"]),
        "unit": "GPU-s",
        "sizes": gpu_sizes,
    }
    overhead_cost = {
        "value": cost_sizes[T4]["value"],
        "baseline": cost_sizes[T4]["baseline"],
        "ratio": cost_sizes[T4]["ratio"],
        "unit": "USD",
        "goal": {T4: "<= 0.10", H100: "<= 0.50"},
        "flex_price_source": flex.source,
        "sizes": cost_sizes,
    }
    return {"flex_billing": flex_billing, "gpu_idle": gpu_idle, "overhead_cost": overhead_cost}


def _gpu_seconds(idle: IdleSplit, gpus: int) -> dict[str, float]:
    return {
        "exists": idle.exists * gpus,
        "workload": idle.workload * gpus,
        "cloud_needed": idle.cloud_needed * gpus,
        "orchestration": idle.orchestration * gpus,
        "proof": idle.proof * gpus,
    }


def _ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else float("inf")
