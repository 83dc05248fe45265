"""Kubernetes API simulator: one API server per simulated AKS cluster, for kubectl and the client.

Layout: `kinds/` (one module per served kind: where it is served, defaults, validation, printing),
`schema.py` (the official schemas from kubernetes-validate), `apiserver.py` (routes, negotiation,
verbs) with `discovery.py`, `openapi.py`, `printing.py`, `bodies.py`, `protobuf.py`, `apply.py`,
`patch.py`, `watch.py`; `store.py` (objects, versions, events) and `controllers/` (scheduler,
kubelet, DaemonSet, Job) under `cluster.py`; `server.py` starts a server per cluster.
"""

from sandbox.kube.cluster import KubeTimings
from sandbox.kube.server import KubeSimulator

__all__ = ["KubeSimulator", "KubeTimings"]
