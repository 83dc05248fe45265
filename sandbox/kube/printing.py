"""Server-side printing: `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` (kubectl get).

The apiserver answers with a meta.k8s.io Table whose columns and cells come from the kind's
printer (pkg/printers/internalversion/printers.go); each row carries the object's metadata as
a PartialObjectMetadata unless `includeObject=Object` asks for the whole object.
"""

from __future__ import annotations

from sandbox.kube.kinds import JSON, Kind

TABLE_MEDIA_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def wants_table(accept: str) -> bool:
    for option in accept.split(","):
        parts = {p.strip() for p in option.split(";")}
        if "as=Table" in parts and "g=meta.k8s.io" in parts:
            return bool(parts & {"v=v1", "v=v1beta1"})
    return False


def _row_object(kind: Kind, obj: JSON, include: str) -> JSON | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def table(
    kind: Kind, objects: list[JSON], now: float, meta: JSON, include: str = "Metadata"
) -> JSON:
    rows = []
    for obj in objects:
        row: JSON = {"cells": kind.row(obj, now)}
        shown = _row_object(kind, obj, include)
        if shown is not None:
            row["object"] = shown
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": [column.definition() for column in kind.columns],
        "rows": rows,
    }
