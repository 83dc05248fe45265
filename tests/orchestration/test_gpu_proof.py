"""verify-gpus end to end: the per-node proof of a healthy run, and each failure drill failing the
run at the right step with its node and cause named, then cleaning up.

Aspects covered:
- a healthy run: the verify-gpus event carries each node's GPU model, count, driver and CUDA;
  the final event links the proof record; `gpuprov proof` prints it with every test passed;
  no smoke pod is left;
- the deep level on a 4-GPU size: DCGM diagnostics and an NCCL all-reduce against the size's
  bus bandwidth, in the record;
- the drills (`gpuprov sandbox fault NAME`, injected through the same function): gpu-missing,
  plugin-crashloop, xid-error and smoke-fails fail verify-gpus naming the node and the cause,
  quota fails create-cluster (its system pool is the first PUT) with ARM's code; each run
  cleans up and leaves no cluster; the failed verify-gpus event links the proof record;
- a smoke workload that does not end by the wait's deadline fails as SmokeTestTimedOut, naming
  the node and the pod it waits on.
"""

from __future__ import annotations

import io
import json
from typing import Any

import kubernetes.client
import pytest
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from gpuprov.proof import show
from sandbox.kube.drills import inject
from shared.proof.store import ProofStore
from shared.sequence import RunOptions
from tests.builders import seed_document
from tests.conftest import ROOT
from tests.orchestration.conftest import World, cluster_id
from tests.sandbox_fixtures import kube_client

SEED: dict[str, Any] = seed_document()


