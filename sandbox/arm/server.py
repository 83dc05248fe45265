"""An HTTPS server that the real azure-mgmt clients talk to as if it were Azure Resource Manager.

Covers what the provisioner and the walkthrough's az commands use: Microsoft.Features
registrations, resource-provider registration, resource groups, subscriptions and tenants,
managed clusters and agent pools with long-running operations (bodies validated and defaulted as
AKS does: schema.py, defaults.py, features.py), the Kubernetes versions list,
listClusterUserCredential; and, without a token, the cloud metadata and managed-identity token
endpoints az signs in with (identity.py). Every request is recorded (for tests); the others are
authenticated with a bearer token, authorised (the app's identity only as infra/permissions.json
grants: authorization.py), checked against injected faults, and then routed; due operations are
settled at the start of each request.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from sandbox.arm import authorization, compute, defaults, identity, prices, schema
from sandbox.arm.authorization import Grant
from sandbox.arm.model import ArmError, ArmRequest, ArmTimings, CapacityRule, Reply
from sandbox.arm.resources import ArmResources
from sandbox.clock import Clock
from sandbox.cloud import ClusterBackend
from sandbox.kit.faults import FaultRules
from sandbox.kit.service import Service
from sandbox.tls import TestCA, TlsHttpServer, TlsRequestHandler


@dataclass(frozen=True)
class _Call:
    """A routed request: path parameters, parsed query and body, and the simulated time."""

    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    now: float


_Route = Callable[[ArmResources, _Call], Reply]

_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_FEATURES = _SUB + r"/providers/Microsoft\.Features/providers/(?P<ns>[^/]+)/features"
_CS = r"/providers/Microsoft\.ContainerService"
_MC = _SUB + r"/resourceGroups/(?P<rg>[^/]+)" + _CS + r"/managedClusters/(?P<name>[^/]+)"
_OPS = _SUB + _CS + r"/locations/(?P<location>[^/]+)"

_ROUTES: list[tuple[re.Pattern[str], dict[str, _Route]]] = [
    (
        re.compile(pattern, re.IGNORECASE),
        methods,
    )
    for pattern, methods in [
        (
            _SUB + r"/providers/Microsoft\.Features/features",
            {"GET": lambda r, c: r.registrations.feature_list(c.params["sub"], None)},
        ),
        (
            _FEATURES,
            {"GET": lambda r, c: r.registrations.feature_list(c.params["sub"], c.params["ns"])},
        ),
        (
            _FEATURES + r"/(?P<feature>[^/]+)",
            {
                "GET": lambda r, c: r.registrations.feature_get(
                    c.params["sub"], c.params["ns"], c.params["feature"]
                )
            },
        ),
        (
            _FEATURES + r"/(?P<feature>[^/]+)/register",
            {
                "POST": lambda r, c: r.registrations.feature_register(
                    c.params["sub"], c.params["ns"], c.params["feature"], c.now
                )
            },
        ),
        (
            _FEATURES + r"/(?P<feature>[^/]+)/unregister",
            {
                "POST": lambda r, c: r.registrations.feature_unregister(
                    c.params["sub"], c.params["ns"], c.params["feature"]
                )
            },
        ),
        (
            _OPS + r"/operations/(?P<op>[^/]+)",
            {"GET": lambda r, c: r.operations.status(c.params["sub"], c.params["op"], c.now)},
        ),
        (
            _OPS + r"/operationresults/(?P<op>[^/]+)",
            {"GET": lambda r, c: r.operations.result(c.params["sub"], c.params["op"])},
        ),
        (
            _OPS + r"/kubernetesVersions",
            {"GET": lambda r, c: Reply(200, defaults.kubernetes_versions())},
        ),
        (
            _SUB + _CS + r"/managedClusters",
            {"GET": lambda r, c: r.cluster_list(c.params["sub"], None)},
        ),
        (
            _SUB + r"/resourceGroups/(?P<rg>[^/]+)" + _CS + r"/managedClusters",
            {"GET": lambda r, c: r.cluster_list(c.params["sub"], c.params["rg"])},
        ),
        (
            _MC,
            {
                "GET": lambda r, c: r.cluster_get(
                    c.params["sub"], c.params["rg"], c.params["name"]
                ),
                "PUT": lambda r, c: r.cluster_put(
                    c.params["sub"], c.params["rg"], c.params["name"], c.body, c.now, c.headers
                ),
                "DELETE": lambda r, c: r.cluster_delete(
                    c.params["sub"], c.params["rg"], c.params["name"], c.now
                ),
            },
        ),
        (
            _MC + r"/listClusterUserCredential",
            {
                "POST": lambda r, c: r.cluster_user_credential(
                    c.params["sub"], c.params["rg"], c.params["name"], c.query.get("format")
                )
            },
        ),
        (
            _MC + r"/agentPools",
            {"GET": lambda r, c: r.pool_list(c.params["sub"], c.params["rg"], c.params["name"])},
        ),
        (
            _MC + r"/agentPools/(?P<pool>[^/]+)",
            {
                "GET": lambda r, c: r.pool_get(
                    c.params["sub"], c.params["rg"], c.params["name"], c.params["pool"]
                ),
                "PUT": lambda r, c: r.pool_put(
                    c.params["sub"],
                    c.params["rg"],
                    c.params["name"],
                    c.params["pool"],
                    c.body,
                    c.now,
                    c.headers,
                ),
                "DELETE": lambda r, c: r.pool_delete(
                    c.params["sub"], c.params["rg"], c.params["name"], c.params["pool"], c.now
                ),
            },
        ),
        (
            _SUB + r"/providers/Microsoft\.Compute/skus",
            {"GET": lambda r, c: compute.skus(c.query.get("$filter"), r.sku_restrictions())},
        ),
        (
            _SUB + r"/providers/Microsoft\.Compute/locations/(?P<location>[^/]+)/usages",
            {
                "GET": lambda r, c: compute.usages(
                    c.params["location"],
                    [p.properties for p in r.pools_in(c.params["sub"], c.params["location"])],
                )
            },
        ),
        (r"/subscriptions", {"GET": lambda r, c: r.groups.subscription_list()}),
        (_SUB, {"GET": lambda r, c: r.groups.subscription_get(c.params["sub"])}),
        (r"/tenants", {"GET": lambda r, c: identity.tenants()}),
        (
            _SUB + r"/operationresults/(?P<op>[^/]+)",
            {"GET": lambda r, c: r.groups.operation_result(c.params["sub"], c.params["op"])},
        ),
        (_SUB + r"/resourceGroups", {"GET": lambda r, c: r.groups.listing(c.params["sub"])}),
        (
            _SUB + r"/resourceGroups/(?P<rg>[^/]+)",
            {
                "GET": lambda r, c: r.groups.get(c.params["sub"], c.params["rg"]),
                "HEAD": lambda r, c: r.groups.exists_reply(c.params["sub"], c.params["rg"]),
                "PUT": lambda r, c: r.groups.put(c.params["sub"], c.params["rg"], c.body),
                "DELETE": lambda r, c: r.group_delete(c.params["sub"], c.params["rg"]),
            },
        ),
        (
            _SUB + r"/providers",
            {"GET": lambda r, c: r.registrations.provider_list(c.params["sub"])},
        ),
        (
            _SUB + r"/providers/(?P<ns>[^/]+)",
            {"GET": lambda r, c: r.registrations.provider_get(c.params["sub"], c.params["ns"])},
        ),
        (
            _SUB + r"/providers/(?P<ns>[^/]+)/register",
            {
                "POST": lambda r, c: r.registrations.provider_register(
                    c.params["sub"], c.params["ns"], c.now
                )
            },
        ),
        (
            _SUB + r"/providers/(?P<ns>[^/]+)/unregister",
            {
                "POST": lambda r, c: r.registrations.provider_unregister(
                    c.params["sub"], c.params["ns"]
                )
            },
        ),
    ]
]


class _Server(TlsHttpServer):
    def __init__(self, simulator: ArmSimulator, context: ssl.SSLContext) -> None:
        self.simulator = simulator
        super().__init__(context, _Handler)


class _Handler(TlsRequestHandler):
    timeout = 30
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the simulator keeps its own request log."""

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, body, headers = self.server.simulator.handle(
            self.command, self.path, dict(self.headers.items()), raw
        )
        payload = b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        request_id = str(uuid.uuid4())
        self.send_header("x-ms-request-id", request_id)
        self.send_header("x-ms-correlation-request-id", request_id)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 204:
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if status != 204 and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _handle


