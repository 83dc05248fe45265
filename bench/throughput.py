"""Group 4: N concurrent requests through the local host, each N in a fresh process.

A child process (`python -m bench --throughput-child N`) starts the whole stack, queues N
requests at once (distinct request ids and cluster names), waits for all to finish, and reports
wall time, its peak resident memory (ru_maxrss: simulators, broker, host and app together; Azurite
runs in its own node process and is not counted) and per request the orchestration history
(events) and the seconds spent inside functions. The baseline is N = 1.

The local Durable host runs one episode or activity at a time (the Functions host on Azure scales
out), so wall time here measures the app's own compute per request, not Azure's concurrency.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.stack import ROOT, app_stack, bench_request

SIZES = (1, 10, 50)
STARTUP_BUDGET_SECONDS = 60.0
BUDGET_SECONDS_PER_REQUEST = 6.0
"""The wait for N requests is budgeted 60 s + 6 s per request (N=50: 6 minutes); a run past its
budget is reported as unfinished, with what did finish."""


def budget(n: int) -> float:
    return STARTUP_BUDGET_SECONDS + BUDGET_SECONDS_PER_REQUEST * n


def run_child(n: int) -> dict[str, Any]:
    """In this process: N requests through a fresh stack; what they cost."""
    began = time.perf_counter()
    with app_stack() as app:
        started = time.perf_counter() - began
        idle_kib = _peak_kib()
        requests = [bench_request(index, f"tp{n}") for index in range(n)]
        ids = [r["requestId"] for r in requests]
        began_run, simulated_from = time.perf_counter(), app.world.clock.now()
        app.submit(requests)
        unfinished = 0
        try:
            outcomes = app.wait_for_final(ids, budget(n) - started)
        except TimeoutError:
            outcomes = {}
            unfinished = n
        wall = time.perf_counter() - began_run
        durable = app.host.durable
        invocations = durable.invocations
        instances = durable.instance_ids()
        per_request = []
        for request_id in ids:
            mine = [i for i in instances if i == request_id or i.startswith(f"{request_id}:")]
            if not mine:
                continue
            runs = [i for i in invocations if i.instance_id in mine]
            per_request.append(
                {
                    "history_events": sum(len(durable.history(i)) for i in mine),
                    "main_history_events": len(durable.history(request_id)),
                    "largest_replay_events": max(
                        (r.history_events for r in runs if r.kind == "orchestrator"), default=0
                    ),
                    "function_seconds": sum(r.seconds for r in runs),
                }
            )
        if unfinished:
            unfinished = n - sum(1 for i in ids if i in instances and _done(durable, i))
        simulated = app.world.clock.now() - simulated_from
    return {
        "n": n,
        "completed": sum(1 for status in outcomes.values() if status == "completed"),
        "unfinished": unfinished,
        "startup_seconds": started,
        "wall_seconds": wall,
        "simulated_seconds": simulated,
        "idle_peak_mib": idle_kib / 1024,
        "peak_mib": _peak_kib() / 1024,
        "history_events_per_request": _median(per_request, "history_events"),
        "main_history_events_per_request": _median(per_request, "main_history_events"),
        "largest_replay_events": max((r["largest_replay_events"] for r in per_request), default=0),
        "function_seconds_per_request": _median(per_request, "function_seconds"),
    }


def _done(durable: Any, instance_id: str) -> bool:
    from sandbox.durable.host import TERMINAL

    return durable.get_status(instance_id).runtime_status in TERMINAL


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rows)) if rows else 0.0


def _peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def measure(sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    """Each N in its own process; ratios against the first (N = 1)."""
    runs: list[dict[str, Any]] = []
    for n in sizes:
        try:
            finished = subprocess.run(  # noqa: S603 - this interpreter, our own module
                [sys.executable, "-m", "bench", "--throughput-child", str(n)],
                capture_output=True,
                text=True,
                cwd=ROOT,
                check=True,
                timeout=budget(n) + STARTUP_BUDGET_SECONDS,
            )
        except subprocess.TimeoutExpired:
            runs.append({"n": n, "unfinished": n, "error": f"no answer within {budget(n):.0f} s"})
            continue
        runs.append(json.loads(finished.stdout.strip().splitlines()[-1]))
    base = runs[0]
    for run in runs:
        if "wall_seconds" not in run or "wall_seconds" not in base:
            continue
        run["ratio_to_n1"] = {
            "wall_per_request": (run["wall_seconds"] / run["n"]) / base["wall_seconds"],
            "peak_memory": run["peak_mib"] / base["peak_mib"],
            "history_per_request": run["history_events_per_request"]
            / base["history_events_per_request"],
            "function_seconds_per_request": run["function_seconds_per_request"]
            / base["function_seconds_per_request"],
        }
    largest = runs[-1]
    value = largest.get("wall_seconds", 0.0) / largest["n"]
    return {
        "value": value,
        "baseline": base.get("wall_seconds", 0.0),
        "ratio": value / base["wall_seconds"] if base.get("wall_seconds") else None,
        "goal": "per-request cost flat in N",
        "unit": f"s per request at N={largest['n']}",
        "budget_seconds": {str(n): budget(n) for n in sizes},
        "runs": runs,
    }
