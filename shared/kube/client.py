"""The Kubernetes API client of one cluster: connection, JSON calls, and its error classification.

Responses are read as plain JSON (`_preload_content=False`): the client's all-Optional models are
skipped. SDK and connection failures leave a call only as classified StepErrors: 429, 5xx and
write conflicts are transient, TLS mismatches and refusals permanent, each with a hint. Objects
are the request's when they carry its owner and request-id labels (shared/ownership.py).
"""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from shared.closing import Closing
from shared.credentials import ClusterCredentials
from shared.errors import StepError, retry_after
from shared.ownership import DEFAULT_OWNER, MANAGED_BY_LABEL, MANAGER, Ownership, not_owned
from shared.request import ProvisionRequest
from shared.wire import HistoryModel

JSON = dict[str, Any]

AGENTPOOL_LABEL = "kubernetes.azure.com/agentpool"
CONNECTION_FAILED = "ConnectionFailed"
TLS_FAILED = "TlsVerificationFailed"
SPOT_TAINT = "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"


class NamespaceResult(HistoryModel):
    """A namespace the request needs, and whether this call created it."""

    name: str
    created: bool


def labels_of(obj: JSON) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def name_of(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def namespace_of(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def count(value: object) -> int:
    """A count from the API (int or quantity string such as '1'); anything else counts as 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def condition(obj: JSON, kind: str) -> JSON | None:
    for found in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(found, dict) and found.get("type") == kind:
            return found
    return None


def is_true(obj: JSON, kind: str) -> bool:
    found = condition(obj, kind)
    return found is not None and found.get("status") == "True"


def images(obj: JSON) -> list[str]:
    pod_spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [str(c.get("image") or "") for c in pod_spec.get("containers") or []]


def pool_tolerations(request: ProvisionRequest) -> list[JSON]:
    """A toleration for each of the pool's taints, plus the taint AKS puts on spot pools."""
    pool = request.node_pool
    taints = list(pool.taints) + ([SPOT_TAINT] if pool.spot is not None else [])
    tolerations: list[JSON] = []
    for taint in dict.fromkeys(taints):
        key_value, _, effect = taint.rpartition(":")
        key, has_value, value = key_value.partition("=")
        toleration: JSON = {"key": key, "operator": "Equal" if has_value else "Exists"}
        if has_value:
            toleration["value"] = value
        toleration["effect"] = effect
        tolerations.append(toleration)
    return tolerations


def _unreachable(action: str, error: Exception) -> StepError:
    return StepError(
        "transient",
        CONNECTION_FAILED,
        f"{action}: the cluster's API server could not be reached ({type(error).__name__})",
        "The step is tried again.",
    )


def classify_api_error(error: ApiException, action: str) -> StepError:
    """An API answer as a StepError: 429, 5xx and write conflicts are tried again."""
    status = error.status if isinstance(error.status, int) else 0
    reason, message = str(error.reason or status), ""
    with contextlib.suppress(ValueError, TypeError):
        body = json.loads(error.body or "")
        if isinstance(body, dict):
            reason = str(body.get("reason") or reason)
            message = str(body.get("message") or "")
    transient = status == 429 or status >= 500 or (status == 409 and reason == "Conflict")
    hints = {
        401: "The cluster refused the credentials: they may have expired or been rotated; "
        "fetch the cluster's credentials again.",
        403: "The provisioner's identity lacks a Kubernetes role for this (cluster admin or "
        "'Azure Kubernetes Service RBAC Cluster Admin').",
    }
    hint = hints.get(status, "The cluster is busy; the step is tried again." if transient else "")
    return StepError(
        "transient" if transient else "permanent",
        reason,
        f"{action}: {message or error.reason or status}",
        hint,
        retry_after(error.headers),
    )


class KubeClient(Closing):
    """One cluster's API server, for the in-cluster operations of one request's deployment."""

    def __init__(
        self,
        credentials: ClusterCredentials,
        *,
        timeout_seconds: float = 30.0,
        owner: str = DEFAULT_OWNER,
    ) -> None:
        configuration = client.Configuration(
            host=credentials.server.rstrip("/"),
            api_key={"authorization": credentials.token},
            api_key_prefix={"authorization": "Bearer"},
            # PEM text: bytes would be read as DER by ssl's cadata.
            ca_cert_data=credentials.ca_pem.decode("ascii"),
        )
        self._server = credentials.server
        self._timeout = timeout_seconds
        self._api = client.ApiClient(configuration)
        self._core = client.CoreV1Api(self._api)
        self._apps = client.AppsV1Api(self._api)
        self._batch = client.BatchV1Api(self._api)
        self._owner = owner

    def close(self) -> None:
        """Close the connection pool (the client keeps sockets open between calls)."""
        self._api.close()  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._server!r})"

    def ownership(self, request: ProvisionRequest) -> Ownership:
        return Ownership(owner=self._owner, request_id=request.request_id)

    def refuse_foreign(self, what: str, found: JSON | None, request: ProvisionRequest) -> None:
        """Raise NotOwned when `found` exists and is not this request's."""
        ownership = self.ownership(request)
        if found is not None and not ownership.owns(labels_of(found), "labels"):
            raise not_owned(what, ownership, "labels")

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """SDK and connection failures leave an operation only as a StepError."""
        try:
            yield
        except ApiException as error:
            raise classify_api_error(error, action) from None
        except urllib3.exceptions.MaxRetryError as error:
            if isinstance(error.reason, urllib3.exceptions.SSLError | ssl.SSLError):
                raise StepError(
                    "permanent",
                    TLS_FAILED,
                    f"{action}: the API server's certificate is not signed by the cluster's CA",
                    "The cluster credentials do not match its API server: fetch them again.",
                ) from None
            raise _unreachable(action, error) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise _unreachable(action, error) from None

    def _json(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> JSON:
        """Call an API method and return its answer as a JSON object (404 etc. raise)."""
        response = call(*args, _preload_content=False, _request_timeout=self._timeout, **kwargs)
        try:
            data = response.data
        finally:
            response.release_conn()
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise StepError("transient", "BadResponse", "the API server did not answer JSON")
        return parsed

    def _get(self, call: Callable[..., Any], *args: Any) -> JSON | None:
        """GET one object; None when it does not exist."""
        try:
            return self._json(call, *args)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def _items(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> list[JSON]:
        items = self._json(call, *args, **kwargs).get("items") or []
        return [item for item in items if isinstance(item, dict)]

    def _pod_log(self, pod: JSON, tail_lines: int | None = None, max_bytes: int = 262_144) -> str:
        """A pod's (single container's) log, its last `max_bytes` at most; ApiException raises."""
        read_log: Callable[..., Any] = self._core.read_namespaced_pod_log
        extra = {} if tail_lines is None else {"tail_lines": tail_lines}
        response = read_log(
            name_of(pod), namespace_of(pod), _preload_content=False,
            _request_timeout=self._timeout, **extra,
        )  # fmt: skip
        try:
            data: bytes = response.data
        finally:
            response.release_conn()
        return data[-max_bytes:].decode("utf-8", errors="replace")

    # --- namespace ----------------------------------------------------------------------

    def ensure_namespace(self, name: str) -> NamespaceResult:
        """Create the namespace when missing; one that exists (anyone's) is used as it is."""
        with self._errors(f"create namespace {name}"):
            if self._get(self._core.read_namespace, name) is not None:
                return NamespaceResult(name=name, created=False)
            body = {"metadata": {"name": name, "labels": {MANAGED_BY_LABEL: MANAGER}}}
            try:
                self._json(self._core.create_namespace, body)
            except ApiException as error:
                if error.status == 409:
                    return NamespaceResult(name=name, created=False)
                raise
            return NamespaceResult(name=name, created=True)
