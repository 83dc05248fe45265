"""Azurite, the real Azure Storage emulator (npm, pinned in package-lock.json), on ephemeral ports.

Azurite binds port 0 as asked and prints the ports it got, so there is no race for a free port.
Its data lives in a directory of ours, never in the working tree.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from pathlib import Path

from sandbox.kit.service import Service

ROOT = Path(__file__).resolve().parent.parent
EXECUTABLE = ROOT / "node_modules" / ".bin" / "azurite"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key: public, documented, accepted by nothing but the emulator.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_LISTENING = re.compile(
    r"Azurite (Blob|Queue|Table) service is successfully listening at \S+:(\d+)"
)


class AzuriteError(RuntimeError):
    """Azurite could not start; the message says why and what to do."""


class Azurite(Service):
    """One Azurite process serving blob, queue and table on 127.0.0.1."""

    def __init__(self, data_dir: Path, executable: Path = EXECUTABLE) -> None:
        self.data_dir = data_dir
        self.executable = executable
        self.ports: dict[str, int] = {}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "azurite.log"

    def start(self, timeout: float = 60.0) -> None:
        if not self.executable.exists():
            raise AzuriteError(f"{self.executable} is missing: run `make setup` (npm ci)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own pinned executable
                [
                    str(self.executable),
                    *("--blobHost", "127.0.0.1", "--blobPort", "0"),
                    *("--queueHost", "127.0.0.1", "--queuePort", "0"),
                    *("--tableHost", "127.0.0.1", "--tablePort", "0"),
                    *("--location", str(self.data_dir)),
                    "--silent",
                    "--skipApiVersionCheck",
                    "--disableTelemetry",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            self.ports = {kind.lower(): int(port) for kind, port in _LISTENING.findall(text)}
            if len(self.ports) == 3:
                return
            if self._process.poll() is not None:
                self.stop()
                raise AzuriteError(f"Azurite exited at start: {text.strip()[-500:]}")
            time.sleep(0.1)
        self.stop()
        raise AzuriteError(f"Azurite did not listen within {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def endpoint(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return connection_string(self.ports)


def connection_string(ports: dict[str, int]) -> str:
    """The storage connection string for Azurite on these ports (what AzureWebJobsStorage holds)."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{ports['blob']}/{ACCOUNT};"
        f"QueueEndpoint=http://127.0.0.1:{ports['queue']}/{ACCOUNT};"
        f"TableEndpoint=http://127.0.0.1:{ports['table']}/{ACCOUNT};"
    )


def create_queues(connection: str, names: tuple[str, ...]) -> None:
    """Create the queues (an existing one is kept), as the app's infrastructure does on Azure."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.queue import QueueServiceClient

    with QueueServiceClient.from_connection_string(connection) as service:
        for name in names:
            with contextlib.suppress(ResourceExistsError):
                service.create_queue(name)
