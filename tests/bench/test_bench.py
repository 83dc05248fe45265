"""`python -m bench --quick`: the benchmark runs end to end at tiny sizes.

Covers: the entry point exits 0 and writes results JSON with every group (billed compute, cloud
calls, cold start, throughput, and the Flex meter, idle GPU and overhead cost), each with a
measured value, its baseline and their ratio; the Flex meter bills every wake-up at least a
second of instance memory; both priced VM sizes ran their job; the one benchmarked request
completed through the app and its script baseline's job succeeded; the app wrote each resource
once; the throughput runs finished every request; and the printed table names every group.

A smoke test of behaviour, not of speed: it gives the run all the time a busy machine needs and
asserts no measured time against another (the numbers are the benchmark's to report).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

GROUPS = (
    "billed_compute",
    "cloud_calls",
    "cold_start",
    "throughput",
    "flex_billing",
    "gpu_idle",
    "overhead_cost",
)


@pytest.mark.timeout(1200)
def test_quick_bench_writes_every_group_with_baselines(tmp_path: Path) -> None:
    out = tmp_path / "results.json"

    finished = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1100,  # throughput budgets its own waits: 60 s + 6 s a request
        check=False,
    )

    assert finished.returncode == 0, finished.stderr[-3000:]
    groups = json.loads(out.read_text())["groups"]
    assert set(groups) == set(GROUPS)
    for name in GROUPS:
        assert groups[name]["baseline"] > 0, name
        assert groups[name]["ratio"] == pytest.approx(
            groups[name]["value"] / groups[name]["baseline"]
        ), name
    billed = groups["billed_compute"]
    assert billed["app"]["outcome"] == "completed"
    assert billed["script"]["job_state"] == "succeeded"
    calls = groups["cloud_calls"]
    for api in ("arm", "kubernetes"):
        assert calls["app"][api]["writes"] == calls["minimum"][api]["writes"], api
    assert all(run["unfinished"] == 0 for run in groups["throughput"]["runs"])
    flex = groups["flex_billing"]
    assert 0 < flex["wake_ups"] <= flex["executions"]
    assert flex["value"] >= 2 * flex["wake_ups"], "each wake-up is billed >= 1 s of 2 GB"
    for size in ("Standard_NC4as_T4_v3", "Standard_ND96isr_H100_v5"):
        assert groups["gpu_idle"]["sizes"][size]["app"]["workload"] > 0, size
        cost = groups["overhead_cost"]["sizes"][size]
        assert cost["ratio"] == pytest.approx(cost["value"] / cost["baseline"]), size
    for label in (
        "billed compute",
        "cloud calls",
        "cold start",
        "throughput N=2",
        "Flex Consumption meter",
        "idle GPU-s",
        "overhead $",
    ):
        assert label in finished.stdout
