"""Namespaces (core/v1): the `kubernetes` finalizer and phase Active on create."""

from __future__ import annotations

from typing import Any

from sandbox.kube.kinds.base import (
    AGE,
    JSON,
    NAME,
    Column,
    Dependent,
    Kind,
    Objects,
    age,
    dig,
    text,
)


def _defaults(obj: JSON) -> None:
    name = obj["metadata"]["name"]
    # The NamespaceDefaultLabelName admission: kubernetes.io/metadata.name = the name.
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")


def _contents(objects: Objects, namespace: JSON) -> list[Dependent]:
    """Everything in the namespace goes with it (the namespace controller)."""
    return [
        (resource, obj, False)
        for resource, obj in objects.namespaced_items(namespace["metadata"]["name"])
    ]


def _row(obj: JSON, now: float) -> list[Any]:
    return [obj["metadata"]["name"], dig(obj, "status.phase") or "", age(obj, now)]


NAMESPACE = Kind(
    kind="Namespace",
    group="",
    version="v1",
    plural="namespaces",
    namespaced=False,
    short_names=("ns",),
    subresources=("status",),
    field_labels={"status.phase": lambda obj: text(dig(obj, "status.phase"))},
    columns=(NAME, Column("Status"), AGE),
    row=_row,
    defaults=_defaults,
    dependents=_contents,
    name_rule="label",
)
