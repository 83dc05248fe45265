"""The Durable extension's HTTP API, as the real `DurableOrchestrationClient` calls it.

The client is built from the binding value the host passes to a `durableClient` parameter (JSON:
task hub, creation/management URL templates, `rpcBaseUrl`) and calls the extension over HTTP:

    POST orchestrators/{name}[/{instanceId}]          start; 202 + management payload
    GET  instances/{instanceId}?showInput&showHistory  status; 200/202, 404 when unknown
    GET  instances/?runtimeStatus&createdTimeFrom...   list
    POST instances/{instanceId}/raiseEvent/{event}     202; 404 unknown; 410 when over
    POST instances/{instanceId}/terminate?reason=      202; 404 unknown; 410 when over
    POST entities/{name}/{key}?op=                     signal; 202
    GET  entities/{name}/{key}                         state; 200, 404 when it does not exist

Status codes, bodies and messages are the extension's (HttpApiHandler): starting an id whose
instance is pending or running answers 409 with the storage provider's "already exists" message;
a finished one is started again (host.json `overridableExistingInstanceStates`: NonRunningStates).
Bodies from the Python client are JSON strings holding JSON text; they are unwrapped once so the
orchestrator sees the value the caller passed. The same API is served under
`/runtime/webhooks/durabletask/` on the public port (with the function key), so the URLs of
`create_check_status_response` work.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.durable_functions.models.history import HistoryEventType
from azure.durable_functions.models.OrchestrationRuntimeStatus import (
    OrchestrationRuntimeStatus as RuntimeStatus,
)

from sandbox.durable import InstanceStatus, LocalDurableHost
from sandbox.durable.state import TERMINAL

INSTANCE_PLACEHOLDER = "INSTANCEID"
_RUNNING = frozenset({RuntimeStatus.Pending, RuntimeStatus.Running, RuntimeStatus.ContinuedAsNew})
_HIDDEN_HISTORY = frozenset(
    {int(HistoryEventType.ORCHESTRATOR_STARTED), int(HistoryEventType.ORCHESTRATOR_COMPLETED)}
)
_UNSUPPORTED_OPERATIONS = frozenset({"rewind", "restart", "suspend", "resume"})


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any = None
    """JSON-serialisable; None means an empty body."""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DurableEndpoints:
    """Where the extension's API lives: `base_url` (public, needs the key) and `rpc_base_url`."""

    base_url: str
    rpc_base_url: str
    hub_name: str
    key: str
    connection: str = "Storage"

    def _instance_url(self, instance_id: str, suffix: str = "", query: str = "") -> str:
        common = f"taskHub={self.hub_name}&connection={self.connection}&code={self.key}"
        query = f"{query}&{common}" if query else common
        return f"{self.base_url}/instances/{instance_id}{suffix}?{query}"

    def management_urls(self, instance_id: str = INSTANCE_PLACEHOLDER) -> dict[str, str]:
        return {
            "id": instance_id,
            "statusQueryGetUri": self._instance_url(instance_id),
            "sendEventPostUri": self._instance_url(instance_id, "/raiseEvent/{eventName}"),
            "terminatePostUri": self._instance_url(instance_id, "/terminate", "reason={text}"),
            "rewindPostUri": self._instance_url(instance_id, "/rewind", "reason={text}"),
            "purgeHistoryDeleteUri": self._instance_url(instance_id),
            "restartPostUri": self._instance_url(instance_id, "/restart"),
            "suspendPostUri": self._instance_url(instance_id, "/suspend", "reason={text}"),
            "resumePostUri": self._instance_url(instance_id, "/resume", "reason={text}"),
        }

    def client_binding(self) -> str:
        """The `durableClient` binding value, as the host serialises it for the Python worker."""
        start = f"{self.base_url}/orchestrators/{{functionName}}[/{{instanceId}}]"
        return json.dumps(
            {
                "taskHubName": self.hub_name,
                "creationUrls": {
                    "createNewInstancePostUri": f"{start}?code={self.key}",
                    "createAndWaitOnNewInstancePostUri": (
                        f"{start}?timeout={{timeoutInSeconds}}"
                        f"&pollingInterval={{intervalInSeconds}}&code={self.key}"
                    ),
                },
                "managementUrls": self.management_urls(),
                "baseUrl": self.base_url,
                "requiredQueryStringParameters": f"code={self.key}",
                "rpcBaseUrl": self.rpc_base_url,
                "httpBaseUrl": "",
                "maxGrpcMessageSizeInBytes": 0,
                "grpcHttpClientTimeout": "00:01:40",
            }
        )


