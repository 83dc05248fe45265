"""Nodes (core/v1): printing from printers.go (ROLES from the kubernetes.io/role label AKS sets)."""

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


def node_status(node: JSON) -> str:
    ready = next(
        (c for c in dig(node, "status.conditions") or [] if c.get("type") == "Ready"), None
    )
    status = (
        "Unknown" if ready is None else "Ready" if ready.get("status") == "True" else "NotReady"
    )
    if dig(node, "spec.unschedulable"):
        status += ",SchedulingDisabled"
    return status


def node_roles(node: JSON) -> str:
    """findNodeRoles: node-role.kubernetes.io/<role> keys and the kubernetes.io/role value."""
    roles = set()
    for key, value in (node["metadata"].get("labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/"):
            roles.add(key.split("/", 1)[1])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def _address(node: JSON, kind: str) -> str:
    for address in dig(node, "status.addresses") or []:
        if address.get("type") == kind:
            return str(address.get("address"))
    return "<none>"


def _on_the_node(objects: Objects, node: JSON) -> list[Dependent]:
    """A deleted node takes its pods and its heartbeat Lease with it."""
    name = node["metadata"]["name"]
    pods = [("pods", p, False) for p in objects.items("pods") if dig(p, "spec.nodeName") == name]
    leases = objects.items("leases", "kube-node-lease")
    return pods + [
        ("leases", lease, False) for lease in leases if lease["metadata"]["name"] == name
    ]


def _row(node: JSON, now: float) -> list[Any]:
    info = dig(node, "status.nodeInfo") or {}
    return [
        node["metadata"]["name"],
        node_status(node),
        node_roles(node),
        age(node, now),
        info.get("kubeletVersion", ""),
        _address(node, "InternalIP"),
        _address(node, "ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


NODE = Kind(
    kind="Node",
    group="",
    version="v1",
    plural="nodes",
    namespaced=False,
    short_names=("no",),
    subresources=("status",),
    field_labels={"spec.unschedulable": lambda obj: text(bool(dig(obj, "spec.unschedulable")))},
    columns=(
        NAME,
        Column("Status", description="The status of the node"),
        Column("Roles", description="The roles of the node"),
        AGE,
        Column("Version"),
        Column(
            "Internal-IP",
            priority=1,
        ),
        Column(
            "External-IP",
            priority=1,
        ),
        Column(
            "OS-Image",
            priority=1,
        ),
        Column(
            "Kernel-Version",
            priority=1,
        ),
        Column(
            "Container-Runtime",
            priority=1,
        ),
    ),
    row=_row,
    dependents=_on_the_node,
)
