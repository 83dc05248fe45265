"""HTTP plumbing for the host: a small threaded server and the HTTP trigger's route table.

Routes follow the Functions host: `{routePrefix}/{route}` with ASP.NET-style templates
(`requests/{id}`, `{id?}` optional, `{id:int}` constraint, `{*rest}` catch-all), literal segments
matched case-insensitively and preferred over parameters. A function without `methods` answers
every method. Unknown paths are 404; a known path with the wrong method is 405.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox.functions_host.worker import FunctionSpec
from sandbox.kit.service import Service

_PARAMETER = re.compile(r"^\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]*)?(\??)\}$")
_HANDLER_TIMEOUT = 30.0  # seconds a connection may stay silent before its thread gives up


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    """Path and query as sent (`/api/items/7?x=1`)."""
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handle = Callable[[Request], Reply]


class LocalHttpServer(Service):
    """A ThreadingHTTPServer on 127.0.0.1 whose requests all go to `handle`.

    HTTP/1.0 (one request per connection), so `stop()` can join every handler thread.
    """

    def __init__(self, name: str, handle: Handle, port: int = 0) -> None:
        self.name = name
        self.port = port
        self._handle = handle
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalHttpServer:
        if self._server is not None:
            raise RuntimeError(f"the {self.name} server is already started")
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_class(self._handle))
        server.daemon_threads = False  # joined by server_close()
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.shutdown()
        thread.join()
        server.server_close()


def _handler_class(handle: Handle) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = _HANDLER_TIMEOUT

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                reply = Reply(411, b"a Content-Length is required")
            else:
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = handle(Request(self.command, self.path, headers, body))
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_PUT(self) -> None:
            self._serve()

        def do_PATCH(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the host logs invocations, not every request line."""

    return Handler


@dataclass(frozen=True)
class Route:
    """One HTTP-triggered function's route template, compiled."""

    spec: FunctionSpec
    template: str
    pattern: re.Pattern[str]
    methods: frozenset[str] | None
    auth_level: str
    literal_segments: int

    @classmethod
    def of(cls, spec: FunctionSpec) -> Route:
        trigger = spec.trigger
        template = (trigger.route or spec.name).strip("/")
        pieces = []
        literals = 0
        for segment in template.split("/"):
            parameter = _PARAMETER.match(segment)
            if parameter is None:
                pieces.append("/" + re.escape(segment))
                literals += 1
                continue
            catch_all, name, optional = parameter.groups()
            value = f"(?P<{name}>.+)" if catch_all else f"(?P<{name}>[^/]+)"
            pieces.append(f"(?:/{value})?" if optional or catch_all else f"/{value}")
        methods = None
        if trigger.methods:
            methods = frozenset(str(getattr(m, "value", m)).upper() for m in trigger.methods)
        auth_level = str(getattr(trigger.auth_level, "value", trigger.auth_level) or "function")
        return cls(
            spec=spec,
            template=template,
            pattern=re.compile("".join(pieces) + "/?", re.IGNORECASE),
            methods=methods,
            auth_level=auth_level.lower(),
            literal_segments=literals,
        )

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch("/" + path.strip("/"))
        if found is None:
            return None
        return {k: v for k, v in found.groupdict().items() if v is not None}

    def accepts(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


class RouteTable:
    def __init__(self, specs: list[FunctionSpec]) -> None:
        self.routes = sorted(
            (Route.of(s) for s in specs), key=lambda r: (-r.literal_segments, r.template)
        )

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | int:
        """The route and its parameters, or 404 (no route) / 405 (no route for this method)."""
        matched = [(r, params) for r in self.routes if (params := r.match(path)) is not None]
        if not matched:
            return 404
        for route, params in matched:
            if route.accepts(method):
                return route, params
        return 405
