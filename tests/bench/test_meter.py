"""The bench's pure models: the Flex Consumption meter and the GPU idle split.

Covers: the meter bills each activity period (the union of overlapping executions on one
instance) at least 1,000 ms and otherwise rounds it up to 100 ms, as the Flex Consumption docs
say (azure-docs flex-consumption-plan.md, Billing); separate periods are separate wake-ups;
instances are metered apart; executions at one simulated instant are laid back to back. The GPU
idle split tells workload, cloud-needed idle and orchestration-caused idle apart.
"""

from __future__ import annotations

import pytest

from bench.flex_meter import Execution, activity_periods, billed_seconds, lay_out, read
from bench.gpu_idle import CloudTimes, Marks, split


@pytest.mark.parametrize(
    ("period", "billed"),
    [(0.0, 1.0), (0.2, 1.0), (1.0, 1.0), (1.01, 1.1), (1.1, 1.1), (2.34, 2.4)],
    ids=["empty", "short", "exactly-minimum", "just-over", "exact-tenth", "rounded-up"],
)
def test_a_period_is_billed_at_least_a_second_then_by_tenths(period: float, billed: float) -> None:
    assert billed_seconds(period) == pytest.approx(billed)


def test_sequential_executions_with_a_gap_are_two_wake_ups() -> None:
    # Q&A scenario 1: 200 ms, idle 2.5 s, 200 ms on a 2,048 MB instance
    meter = read([Execution(0.0, 0.2), Execution(2.7, 0.2)])
    assert (meter.wake_ups, meter.executions) == (2, 2)
    assert meter.gb_seconds == pytest.approx(2 * 1.0 * 2)


def test_overlapping_executions_share_one_activity_period() -> None:
    # Q&A scenario 2: five at once, the instance busy 300 ms in all
    runs = [Execution(0.0, 0.3)] + [Execution(0.05 * i, 0.1) for i in range(1, 5)]
    meter = read(runs, memory_mb=4096)
    assert (meter.wake_ups, meter.executions) == (1, 5)
    assert meter.gb_seconds == pytest.approx(1.0 * 4)


def test_a_long_period_is_rounded_up_to_the_next_tenth() -> None:
    meter = read([Execution(10.0, 0.9), Execution(10.5, 0.93)])
    assert meter.wake_ups == 1
    assert meter.gb_seconds == pytest.approx(1.5 * 2)


def test_instances_are_metered_apart() -> None:
    periods = activity_periods([Execution(0.0, 0.5, "a"), Execution(0.1, 0.5, "b")])
    assert periods == {"a": [(0.0, 0.5)], "b": [(0.1, 0.6)]}
    assert read([Execution(0.0, 0.5, "a"), Execution(0.1, 0.5, "b")]).wake_ups == 2


def test_executions_due_at_one_instant_run_back_to_back() -> None:
    placed = lay_out([Execution(5.0, 0.4), Execution(5.0, 0.3), Execution(9.0, 0.1)])
    assert [(e.start, e.seconds) for e in placed] == [(5.0, 0.4), (5.4, 0.3), (9.0, 0.1)]
    assert read(placed).wake_ups == 2


CLOUD = CloudTimes(pool_create=300, plugin_rollout=20, pod_start=30, job_run=180, delete=300)


def test_idle_gpu_splits_into_workload_cloud_and_orchestration() -> None:
    # nodes from 300; plugin applied 310 (ready 330), job created 345 (running 375, ends 555);
    # deletion starts 570 and ends 870
    marks = Marks(pool_put=0, plugin_applied=310, job_created=345, delete_started=570)
    idle = split(marks, CLOUD)
    assert idle.exists == 570
    assert idle.workload == 180
    assert idle.cloud_needed == 20 + 30 + 300
    assert idle.orchestration == 10 + 15 + 15  # pool seen late, plugin seen late, job seen late


def test_the_gpu_proof_is_its_own_kind_not_orchestration_idle() -> None:
    # as above, with smoke pods from 335 (first smoke check) to 365 (the check that saw them done);
    # the job is created at 375 instead of 345
    marks = Marks(
        pool_put=0, plugin_applied=310, job_created=375, delete_started=600, proof=(335, 365)
    )
    idle = split(marks, CLOUD)
    assert idle.proof == 30
    assert idle.workload == 180
    assert idle.orchestration == 10 + 5 + 10 + 15  # pool, plugin, proof and job seen late


def test_a_skipped_plugin_install_needs_no_cloud_time() -> None:
    marks = Marks(pool_put=0, plugin_applied=None, job_created=300, delete_started=510)
    idle = split(marks, CLOUD)
    assert idle.orchestration == 0
    assert idle.cloud_needed == 30 + 300