class DurableHttpApi:
    """Answers the extension's HTTP API from a LocalDurableHost; safe from many threads."""

    def __init__(self, durable: LocalDurableHost, endpoints: DurableEndpoints) -> None:
        self.durable = durable
        self.endpoints = endpoints
        self._starting = threading.Lock()

    def handle(self, method: str, path: str, query: Mapping[str, str], body: bytes) -> ApiResponse:
        """Route one request; `path` is relative to the API root (`instances/abc`)."""
        parts = [p for p in path.split("/") if p]
        if len(parts) in (2, 3) and parts[0] == "orchestrators":
            if method != "POST":
                return ApiResponse(404)
            return self._start(parts[1], parts[2] if len(parts) == 3 else None, body)
        if len(parts) == 3 and parts[0] == "entities":
            return self._entity(method, parts[1], parts[2], query, body)
        if not parts or parts[0] != "instances":
            return ApiResponse(404)
        if len(parts) == 1:
            return self._list(query) if method == "GET" else _not_supported(method, "instances/")
        instance_id = parts[1]
        if len(parts) == 2:
            if method == "GET":
                return self._status(instance_id, query)
            return _not_supported(method, "purging instance history")
        if method != "POST":
            return ApiResponse(404)
        operation = parts[2]
        if operation == "terminate" and len(parts) == 3:
            return self._terminate(instance_id, query.get("reason", ""))
        if operation == "raiseEvent" and len(parts) == 4:
            return self._raise_event(instance_id, parts[3], body)
        if operation in _UNSUPPORTED_OPERATIONS:
            return _not_supported(method, operation)
        return ApiResponse(404)

    # ---- operations -----------------------------------------------------------------------

    def _start(self, name: str, instance_id: str | None, body: bytes) -> ApiResponse:
        if name not in self.durable.index.orchestrators:
            message = (
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator "
                "function."
            )
            return ApiResponse(
                400,
                {
                    "Message": "One or more of the arguments submitted is incorrect",
                    "ExceptionMessage": message,
                    "ExceptionType": "System.ArgumentException",
                },
            )
        try:
            value = _unwrap(body)
        except ValueError:
            return ApiResponse(400, {"Message": "Invalid JSON content"})
        with self._starting:
            existing = self._find(instance_id) if instance_id else None
            if existing is not None and existing.runtime_status in _RUNNING:
                message = (
                    f"An orchestration with id '{instance_id}' already exists. "
                    f"It is in state {existing.runtime_status.value}"
                )
                return ApiResponse(409, {"Message": message})
            started = self.durable.start_new(name, instance_id, value, restart=True)
        return ApiResponse(
            202,
            self.endpoints.management_urls(started),
            {"Location": self.endpoints.management_urls(started)["statusQueryGetUri"]},
        )

    def _entity(
        self, method: str, name: str, key: str, query: Mapping[str, str], body: bytes
    ) -> ApiResponse:
        if method == "GET":
            state = self.durable.read_entity_state(name, key)
            return ApiResponse(404) if state is None else ApiResponse(200, json.loads(state))
        if method != "POST":
            return ApiResponse(404)
        operation = query.get("op")
        if not operation:
            return ApiResponse(400, {"Message": "The 'op' query parameter is required"})
        try:
            value = _unwrap(body)
        except ValueError:
            return ApiResponse(400, {"Message": "Invalid JSON content"})
        self.durable.signal_entity(name, key, operation, json.dumps(value))
        return ApiResponse(202)

    def _status(self, instance_id: str, query: Mapping[str, str]) -> ApiResponse:
        status = self._find(instance_id)
        if status is None:
            return ApiResponse(404)
        payload = self._payload(
            status,
            show_input=_flag(query, "showInput", default=True),
            show_history=_flag(query, "showHistory", default=False),
            show_history_output=_flag(query, "showHistoryOutput", default=False),
        )
        if status.runtime_status in _RUNNING:
            return ApiResponse(202, payload, {"Retry-After": "5"})
        return ApiResponse(200, payload)

    def _list(self, query: Mapping[str, str]) -> ApiResponse:
        show_input = _flag(query, "showInput", default=True)
        wanted = {s for s in query.get("runtimeStatus", "").split(",") if s}
        prefix = query.get("instanceIdPrefix", "")
        created_from = _time(query.get("createdTimeFrom"))
        created_to = _time(query.get("createdTimeTo"))
        found = []
        for instance_id in self.durable.instance_ids():
            status = self.durable.get_status(instance_id)
            if (
                (wanted and status.runtime_status.value not in wanted)
                or not instance_id.startswith(prefix)
                or (created_from is not None and status.created_time < created_from)
                or (created_to is not None and status.created_time > created_to)
            ):
                continue
            found.append(self._payload(status, show_input, False, False))
        return ApiResponse(200, found)

    def _raise_event(self, instance_id: str, event_name: str, body: bytes) -> ApiResponse:
        status = self._find(instance_id)
        if status is None:
            return ApiResponse(404, {"Message": f"No instance with ID '{instance_id}' found."})
        if status.runtime_status in TERMINAL:
            return ApiResponse(410)
        try:
            value = _unwrap(body)
        except ValueError:
            return ApiResponse(
                400, {"Message": "Only application/json request content is supported"}
            )
        try:
            self.durable.raise_event(instance_id, event_name, value)
        except ValueError:  # it finished between the check and the delivery
            return ApiResponse(410)
        return ApiResponse(202)

    def _terminate(self, instance_id: str, reason: str) -> ApiResponse:
        status = self._find(instance_id)
        if status is None:
            return ApiResponse(404)
        if status.runtime_status in TERMINAL:
            return ApiResponse(410)
        self.durable.terminate(instance_id, reason)
        return ApiResponse(202)

    # ---- helpers --------------------------------------------------------------------------

    def _find(self, instance_id: str) -> InstanceStatus | None:
        try:
            return self.durable.get_status(instance_id)
        except KeyError:
            return None

    def _payload(
        self,
        status: InstanceStatus,
        show_input: bool,
        show_history: bool,
        show_history_output: bool,
    ) -> dict[str, Any]:
        """The extension's StatusResponsePayload."""
        payload: dict[str, Any] = {
            "name": status.name,
            "instanceId": status.instance_id,
            "runtimeStatus": status.runtime_status.value,
            "input": status.input if show_input else None,
            "customStatus": status.custom_status,
            "output": status.output,
            "createdTime": _iso(status.created_time),
            "lastUpdatedTime": _iso(status.last_updated_time),
        }
        if show_history:
            payload["historyEvents"] = [
                _history_event(e, show_history_output)
                for e in self.durable.history(status.instance_id)
                if e["EventType"] not in _HIDDEN_HISTORY
            ]
        return payload


