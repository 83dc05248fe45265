"""The Kubernetes API server of the sandbox: many simulated clusters behind one HTTPS port.

Each cluster lives under `/clusters/<key>`; the kubernetes client appends API paths to a host
URL verbatim, so `https://127.0.0.1:<port>/clusters/<key>` works as a kubeconfig `server`.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import re
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from sandbox.clock import Clock
from sandbox.cloud import ClusterAccess, PoolNodes
from sandbox.kube.cluster import Cluster, FailureRule, KubeTimings, random_token
from sandbox.kube.objects import (
    JSON,
    PatchError,
    SelectorError,
    field_selector_matches,
    json_patch,
    label_selector_matches,
    merge_patch,
    strategic_merge,
)
from sandbox.kube.store import KINDS, ApiError, WatchEvent
from sandbox.tls import TestCA, TlsHttpServer, TlsRequestHandler

_CLUSTER_PATH = re.compile(r"^/clusters/(?P<key>[^/]+)(?P<rest>/.*)$")
_API_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>apps|batch)/v1)(?:/namespaces/(?P<ns>[^/]+))?"
    r"/(?P<res>[a-z]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[a-z]+))?)?$"
)
_GROUPS = {"namespaces": None, "nodes": None, "pods": None, "jobs": "batch", "daemonsets": "apps"}
_SUBRESOURCES = {"status", "log"}
_FAILURE_LOG = (
    "Traceback (most recent call last):\n"
    '  File "/app/main.py", line 173, in <module>\n'
    "    tf.app.run(main=main, argv=[sys.argv[0]] + unparsed)\n"
    "RuntimeError: CUDA error: an illegal memory access was encountered"
)
WATCH_POLL_SECONDS = 0.05
DEFAULT_WATCH_SECONDS = 1800.0

FaultOutcome = int | str
"""An HTTP status code, "watch-disconnect" (a watch ends after one event) or "gone" (410)."""


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    remaining: int
    outcome: FaultOutcome
    cluster_key: str | None


@dataclass(frozen=True)
class Route:
    resource: str
    namespace: str
    name: str
    subresource: str


def parse_route(path: str) -> Route:
    """Map an API path to (resource, namespace, name, subresource) or raise a 404."""
    match = _API_PATH.match(path)
    if match is None:
        raise ApiError(
            404, "NotFound", f"the server could not find the requested resource ({path})"
        )
    group, namespace, resource = match["group"], match["ns"] or "", match["res"]
    name, sub = match["name"] or "", match["sub"] or ""
    if resource not in _GROUPS and namespace and group is None and not name:
        # /api/v1/namespaces/<name>/status: a subresource of a namespace, not a collection.
        resource, name, sub, namespace = "namespaces", namespace, resource, ""
    if resource not in _GROUPS or _GROUPS[resource] != group or (sub and sub not in _SUBRESOURCES):
        raise ApiError(
            404, "NotFound", f"the server could not find the requested resource ({path})"
        )
    if namespace and not KINDS[resource].namespaced:
        raise ApiError(
            404, "NotFound", f"the server could not find the requested resource ({path})"
        )
    return Route(resource, namespace, name, sub)


class _Server(TlsHttpServer):
    def __init__(self, simulator: KubeSimulator, context: ssl.SSLContext) -> None:
        self.simulator = simulator
        super().__init__(context, _Handler)


class _Handler(TlsRequestHandler):
    server: _Server

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read state through the API, not the access log."""

    def do_GET(self) -> None:
        self.server.simulator.handle(self, "GET")

    def do_POST(self) -> None:
        self.server.simulator.handle(self, "POST")

    def do_PUT(self) -> None:
        self.server.simulator.handle(self, "PUT")

    def do_PATCH(self) -> None:
        self.server.simulator.handle(self, "PATCH")

    def do_DELETE(self) -> None:
        self.server.simulator.handle(self, "DELETE")

    def send_json(self, code: int, body: JSON, headers: dict[str, str] | None = None) -> None:
        self.send_body(code, json.dumps(body).encode(), "application/json", headers)

    def send_body(
        self, code: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


@dataclass(frozen=True)
class KubeRequest:
    """One request as the server received it (path includes the cluster prefix), for counting."""

    method: str
    path: str
    query: dict[str, str]

    @property
    def watch(self) -> bool:
        return self.query.get("watch") in ("true", "1")


class KubeSimulator:
    """Kubernetes API server for any number of simulated AKS clusters (a ClusterBackend)."""

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
        self._by_key: dict[str, Cluster] = {}
        self._faults: list[Fault] = []
        self._failure_rules: list[FailureRule] = []
        self._requests: list[KubeRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.port = 0
        self.url = ""

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> KubeSimulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self, self._ca.server_context)
        self.port = self._server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="kube-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> KubeSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- ClusterBackend ----------------------------------------------------------------------

    def ensure_cluster(self, cluster_id: str, *, entra_id: bool = False) -> ClusterAccess:
        if not self.url:
            raise RuntimeError("start() the Kubernetes simulator before creating clusters")
        with self._lock:
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
                )
                self._clusters[cluster_id] = cluster
                self._by_key[cluster.key] = cluster
            return ClusterAccess(
                server=f"{self.url}/clusters/{cluster.key}",
                token=cluster.token,
                ca_path=str(self._ca.ca_path),
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
            cluster = self._clusters.pop(cluster_id, None)
            if cluster is not None:
                self._by_key.pop(cluster.key, None)
            self._changed.notify_all()

    def _cluster(self, cluster_id: str) -> Cluster:
        cluster = self._clusters.get(cluster_id)
        if cluster is None:
            raise KeyError(f"no simulated cluster {cluster_id!r}")
        return cluster

    # --- test helpers ---------------------------------------------------------------------

    @property
    def requests(self) -> list[KubeRequest]:
        """Every API request received so far (any cluster), oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

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

    def inject_fault(
        self,
        method: str,
        path_regex: str,
        count: int = 1,
        fault: FaultOutcome = 500,
        cluster_id: str | None = None,
    ) -> None:
        """Answer the next `count` matching requests with a fault instead of serving them.

        `path_regex` is searched in the API path after the cluster prefix (e.g.
        `/api/v1/namespaces/default/pods`); `method` may be "*". Status codes answer before any
        state changes; "watch-disconnect" ends a watch after its first event; "gone" answers a
        watch with a 410 Expired event and other requests with 410.
        """
        with self._lock:
            key = self._cluster(cluster_id).key if cluster_id else None
            self._faults.append(Fault(method.upper(), re.compile(path_regex), count, fault, key))

    def faults_left(self) -> int:
        """How many injected fault answers have not been given yet."""
        with self._lock:
            return sum(fault.remaining for fault in self._faults)

    def compact(self, cluster_id: str) -> None:
        """Drop the watch history (like etcd compaction): older resourceVersions get 410."""
        with self._lock:
            self._cluster(cluster_id).compact()

    def _take_fault(self, method: str, path: str, key: str, *, watch: bool) -> Fault | None:
        for fault in self._faults:
            if (
                fault.remaining > 0
                and fault.method in ("*", method)
                and (fault.cluster_key in (None, key))
                and fault.path.search(path)
                and (watch or fault.outcome != "watch-disconnect")
            ):
                fault.remaining -= 1
                return fault
        return None

    # --- HTTP -------------------------------------------------------------------------------

    def handle(self, handler: _Handler, method: str) -> None:
        url = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self._lock:
            self._requests.append(KubeRequest(method, url.path, query))
        try:
            if url.path in ("/version", "/version/"):
                handler.send_json(200, _VERSION)
                return
            match = _CLUSTER_PATH.match(url.path)
            cluster = self._by_key.get(match["key"]) if match else None
            if match is None or cluster is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            self._authorize(cluster, handler.headers.get("Authorization", ""))
            path = match["rest"]
            if path in ("/version", "/version/"):
                handler.send_json(200, _VERSION)
                return
            route = parse_route(path)
            watch = method == "GET" and query.get("watch") in ("true", "1") and not route.name
            with self._changed:
                fault = self._take_fault(method, path, cluster.key, watch=watch)
                if fault is not None and isinstance(fault.outcome, int):
                    raise _fault_error(fault.outcome, method, route)
                if fault is not None and not watch:
                    raise ApiError(410, "Expired", "The provided continue parameter is too old")
                cluster.settle(self._clock.now())
                if watch:
                    start = self._watch_start(cluster, route, query, fault)
                else:
                    cluster.dry_run = method != "GET" and query.get("dryRun") == "All"
                    try:
                        code, result = self._serve(cluster, route, method, query, handler, body)
                    finally:
                        cluster.dry_run = False
                    cluster.reconcile()
                    self._changed.notify_all()
            if watch:
                self._stream_watch(handler, cluster, route, query, start, fault)
            elif isinstance(result, str):
                handler.send_body(code, result.encode(), "text/plain")
            else:
                handler.send_json(code, result)
        except ApiError as error:
            headers = {"Retry-After": "1"} if error.code == 429 else None
            handler.send_json(error.code, error.status(), headers)
        except OSError:
            handler.close_connection = True
        except Exception as error:  # a simulator bug must not look like a network failure
            failure = ApiError(500, "InternalError", f"sandbox error: {error!r}")
            handler.send_json(500, failure.status())

    def _authorize(self, cluster: Cluster, header: str) -> None:
        expected = self._entra_token if cluster.entra_id else cluster.token
        if header != f"Bearer {expected}" or not expected:
            raise ApiError(401, "Unauthorized", "Unauthorized")

    def _serve(
        self,
        cluster: Cluster,
        route: Route,
        method: str,
        query: dict[str, str],
        handler: _Handler,
        body: bytes,
    ) -> tuple[int, JSON | str]:
        resource, namespace, name = route.resource, route.namespace, route.name
        if method == "GET" and not name:
            return 200, self._list(cluster, route, query)
        if method == "GET" and route.subresource == "log":
            if resource != "pods":
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return 200, self._log(cluster, cluster.get("pods", namespace, name), query)
        if method == "GET":
            return 200, cluster.get(resource, namespace, name)
        if method == "POST" and not name:
            document = _parse_body(body)
            declared = (document.get("metadata") or {}).get("namespace")
            if declared and namespace and declared != namespace:
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request",
                )
            return 201, cluster.create(resource, document, namespace)
        if method == "PUT" and name:
            document = _parse_body(body)
            document.setdefault("metadata", {})
            self._check_name(document, route)
            document["metadata"]["namespace"] = namespace
            return 200, cluster.replace(
                resource, document, status_only=route.subresource == "status"
            )
        if method == "PATCH" and name:
            return self._patch(cluster, route, query, handler.headers.get("Content-Type", ""), body)
        if method == "DELETE" and name:
            options = _parse_body(body) if body else {}
            propagation = query.get("propagationPolicy") or options.get("propagationPolicy")
            if propagation not in (None, "Orphan", "Background", "Foreground"):
                raise ApiError(400, "BadRequest", f"invalid propagationPolicy {propagation!r}")
            return 200, cluster.delete(resource, namespace, name, propagation)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on this path")

    @staticmethod
    def _check_name(document: JSON, route: Route) -> None:
        given = document.get("metadata", {}).get("name")
        if given != route.name:
            raise ApiError(
                400,
                "BadRequest",
                f"the name of the object ({given}) does not match the name on the URL "
                f"({route.name})",
            )

    def _patch(
        self, cluster: Cluster, route: Route, query: dict[str, str], content_type: str, body: bytes
    ) -> tuple[int, JSON]:
        kind = content_type.split(";")[0].strip()
        status_only = route.subresource == "status"
        if kind == "application/apply-patch+yaml":
            if not query.get("fieldManager"):
                raise ApiError(
                    400, "BadRequest", "PATCH, fieldManager is required for apply requests"
                )
            document = _parse_body(body)
            expected = KINDS[route.resource]
            if (document.get("kind"), document.get("apiVersion")) != (
                expected.kind,
                expected.api_version,
            ):
                raise ApiError(400, "BadRequest", "apply patch kind/apiVersion do not match URL")
            self._check_name(document, route)
            key = (route.namespace, route.name)
            if key not in cluster.store[route.resource]:
                return 201, cluster.create(route.resource, document, route.namespace)
            patched = strategic_merge(cluster.store[route.resource][key], _without_rv(document))
        else:
            current = cluster.get(route.resource, route.namespace, route.name)
            document_any = _parse_json(body)
            try:
                if kind == "application/json-patch+json":
                    if not isinstance(document_any, list):
                        raise PatchError("a JSON patch is a list of operations")
                    patched = json_patch(current, document_any)
                elif kind == "application/merge-patch+json":
                    patched = merge_patch(current, document_any)
                elif kind == "application/strategic-merge-patch+json":
                    patched = strategic_merge(current, document_any)
                else:
                    raise ApiError(
                        415,
                        "UnsupportedMediaType",
                        f"the body of the request was in an "
                        f"unknown format - accepted media types include: "
                        f"application/json-patch+json, application/merge-patch+json, "
                        f"application/apply-patch+yaml ({kind})",
                    )
            except PatchError as error:
                raise ApiError(422, "Invalid", str(error)) from error
        patched.setdefault("metadata", {})
        patched["metadata"]["name"] = route.name
        patched["metadata"]["namespace"] = route.namespace
        return 200, cluster.replace(route.resource, patched, status_only=status_only)

    @staticmethod
    def _matches(route: Route, query: dict[str, str], obj: JSON) -> bool:
        meta = obj["metadata"]
        if route.namespace and meta.get("namespace") != route.namespace:
            return False
        try:
            return label_selector_matches(
                query.get("labelSelector"), meta.get("labels") or {}
            ) and field_selector_matches(query.get("fieldSelector"), route.resource, obj)
        except SelectorError as error:
            raise ApiError(400, "BadRequest", str(error)) from error

    def _list(self, cluster: Cluster, route: Route, query: dict[str, str]) -> JSON:
        kind = KINDS[route.resource]
        items = [
            _without_type(obj)
            for obj in cluster.items(route.resource, route.namespace)
            if self._matches(route, query, obj)
        ]
        return {
            "kind": f"{kind.kind}List",
            "apiVersion": kind.api_version,
            "metadata": {"resourceVersion": str(cluster.rv)},
            "items": items,
        }

    @staticmethod
    def _log(cluster: Cluster, pod: JSON, query: dict[str, str]) -> str:
        lines = cluster.pod_log(pod, query.get("container"))
        if "tailLines" in query:
            tail = int(query["tailLines"])
            lines = lines[-tail:] if tail > 0 else []
        if query.get("timestamps") == "true":
            stamp = pod["status"].get("startTime", "")
            lines = [f"{stamp} {line}" for line in lines]
        text = "".join(f"{line}\n" for line in lines)
        if "limitBytes" in query:
            text = text.encode()[: int(query["limitBytes"])].decode(errors="ignore")
        return text

    # --- watch ------------------------------------------------------------------------------

    def _watch_start(
        self, cluster: Cluster, route: Route, query: dict[str, str], fault: Fault | None
    ) -> tuple[list[JSON], int]:
        """Events to send first and the resourceVersion the live part continues from."""
        version = query.get("resourceVersion", "")
        if fault is not None and fault.outcome == "gone":
            return [_expired(version or "0", cluster.rv)], -1
        if version and version != "0":
            start = int(version)
            if start < cluster.compacted_rv:
                return [_expired(version, cluster.rv)], -1
            return self._events_after(cluster, route, query, start), cluster.rv
        added = [
            {"type": "ADDED", "object": obj}
            for obj in cluster.items(route.resource, route.namespace)
            if self._matches(route, query, obj)
        ]
        return added, cluster.rv

    def _events_after(
        self, cluster: Cluster, route: Route, query: dict[str, str], version: int
    ) -> list[JSON]:
        events = []
        for event in _history_after(cluster.history, version):
            if event.resource == route.resource:
                translated = self._translate(route, query, event)
                if translated is not None:
                    events.append(translated)
        return events

    def _translate(self, route: Route, query: dict[str, str], event: WatchEvent) -> JSON | None:
        """An event as seen through the watch's selectors (leaving the selection is DELETED)."""
        now = self._matches(route, query, event.obj)
        before = (
            event.previous is not None
            and event.type == "MODIFIED"
            and self._matches(route, query, event.previous)
        )
        if event.type == "MODIFIED" and now != before:
            kind = "ADDED" if now else "DELETED"
        elif now:
            kind = event.type
        else:
            return None
        return {"type": kind, "object": event.obj}

    def _stream_watch(
        self,
        handler: _Handler,
        cluster: Cluster,
        route: Route,
        query: dict[str, str],
        start: tuple[list[JSON], int],
        fault: Fault | None,
    ) -> None:
        backlog, cursor = start
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        disconnect = fault is not None and fault.outcome == "watch-disconnect"
        seconds = float(query.get("timeoutSeconds") or DEFAULT_WATCH_SECONDS)
        deadline = time.monotonic() + seconds
        for events in self._watch_batches(backlog, cursor, cluster, route, query, deadline):
            for event in events:
                handler.send_chunk(json.dumps(event).encode() + b"\n")
                if disconnect:
                    handler.close_connection = True
                    handler.send_chunk(b"")
                    return
        handler.send_chunk(b"")

    def _watch_batches(
        self,
        backlog: list[JSON],
        cursor: int,
        cluster: Cluster,
        route: Route,
        query: dict[str, str],
        deadline: float,
    ) -> Iterator[list[JSON]]:
        yield backlog
        if cursor < 0:
            return
        while not self._stopping.is_set() and time.monotonic() < deadline:
            with self._changed:
                if self._by_key.get(cluster.key) is not cluster:
                    return
                cluster.settle(self._clock.now())
                if cluster.compacted_rv > cursor:
                    yield [_expired(str(cursor), cluster.rv)]
                    return
                events = self._events_after(cluster, route, query, cursor)
                cursor = cluster.rv
                if not events:
                    self._changed.wait(min(WATCH_POLL_SECONDS, deadline - time.monotonic()))
                    continue
            yield events


_VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.2",
    "gitCommit": "sandbox",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _history_after(history: list[WatchEvent], version: int) -> list[WatchEvent]:
    low, high = 0, len(history)
    while low < high:
        middle = (low + high) // 2
        if history[middle].rv <= version:
            low = middle + 1
        else:
            high = middle
    return history[low:]


def _expired(version: str, current: int) -> JSON:
    return {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"too old resource version: {version} ({current})",
            "reason": "Expired",
            "code": 410,
        },
    }


