"""Run the benchmark groups, print one table, write the results as JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench.stack import ROOT

RESULTS = ROOT / "bench" / "results.json"

_Row = tuple[str, str, str, str, str]
"""One table row: group, measured, baseline, ratio, goal."""


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def run(quick: bool) -> dict[str, Any]:
    from bench import cold_start, per_request, throughput

    began = time.perf_counter()
    groups: dict[str, Any] = {}
    groups.update(per_request.measure())
    groups["cold_start"] = cold_start.measure(runs=1 if quick else 7)
    groups["throughput"] = throughput.measure((1, 2) if quick else throughput.SIZES)
    return {
        "machine": machine(),
        "quick": quick,
        "seconds": time.perf_counter() - began,
        "groups": groups,
    }


def table(results: dict[str, Any]) -> str:
    """The groups as a Markdown table: what was measured, its baseline, their ratio."""
    groups = results["groups"]
    billed, calls = groups["billed_compute"], groups["cloud_calls"]
    cold, flow = groups["cold_start"], groups["throughput"]
    app = billed["app"]
    rows = [
        (
            "1. billed compute per request",
            f"{billed['value']:.2f} s inside {_invocations(app)} invocations",
            f"{billed['baseline']:.0f} s script alive",
            f"{billed['ratio']:.3%}",
            billed["goal"],
        ),
        (
            "   same, each execution ≥ 100 ms",
            f"{app['seconds_with_100ms_floor']:.1f} s",
            f"{billed['baseline']:.0f} s",
            f"{app['ratio_with_100ms_floor']:.2%}",
            "",
        ),
        (
            "2. cloud calls per request",
            _calls(calls["app"]),
            _calls(calls["minimum"]) + " (minimum)",
            f"{calls['ratio']:.2f}×",
            calls["goal"],
        ),
        (
            "3. cold start (import + index)",
            f"{cold['value'] * 1000:.0f} ms, {cold['functions_indexed']} functions",
            f"{cold['baseline'] * 1000:.0f} ms bare DFApp",
            f"{cold['ratio']:.2f}×",
            cold["goal"],
        ),
    ]
    rows += _cost_rows(groups)
    for run in flow["runs"]:
        if "wall_seconds" not in run:
            rows.append((f"4. throughput N={run['n']}", run.get("error", "failed"), "", "", ""))
            continue
        ratio = run.get("ratio_to_n1", {})
        rows.append(
            (
                f"4. throughput N={run['n']}",
                f"{run['wall_seconds']:.1f} s wall, {run['peak_mib']:.0f} MiB peak, "
                f"{run['history_events_per_request']:.0f} events/request, "
                f"{run['completed']}/{run['n']} completed",
                "N=1" if run["n"] == flow["runs"][0]["n"] else "",
                (
                    f"wall/req {ratio.get('wall_per_request', 1):.2f}×, "
                    f"mem {ratio.get('peak_memory', 1):.2f}×, "
                    f"events/req {ratio.get('history_per_request', 1):.2f}×"
                ),
                flow["goal"] if run is flow["runs"][-1] else "",
            )
        )
    header = ("group", "measured", "baseline", "ratio", "goal")
    lines = [_row(header), _row(tuple("---" for _ in header))]
    lines += [_row(row) for row in rows]
    return "\n".join(lines)


def _cost_rows(groups: dict[str, Any]) -> list[_Row]:
    """Groups 5-7 (bench/cost.py) and the history per request."""
    from bench.cost import H100, T4

    flex, app = groups["flex_billing"], groups["billed_compute"]["app"]
    rows = [
        (
            "5. Flex Consumption meter per request",
            f"{flex['value']:.1f} GB-s: {flex['wake_ups']} wake-ups, "
            f"{flex['executions']} executions",
            f"{flex['baseline']:.0f} GB-s script alive",
            f"{flex['ratio']:.2%}",
            "",
        )
    ]
    rows += [
        per_size(groups, size) for per_size in (_idle_row, _overhead_row) for size in (T4, H100)
    ]
    rows.append(
        (
            "8. history per request",
            f"{app['history_events']} events stored, ≈{app['history_events_written']} written",
            "",
            "",
            "<= 400",
        )
    )
    return rows


def _idle_row(groups: dict[str, Any], size: str) -> _Row:
    """Group 6 for one GPU size: idle GPU-seconds the app caused against the script's."""
    gpu = groups["gpu_idle"]["sizes"][size]
    app, script = gpu["app"], gpu["script"]
    return (
        f"6. idle GPU-s, {gpu['nodes']}× {size}",
        f"{app['orchestration']:.0f} caused by the app (+{app['cloud_needed']:.0f} "
        f"cloud-needed, +{app['proof']:.0f} GPU proof)",
        f"{script['orchestration']:.0f} caused by the script (+{script['cloud_needed']:.0f})",
        f"{app['orchestration'] / max(script['orchestration'], 1e-9):.2f}×",
        "",
    )


def _overhead_row(groups: dict[str, Any], size: str) -> _Row:
    """Group 7 for one GPU size: the overhead in dollars against the script's, and the goal."""
    overhead = groups["overhead_cost"]
    cost, nodes = overhead["sizes"][size], groups["gpu_idle"]["sizes"][size]["nodes"]
    return (
        f"7. overhead $, {nodes}× {size}",
        f"${cost['value']:.4f} (Flex ${cost['app']['flex_usd']:.4f} + idle GPU "
        f"${cost['app']['idle_gpu_usd']:.4f})",
        f"${cost['baseline']:.4f} script (host ${cost['script']['host_usd']:.4f} + "
        f"idle GPU ${cost['script']['idle_gpu_usd']:.4f})",
        f"{cost['ratio']:.1%}",
        overhead["goal"][size],
    )


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"


def _invocations(app: dict[str, Any]) -> int:
    return int(
        app["trigger_invocations"]["count"]
        + app["orchestrator_episodes"]["count"]
        + app["activity_invocations"]["count"]
    )


def _calls(calls: dict[str, dict[str, int]]) -> str:
    arm, kube = calls["arm"], calls["kubernetes"]
    return (
        f"ARM {sum(arm.values())} ({arm['writes']} writes, {arm['polling_reads']} polls, "
        f"{arm['other_reads']} other reads); Kubernetes {sum(kube.values())} "
        f"({kube['writes']} writes, {kube['polling_reads']} reads)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: N=1,2 and one cold start each"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument("--throughput-child", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.throughput_child is not None:
        from bench.throughput import run_child

        print(json.dumps(run_child(args.throughput_child)))
        return 0
    results = run(args.quick)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    machine_info = results["machine"]
    print(
        f"\n{machine_info['cpu']}, {machine_info['cores']} cores, Python "
        f"{machine_info['python']}; {results['seconds']:.0f} s; results in {args.out}",
        file=sys.stdout,
    )
    return 0
