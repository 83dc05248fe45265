"""What a smoke tool's output proves, and the proof record verify-gpus writes from its findings.

Aspects covered: the tools per level (NCCL only on multi-GPU sizes); the smoke pod (pinned by
nodeName, the pool's tolerations, all GPUs for nvidia-smi, one for vectorAdd, NCCL told how many);
nvidia-smi seeing fewer GPUs than the size fails; an NCCL bus bandwidth below 80% of the size's
figure fails with both numbers; a failed node check marks its test failed and skips the smoke
tests it kept from running; the per-node proof takes the count nvidia-smi saw.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.proof.record import build_record, node_proofs
from shared.proof.smoke import judge, smoke_pod, tools_for

START = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
TOLERATION = {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}


def smi(gpus: int) -> str:
    lines = ["==============NVSMI LOG==============", "Driver Version : 570.172.08",
             "CUDA Version : 12.8", f"Attached GPUs : {gpus}"]  # fmt: skip
    for index in range(gpus):
        lines += [f"GPU 0000000{index + 1}:00:00.0", "    Product Name : Tesla T4",
                  "    FB Memory Usage", "        Total : 15360 MiB"]  # fmt: skip
    return "\n".join(lines)


def test_levels_add_tools_and_nccl_needs_two_gpus() -> None:
    assert tools_for("basic", 8) == ("nvidia-smi",)
    assert tools_for("standard", 1) == ("nvidia-smi", "vectoradd")
    assert tools_for("deep", 1) == ("nvidia-smi", "vectoradd", "dcgmi")
    assert tools_for("deep", 4)[-1] == "nccl"


def test_a_smoke_pod_is_pinned_tolerates_the_pool_and_takes_the_gpus_it_needs() -> None:
    pod = smoke_pod("nvidia-smi", "aks-gpunp-1-vmss000000", 4, "req-1", {"a": "b"}, [TOLERATION])
    assert pod["spec"]["nodeName"] == "aks-gpunp-1-vmss000000"
    assert pod["spec"]["tolerations"] == [TOLERATION]
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "4"}
    one = smoke_pod("vectoradd", "n", 4, "req-1", {}, [])
    assert one["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    nccl = smoke_pod("nccl", "n", 4, "req-1", {}, [])
    assert nccl["spec"]["containers"][0]["command"][-2:] == ["-g", "4"]


def test_nvidia_smi_seeing_fewer_gpus_than_the_size_fails() -> None:
    passed, message, found = judge("nvidia-smi", smi(3), 0, 4, 0.0)
    assert not passed
    assert message == "nvidia-smi sees 3 of the size's 4 GPUs"
    assert (found["gpuModel"], found["driver"], found["cuda"]) == ("Tesla T4", "570.172.08", "12.8")
    assert judge("nvidia-smi", smi(4), 0, 4, 0.0)[0]


def test_nccl_below_the_sizes_bandwidth_fails_with_both_figures() -> None:
    table = "\n".join([
        "# nThread 1 nGpus 8 minBytes 8 maxBytes 8589934592",
        " 8589934592 2147483648 float sum -1 90000 95.44 167.02 0 90000 95.44 167.02 0",
        "# Out of bounds values : 0 OK",
        "# Avg bus bandwidth    : 80.1 ",
    ])  # fmt: skip
    passed, message, found = judge("nccl", table, 0, 8, 480.0)
    assert not passed
    assert "167.02 GB/s is below 80% of the size's 480.0 GB/s" in message
    assert found["busbwGBps"] == 167.02
    assert judge("nccl", table, 0, 8, 200.0)[0]


def test_a_failed_node_check_fails_its_test_and_skips_the_smoke_it_prevented() -> None:
    gpus = {"nodes": [{
        "name": "n1", "allocatable": 1, "expected": 1, "state": "failed",
        "code": "GpuHealthCondition", "cause": "node n1: GPU health condition set (XIDErrors: x)",
        "conditions": {"XIDErrors": "x"},
    }]}  # fmt: skip
    report = build_record("req-1", "standard", "Standard_NC4as_T4_v3", 1, gpus, None, START,
                          START + timedelta(seconds=5))  # fmt: skip
    tests = {t["name"]: t for t in report["results"]["tests"]}
    assert tests["gpu-health n1"]["status"] == "failed"
    assert "XIDErrors" in tests["gpu-health n1"]["message"]
    assert tests["gpu-count n1"]["status"] == "passed"
    assert tests["nvidia-smi n1"]["status"] == "skipped"
    assert tests["cuda-vectoradd n1"]["status"] == "skipped"


def test_the_per_node_proof_takes_the_count_nvidia_smi_saw() -> None:
    gpus = {"nodes": [{"name": "n1", "allocatable": 4, "expected": 4, "state": "ready"}]}
    found = {"gpuModel": "Tesla T4", "gpus": 4, "driver": "570.172.08", "cuda": "12.8"}
    smoke = {"nodes": [{"name": "n1", "state": "passed", "results": [
        {"tool": "nvidia-smi", "test": "nvidia-smi n1", "passed": True, "durationMs": 20000,
         "found": found},
    ]}]}  # fmt: skip
    report = build_record("req-1", "basic", "Standard_NC64as_T4_v3", 4, gpus, smoke, START,
                          START + timedelta(seconds=30))  # fmt: skip
    assert report["results"]["summary"]["passed"] == 4
    [node] = node_proofs(report)
    assert node == {"node": "n1", "passed": True, **found}
