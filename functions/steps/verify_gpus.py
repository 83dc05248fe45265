"""verify-gpus: prove every node of the pool, then write the proof record.

Per node: `nvidia.com/gpu` allocatable equals the VM size's GPU count, no AKS GPU health
condition, the device plugin pod Running and ready (shared/kube/gpus.py); then the smoke
workload at the request's proof level (shared/kube/smoke.py). Whatever the outcome, the proof
(CTRF) is stored at `proofs/{requestId}.json` and the smoke pods are deleted; a failure names the
node and its cause.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typing_extensions import TypedDict

from functions.activity import NoInput, dump, on_cluster
from functions.engine import Run, StepFailed, Steps, fail_on_error
from functions.registry import activity

if TYPE_CHECKING:
    from shared.events import StepName
    from shared.kube import KubeAdapter
    from shared.request import ProvisionRequest
    from shared.sequence import StepAnswer

STEP: StepName = "verify-gpus"


class PoolSize(TypedDict):
    """The VM size the pool was created with (the candidate that had capacity)."""

    vmSize: str


class Look(PoolSize):
    """One look at the proof, and what the last one found (the wait carries it)."""

    previous: dict[str, Any] | None


class Findings(PoolSize):
    """What the checks found (their history form) and when the step began and ended."""

    gpus: dict[str, Any]
    smoke: dict[str, Any] | None
    started: str
    now: str


@activity
def check_gpus(payload: Any) -> dict[str, Any]:
    """One look: each node's GPUs until all are allocatable and healthy (then kept, not read
    again), then the smoke workload on those nodes; done when it ended or a node failed."""

    def check(kube: KubeAdapter, request: ProvisionRequest, data: Look) -> StepAnswer:
        from shared.kube import SmokeStatus
        from shared.sequence import StepAnswer

        previous = data["previous"] or {}
        gpus = previous.get("gpus")
        if not (gpus and gpus.get("ready")):
            status = kube.gpu_status(request, data["vmSize"])
            gpus = dump(status)
            if not status.ready:
                return StepAnswer(value={"gpus": gpus, "smoke": None}, done=status.failed)
        before = previous.get("smoke")
        nodes = [str(node["name"]) for node in gpus.get("nodes") or []]
        smoke = kube.smoke_status(
            request, data["vmSize"], nodes,
            SmokeStatus.model_validate(before) if before else None,
        )  # fmt: skip
        return StepAnswer(value={"gpus": gpus, "smoke": dump(smoke)}, done=smoke.done)

    return on_cluster(payload, Look, check)


@activity
def record_proof(payload: Any) -> dict[str, Any]:
    """Delete the smoke pods and store the proof record; its link, summary and nodes."""

    def record(kube: KubeAdapter, request: ProvisionRequest, data: Findings) -> StepAnswer:
        import os
        from datetime import datetime

        from shared.catalog import lookup
        from shared.errors import StepError
        from shared.proof.ctrf import summary_text
        from shared.proof.record import build_record, node_proofs
        from shared.proof.store import ProofStore, ProofStoreError
        from shared.sequence import StepAnswer

        kube.delete_smoke(request)
        size = lookup(data["vmSize"])
        report = build_record(
            request.request_id, request.proof.level, data["vmSize"], size.gpus if size else 0,
            data["gpus"], data["smoke"], datetime.fromisoformat(data["started"]),
            datetime.fromisoformat(data["now"]),
        )  # fmt: skip
        try:
            store = ProofStore.from_values(os.environ)
        except ProofStoreError as error:
            raise StepError("permanent", "ProofStoreMissing", str(error)) from None
        try:
            with store:
                url = store.put(request.request_id, report)
        except ProofStoreError as error:
            raise StepError("transient", "ProofNotStored", str(error)) from None
        value = {"url": url, "summary": summary_text(report), "nodes": node_proofs(report)}
        return StepAnswer(value=value)

    return on_cluster(payload, Findings, record)


@activity
def delete_smoke(payload: Any) -> dict[str, Any]:
    """Cleanup's: the request's smoke pods, if a failure or cancel left any."""

    def delete(kube: KubeAdapter, request: ProvisionRequest, _: NoInput) -> StepAnswer:
        from shared.sequence import StepAnswer

        return StepAnswer(value={"deleted": kube.delete_smoke(request)})

    return on_cluster(payload, NoInput, delete)


def _failure(gpus: dict[str, Any], smoke: dict[str, Any] | None) -> tuple[str, str] | None:
    """(code, message naming the node and cause) of the first thing that did not prove out."""
    for node in gpus.get("nodes") or []:
        if node.get("state") == "failed":
            return str(node.get("code") or "GpuCheckFailed"), str(node["cause"])
    if not gpus.get("ready"):
        waiting = [str(n["cause"]) for n in gpus.get("nodes") or [] if n.get("state") != "ready"]
        found = len(gpus.get("nodes") or [])
        expected = gpus.get("expectedNodes")
        why = "; ".join(waiting) or f"{found} of {expected} nodes joined the pool"
        return "GpusNotReady", f"the pool's GPUs did not become allocatable in time: {why}"
    for node in (smoke or {}).get("nodes") or []:
        for result in node.get("results") or []:
            if not result.get("passed"):
                return "SmokeTestFailed", f"node {node['name']}: {result.get('message')}"
    if smoke is None or not smoke.get("done"):
        running = [f"node {n['name']} ({n.get('waiting') or 'running'})"
                   for n in (smoke or {}).get("nodes") or []
                   if n.get("state") == "running"]  # fmt: skip
        where = f": still waiting on {'; '.join(running)}" if running else ""
        return "SmokeTestTimedOut", f"the smoke workload did not finish in time{where}"
    return None


def orchestrate(run: Run) -> Steps:
    size = {"vmSize": run.vm_size}
    began = run.now
    run.started_smoke = True  # a look may start smoke pods: cleanup deletes any left
    checked = yield from run.wait(
        check_gpus, run.options.proof_minutes, {**size, "previous": None}, carry="previous"
    )
    fail_on_error(STEP, checked)
    found = checked.value or {}
    gpus = found.get("gpus") or {}
    smoke: dict[str, Any] | None = found.get("smoke")
    if smoke is not None:
        smoke = {**smoke, "done": checked.done and smoke.get("done")}
    findings = {**size, "gpus": gpus, "smoke": smoke, "started": began.isoformat(),
                "now": run.now.isoformat()}  # fmt: skip
    recorded = yield from run.call(record_proof, findings)
    fail_on_error(STEP, recorded)
    run.started_smoke = False  # record_proof deleted them
    proof = recorded.value or {}
    run.proof = {"url": proof.get("url"), "summary": proof.get("summary")}
    failure = _failure(gpus, smoke)
    level = run.request.proof.level
    nodes = proof.get("nodes") or []
    if failure is not None:
        code, message = failure
        request_id = run.request.request_id
        hint = f"The proof record has every check: gpuprov proof {request_id} ({proof.get('url')})."
        error = {"kind": "permanent", "code": code, "message": message, "hint": hint}
        details = {"level": level, "nodes": nodes, "proof": run.proof}
        raise StepFailed(STEP, message, error, details)
    return {
        "message": f"{len(nodes)} node(s) proven at level {level}: {proof.get('summary')}",
        "level": level,
        "nodes": nodes,
        "proof": run.proof,
    }
