"""cleanup: delete the job (and any smoke pod left), then the cluster or the pool, as the
request's cleanup policy says; what stays is named with its expiry (the reaper's
`gpuprov-expires-at`). Runs after success, failure or a cancel, and is not cancellable itself."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from functions.engine import Run, Steps, fail_on_error
from functions.operation import delete
from functions.steps.create_cluster import start_delete_cluster
from functions.steps.create_node_pool import start_delete_node_pool
from functions.steps.run_job import delete_job
from functions.steps.verify_gpus import delete_smoke

if TYPE_CHECKING:
    from shared.events import StepName

STEP: StepName = "cleanup"


def orchestrate(run: Run) -> Steps:
    policy = run.request.cleanup
    deleted: list[str] = []
    left: list[str] = []
    if run.started_job and policy.delete_job:
        answer = yield from run.call(delete_job)
        fail_on_error(STEP, answer)
        deleted.append(f"job {run.request.job.name}")
    if run.started_smoke and not (run.created_cluster and policy.delete_cluster):
        answer = yield from run.call(delete_smoke)  # verify-gpus deletes them unless it stopped
        fail_on_error(STEP, answer)
    if run.created_cluster and policy.delete_cluster:
        yield from delete(run, start_delete_cluster)
        run.pool_until = run.now
        deleted.append(f"cluster {run.request.target.cluster_name}")
    elif run.created_pool and policy.delete_node_pool:
        yield from delete(run, start_delete_node_pool)
        run.pool_until = run.now
        deleted.append(f"node pool {run.request.node_pool.name}")
    expires = run.started + timedelta(hours=policy.ttl_hours)
    if run.created_cluster and not policy.delete_cluster:
        left.append(f"cluster {run.request.target.cluster_name}")
    if run.created_pool and not (policy.delete_node_pool or policy.delete_cluster):
        left.append(f"node pool {run.request.node_pool.name}")
    return {"deleted": deleted, "left": left, "expiresAt": expires.isoformat() if left else None}
