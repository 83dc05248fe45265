"""A local stand-in for the Azure Functions host: feeds an app's triggers as the host would.

`LocalFunctionsHost(app, env=...)` indexes `app.get_functions()` and, between `start()` and
`stop()`, runs in daemon threads:
- the Durable extension: a LocalDurableHost (`.durable`) plus its HTTP API on a private port
  (`rpcBaseUrl`), which the real `DurableOrchestrationClient` of `durableClient` bindings calls;
- Storage queue triggers polling Azurite, Service Bus queue triggers receiving from the broker,
  NCRONTAB timer triggers on the host's clock;
- HTTP triggers on 127.0.0.1:`http_port` under `/api/`, with function keys, and the Durable
  webhooks under `/runtime/webhooks/durabletask/`.
Binding properties resolve `%SETTING%` from `env` (the app settings); anything missing or
unsupported is a FunctionsHostError at `start()`, before anything runs.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func

from sandbox.clock import Clock, ScaledClock
from sandbox.durable import LocalDurableHost
from sandbox.functions_host.config import (
    DEFAULT_STORAGE_CONNECTION,
    FunctionsHostError,
    HostSettings,
    connection_setting,
    resolve,
)
from sandbox.functions_host.durable_api import ApiResponse, DurableEndpoints, DurableHttpApi
from sandbox.functions_host.queues import StorageQueueListener
from sandbox.functions_host.servicebus import ServiceBusQueueListener
from sandbox.functions_host.timers import NcrontabSchedule, TimerListener
from sandbox.functions_host.web import LocalHttpServer, Reply, Request, RouteTable
from sandbox.functions_host.worker import (
    HTTP_TRIGGER,
    QUEUE_TRIGGER,
    SERVICE_BUS_TRIGGER,
    TIMER_TRIGGER,
    FunctionSpec,
    Invocation,
    InvocationLog,
    Worker,
    triggered_functions,
)
from sandbox.kit.service import Service

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent.parent
WEBHOOK_PREFIX = "/runtime/webhooks/durabletask/"
_RPC_PATH = "/durabletask/"
_KEY_HEADER = "x-functions-key"
_LISTENER_RESTART_SECONDS = 1.0


class LocalFunctionsHost(Service):
    """Runs an app's queue, Service Bus, timer, HTTP and durable triggers; a context manager."""

    def __init__(
        self,
        app: func.FunctionApp,
        *,
        env: Mapping[str, str],
        clock: Clock | None = None,
        host_json: Path = ROOT / "host.json",
        http_port: int = 0,
        poll_seconds: float = 0.2,
        durable_state: Path | None = None,
    ) -> None:
        """`durable_state`: the file the Durable extension's stand-in keeps its instances in,
        so a host started again resumes them (None: in memory, gone with the host)."""
        self.app = app
        self.env = dict(env)
        self.clock: Clock = clock if clock is not None else ScaledClock(1.0)
        self.host_json = host_json
        self.poll_seconds = poll_seconds
        try:
            self.durable = LocalDurableHost(app, self.clock, state_file=durable_state)
        except ValueError as error:  # a saved state it cannot resume: say which file and why
            raise FunctionsHostError(str(error)) from None
        self.function_key = ""
        """The key FUNCTION and ADMIN routes and the durable webhooks need; new at each start."""
        self.settings: HostSettings | None = None
        self.worker: Worker | None = None
        self._invocations = InvocationLog()
        self._http_port = http_port
        self._http: LocalHttpServer | None = None
        self._rpc: LocalHttpServer | None = None
        self._durable_api: DurableHttpApi | None = None
        self._routes = RouteTable([])
        self._stopping = threading.Event()
        self._listeners: list[threading.Thread] = []

    # ---- addresses ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError("the Functions host is not started")
        return self._http.port

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    url = http_url

    @property
    def rpc_base_url(self) -> str:
        if self._rpc is None:
            raise RuntimeError("the Functions host is not started")
        return f"{self._rpc.url}{_RPC_PATH}"

    @property
    def durable_client_binding(self) -> str:
        """The JSON a `durableClient` parameter receives (build a DurableOrchestrationClient)."""
        if self.worker is None:
            raise RuntimeError("the Functions host is not started")
        return self.worker.durable_client_binding

    # ---- invocations ----------------------------------------------------------------------

    @property
    def invocations(self) -> list[Invocation]:
        """Every trigger invocation of this host (kept across stop/start), oldest first."""
        return self._invocations.snapshot()

    def wait_for_invocations(
        self, function_name: str, count: int = 1, timeout: float = 10.0
    ) -> list[Invocation]:
        """Block until `function_name` has run `count` times in all; TimeoutError otherwise."""
        return self._invocations.wait_for(function_name, count, timeout)

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> LocalFunctionsHost:
        if self.worker is not None:
            raise RuntimeError("the Functions host is already started")
        settings = HostSettings.load(self.host_json)
        specs = triggered_functions(self.app)
        self._check_durable_clients(specs, settings)
        worker = Worker(self.clock, settings.function_timeout_seconds, self._invocations)
        listeners = self._listeners_for(specs, settings, worker)  # settings errors surface here
        self._stopping.clear()
        self.settings = settings
        self.function_key = secrets.token_urlsafe(32)
        self.worker = worker
        self._routes = RouteTable([s for s in specs if s.trigger_type == HTTP_TRIGGER])
        try:
            self._start_servers(worker, settings)
            for name, target in listeners:
                thread = threading.Thread(
                    target=self._supervise, args=(name, target), name=name, daemon=True
                )
                thread.start()
                self._listeners.append(thread)
        except BaseException:
            self.stop()
            raise
        log.info(
            "Functions host up at %s: %s",
            self.http_url,
            ", ".join(f"{s.name} ({s.trigger_type})" for s in specs) or "no triggers",
        )
        return self

    def _start_servers(self, worker: Worker, settings: HostSettings) -> None:
        worker.start()
        self.durable.start()
        self._rpc = LocalHttpServer("durable-rpc", self._serve_rpc).start()
        self._http = LocalHttpServer("functions-http", self._serve_http, self._http_port).start()
        endpoints = DurableEndpoints(
            base_url=f"{self.http_url}{WEBHOOK_PREFIX.rstrip('/')}",
            rpc_base_url=self.rpc_base_url,
            hub_name=settings.hub_name,
            key=self.function_key,
        )
        self._durable_api = DurableHttpApi(self.durable, endpoints)
        worker.durable_client_binding = endpoints.client_binding()

    def _supervise(self, name: str, listen: Callable[[], None]) -> None:
        """Run a trigger listener; if it breaks (its service is down), log and start it again."""
        while not self._stopping.is_set():
            try:
                listen()
            except Exception as exc:
                log.warning("%s stopped: %s: %s; restarting it", name, type(exc).__name__, exc)
                self._stopping.wait(_LISTENER_RESTART_SECONDS)

    def stop(self) -> None:
        """Stop triggers, then the worker loop, then the durable API and host; idempotent."""
        self._stopping.set()
        if self._http is not None:
            self._http.stop()
        for thread in self._listeners:
            thread.join()
        self._listeners = []
        if self.worker is not None:
            self.worker.stop()
        if self._rpc is not None:
            self._rpc.stop()
        self.durable.stop()
        self._http = self._rpc = None
        self._durable_api = None
        self.worker = None

    # ---- indexing -------------------------------------------------------------------------

    def _check_durable_clients(self, specs: list[FunctionSpec], settings: HostSettings) -> None:
        for spec in specs:
            for binding in spec.durable_clients:
                hub = binding.task_hub
                if hub and resolve(hub, self.env, spec.name, "task hub") != settings.hub_name:
                    raise FunctionsHostError(
                        f"function {spec.name!r}: its durable client names task hub {hub!r}; "
                        f"the local host runs only {settings.hub_name!r} (host.json)"
                    )

    def _listeners_for(
        self, specs: list[FunctionSpec], settings: HostSettings, worker: Worker
    ) -> list[tuple[str, Callable[[], None]]]:
        """A thread target per queue, Service Bus and timer trigger, with settings resolved."""
        listeners: list[tuple[str, Callable[[], None]]] = []
        for spec in specs:
            trigger = spec.trigger
            if spec.trigger_type == QUEUE_TRIGGER:
                queue = StorageQueueListener(
                    spec,
                    worker,
                    connection_setting(
                        trigger.connection, self.env, spec.name, DEFAULT_STORAGE_CONNECTION
                    ),
                    resolve(trigger.queue_name, self.env, spec.name, "queue name"),
                    settings.queues,
                    self.poll_seconds,
                    self._stopping,
                )
                listeners.append((f"queue-trigger-{spec.name}", queue.run))
            elif spec.trigger_type == SERVICE_BUS_TRIGGER:
                if not getattr(trigger, "queue_name", None):
                    raise FunctionsHostError(
                        f"function {spec.name!r}: only Service Bus queue triggers are supported"
                    )
                bus = ServiceBusQueueListener(
                    spec,
                    worker,
                    connection_setting(trigger.connection, self.env, spec.name),
                    resolve(trigger.queue_name, self.env, spec.name, "queue name"),
                    self.poll_seconds,
                    self._stopping,
                )
                listeners.append((f"servicebus-trigger-{spec.name}", bus.run))
            elif spec.trigger_type == TIMER_TRIGGER:
                expression = resolve(trigger.schedule, self.env, spec.name, "schedule")
                timer = TimerListener(
                    spec,
                    worker,
                    NcrontabSchedule.parse(expression, spec.name),
                    self.clock,
                    self.poll_seconds,
                    self._stopping,
                )
                listeners.append((f"timer-trigger-{spec.name}", timer.run))
        return listeners

    # ---- HTTP -----------------------------------------------------------------------------

    def _serve_rpc(self, request: Request) -> Reply:
        parts = urlsplit(request.target)
        path = unquote(parts.path)
        if not path.startswith(_RPC_PATH) or self._durable_api is None:
            return Reply(404)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        api_path = path[len(_RPC_PATH) :]
        return _json_reply(self._durable_api.handle(request.method, api_path, query, request.body))

    def _serve_http(self, request: Request) -> Reply:
        parts = urlsplit(request.target)
        path = unquote(parts.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if path.startswith(WEBHOOK_PREFIX):
            if not self._has_key(request, query):
                return Reply(401)
            if self._durable_api is None:
                return Reply(503)
            api_path = path[len(WEBHOOK_PREFIX) :]
            return _json_reply(
                self._durable_api.handle(request.method, api_path, query, request.body)
            )
        prefix = f"/{self.settings.route_prefix}/" if self.settings else "/api/"
        if not path.startswith(prefix) and path != prefix.rstrip("/"):
            return Reply(404)
        found = self._routes.find(request.method, path[len(prefix) :])
        if isinstance(found, int):
            return Reply(found)
        route, route_params = found
        if route.auth_level != "anonymous" and not self._has_key(request, query):
            return Reply(401)
        host = request.headers.get("host", f"127.0.0.1:{self.port}")
        http_request = func.HttpRequest(
            request.method,
            f"http://{host}{request.target}",
            headers=request.headers,
            params=query,
            route_params=route_params,
            body=request.body,
        )
        worker = self.worker
        if worker is None:
            return Reply(503)
        succeeded, response = worker.invoke(route.spec, http_request)
        if not succeeded:
            return Reply(500)
        return _http_reply(response)

    def _has_key(self, request: Request, query: Mapping[str, str]) -> bool:
        given = query.get("code") or request.headers.get(_KEY_HEADER, "")
        return bool(self.function_key) and hmac.compare_digest(given, self.function_key)


def _json_reply(response: ApiResponse) -> Reply:
    headers = dict(response.headers)
    if response.body is None:
        return Reply(response.status, b"", headers)
    headers["Content-Type"] = "application/json; charset=utf-8"
    return Reply(response.status, json.dumps(response.body).encode("utf-8"), headers)


def _http_reply(response: Any) -> Reply:
    """What the worker sends back for the function's return value."""
    if response is None:
        return Reply(204)
    if not isinstance(response, func.HttpResponse):
        return Reply(200, str(response).encode("utf-8"), {"Content-Type": "text/plain"})
    headers = dict(response.headers.items())
    if not any(name.lower() == "content-type" for name in headers):
        mimetype = response.mimetype
        if mimetype.startswith("text/") or mimetype == "application/json":
            mimetype = f"{mimetype}; charset={response.charset}"
        headers["Content-Type"] = mimetype
    return Reply(response.status_code, response.get_body() or b"", headers)
