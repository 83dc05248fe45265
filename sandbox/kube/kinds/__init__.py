"""The kinds the simulated API server serves, one module each; everything else derives from here."""

from sandbox.kube.kinds.access_review import SELF_SUBJECT_ACCESS_REVIEW
from sandbox.kube.kinds.base import JSON, Cause, Column, Kind
from sandbox.kube.kinds.daemonset import DAEMONSET
from sandbox.kube.kinds.event import EVENT
from sandbox.kube.kinds.job import JOB
from sandbox.kube.kinds.lease import LEASE
from sandbox.kube.kinds.namespace import NAMESPACE
from sandbox.kube.kinds.node import NODE
from sandbox.kube.kinds.pod import POD

KINDS: dict[str, Kind] = {
    kind.plural: kind
    for kind in (NAMESPACE, NODE, POD, EVENT, JOB, DAEMONSET, LEASE, SELF_SUBJECT_ACCESS_REVIEW)
}
"""By plural, as the API paths name them."""

__all__ = ["JSON", "KINDS", "Cause", "Column", "Kind"]
