"""Pods (core/v1): defaults from pkg/apis/core/v1/defaults.go, printing from printers.go."""

from __future__ import annotations

from typing import Any

from sandbox.kube import quantity
from sandbox.kube.kinds.base import AGE, JSON, NAME, Cause, Column, Kind, age, dig, text
from sandbox.kube.validation import pod_spec_causes

RESTART_POLICIES = ["Always", "OnFailure", "Never"]


def default_pod_spec(spec: JSON) -> None:
    """SetDefaults_PodSpec and SetDefaults_Container: what every pod spec and template gets."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for container in spec.get("containers") or []:
        image = str(container.get("image") or "")
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in image and (":" not in tag or tag.endswith(":latest"))
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        resources = container["resources"]
        for part in ("limits", "requests"):
            if part in resources:
                resources[part] = {k: quantity.canonical(v) for k, v in resources[part].items()}


def _defaults(obj: JSON) -> None:
    spec = obj.setdefault("spec", {})
    default_pod_spec(spec)
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    # DefaultTolerationSeconds admission: tolerate not-ready/unreachable nodes for 300 s.
    tolerations = spec.setdefault("tolerations", [])
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(
            t.get("key") == key and t.get("effect") in (None, "NoExecute") for t in tolerations
        ):
            tolerations.append(
                {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            )
    guaranteed = bool(spec.get("containers"))
    any_resources = False
    for container in spec.get("containers") or []:
        resources = container["resources"]
        limits = resources.get("limits") or {}
        # SetDefaults_Pod: requests default to limits (pods only, not templates).
        if limits:
            requests = resources.setdefault("requests", {})
            for name, amount in limits.items():
                requests.setdefault(name, amount)
        requests = resources.get("requests") or {}
        any_resources = any_resources or bool(limits or requests)
        guaranteed = guaranteed and all(
            name in limits and limits[name] == requests.get(name) for name in ("cpu", "memory")
        )
    status = obj.setdefault("status", {})
    status.setdefault("phase", "Pending")
    status.setdefault(
        "qosClass", "Guaranteed" if guaranteed else "Burstable" if any_resources else "BestEffort"
    )


def _validate(obj: JSON) -> list[Cause]:
    return pod_spec_causes(obj.get("spec") or {}, "spec", RESTART_POLICIES)


def pod_reason(pod: JSON) -> str:
    """The STATUS column: printPod's reason (Completed, ContainerCreating, Error, …)."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or ""
    running = False
    for container in reversed(status.get("containerStatuses") or []):
        state = container.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated"):
            terminated = state["terminated"]
            reason = terminated.get("reason") or (
                f"Signal:{terminated['signal']}"
                if terminated.get("signal")
                else f"ExitCode:{terminated.get('exitCode', 0)}"
            )
        elif state.get("running") and container.get("ready"):
            running = True
    if reason == "Completed" and running:
        reason = "Running"
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def _row(pod: JSON, now: float) -> list[Any]:
    statuses = dig(pod, "status.containerStatuses") or []
    containers = dig(pod, "spec.containers") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in statuses)
    return [
        pod["metadata"]["name"],
        f"{ready}/{len(containers)}",
        pod_reason(pod),
        str(restarts),
        age(pod, now),
        dig(pod, "status.podIP") or "<none>",
        dig(pod, "spec.nodeName") or "<none>",
        dig(pod, "status.nominatedNodeName") or "<none>",
        "<none>",
    ]


POD = Kind(
    kind="Pod",
    group="",
    version="v1",
    plural="pods",
    namespaced=True,
    short_names=("po",),
    categories=("all",),
    subresources=("status", "log"),
    field_labels={
        path: (lambda p: lambda obj: text(dig(obj, p)))(path)
        for path in (
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        )
    }
    | {"spec.hostNetwork": lambda obj: text(bool(dig(obj, "spec.hostNetwork")))},
    columns=(
        NAME,
        Column("Ready"),
        Column("Status"),
        Column(
            "Restarts",
        ),
        AGE,
        Column(
            "IP",
            priority=1,
        ),
        Column(
            "Node",
            priority=1,
        ),
        Column(
            "Nominated Node",
            priority=1,
        ),
        Column(
            "Readiness Gates",
            priority=1,
        ),
    ),
    row=_row,
    defaults=_defaults,
    validate=_validate,
)
