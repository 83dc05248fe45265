"""The whole app on one machine, in this process, on a clock the durable host moves.

The ARM and Kubernetes simulators run on a ManualClock with realistic operation times; the local
Durable host jumps that clock to the next durable timer whenever it has nothing else to do, so
half an hour of simulated cloud time costs seconds. Requests enter the way production's do:
through the Storage queue (Azurite), the real intake function, then the orchestration; events go
to the local Service Bus broker.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.arm import ArmTimings
from sandbox.clock import ManualClock
from sandbox.kube import KubeTimings
from sandbox.tls import make_ca
from sandbox.world import NEVER, World, open_world

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "examples" / "seed-walkthrough.json"
REQUEST_QUEUE = "provisioning-requests"
PREVIEW_FEATURE = {"namespace": "Microsoft.ContainerService", "name": "ManagedGPUExperiencePreview"}

REALISTIC_ARM = ArmTimings(
    feature_registration_reads=1_000_000_000,  # only time registers it
    feature_registration_seconds=187.0,
    cluster_create_seconds=487.0,
    pool_create_seconds=307.0,
    cluster_delete_seconds=307.0,
    pool_delete_seconds=307.0,
)
"""Feature about 3 min, cluster 8, pool 5, deletes 5; Retry-After stays ARM's 15 s. Not round on
purpose: a real operation does not end on a poll, so each wait shows its detection latency."""
REALISTIC_KUBE = KubeTimings(daemon_pod_start=17.0, job_run=183.0)
"""The device plugin's pod starts in 17 s; the GPU job runs about 3 minutes once its pod started."""


def bench_request(index: int, run: str = "bench") -> dict[str, Any]:
    """The seed walkthrough with a preview feature, under its own request id and cluster name."""
    document: dict[str, Any] = json.loads(SEED.read_text())
    document["requestId"] = f"{run}-{index:03d}"
    document["target"] = {**document["target"], "clusterName": f"{run}-aks-{index:03d}"}
    document["previewFeatures"] = [PREVIEW_FEATURE]
    return document


@contextmanager
def cloud(workdir: Path, *, app: bool = False) -> Iterator[World[ManualClock]]:
    """The sandbox world on one ManualClock, with realistic timings; with `app`, also the
    Service Bus broker and Azurite (with the request queues) the app's triggers use."""
    with open_world(
        ManualClock(), make_ca(workdir / "ca"), arm_timings=REALISTIC_ARM,
        kube_timings=REALISTIC_KUBE, broker=app, storage_dir=workdir / "azurite" if app else None,
    ) as world:  # fmt: skip
        yield world


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Put the app settings in the environment (where the app reads them), then restore it."""
    from shared.settings import current_settings

    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    current_settings.cache_clear()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        current_settings.cache_clear()


@dataclass
class AppStack:
    """The running app: its Functions host, and the sandbox world it calls."""

    world: World[ManualClock]
    host: Any  # LocalFunctionsHost
    storage: str

    def submit(self, requests: list[dict[str, Any]]) -> None:
        """Put each request on the Storage queue, as a producer in production does."""
        from azure.storage.queue import QueueClient

        with QueueClient.from_connection_string(self.storage, REQUEST_QUEUE) as queue:
            for request in requests:
                queue.send_message(json.dumps(request))

    def wait_for_final(self, request_ids: list[str], timeout: float) -> dict[str, str]:
        """Each request's final runtime status; TimeoutError after `timeout` real seconds."""
        from sandbox.durable.host import TERMINAL

        deadline = time.monotonic() + timeout
        final: dict[str, str] = {}
        while len(final) < len(request_ids):
            for request_id in request_ids:
                if request_id in final:
                    continue
                try:
                    status = self.host.durable.get_status(request_id)
                except KeyError:
                    continue  # the intake has not started it yet
                if status.runtime_status in TERMINAL:
                    output = status.output if isinstance(status.output, dict) else {}
                    final[request_id] = str(output.get("status", status.runtime_status.value))
            if len(final) < len(request_ids):
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{len(request_ids) - len(final)} of {len(request_ids)} requests "
                        f"unfinished after {timeout:.0f} s"
                    )
                time.sleep(0.05)
        return final


@contextmanager
def app_stack(workdir: Path | None = None) -> Iterator[AppStack]:
    """Start simulators, Azurite, the Service Bus broker and the Functions host; stop them all."""
    from sandbox.functions_host import LocalFunctionsHost

    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        world = stack.enter_context(cloud(workdir, app=True))
        values = world.settings(reaper_schedule=NEVER)
        stack.enter_context(environment(values))
        stack.callback(_close_event_publisher)
        import function_app

        host = LocalFunctionsHost(function_app.app, env=values, clock=world.clock, poll_seconds=0.1)
        stack.enter_context(host)
        yield AppStack(world, host, values["AzureWebJobsStorage"])


def _close_event_publisher() -> None:
    from shared.events import close_event_publisher

    close_event_publisher()