def run_to_end(world: World, document: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    status = world.host.wait_for_completion(world.start(document), timeout=180)
    assert status.runtime_status == OrchestrationRuntimeStatus.Completed, status.error
    return status.output, world.event_data()


def event(events: list[dict[str, Any]], step: str, status: str) -> dict[str, Any]:
    return next(e for e in events if (e["step"], e["status"]) == (step, status))


def test_a_healthy_run_proves_each_node_and_stores_a_passing_proof(world: World) -> None:
    output, events = run_to_end(world, SEED)
    assert output["status"] == "completed", output
    verified = event(events, "verify-gpus", "succeeded")["details"]
    [node] = verified["nodes"]
    assert node["node"].startswith("aks-gpunp-")
    assert (node["gpuModel"], node["gpus"], node["driver"], node["cuda"]) == (
        "Tesla T4", 1, "570.172.08", "12.8",
    )  # fmt: skip
    assert verified["level"] == "standard"
    final = event(events, "completed", "completed")["details"]["proof"]
    assert final["url"].endswith(f"/proofs/{SEED['requestId']}.json")
    assert final["summary"] == "5/5 passed"  # gpu-count, gpu-health, device-plugin, smi, vectoradd

    out = io.StringIO()
    code = show({"AzureWebJobsStorage": world.storage}, SEED["requestId"], out, json_output=False)
    printed = out.getvalue()
    assert code == 0, printed
    assert f"proof of {SEED['requestId']}: 5/5 passed" in printed
    assert "cuda-vectoradd aks-gpunp-" in printed
    assert "Tesla T4" in printed


def test_the_deep_level_runs_dcgm_and_nccl_against_the_sizes_bandwidth(world: World) -> None:
    document = seed_document(
        {"nodePool": {"vmSize": "Standard_NC64as_T4_v3"}, "proof": {"level": "deep"}},
        requestId="deep-proof",
    )
    output, _ = run_to_end(world, document)
    assert output["status"] == "completed", output
    with ProofStore.from_values({"AzureWebJobsStorage": world.storage}) as store:
        report = store.get("deep-proof")
    tests = {t["name"].split()[0]: t for t in report["results"]["tests"]}
    assert set(tests) == {
        "gpu-count", "gpu-health", "device-plugin", "nvidia-smi", "cuda-vectoradd",
        "dcgm-diag-r1", "nccl-all-reduce",
    }  # fmt: skip
    assert all(t["status"] == "passed" for t in tests.values())
    nccl = tests["nccl-all-reduce"]["extra"]
    assert nccl["expectedBusbwGBps"] == 11.2
    assert nccl["busbwGBps"] >= 0.8 * 11.2
    assert tests["nvidia-smi"]["extra"]["gpus"] == 4


@pytest.mark.parametrize(
    ("fault", "step", "causes"),
    [
        ("gpu-missing", "verify-gpus", ["GPUMissing", "Observed GPU count"]),
        ("plugin-crashloop", "verify-gpus",
         ["CrashLoopBackOff", "restarts", "Driver/library version mismatch"]),
        ("xid-error", "verify-gpus", ["XIDErrors", "Xid"]),
        ("smoke-fails", "verify-gpus", ["nvidia-smi failed", "Driver/library version mismatch"]),
        ("quota", "create-cluster", ["QuotaExceeded"]),  # the new cluster's pools count too
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)  # fmt: skip
def test_each_drill_fails_the_run_at_its_step_names_the_cause_and_cleans_up(
    world: World, fault: str, step: str, causes: list[str]
) -> None:
    inject(fault, world.kube, world.arm)
    output, events = run_to_end(world, SEED)
    assert output["status"] == "failed"
    assert output["failedStep"] == step
    failed = event(events, step, "failed")
    text = f"{failed['message']} {failed.get('error') or ''}"
    for cause in causes:
        assert cause in text, text
    if step == "verify-gpus":
        assert "node aks-gpunp-" in failed["message"], failed["message"]
        assert failed["details"]["proof"]["url"], "the failed step links the proof record"
        assert event(events, "failed", "failed")["details"]["proof"]["url"]
    assert [(e["step"], e["status"]) for e in events][-3:] == [
        ("cleanup", "started"), ("cleanup", "succeeded"), ("failed", "failed"),
    ]  # fmt: skip
    assert world.clusters() == [], "the request's cluster is deleted"


def test_a_kept_cluster_is_left_without_smoke_pods_after_a_failed_smoke(world: World) -> None:
    """The cluster is someone else's and stays: the smoke pods the run made do not."""
    world.existing_cluster("platform-rg", "platform-aks", "westeurope")
    document = json.loads((ROOT / "examples" / "existing-cluster-gpu-pool.json").read_text())
    inject("smoke-fails", world.kube, world.arm)
    output, events = run_to_end(world, document)
    assert output["failedStep"] == "verify-gpus"
    assert "nvidia-smi failed" in event(events, "verify-gpus", "failed")["message"]
    assert world.clusters("platform-rg") == ["platform-aks"]
    access = world.kube.ensure_cluster(cluster_id("platform-rg", "platform-aks"))
    with kube_client(access) as api:
        pods: Any = kubernetes.client.CoreV1Api(api).list_pod_for_all_namespaces(
            label_selector="gpuprov.io/smoke"
        )
    assert pods.items == [], "no smoke pod is left"


def test_a_smoke_workload_that_does_not_end_in_time_fails_naming_the_node_and_its_pod(
    world: World,
) -> None:
    """verify-gpus' wait has a deadline (RunOptions.proof_minutes): a smoke workload still
    running then (here: two pods that need about two minutes, given one) fails the run with
    SmokeTestTimedOut, naming the node and the pod it waits on; the failed event links the
    proof record, and cleanup runs."""
    instance = world.start(SEED, RunOptions(proof_minutes=1))
    status = world.host.wait_for_completion(instance, timeout=180)
    assert status.runtime_status == OrchestrationRuntimeStatus.Completed, status.error
    output, events = status.output, world.event_data()
    assert output["failedStep"] == "verify-gpus"
    failed = event(events, "verify-gpus", "failed")
    assert failed["error"]["code"] == "SmokeTestTimedOut"
    assert "did not finish in time: still waiting on node aks-gpunp-" in failed["message"]
    assert " pod " in failed["message"], failed["message"]
    assert failed["details"]["proof"]["url"].endswith(f"/proofs/{SEED['requestId']}.json")
    assert [(e["step"], e["status"]) for e in events][-3:] == [
        ("cleanup", "started"), ("cleanup", "succeeded"), ("failed", "failed"),
    ]  # fmt: skip
    assert world.clusters() == [], "the request's cluster is deleted"
