"""SelfSubjectAccessReview (authorization.k8s.io/v1): `kubectl auth can-i`.

The sandbox's credentials are cluster-admin (AKS's clusterUser of a local-account cluster binds
to cluster-admin), so every review is allowed, with the reason RBAC gives for that binding.
"""

from __future__ import annotations

from sandbox.kube.kinds.base import JSON, Kind


def review(obj: JSON) -> None:
    obj["status"] = {
        "allowed": True,
        "reason": 'RBAC: allowed by ClusterRoleBinding "aks-cluster-admin-binding" of ClusterRole '
        '"cluster-admin" to User "clusterUser"',
    }


SELF_SUBJECT_ACCESS_REVIEW = Kind(
    kind="SelfSubjectAccessReview",
    group="authorization.k8s.io",
    version="v1",
    plural="selfsubjectaccessreviews",
    namespaced=False,
    listable=False,
    defaults=review,
)
