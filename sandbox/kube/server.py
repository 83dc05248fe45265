"""The Kubernetes API simulator: one HTTPS API server per simulated AKS cluster.

Each cluster gets its own port, so its kubeconfig `server` has no path prefix, as on AKS
(`https://<fqdn>:443`); kubectl's discovery cache and `kubectl get --raw /api` then work as they
do against a real cluster. The simulator itself is the ClusterBackend the ARM simulator calls.
"""

from __future__ import annotations

import hashlib
import re
import threading

from sandbox.clock import Clock
from sandbox.cloud import ClusterAccess, PoolNodes
from sandbox.kit import (
    FaultRules,
    RecordedRequest,
    Request,
    RequestRecorder,
    Response,
    SimulatorServer,
)
from sandbox.kit.service import Service
from sandbox.kube import drills
from sandbox.kube.apiserver import ApiServer
from sandbox.kube.cluster import Cluster, FailureRule, GpuFaults, KubeTimings, random_token
from sandbox.kube.controllers.gpu_health import NODE_FAULTS
from sandbox.kube.drills import ArmFaults
from sandbox.tls import TestCA

KubeRequest = RecordedRequest
"""One request as a cluster's API server received it (for counting in tests and benchmarks)."""

_FAILURE_LOG = (
    "Traceback (most recent call last):\n"
    '  File "/app/main.py", line 173, in <module>\n'
    "    tf.app.run(main=main, argv=[sys.argv[0]] + unparsed)\n"
    "RuntimeError: CUDA error: an illegal memory access was encountered"
)

FaultOutcome = int | str
"""An HTTP status code, "watch-disconnect" (a watch ends after one event) or "gone" (410)."""


