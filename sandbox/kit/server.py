"""The HTTPS server under every simulator: parse a request, hand it to the app, send the answer."""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.kit.http import Request, Response
from sandbox.kit.recorder import RequestRecorder
from sandbox.kit.service import Service
from sandbox.tls import TlsHttpServer, TlsRequestHandler

App = Callable[[Request], Response]


class _Server(TlsHttpServer):
    def __init__(self, app: App, context: ssl.SSLContext, recorder: RequestRecorder | None) -> None:
        self.app = app
        self.recorder = recorder
        super().__init__(context, _Handler)


class _Handler(TlsRequestHandler):
    server: _Server

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read what happened through the API or the recorder."""

    def _serve(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        response = self.server.app(Request(self.command, url.path, query, headers, body))
        if self.server.recorder is not None:
            self.server.recorder.record(self.command, url.path, query, response.status)
        try:
            self._send(response)
        except OSError:
            self.close_connection = True

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.stream is None:
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in response.stream:
            if chunk:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


class SimulatorServer(Service):
    """An app served over HTTPS on 127.0.0.1 (a free port) from its own thread."""

    def __init__(
        self,
        app: App,
        context: ssl.SSLContext,
        name: str,
        recorder: RequestRecorder | None = None,
    ) -> None:
        self._app = app
        self._recorder = recorder
        self._context = context
        self._name = name
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}" if self.port else ""

    def start(self) -> SimulatorServer:
        if self._server is None:
            self._server = _Server(self._app, self._context, self._recorder)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name=self._name, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._server = None
        self._thread = None
