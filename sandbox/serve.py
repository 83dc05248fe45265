"""The simulators in one process, as `gpuprov sandbox up` runs them in the background.

ARM, Kubernetes and Service Bus share this process (and one clock) because ARM creating a pool
must make its nodes appear in Kubernetes: the sandbox world (sandbox/world.py) with the
examples' resource groups and existing clusters. It writes servers.json once everything listens
and stops everything on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path

from sandbox.arm import ArmTimings
from sandbox.clock import ScaledClock
from sandbox.tls import make_ca
from sandbox.world import open_world


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
    with open_world(
        clock, ca, arm_timings=timings, resource_group=False, examples=True,
        broker=True, broker_on_clock=True,
    ) as world:  # fmt: skip
        arm, kube, bus = world.arm, world.kube, world.broker
        assert bus is not None
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


if __name__ == "__main__":
    main()
