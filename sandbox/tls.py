"""A throwaway certificate authority, so simulators serve HTTPS that the SDKs trust.

Bearer-token auth in azure-core refuses plain http, so every HTTP simulator speaks TLS with a
server certificate for 127.0.0.1/localhost issued by this CA, through `TlsHttpServer`.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme


@dataclass(frozen=True)
class TestCA:
    """A CA written to `ca_path` (PEM) and the server context signed by it."""

    __test__ = False  # not a pytest test class, despite its name

    ca_path: Path
    server_context: ssl.SSLContext


def make_ca(directory: Path) -> TestCA:
    """Create a CA and a 127.0.0.1/localhost server certificate under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    ca_path = directory / "sandbox-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return TestCA(ca_path=ca_path, server_context=context)


class TlsHttpServer(ThreadingHTTPServer):
    """An HTTPS server on 127.0.0.1 (a free port) for a simulator.

    It accepts plain TCP and leaves the TLS handshake to each connection's own thread, so one slow
    client never blocks accepting; it keeps the open connections so `drop_connections` can cut
    keep-alive clients on stop. Clients that hang up or fail the handshake are not its problem.
    """

    daemon_threads = True

    def __init__(self, context: ssl.SSLContext, handler: type[BaseHTTPRequestHandler]) -> None:
        self.context = context
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        tls = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self.connections_lock:
            self.connections.add(tls)
        return tls, address

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Dropped connections and failed handshakes are normal for a test server."""

    def drop_connections(self) -> None:
        with self.connections_lock:
            open_connections = list(self.connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class TlsRequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive over the connection's TLS, handshaken in the handler's thread."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY each keep-alive answer
    # waits on the client's delayed ACK (~40 ms), which dominated a whole run's wall time.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        self.request.do_handshake()
        super().setup()