def _not_supported(method: str, what: str) -> ApiResponse:
    return ApiResponse(
        501, {"Message": f"{method} {what} is not supported by the local Functions host"}
    )


def _unwrap(body: bytes) -> Any:
    """The value the Python client sent: its body is a JSON string holding the JSON text.

    A body that is JSON but not a string (curl posting an object) is taken as the value itself.
    """
    if not body.strip():
        return None
    decoded = json.loads(body)
    if not isinstance(decoded, str):
        return decoded
    try:
        return json.loads(decoded)
    except ValueError:
        return decoded


def _flag(query: Mapping[str, str], name: str, default: bool) -> bool:
    value = query.get(name, "").lower()
    if value in ("true", "false"):
        return value == "true"
    return default


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    """The extension's `ToString("s") + "Z"`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _history_event(event: Mapping[str, Any], with_output: bool) -> dict[str, Any]:
    kind = HistoryEventType(event["EventType"]).name
    shown: dict[str, Any] = {
        "EventType": "".join(word.capitalize() for word in kind.split("_")),
        "Timestamp": event["Timestamp"],
    }
    for name in ("Name", "FireAt", "Reason", "Details"):
        if event.get(name) is not None:
            shown[name] = event[name]
    if with_output:
        for name in ("Input", "Result"):
            if event.get(name) is not None:
                shown[name] = event[name]
    return shown
