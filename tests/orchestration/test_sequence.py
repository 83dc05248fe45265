"""The durable sequence end to end: the real orchestrator through the local host, on the sandbox.

Covers: a new cluster with the seed's MNIST job (exact step events on Service Bus, the cluster
gone afterwards, the job's accuracy in the summary), in simulated time far below the wall time.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from sandbox.arm import CapacityRule
from shared.durations import expected_for, learned_options
from shared.sequence import RunOptions
from shared.settings import current_settings
from tests.builders import parse, seed_document
from tests.conftest import EXAMPLES
from tests.orchestration.conftest import World, cluster_id
from tests.sandbox_fixtures import TIMINGS

SEED: dict[str, Any] = seed_document()


def test_new_cluster_with_the_mnist_job(world: World) -> None:
    began, simulated = time.monotonic(), world.clock.now()
    instance = world.start(SEED)
    status = world.host.wait_for_completion(instance, timeout=120)
    assert status.runtime_status == OrchestrationRuntimeStatus.Completed, status.error
    assert status.output["status"] == "completed", status.output
    assert world.events() == [
        ("preflight", "started"),
        ("preflight", "succeeded"),
        ("register-features", "started"),
        ("register-features", "skipped"),
        ("create-cluster", "started"),
        ("create-cluster", "succeeded"),
        ("create-node-pool", "started"),
        ("create-node-pool", "succeeded"),
        ("install-device-plugin", "started"),
        ("install-device-plugin", "succeeded"),
        ("verify-gpus", "started"),
        ("verify-gpus", "succeeded"),
        ("run-job", "started"),
        ("run-job", "succeeded"),
        ("cleanup", "started"),
        ("cleanup", "succeeded"),
        ("completed", "completed"),
    ]
    assert status.output["jobResult"]["step"] == 490
    assert 0.9 < status.output["jobResult"]["accuracy"] <= 1
    assert status.output["deleted"] == ["job samples-tf-mnist-demo", "cluster myAKSCluster"]
    cost = status.output["cost"]
    assert cost["estimate"] > 0
    assert cost["actual"] > 0
    assert cost["stillRunning"] is False
    # the pool was billed from its creation to the cluster's deletion, at the T4 price
    assert cost["actual"] == round(cost["nodeSeconds"] / 3600 * cost["hourly"], 4)
    assert world.clusters() == [], "the request's cluster is deleted"
    assert world.clock.now() - simulated > 10 * 60, "a ten-minute cluster creation was simulated"
    assert time.monotonic() - began < 60


def example(stem: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(next(p for p in EXAMPLES if p.stem == stem).read_text())
    return document


def completed(world: World, document: dict[str, Any]) -> dict[str, Any]:
    status = world.host.wait_for_completion(world.start(document), timeout=120)
    assert status.runtime_status == OrchestrationRuntimeStatus.Completed, status.error
    output: dict[str, Any] = status.output
    return output


def test_existing_cluster_gets_a_pool_and_only_the_pool_is_deleted(world: World) -> None:
    world.existing_cluster("platform-rg", "platform-aks", "westeurope")
    output = completed(world, example("existing-cluster-gpu-pool"))
    assert output["status"] == "completed"
    assert world.events() == [
        ("preflight", "started"),
        ("preflight", "succeeded"),
        ("register-features", "started"),
        ("register-features", "skipped"),
        ("create-node-pool", "started"),
        ("create-node-pool", "succeeded"),
        ("install-device-plugin", "started"),
        ("install-device-plugin", "succeeded"),
        ("verify-gpus", "started"),
        ("verify-gpus", "succeeded"),
        ("run-job", "started"),
        ("run-job", "succeeded"),
        ("cleanup", "started"),
        ("cleanup", "succeeded"),
        ("completed", "completed"),
    ]
    assert output["deleted"] == ["job samples-tf-mnist-demo", "node pool gpua100"]
    assert world.clusters("platform-rg") == ["platform-aks"], "the cluster is not ours: it stays"
    cluster = cluster_id("platform-rg", "platform-aks")
    assert world.gpu_nodes(cluster) == [], "the pool's nodes left with the pool"
    assert world.jobs(cluster, "gpu-checks") == [], "the job was deleted"
    pools = [r for r in world.arm.requests if "/agentPools/gpua100" in r.path]
    assert [r.method for r in pools if r.method in ("PUT", "DELETE")] == ["PUT", "DELETE"]


def test_spot_pool_falls_back_to_the_next_size_and_registers_its_feature(world: World) -> None:
    world.existing_cluster("batch-rg", "batch-aks", "eastus2")
    world.arm.add_capacity_rule(CapacityRule("Standard_NC4as_T4_v3", "AllocationFailed", spot=True))
    output = completed(world, example("spot-pool-with-fallback"))
    assert output["status"] == "completed", output
    assert output["vmSize"] == "Standard_NC8as_T4_v3"
    assert world.events() == [
        ("preflight", "started"),
        ("preflight", "succeeded"),
        ("register-features", "started"),
        ("register-features", "succeeded"),
        ("create-node-pool", "started"),
        ("create-node-pool", "failed"),
        ("create-node-pool", "started"),
        ("create-node-pool", "succeeded"),
        ("install-device-plugin", "started"),
        ("install-device-plugin", "skipped"),
        ("verify-gpus", "started"),
        ("verify-gpus", "succeeded"),
        ("run-job", "started"),
        ("run-job", "succeeded"),
        ("cleanup", "started"),
        ("cleanup", "succeeded"),
        ("completed", "completed"),
    ]
    feature = "/features/ManagedGPUExperiencePreview"
    feature_reads = [r for r in world.arm.requests if r.method == "GET" and feature in r.path]
    assert len(feature_reads) >= 2, "the feature took several polls to register"
    registers = [r.path for r in world.arm.requests if r.method == "POST" and "/register" in r.path]
    assert sum(feature in path for path in registers) == 1, "registered once, then only read"
    assert any("/providers/Microsoft.ContainerService/register" in p for p in registers)


def test_a_failed_job_still_cleans_up_and_ends_failed(world: World) -> None:
    world.kube.fail_next_job(count=5)
    status = world.host.wait_for_completion(world.start(SEED), timeout=120)
    assert status.output["status"] == "failed"
    assert status.output["failedStep"] == "run-job"
    assert world.events()[-4:] == [
        ("run-job", "failed"),
        ("cleanup", "started"),
        ("cleanup", "succeeded"),
        ("failed", "failed"),
    ]
    assert world.clusters() == []


def test_cancel_during_cluster_creation_deletes_the_cluster(world: World) -> None:
    instance = world.start(SEED)
    world.host.run_until_idle(advance_clock=False)
    custom = world.host.get_status(instance).custom_status
    assert (custom["step"], custom["status"]) == ("create-cluster", "started")
    assert [(e["step"], e["status"]) for e in custom["events"]][-2:] == [
        ("register-features", "skipped"), ("create-cluster", "started"),
    ]  # fmt: skip
    world.host.raise_event(instance, "cancel")
    status = world.host.wait_for_completion(instance, timeout=120)
    assert status.output["status"] == "failed"
    assert "cancel" in status.output["message"]
    assert world.events() == [
        ("preflight", "started"),
        ("preflight", "succeeded"),
        ("register-features", "started"),
        ("register-features", "skipped"),
        ("create-cluster", "started"),
        ("create-cluster", "failed"),
        ("cleanup", "started"),
        ("cleanup", "succeeded"),
        ("failed", "failed"),
    ]
    assert world.clusters() == []


def test_cancel_during_a_retry_wait_ends_the_run_without_waiting_for_its_timer(
    world: World,
) -> None:
    """A timer left pending keeps an instance Running until it fires (the Durable Task
    `CreateTimer` docs; azure-functions-durable-python#573): a cancel must cancel the timer."""
    world.arm.inject_fault("PUT", r"/managedClusters/[^/]+$", 50, 409, "OperationNotAllowed")
    instance = world.start(SEED)
    world.host.run_until_idle(advance_clock=False)
    custom = world.host.get_status(instance).custom_status
    assert (custom["step"], custom["status"]) == ("create-cluster", "started")
    world.host.raise_event(instance, "cancel")
    world.host.run_until_idle(advance_clock=False)
    status = world.host.get_status(instance)
    assert status.runtime_status.value == "Completed", "the run ended at once, timer cancelled"
    assert status.output["status"] == "failed"
    assert "cancel" in status.output["message"]
    assert world.clusters() == []


def test_transient_arm_faults_are_ridden_out(world: World) -> None:
    world.arm.inject_fault("PUT", r"/agentPools/gpunp$", 5, 429, "TooManyRequests", retry_after=1)
    world.arm.inject_fault("GET", r"/operations/", 2, 500, "InternalServerError")
    output = completed(world, SEED)
    assert output["status"] == "completed"
    puts = [r for r in world.arm.requests if r.method == "PUT" and r.path.endswith("/gpunp")]
    assert [r.status for r in puts] == [429, 429, 429, 429, 429, 201]


def test_polling_follows_the_server_and_stays_bounded(world: World) -> None:
    completed(world, SEED)
    operation_gets = [r for r in world.arm.requests
                      if r.method == "GET" and "/operations/" in r.path]  # fmt: skip
    # create cluster, create pool, delete cluster; the orchestrator polls once per 10 s at most
    simulated = (
        TIMINGS.cluster_create_seconds
        + TIMINGS.pool_create_seconds
        + TIMINGS.cluster_delete_seconds
    )
    assert len(operation_gets) <= simulated // 10 + 8


def test_long_waits_keep_every_history_bounded(world: World) -> None:
    """A waiting sub-orchestration continues as new, so no history grows with the wait."""
    instance = world.start(SEED, RunOptions(polls_per_execution=4, max_poll_seconds=10))
    status = world.host.wait_for_completion(instance, timeout=120)
    assert status.output["status"] == "completed"
    lengths = {i: len(world.host.history(i)) for i in world.host.instance_ids()}
    waits = [n for i, n in lengths.items() if i != instance]
    assert waits, "the waits ran as sub-orchestrations"
    assert max(waits) <= 4 * 8, lengths
    assert lengths[instance] < 150, "the main history holds steps, not polls"


def test_a_wait_sleeps_until_its_expected_duration_then_backs_off(world: World) -> None:
    """The polling policy (shared/polling.py) in the real waiting sub-orchestration, on the
    sandbox's clock: the cluster takes 10 minutes and ARM asks for a poll every second, yet the
    app's first check is at the expected duration (not right after the PUT: ARM answered 202
    with Retry-After, the client waits before polling), then less and less often while no GPU
    node waits on the answer — and still sees the cluster within 10 % late."""
    options = RunOptions()
    instance = world.start(SEED, options)
    status = world.host.wait_for_completion(instance, timeout=120)
    assert status.output["status"] == "completed", status.output
    runs = [(i.name, i.started) for i in world.host.invocations if i.kind == "activity"]
    put = next(t for name, t in runs if name == "start_create_cluster")
    pool = next(t for name, t in runs if name == "start_create_node_pool")
    checks = [t - put for name, t in runs if name == "check_operation" and put <= t < pool]
    checks.append(pool - put)
    expected = options.expected_seconds["start_create_cluster"]
    assert checks[0] == expected, checks
    after = list(itertools.pairwise(checks))
    assert all(b - a >= 0.1 * a for a, b in after), after
    assert len(checks) < 12, "far fewer than one check per Retry-After (600 of them)"
    seen = pool - put  # the pool's PUT follows the check that saw the cluster
    assert TIMINGS.cluster_create_seconds <= seen <= 1.1 * TIMINGS.cluster_create_seconds
    # what was just started is not checked at once: the device plugin's new DaemonSet first at
    # its expected start, the job created now after one interval; verify-gpus looks at once
    applied = next(t for name, t in runs if name == "install_device_plugin")
    plugin = next(t for name, t in runs if name == "check_device_plugin")
    assert plugin - applied == options.expected_seconds["check_device_plugin"]
    job = next(t for name, t in runs if name == "start_job")
    assert next(t for name, t in runs if name == "check_job") > job
    assert next(t for name, t in runs if name == "check_gpus") == plugin_ready_seen(runs)


def plugin_ready_seen(runs: list[tuple[str, float]]) -> float:
    """When the last device-plugin check ran (the one that saw it ready)."""
    return [t for name, t in runs if name == "check_device_plugin"][-1]


def _cluster_checks(world: World, request_id: str) -> list[float]:
    """When each check of the request's cluster creation ran, from its PUT."""
    runs = [(i.name, i.started) for i in world.host.invocations
            if i.kind == "activity" and i.instance_id.split(":")[0] == request_id]  # fmt: skip
    put = next(t for name, t in runs if name == "start_create_cluster")
    pool = next(t for name, t in runs if name == "start_create_node_pool")
    return [t - put for name, t in runs if name == "check_operation" and put <= t < pool]


def test_a_deployment_learns_how_long_its_waits_take(world: World) -> None:
    """Each run stores what its cloud waits took (shared/durations.py, in the app's storage);
    the next request is expected at 90 % of that, so its first check of the cluster lands just
    before the cluster is done, and it checks less than the first run did."""
    settings = {"AzureWebJobsStorage": world.storage}
    first = seed_document(requestId="learns-first")
    status = world.host.wait_for_completion(world.start(first), timeout=120)
    assert status.output["status"] == "completed", status.output
    learned = expected_for(settings, "eastus", ["Standard_NC4as_T4_v3"])
    assert set(learned) == {
        "start_create_cluster", "start_create_node_pool Standard_NC4as_T4_v3",
        "start_delete_cluster", "check_device_plugin",
    }  # fmt: skip

    second = seed_document(requestId="learns-second")
    options = learned_options(settings, parse(second, current_settings()))
    status = world.host.wait_for_completion(world.start(second, options), timeout=120)
    assert status.output["status"] == "completed", status.output

    before, after = _cluster_checks(world, "learns-first"), _cluster_checks(world, "learns-second")
    assert after[0] == learned["start_create_cluster"]
    # learned from the last check that saw it pending (not the one that saw it done, late by
    # however often it was checked), at 90 %: just before the cluster is done
    assert 0.8 * TIMINGS.cluster_create_seconds <= after[0] < TIMINGS.cluster_create_seconds
    assert len(after) < len(before), (before, after)


def test_learned_durations_that_cannot_be_stored_never_change_the_outcome(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The activity that stores them fails (past its try): the run still ends completed, and
    its final event was already published."""

    def broken(*_: Any) -> bool:
        raise RuntimeError("storage refused the write")

    monkeypatch.setattr("shared.durations.remember", broken)
    status = world.host.wait_for_completion(world.start(SEED), timeout=120)
    assert status.runtime_status == OrchestrationRuntimeStatus.Completed, status.error
    assert status.output["status"] == "completed", status.output
    assert [(e["step"], e["status"]) for e in world.event_data()][-1] == ("completed", "completed")