class ArmSimulator(Service):
    """Azure Resource Manager on 127.0.0.1 for the real azure-mgmt clients.

    Clients: `base_url=sim.url`, `connection_verify=str(ca.ca_path)`, and a credential whose token
    is in `tokens`.
    """

    def __init__(
        self,
        clock: Clock,
        ca: TestCA,
        backend: ClusterBackend | None = None,
        tokens: frozenset[str] = frozenset({"sandbox-token"}),
        timings: ArmTimings = ArmTimings(),  # noqa: B008 - frozen value object
        app_tokens: frozenset[str] = frozenset({"sandbox-token"}),
        app_resource_groups: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.clock = clock
        self.ca = ca
        self.tokens = tokens
        self.app_tokens = app_tokens
        """Tokens (among `tokens`) that are the app's identity: held to infra/permissions.json."""
        self._app_grants = authorization.manifest_grants(app_resource_groups)
        """infra/permissions.json's roles on `app_resource_groups` (subscription, name): the
        deployment's allowed resource groups, the only ones where the app holds its AKS role."""
        self._pending_grants: list[tuple[float, tuple[Grant, ...]]] = []
        self.identity_header = uuid.uuid4().hex
        """What `IDENTITY_HEADER` must say for the managed-identity token endpoint to answer."""
        self.timings = timings
        self._resources = ArmResources(timings=timings, backend=backend, ca_path=ca.ca_path)
        self._lock = threading.RLock()
        self._faults = FaultRules()
        self._requests: list[ArmRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.url = ""

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._server is not None:
            return
        server = _Server(self, self.ca.server_context)
        self._server = server
        self.port = server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._resources.base_url = self.url
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"arm-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if thread is not None:
            thread.join()

    # -- scenario control ----------------------------------------------------------------------

    def settle(self) -> None:
        """Complete every registration and operation whose simulated time is up."""
        with self._lock:
            self._resources.settle(self.clock.now())

    def add_resource_group(
        self,
        subscription: str,
        name: str,
        location: str = "eastus",
        tags: dict[str, str] | None = None,
    ) -> None:
        """Make a resource group exist, as if created earlier (clusters need one)."""
        with self._lock:
            self._resources.groups.put(subscription, name, {"location": location, "tags": tags})

    def add_cluster(
        self, subscription: str, resource_group: str, name: str, location: str = "eastus"
    ) -> None:
        """Make a running managed cluster with one system pool exist, as if a user created it.

        It carries no provisioner tags: the provisioner must treat it as someone else's.
        """
        with self._lock:
            self._resources.seed_cluster(
                subscription, resource_group, name, location, self.clock.now()
            )

    def set_provider_state(self, subscription: str, namespace: str, state: str) -> None:
        """E.g. 'NotRegistered' to make cluster PUTs fail with MissingSubscriptionRegistration."""
        with self._lock:
            self._resources.registrations.set_provider_state(subscription, namespace, state)

    def set_feature_state(self, subscription: str, namespace: str, name: str, state: str) -> None:
        with self._lock:
            self._resources.registrations.set_feature_state(subscription, namespace, name, state)

    def set_app_permissions(
        self, grants: tuple[Grant, ...], effective_at: float | None = None
    ) -> None:
        """What the app's identity may do from now on (default: infra/permissions.json), or
        from `effective_at` on the clock: a new role assignment reaches ARM's authorization
        cache minutes later ("it can take up to 10 minutes for changes to take effect",
        learn.microsoft.com, Troubleshoot Azure RBAC)."""
        with self._lock:
            if effective_at is None:
                self._app_grants = grants
            else:
                self._pending_grants.append((effective_at, grants))

    @property
    def app_grants(self) -> tuple[Grant, ...]:
        """What the app's identity may do now."""
        with self._lock:
            return self._app_grants

    def add_capacity_rule(self, rule: CapacityRule) -> None:
        with self._lock:
            self._resources.add_capacity_rule(rule)

    def clear_capacity_rules(self) -> None:
        with self._lock:
            self._resources.clear_capacity_rules()

    def inject_fault(
        self,
        method: str,
        path_regex: str,
        count: int,
        status: int,
        code: str,
        retry_after: int | None = None,
        message: str = "",
    ) -> None:
        """Answer the next `count` matching requests with this error, before any state change.

        `method` '*' matches any method; `path_regex` is searched in the URL path.
        """
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        answer = (status, code, message or f"Injected fault {code}.", headers)
        # ARM matches paths case-insensitively, so the rules do too
        self._faults.add(method, f"(?i){path_regex}", count, answer)

    @property
    def requests(self) -> list[ArmRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- request handling ----------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: dict[str, str], raw_body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        """Answer one HTTP request: (status, JSON body or None, headers)."""
        split = urlsplit(target)
        path = unquote(split.path).rstrip("/")
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        with self._lock:
            body: Any = None
            try:
                if raw_body:
                    try:
                        body = json.loads(raw_body)
                    except ValueError:
                        body = raw_body.decode("utf-8", "replace")
                        raise ArmError(
                            400, "InvalidRequestContent", "The request content was not valid JSON."
                        ) from None
                reply = self._answer(method, path, query, headers, body)
            except ArmError as error:
                reply = Reply(error.status, error.body(), error.headers)
            except Exception as error:  # a broken backend must answer, not hang the client
                reply = Reply(
                    500,
                    {"error": {"code": "InternalServerError", "message": repr(error)}},
                )
            self._requests.append(
                ArmRequest(method, path, query, dict(headers), body, reply.status)
            )
            return reply.status, reply.body, reply.headers

    def _answer(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> Reply:
        now = self.clock.now()
        self._resources.settle(now)
        if path == "/metadata/endpoints" and method.upper() == "GET":
            return identity.metadata_endpoints(self.url)
        if path == "/msi/token" and method.upper() == "GET":
            return identity.token(query, headers, self.identity_header)
        if path == "/api/retail/prices" and method.upper() == "GET":  # public, as on Azure
            return prices.retail_prices(query)
        app_identity = self._authenticate(headers)
        with self._lock:
            for due in [p for p in self._pending_grants if p[0] <= now]:
                self._pending_grants.remove(due)
                self._app_grants = due[1]
        partial = app_identity is not None and authorization.authorize(
            self._app_grants, app_identity, method, path
        )
        self._apply_fault(method, path)
        for pattern, methods in _ROUTES:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            route = methods.get(method.upper())
            if route is None:
                raise ArmError(
                    405, "MethodNotAllowed", f"The HTTP method '{method}' is not supported."
                )
            if "api-version" not in query:
                raise ArmError(
                    400,
                    "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.",
                )
            if "/managedclusters" in path.lower() or path.lower().endswith("/kubernetesversions"):
                schema.check_api_version(query)
            call = _Call(match.groupdict(), query, headers, body, now)
            reply = route(self._resources, call)
            if partial:
                visible = authorization.visible(self._app_grants, method, path, reply.body)
                return Reply(reply.status, visible, reply.headers)
            return reply
        raise ArmError(404, "InvalidResourceType", f"No resource type is served at '{path}'.")

    def _authenticate(self, headers: dict[str, str]) -> str | None:
        """The app identity's object id when the token is the app's; None for an owner."""
        header = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer":
            if token in self.app_tokens and token in self.tokens:
                return identity.APP_OBJECT_ID
            if token in self.tokens:
                return None
            signed_in = identity.token_object_id(token, self.url + "/")
            if signed_in is not None:
                return signed_in if signed_in == identity.APP_OBJECT_ID else None
        challenge = 'Bearer authorization_uri="https://login.microsoftonline.com/common", ' + (
            'error="invalid_token"'
        )
        if not header:
            raise ArmError(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                {"WWW-Authenticate": challenge},
            )
        raise ArmError(
            401,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
            {"WWW-Authenticate": challenge},
        )

    def _apply_fault(self, method: str, path: str) -> None:
        fault = self._faults.take(method.upper(), path)
        if fault is not None:
            status, code, message, headers = fault.outcome
            raise ArmError(status, code, message, dict(headers))
