"""Kubernetes API simulator: the real kubernetes client talks to simulated AKS clusters."""

from sandbox.kube.cluster import KubeTimings
from sandbox.kube.server import KubeSimulator

__all__ = ["KubeSimulator", "KubeTimings"]
