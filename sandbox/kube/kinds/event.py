"""Events (core/v1): what the scheduler, kubelet and controllers report (printers.go columns)."""

from __future__ import annotations

from typing import Any

from sandbox.kube.kinds.base import JSON, Column, Kind, dig, since, text


def _row(event: JSON, now: float) -> list[Any]:
    involved = event.get("involvedObject") or {}
    last = event.get("lastTimestamp") or event.get("eventTime")
    first = event.get("firstTimestamp") or event.get("eventTime")
    count = int(event.get("count") or 1)
    last_seen = since(last, now)
    if count > 1:
        last_seen = f"{last_seen} (x{count} over {since(first, now)})"
    source = event.get("source") or {}
    return [
        last_seen,
        event.get("type", ""),
        event.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        involved.get("fieldPath", ""),
        ", ".join(v for v in (source.get("component"), source.get("host")) if v),
        event.get("message", ""),
        since(first, now),
        count,
        event["metadata"]["name"],
    ]


_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "type",
)

EVENT = Kind(
    kind="Event",
    group="",
    version="v1",
    plural="events",
    namespaced=True,
    short_names=("ev",),
    field_labels={path: (lambda p: lambda obj: text(dig(obj, p)))(path) for path in _FIELDS}
    | {"source": lambda obj: text(dig(obj, "source.component"))},
    columns=(
        Column(
            "Last Seen",
        ),
        Column(
            "Type",
        ),
        Column(
            "Reason",
        ),
        Column("Object"),
        Column(
            "Subobject",
            priority=1,
        ),
        Column(
            "Source",
            priority=1,
        ),
        Column("Message"),
        Column(
            "First Seen",
            priority=1,
        ),
        Column("Count", priority=1),
        Column("Name", priority=1, format="name"),
    ),
    row=_row,
)
