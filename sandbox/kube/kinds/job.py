"""Jobs (batch/v1): defaults from pkg/apis/batch/v1/defaults.go, printing from printers.go."""

from __future__ import annotations

from typing import Any

from sandbox.kube.kinds.base import (
    AGE,
    JSON,
    NAME,
    WORKLOAD_WIDE,
    Cause,
    Column,
    Kind,
    age,
    dig,
    human_duration,
    owned_pods,
    parse_time,
    text,
    workload_cells,
)
from sandbox.kube.kinds.pod import default_pod_spec
from sandbox.kube.validation import invalid, name_causes, pod_spec_causes, required

_JOB_POLICIES = ["OnFailure", "Never"]


def _defaults(obj: JSON) -> None:
    name = obj["metadata"]["name"]
    uid = obj["metadata"]["uid"]
    spec = obj.setdefault("spec", {})
    spec.setdefault("completions", 1)
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    template = spec.setdefault("template", {})
    # The job strategy's PrepareForCreate: selector and template labels from the job's uid.
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    labels.update(
        {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
    )
    spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    default_pod_spec(template.setdefault("spec", {}))
    obj.setdefault("status", {})


def _validate(obj: JSON) -> list[Cause]:
    spec = obj.get("spec") or {}
    # Job names become label values (job-name), so they must also be valid labels (≤ 63).
    causes = (
        name_causes(obj["metadata"]["name"], "label")[:1]
        if len(obj["metadata"]["name"]) > 63
        else []
    )
    template = spec.get("template") or {}
    causes += pod_spec_causes(template.get("spec") or {}, "spec.template.spec", _JOB_POLICIES)
    for field in ("parallelism", "completions", "backoffLimit"):
        value = spec.get(field)
        if isinstance(value, int) and value < 0:
            causes.append(invalid(f"spec.{field}", value, "must be greater than or equal to 0"))
    if not spec.get("template"):
        causes.append(required("spec.template"))
    return causes


def _has(job: JSON, kind: str) -> bool:
    return any(
        c.get("type") == kind and c.get("status") == "True"
        for c in dig(job, "status.conditions") or []
    )


def job_status(job: JSON) -> str:
    """printJob's STATUS column (Kubernetes 1.30+)."""
    for condition, shown in (("Complete", "Complete"), ("Failed", "Failed")):
        if _has(job, condition):
            return shown
    if job["metadata"].get("deletionTimestamp"):
        return "Terminating"
    for condition in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if _has(job, condition):
            return condition
    return "Running"


def _row(job: JSON, now: float) -> list[Any]:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    duration = ""
    if status.get("startTime"):
        end = parse_time(status["completionTime"]) if status.get("completionTime") else now
        duration = human_duration(end - parse_time(status["startTime"]))
    return [
        job["metadata"]["name"],
        job_status(job),
        completions,
        duration,
        age(job, now),
        *workload_cells(job),
    ]


JOB = Kind(
    kind="Job",
    group="batch",
    version="v1",
    plural="jobs",
    namespaced=True,
    categories=("all",),
    subresources=("status",),
    field_labels={"status.successful": lambda obj: text(dig(obj, "status.succeeded") or 0)},
    columns=(
        NAME,
        Column("Status", description="Status of the job."),
        Column("Completions"),
        Column("Duration"),
        AGE,
        *WORKLOAD_WIDE,
    ),
    row=_row,
    defaults=_defaults,
    validate=_validate,
    dependents=owned_pods,
    default_propagation="Orphan",
)
