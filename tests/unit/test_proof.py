"""The proof record (CTRF) and the parsers' answers to output that is not a healthy run.

Aspects covered: the report has what ctrf-io/ctrf `schema/ctrf.schema.json` requires
(reportFormat CTRF, a SemVer specVersion, results.tool.name, summary counts with start/stop in
epoch ms, tests with name/status/duration) and counts each status; the summary line; nvidia-smi
printing an NVML error instead of its report; a dcgmi table with a failed check; nccl-tests
with wrong values; node conditions other than AKS's GPU ones ignored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from shared.proof.ctrf import STATUSES, ProofBuilder, summary_text
from shared.proof.parsers import (
    gpu_problems,
    parse_all_reduce_perf,
    parse_dcgmi_diag,
    parse_nvidia_smi,
    parse_vectoradd,
)

START = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


def test_the_report_has_every_field_ctrf_requires_and_counts_statuses() -> None:
    builder = ProofBuilder("req-1", START)
    builder.add("gpu-count node-a", "passed", 5, node="node-a", gpus=8)
    builder.add("gpu-health node-a", "failed", 7, "XIDErrors: Xid 79", node="node-a")
    builder.add("nccl node-a", "skipped", 0, node="node-a", busbwGBps=None)
    report = builder.report(START + timedelta(seconds=90))
    assert report["reportFormat"] == "CTRF"
    assert re.fullmatch(r"\d+\.\d+\.\d+", report["specVersion"])
    results = report["results"]
    assert results["tool"]["name"] == "gpuprov"
    summary = results["summary"]
    assert set(STATUSES) | {"tests", "start", "stop"} <= set(summary)
    assert (summary["tests"], summary["passed"], summary["failed"], summary["skipped"]) == (
        3, 1, 1, 1,
    )  # fmt: skip
    assert summary["stop"] - summary["start"] == 90_000
    for test in results["tests"]:
        assert {"name", "status", "duration"} <= set(test)
        assert isinstance(test["duration"], int)
    assert results["tests"][1]["message"] == "XIDErrors: Xid 79"
    assert "busbwGBps" not in results["tests"][2]["extra"], "unknown values are left out"
    assert summary_text(report) == "1/3 passed, 1 failed, 1 skipped"


def test_nvidia_smi_that_cannot_initialise_nvml_is_an_error_not_a_crash() -> None:
    smi = parse_nvidia_smi("Failed to initialize NVML: Driver/library version mismatch\n")
    assert smi.error == "Failed to initialize NVML: Driver/library version mismatch"
    assert (smi.attached, smi.driver, smi.model) == (None, None, None)
    assert parse_nvidia_smi("").error == "no output"


def test_vectoradd_without_test_passed_fails_with_its_last_words() -> None:
    assert parse_vectoradd("[Vector addition of 50000 elements]\nkilled\n").detail == "killed"
    assert not parse_vectoradd("").passed


def test_dcgmi_with_a_failed_check_names_it() -> None:
    table = "\n".join(
        [
            "| Diagnostic                | Result                                         |",
            "|-----  Deployment  --------+------------------------------------------------|",
            "| NVML Library              | Pass                                           |",
            "| CUDA Main Library         | Fail                                           |",
            "| Warning                   | GPU0: Error using CUDA API cuInit              |",
        ]
    )
    diag = parse_dcgmi_diag(table)
    assert not diag.passed
    assert diag.failed == ["CUDA Main Library"]
    assert diag.warnings == ("GPU0: Error using CUDA API cuInit",)
    assert not parse_dcgmi_diag("dcgmi: command not found").passed


def test_nccl_with_wrong_values_never_meets_its_figure() -> None:
    text = "\n".join(
        [
            "# nThread 1 nGpus 8 minBytes 8 maxBytes 8 step: 2(factor) warmup iters: 5",
            "   8589934592    2147483648     float     sum      -1  36000.0  238.6  417.5      3"
            "  36000.0  238.6  417.5      3",
            "# Out of bounds values : 3 FAILED",
            "# Avg bus bandwidth    : 417.5 ",
        ]
    )
    nccl = parse_all_reduce_perf(text)
    assert (nccl.gpus, nccl.busbw_gbps, nccl.out_of_bounds) == (8, 417.5, 3)
    assert not nccl.meets(400.0)
    assert parse_all_reduce_perf("").busbw_gbps is None


def test_only_aks_gpu_conditions_that_are_true_count_as_problems() -> None:
    node = {
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "GPUMissing", "status": "False", "reason": "NoGPUMissing"},
                {"type": "XIDErrors", "status": "True", "message": "Xid 79"},
                {"type": "KernelDeadlock", "status": "True"},
            ]
        }
    }
    assert gpu_problems(node) == {"XIDErrors": "Xid 79"}
    assert gpu_problems({}) == {}
