"""GPU nodes billed while nothing uses them, on one request's simulated timeline.

A VM is billed per second while it exists, whether or not a workload runs on it. From the moment
the pool's nodes exist until they are deleted, each second is one of three kinds:
- the user's workload runs (the job's pod, from Running to its end): not idle;
- the request's GPU proof runs (verify-gpus' GPU checks and smoke pods, from its first look to the
  look that sees them done): not idle either, but reported on its own, since the script it is
  compared with proves nothing;
- the cloud is doing what the request needs before or after that workload (the device plugin
  rolling out, the job's pod starting, the deletion running): idle, needed by the cloud;
- nothing happens because the orchestration has not yet seen the last change or not yet made the
  next call (detection latency, gaps between steps): idle, caused by the orchestration.

The marks come from when the orchestration (or the script) made its calls; the cloud's own
durations from the simulators' timings, which decide when each change happens.
"""

from __future__ import annotations

from dataclasses import dataclass

Interval = tuple[float, float]


@dataclass(frozen=True)
class CloudTimes:
    """Simulated seconds the cloud takes for each change (the simulators' timings)."""

    pool_create: float
    plugin_rollout: float
    """DaemonSet applied → the device plugin advertises the GPUs."""
    pod_start: float
    job_run: float
    delete: float
    """The deletion that removes the GPU nodes (the cluster or the pool)."""


@dataclass(frozen=True)
class Marks:
    """When the orchestration made each call, on the simulated clock."""

    pool_put: float
    plugin_applied: float | None
    """None where the step was skipped (the pool's GPU stack brings its own plugin)."""
    job_created: float
    delete_started: float
    proof: Interval | None = None
    """verify-gpus' first look (it starts the smoke pods once the GPUs are ready) to the one that
    saw them done; None where nothing was proven (the script)."""


@dataclass(frozen=True)
class IdleSplit:
    """Node-seconds of one request's GPU pool, by kind (multiply by nodes and GPUs per node)."""

    exists: float
    workload: float
    cloud_needed: float
    orchestration: float
    proof: float = 0.0

    @property
    def idle(self) -> float:
        return self.cloud_needed + self.orchestration


def split(marks: Marks, cloud: CloudTimes) -> IdleSplit:
    """Each second of the nodes' life, as workload, cloud-needed idle or orchestration idle."""
    exists = (marks.pool_put + cloud.pool_create, marks.delete_started + cloud.delete)
    running = marks.job_created + cloud.pod_start
    workload = [(running, running + cloud.job_run)]
    needed = [(marks.job_created, running), (marks.delete_started, exists[1])]
    if marks.plugin_applied is not None:
        needed.append((marks.plugin_applied, marks.plugin_applied + cloud.plugin_rollout))
    inside = [_clip(i, exists) for i in workload]
    busy = _length(inside)
    proven = inside + ([_clip(marks.proof, exists)] if marks.proof else [])
    proof = _length(proven) - busy
    cloud_needed = _length(proven + [_clip(i, exists) for i in needed]) - busy - proof
    total = exists[1] - exists[0]
    return IdleSplit(total, busy, cloud_needed, total - busy - proof - cloud_needed, proof)


def _clip(interval: Interval, within: Interval) -> Interval:
    start, end = max(interval[0], within[0]), min(interval[1], within[1])
    return (start, max(start, end))


def _length(intervals: list[Interval]) -> float:
    """The length of the union of intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total
