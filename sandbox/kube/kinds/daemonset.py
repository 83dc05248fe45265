"""DaemonSets (apps/v1): defaults from pkg/apis/apps/v1/defaults.go, printing from printers.go."""

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
    owned_pods,
    workload_cells,
)
from sandbox.kube.kinds.pod import default_pod_spec
from sandbox.kube.objects import match_labels_selector
from sandbox.kube.validation import invalid, pod_spec_causes, required


def _defaults(obj: JSON) -> None:
    spec = obj.setdefault("spec", {})
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    default_pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))
    obj.setdefault("status", {})
    for field in (
        "currentNumberScheduled",
        "desiredNumberScheduled",
        "numberMisscheduled",
        "numberReady",
    ):
        obj["status"].setdefault(field, 0)


def _validate(obj: JSON) -> list[Cause]:
    spec = obj.get("spec") or {}
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    causes: list[Cause] = []
    if not spec.get("selector"):
        causes.append(required("spec.selector"))
    elif not match_labels_selector(spec["selector"], labels):
        causes.append(
            invalid(
                "spec.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            )
        )
    causes += pod_spec_causes(template.get("spec") or {}, "spec.template.spec", ["Always"])
    return causes


def _row(ds: JSON, now: float) -> list[Any]:
    status = ds.get("status") or {}
    selector = dig(ds, "spec.template.spec.nodeSelector") or {}
    return [
        ds["metadata"]["name"],
        status.get("desiredNumberScheduled", 0),
        status.get("currentNumberScheduled", 0),
        status.get("numberReady", 0),
        status.get("updatedNumberScheduled", 0),
        status.get("numberAvailable", 0),
        ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>",
        age(ds, now),
        *workload_cells(ds),
    ]


DAEMONSET = Kind(
    kind="DaemonSet",
    group="apps",
    version="v1",
    plural="daemonsets",
    namespaced=True,
    short_names=("ds",),
    categories=("all",),
    subresources=("status",),
    columns=(
        NAME,
        Column("Desired", "integer"),
        Column("Current", "integer"),
        Column("Ready", "integer"),
        Column("Up-to-date", "integer"),
        Column("Available", "integer"),
        Column(
            "Node Selector",
        ),
        AGE,
        *WORKLOAD_WIDE,
    ),
    row=_row,
    defaults=_defaults,
    validate=_validate,
    dependents=owned_pods,
)
