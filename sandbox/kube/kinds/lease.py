"""Leases (coordination.k8s.io/v1): each node's heartbeat in kube-node-lease."""

from __future__ import annotations

from typing import Any

from sandbox.kube.kinds.base import AGE, JSON, NAME, Column, Kind, age, dig


def _row(lease: JSON, now: float) -> list[Any]:
    return [lease["metadata"]["name"], dig(lease, "spec.holderIdentity") or "", age(lease, now)]


LEASE = Kind(
    kind="Lease",
    group="coordination.k8s.io",
    version="v1",
    plural="leases",
    namespaced=True,
    columns=(
        NAME,
        Column(
            "Holder",
        ),
        AGE,
    ),
    row=_row,
)