def _fault_error(code: int, method: str, route: Route) -> ApiError:
    verbs = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    if code == 403:
        return ApiError(
            403,
            "Forbidden",
            f'{route.resource} is forbidden: User "sandbox-user" cannot {verbs.get(method, method)}'
            f' resource "{route.resource}" in the namespace "{route.namespace}"',
        )
    if code == 409:
        return ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {route.resource} "{route.name}": the object has '
            "been modified; please apply your changes to the latest version and try again",
        )
    if code == 500:
        return ApiError(
            500,
            "InternalError",
            'Internal error occurred: an error on the server ("injected fault") has prevented '
            "the request from succeeding",
        )
    phrase = HTTPStatus(code).phrase
    return ApiError(code, phrase.replace(" ", ""), f"injected fault: {phrase}")


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body or b"{}")
    except json.JSONDecodeError as error:
        raise ApiError(400, "BadRequest", f"invalid JSON body: {error}") from error


def _parse_body(body: bytes) -> JSON:
    """JSON or YAML (apply bodies may be either); must be an object."""
    try:
        document = yaml.safe_load(body.decode() or "{}")
    except yaml.YAMLError as error:
        raise ApiError(400, "BadRequest", f"invalid body: {error}") from error
    if not isinstance(document, dict):
        raise ApiError(400, "BadRequest", "the body must be an object")
    return document


def _without_rv(document: JSON) -> JSON:
    stripped = copy.deepcopy(document)
    stripped.get("metadata", {}).pop("resourceVersion", None)
    stripped.pop("status", None)
    return stripped


def _without_type(obj: JSON) -> JSON:
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
