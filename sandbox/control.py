"""`gpuprov sandbox up | status | down`: the sandbox as background processes the demo can use.

`up` starts two processes — the simulators (ARM, Kubernetes, Service Bus: one process, because ARM
creating a pool must make nodes appear in Kubernetes) and Azurite — and writes what it started to
a state file: ports, PIDs, the CA path. `down` stops exactly those PIDs, after checking each is
still the process `up` started. `up` while running starts nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sandbox import azurite
from sandbox.world import REQUEST_QUEUES, SUBSCRIPTION, aks_client, app_settings

DEFAULT_STATE_DIR = azurite.ROOT / ".sandbox"
STATE_FILE = "state.json"
SERVERS_FILE = "servers.json"
ENV_FILE = "sandbox.env"
SETTINGS_FILE = "local.settings.json"
DURABLE_STATE_FILE = "durable-state.json"
"""`gpuprov host`'s orchestrations: kept across host restarts, dropped with the sandbox."""
AZ_CONFIG_DIR = "azure-cli"
AZ_CLOUD = "AzureSandbox"
_SERVE_MARKER = "sandbox.serve"


class SandboxError(RuntimeError):
    """The sandbox could not be started or stopped; the message says why."""


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    pid: int
    live: bool


def up(state_dir: Path = DEFAULT_STATE_DIR, time_scale: float = 60.0) -> tuple[dict, bool]:
    """Start the sandbox unless it runs already; returns (state, started)."""
    state = read_state(state_dir)
    if state and all(_owned(pid, marker) for pid, marker in _processes(state)):
        return state, False
    if state:
        down(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / SERVERS_FILE).unlink(missing_ok=True)
    started_at = time.time()  # the simulators' clock starts about now
    (state_dir / DURABLE_STATE_FILE).unlink(missing_ok=True)  # runs of a sandbox now gone
    with (state_dir / "serve.log").open("wb") as log:
        serve = subprocess.Popen(  # noqa: S603 - our own module, no shell
            [sys.executable, "-m", _SERVE_MARKER, "--state-dir", str(state_dir),
             "--time-scale", str(time_scale)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=azurite.ROOT,
        )  # fmt: skip
    try:
        servers = _wait_for_servers(state_dir, serve)
        storage = azurite.Azurite(state_dir / "azurite")
        storage.start()
        azurite.create_queues(storage.connection_string, REQUEST_QUEUES)
    except (SandboxError, azurite.AzuriteError) as exc:
        _stop_pid(serve.pid)
        raise SandboxError(str(exc)) from None
    state = {
        "ca": servers["ca"],
        "identityHeader": servers["identityHeader"],
        "timeScale": time_scale,
        "startedAt": started_at,
        "processes": {
            "simulators": {"pid": serve.pid, "marker": _SERVE_MARKER},
            "azurite": {"pid": storage.pid, "marker": "azurite"},
        },
        "endpoints": {
            "arm": {"url": servers["arm"], "process": "simulators"},
            "kubernetes": {"url": servers["kube"], "process": "simulators"},
            "servicebus": {"url": servers["servicebusUrl"], "process": "simulators"},
            "azurite": {"url": storage.endpoint("queue"), "process": "azurite"},
        },
        "servicebusConnection": servers["servicebus"],
        "storageConnection": storage.connection_string,
    }
    _write_json(state_dir / STATE_FILE, state)
    _write_settings(state_dir, state)
    return state, True


def status(state_dir: Path = DEFAULT_STATE_DIR) -> list[Endpoint]:
    """Each endpoint `up` started, and whether it answers now."""
    state = read_state(state_dir)
    if not state:
        return []
    endpoints = []
    for name, endpoint in state["endpoints"].items():
        process = state["processes"][endpoint["process"]]
        live = _owned(process["pid"], process["marker"]) and _answers(endpoint["url"])
        endpoints.append(Endpoint(name, endpoint["url"], process["pid"], live))
    return endpoints


def down(state_dir: Path = DEFAULT_STATE_DIR) -> list[int]:
    """Stop the processes `up` started (and nothing else); returns their PIDs."""
    state = read_state(state_dir)
    stopped = []
    for pid, marker in _processes(state or {}):
        if _owned(pid, marker):
            _stop_pid(pid)
            stopped.append(pid)
    for name in (STATE_FILE, SERVERS_FILE, ENV_FILE, SETTINGS_FILE, DURABLE_STATE_FILE):
        (state_dir / name).unlink(missing_ok=True)
    shutil.rmtree(state_dir / AZ_CONFIG_DIR, ignore_errors=True)
    return stopped


def az_env(state_dir: Path = DEFAULT_STATE_DIR) -> str:
    """Shell lines after whose `eval` a stock Azure CLI (and kubectl) talks to this sandbox."""
    state = read_state(state_dir)
    if not state:
        raise SandboxError("the sandbox is not running: start it with gpuprov sandbox up")
    return az_shell(
        state["endpoints"]["arm"]["url"],
        state["ca"],
        state["identityHeader"],
        state_dir / AZ_CONFIG_DIR,
        state_dir / "kubeconfig",
    )


def az_shell(arm: str, ca: str, identity_header: str, config_dir: Path, kubeconfig: Path) -> str:
    """Shell lines after whose `eval` a stock Azure CLI talks to the ARM simulator at `arm`.

    The CLI gets a config directory of its own (the user's ~/.azure is left alone), registers the
    simulator as a cloud through its `/metadata/endpoints`, and signs in with `az login
    --identity`: MSAL fetches a token from the managed-identity endpoint the simulator serves
    (IDENTITY_ENDPOINT/IDENTITY_HEADER, App Service style) and az lists `/subscriptions`.
    Those az steps run once per config directory (`az account show` tells). The pinned CLI in
    .venv-az is put first on PATH when it is installed (`make setup`).
    """
    values = {
        "AZURE_CONFIG_DIR": str(config_dir),
        "KUBECONFIG": str(kubeconfig),
        "REQUESTS_CA_BUNDLE": ca,
        "IDENTITY_ENDPOINT": f"{arm}/msi/token",
        "IDENTITY_HEADER": identity_header,
        "AZURE_CORE_COLLECT_TELEMETRY": "no",
        "AZURE_CORE_SURVEY_MESSAGE": "no",
    }
    lines = [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    tool_bin = azurite.ROOT / ".venv-az" / "bin"
    if (tool_bin / "az").exists():
        lines.append(f'export PATH={shlex.quote(str(tool_bin))}:"$PATH"')
    cloud = shlex.quote(AZ_CLOUD)
    lines.append(
        "az account show --only-show-errors >/dev/null 2>&1 || { "
        f"az cloud register --name {cloud} --endpoint-resource-manager {shlex.quote(arm)} "
        f"--only-show-errors >/dev/null && "
        f"az cloud set --name {cloud} --only-show-errors >/dev/null && "
        "az login --identity --only-show-errors >/dev/null; }"
    )
    return "\n".join(lines) + "\n"


def read_state(state_dir: Path) -> dict | None:
    try:
        return json.loads((state_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise SandboxError(f"{state_dir / STATE_FILE} is damaged ({exc}): delete it") from None


def _processes(state: dict) -> list[tuple[int, str]]:
    return [(p["pid"], p["marker"]) for p in state.get("processes", {}).values()]


def _owned(pid: int, marker: str) -> bool:
    """True when `pid` is alive and still the process we started (PIDs get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return marker.encode() in cmdline


def _stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM the process group `up` created, then SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False  # our own child, now reaped
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _wait_for_servers(state_dir: Path, serve: subprocess.Popen[bytes], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    path = state_dir / SERVERS_FILE
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text())
        if serve.poll() is not None:
            log = (state_dir / "serve.log").read_text(errors="replace")[-2000:]
            raise SandboxError(f"the simulators exited at start:\n{log}")
        time.sleep(0.05)
    raise SandboxError(f"the simulators did not start within {timeout:.0f} s; see serve.log")


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), 2):
            return True
    except OSError:
        return False


def _write_json(path: Path, value: dict) -> None:
    _write_private(path, json.dumps(value, indent=2) + "\n")


def _write_private(path: Path, text: str) -> None:
    """Only the owner may read it: the files hold connection strings and the sandbox token."""
    temporary = path.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    temporary.replace(path)


def _write_settings(state_dir: Path, state: dict) -> None:
    """What points the product at the sandbox: an env file and a local.settings.json."""
    values = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        **app_settings(
            state["endpoints"]["arm"]["url"],
            state["ca"],
            storage=state["storageConnection"],
            service_bus=state["servicebusConnection"],
            reaper_schedule="0 */15 * * * *",  # %...% in a trigger must resolve
        ),
    }
    _write_json(state_dir / SETTINGS_FILE, {"IsEncrypted": False, "Values": values})
    lines = [f"export {name}='{value}'" for name, value in values.items()]
    _write_private(state_dir / ENV_FILE, "\n".join(lines) + "\n")


def kubeconfig(
    state_dir: Path, resource_group: str, name: str, subscription: str = SUBSCRIPTION
) -> bytes:
    """A sandbox cluster's kubeconfig, fetched as `az aks get-credentials` fetches it.

    It asks the running sandbox's ARM simulator for listClusterUserCredential with the real
    azure-mgmt-containerservice client; the kubeconfig names the cluster's own API server.
    """
    state = read_state(state_dir)
    if not state or not status(state_dir):
        raise SandboxError("the sandbox is not running: start it with gpuprov sandbox up")
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    client = aks_client(state["endpoints"]["arm"]["url"], state["ca"], subscription)
    try:
        result = client.managed_clusters.list_cluster_user_credentials(resource_group, name)
    except ResourceNotFoundError:
        raise SandboxError(
            f"the sandbox has no cluster {name!r} in resource group {resource_group!r}: create one "
            "first, e.g. gpuprov run a request whose cleanup keeps the cluster "
            '("deleteCluster": false)'
        ) from None
    except AzureError as error:  # the simulators stopped, or answered an error
        raise SandboxError(f"listClusterUserCredential failed: {error.message}") from None
    finally:
        client.close()
    kubeconfigs = result.kubeconfigs or []
    if not kubeconfigs or not kubeconfigs[0].value:
        raise SandboxError(f"the sandbox returned no kubeconfig for {name!r}")
    return bytes(kubeconfigs[0].value)
