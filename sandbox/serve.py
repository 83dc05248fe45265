"""The simulators in one process, as `gpuprov sandbox up` runs them in the background.

ARM, Kubernetes and Service Bus share this process (and one clock) because ARM creating a pool
must make its nodes appear in Kubernetes. It writes servers.json once everything listens and
stops everything on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import threading
from pathlib import Path

from sandbox.arm import ArmSimulator, ArmTimings
from sandbox.clock import ScaledClock
from sandbox.kube import KubeSimulator
from sandbox.servicebus import CONFIG_PATH, ServiceBusBroker
from sandbox.tls import make_ca

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.serve", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--time-scale", type=float, default=60.0)
    args = parser.parse_args()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    ca = make_ca(args.state_dir)
    clock = ScaledClock(args.time_scale)
    # Retry-After is slept in real seconds by the SDKs: advertise the scaled-down wait.
    timings = ArmTimings(retry_after_seconds=max(1, round(15 / args.time_scale)))
    with contextlib.ExitStack() as running:
        kube = running.enter_context(KubeSimulator(clock, ca))
        arm = running.enter_context(ArmSimulator(clock, ca, backend=kube, timings=timings))
        kube.attach_arm(arm)  # `gpuprov sandbox fault` injects ARM faults through kube's front
        for request in _examples():
            subscription, group = request["subscriptionId"], request["resourceGroup"]
            arm.add_resource_group(subscription, group, request["location"])
            if request["target"]["kind"] == "existingCluster":
                cluster = request["target"]["clusterName"]
                arm.add_cluster(subscription, group, cluster, request["location"])
        bus = running.enter_context(ServiceBusBroker(CONFIG_PATH, clock))
        servers = {
            "arm": arm.url,
            "kube": kube.url,
            "servicebus": bus.connection_string,
            "servicebusUrl": f"amqp://127.0.0.1:{bus.port}",
            "ca": str(ca.ca_path),
            "identityHeader": arm.identity_header,
            "pid": os.getpid(),
        }
        ready = args.state_dir / "servers.json"
        ready.with_suffix(".tmp").write_text(json.dumps(servers, indent=2))
        ready.with_suffix(".tmp").replace(ready)
        stop.wait()


def _examples() -> list[dict]:
    """The requests in examples/: their resource groups and existing clusters exist in the
    sandbox, as a user's would before sending such a request (platform-aks, batch-aks)."""
    return [json.loads(path.read_text()) for path in sorted(EXAMPLES.glob("*.json"))]


if __name__ == "__main__":
    main()
