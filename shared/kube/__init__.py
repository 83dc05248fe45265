"""Kubernetes: the in-cluster steps of a request, one module each over one client.

- `client`: the API server connection, JSON calls, error classification, object helpers;
- `device_plugin`, `gpus`, `smoke`, `job`: the operations of the steps that use them.

Every operation is safe to run twice (GET before create, server-side apply, 404 on delete =
done), answers at once without waiting on the cluster, touches only objects labelled with the
request's owner and id, and returns a small frozen model for orchestration history that holds
no token and no CA.
"""

from shared.kube.device_plugin import DevicePlugin, DevicePluginResult, DevicePluginStatus
from shared.kube.gpus import Gpus, GpuStatus
from shared.kube.job import JobDeleted, Jobs, JobStarted, JobStatus, LogTail, tail_text
from shared.kube.smoke import Smoke, SmokeStatus


class KubeAdapter(DevicePlugin, Gpus, Jobs, Smoke):
    """Every in-cluster operation of a request, against one cluster's API server."""


__all__ = [
    "DevicePluginResult",
    "DevicePluginStatus",
    "GpuStatus",
    "JobDeleted",
    "JobStarted",
    "JobStatus",
    "KubeAdapter",
    "LogTail",
    "SmokeStatus",
    "tail_text",
]
