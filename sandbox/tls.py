"""A throwaway certificate authority, so simulators serve HTTPS that the SDKs trust.

Bearer-token auth in azure-core refuses plain http, so every HTTP simulator speaks TLS with a
server certificate for 127.0.0.1/localhost issued by this CA.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

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