class KubeSimulator(Service):
    """Kubernetes API servers for any number of simulated AKS clusters (a ClusterBackend)."""

    def __init__(
        self,
        clock: Clock,
        ca: TestCA,
        entra_token: str = "sandbox-token",  # noqa: S107 - the sandbox's fixed Entra token
        timings: KubeTimings | None = None,
        location: str = "eastus",
    ) -> None:
        self._clock = clock
        self._ca = ca
        self._entra_token = entra_token
        self._timings = timings or KubeTimings()
        self._location = location
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._clusters: dict[str, Cluster] = {}
        self._servers: dict[str, SimulatorServer] = {}
        self._faults = FaultRules()
        self._failure_rules: list[FailureRule] = []
        self._gpu_faults = GpuFaults()
        self._arm: ArmFaults | None = None
        self._recorder = RequestRecorder()
        self._started = False
        self._front = SimulatorServer(self._index, ca.server_context, "kube-simulator")
        self.url = ""
        """The simulator's own endpoint: /healthz and /clusters (each cluster's API server)."""

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> KubeSimulator:
        self._started = True
        self.url = self._front.start().url
        return self

    def stop(self) -> None:
        with self._changed:
            self._started = False
            servers = list(self._servers.values())
            self._servers.clear()
            self._changed.notify_all()
        for server in [*servers, self._front]:
            server.stop()

    def _index(self, request: Request) -> Response:
        if request.path == "/clusters":
            with self._lock:
                listing = [
                    {"id": cluster_id, "server": server.url}
                    for cluster_id, server in self._servers.items()
                ]
            return Response.json(200, {"clusters": listing})
        if request.path in ("/healthz", "/livez", "/readyz"):
            return Response.text(200, "ok")
        if request.path == "/drills" or request.path.startswith("/drills/"):
            return self._drill(request)
        return Response.json(404, {"message": "each cluster has its own API server: GET /clusters"})

    def attach_arm(self, arm: ArmFaults) -> None:
        """The ARM simulator whose faults `POST /drills/{name}` may inject too."""
        self._arm = arm

    def _drill(self, request: Request) -> Response:
        """GET /drills: the fault catalog; POST /drills/{name}: inject one (sandbox token)."""
        if request.header("Authorization") != f"Bearer {self._entra_token}":
            return Response.json(401, {"message": "Unauthorized: send the sandbox token"})
        if request.method == "GET" and request.path == "/drills":
            return Response.json(200, {"drills": drills.listing()})
        if request.method != "POST" or request.path.count("/") != 2:
            return Response.json(405, {"message": "GET /drills or POST /drills/{name}"})
        try:
            drill = drills.inject(request.path.rsplit("/", 1)[1], self, self._arm)
        except drills.UnknownDrill as unknown:
            return Response.json(404, {"message": str(unknown)})
        except RuntimeError as missing:
            return Response.json(409, {"message": str(missing)})
        return Response.json(200, {"injected": drill.name, "effect": drill.effect,
                                   "expected": drill.expected})  # fmt: skip

    def server_url(self, cluster_id: str) -> str:
        """The HTTPS URL of one cluster's API server."""
        with self._lock:
            return self._servers[cluster_id].url

    # --- ClusterBackend ----------------------------------------------------------------------

    def ensure_cluster(self, cluster_id: str, *, entra_id: bool = False) -> ClusterAccess:
        with self._lock:
            if not self._started:
                raise RuntimeError("start() the Kubernetes simulator before creating clusters")
            cluster = self._clusters.get(cluster_id)
            if cluster is None:
                name = re.sub(r"[^a-z0-9-]", "-", cluster_id.rstrip("/").rsplit("/", 1)[-1].lower())
                digest = hashlib.sha256(cluster_id.lower().encode()).hexdigest()[:8]
                cluster = Cluster(
                    cluster_id,
                    f"{name}-{digest}",
                    "" if entra_id else random_token(),
                    entra_id=entra_id,
                    location=self._location,
                    timings=self._timings,
                    failure_rules=self._failure_rules,
                    now=self._clock.now(),
                    gpu_faults=self._gpu_faults,
                )
                self._clusters[cluster_id] = cluster
                self._servers[cluster_id] = SimulatorServer(
                    self._api_server(cluster),
                    self._ca.server_context,
                    f"kube-{cluster.key}",
                    self._recorder,
                ).start()
            return ClusterAccess(
                server=self._servers[cluster_id].url,
                token=cluster.token,
                ca_path=str(self._ca.ca_path),
            )

    def _api_server(self, cluster: Cluster) -> ApiServer:
        return ApiServer(
            cluster,
            changed=self._changed,
            clock=self._clock,
            faults=self._faults,
            token=lambda: self._entra_token if cluster.entra_id else cluster.token,
            live=lambda: self._started and self._clusters.get(cluster.cluster_id) is cluster,
        )

    def set_pool(self, cluster_id: str, pool: PoolNodes) -> None:
        with self._changed:
            cluster = self._cluster(cluster_id)
            cluster.settle(self._clock.now())
            cluster.set_pool(pool)
            self._changed.notify_all()

    def remove_pool(self, cluster_id: str, pool_name: str) -> None:
        with self._changed:
            cluster = self._cluster(cluster_id)
            cluster.settle(self._clock.now())
            cluster.remove_pool(pool_name)
            self._changed.notify_all()

    def remove_cluster(self, cluster_id: str) -> None:
        with self._changed:
            self._clusters.pop(cluster_id, None)
            server = self._servers.pop(cluster_id, None)
            self._changed.notify_all()
        if server is not None:
            server.stop()

    def _cluster(self, cluster_id: str) -> Cluster:
        cluster = self._clusters.get(cluster_id)
        if cluster is None:
            raise KeyError(f"no simulated cluster {cluster_id!r}")
        return cluster

    # --- test helpers ---------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every API request received so far (any cluster), oldest first."""
        return self._recorder.requests

    def clear_requests(self) -> None:
        self._recorder.clear()

    def settle(self) -> None:
        """Run every cluster's controllers up to the clock's now (requests do this too)."""
        with self._changed:
            now = self._clock.now()
            for cluster in self._clusters.values():
                cluster.settle(now)
            self._changed.notify_all()

    def fail_next_job(
        self, job_name: str = ".*", *, exit_code: int = 1, log: str = _FAILURE_LOG, count: int = 1
    ) -> None:
        """The next `count` pods of jobs whose name matches the regex fail with `exit_code`."""
        with self._lock:
            self._failure_rules.append(FailureRule(re.compile(job_name), exit_code, log, count))

    def inject_gpu_fault(self, name: str, count: int = 1) -> None:
        """`gpu-missing`, `xid-error`, `plugin-crashloop` for the next GPU node registered, or
        `smoke-fails` for the next `count` smoke pods (controllers/gpu_health.py)."""
        with self._lock:
            if name == "smoke-fails":
                self._gpu_faults.smoke += count
            elif name in NODE_FAULTS:
                self._gpu_faults.node.append(name)
            else:
                raise ValueError(f"no GPU fault {name!r}: one of {', '.join(NODE_FAULTS)}, "
                                 "smoke-fails")  # fmt: skip

    def inject_fault(
        self,
        method: str,
        path_regex: str,
        count: int = 1,
        fault: FaultOutcome = 500,
        cluster_id: str | None = None,
    ) -> None:
        """Answer the next `count` matching requests with a fault instead of serving them.

        `path_regex` is searched in the API path (e.g. `/api/v1/namespaces/default/pods`);
        `method` may be "*". Status codes answer before any state changes; "watch-disconnect"
        ends a watch after its first event; "gone" answers a watch with a 410 Expired event and
        other requests with 410.
        """
        with self._lock:
            scope = self._cluster(cluster_id).key if cluster_id else None
        self._faults.add(method, path_regex, count, fault, scope)

    def faults_left(self) -> int:
        """How many injected fault answers have not been given yet."""
        return self._faults.left()

    def compact(self, cluster_id: str) -> None:
        """Drop the watch history (like etcd compaction): older resourceVersions get 410."""
        with self._lock:
            self._cluster(cluster_id).compact()
