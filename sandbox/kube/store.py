"""The object store of one simulated cluster: resource versions, watch history, API defaults.

Every change gets the next resourceVersion and an entry in the history that watches replay;
compaction (as etcd does) makes older versions answer 410 Gone. Callers hold the simulator's lock.
"""

from __future__ import annotations

import copy
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sandbox.kube.objects import JSON, match_labels_selector


@dataclass(frozen=True)
class WatchEvent:
    rv: int
    type: str
    resource: str
    obj: JSON
    previous: JSON | None


@dataclass(frozen=True)
class Kind:
    kind: str
    api_version: str
    namespaced: bool


KINDS: dict[str, Kind] = {
    "namespaces": Kind("Namespace", "v1", namespaced=False),
    "nodes": Kind("Node", "v1", namespaced=False),
    "pods": Kind("Pod", "v1", namespaced=True),
    "jobs": Kind("Job", "batch/v1", namespaced=True),
    "daemonsets": Kind("DaemonSet", "apps/v1", namespaced=True),
}


class ApiError(Exception):
    """An error the API server answers with a `Status` object."""

    def __init__(self, code: int, reason: str, message: str, details: JSON | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> JSON:
        body: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def not_found(resource: str, name: str) -> ApiError:
    group = {"jobs": ".batch", "daemonsets": ".apps"}.get(resource, "")
    return ApiError(
        404,
        "NotFound",
        f'{resource}{group} "{name}" not found',
        {"name": name, "kind": resource},
    )


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    """Objects by resource and (namespace, name), with the API server's create/update rules."""

    HISTORY_LIMIT = 5000

    def __init__(self, seed: str, now: float) -> None:
        self.now = now
        self.rv = 1
        self.compacted_rv = 0
        self.history: list[WatchEvent] = []
        self.store: dict[str, dict[tuple[str, str], JSON]] = {name: {} for name in KINDS}
        self.dry_run = False
        """While set (a `dryRun=All` request), changes are validated and answered, not kept."""
        self._random = random.Random(seed)  # noqa: S311 - generated names, not secrets
        for namespace in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.create("namespaces", {"metadata": {"name": namespace}})

    # --- store ---------------------------------------------------------------------------

    def get(self, resource: str, namespace: str, name: str) -> JSON:
        obj = self.store[resource].get((namespace, name))
        if obj is None:
            raise not_found(resource, name)
        return obj

    def items(self, resource: str, namespace: str = "") -> list[JSON]:
        return [
            obj
            for (ns, _), obj in sorted(self.store[resource].items())
            if not namespace or ns == namespace
        ]

    def _write(self, resource: str, obj: JSON, event: str) -> JSON:
        if self.dry_run:
            return obj
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        previous = self.store[resource].get(key)
        if event == "DELETED":
            self.store[resource].pop(key, None)
        else:
            self.store[resource][key] = obj
        self.history.append(WatchEvent(self.rv, event, resource, copy.deepcopy(obj), previous))
        if len(self.history) > self.HISTORY_LIMIT:
            dropped = self.history[: len(self.history) - self.HISTORY_LIMIT]
            self.history = self.history[len(dropped) :]
            self.compacted_rv = dropped[-1].rv
        return obj

    def compact(self) -> None:
        """Forget the watch history, as etcd compaction does: older versions answer 410."""
        self.compacted_rv = self.rv
        self.history.clear()

    def _random_suffix(self) -> str:
        alphabet = "bcdfghjklmnpqrstvwxz2456789"
        return "".join(self._random.choice(alphabet) for _ in range(5))

    def create(self, resource: str, body: JSON, namespace: str = "") -> JSON:
        kind = KINDS[resource]
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if kind.namespaced:
            meta["namespace"] = namespace or meta.get("namespace") or "default"
            if ("", meta["namespace"]) not in self.store["namespaces"]:
                raise not_found("namespaces", meta["namespace"])
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError(
                    422,
                    "Invalid",
                    f"{kind.kind} is invalid: metadata.name: Required value: name or "
                    "generateName is required",
                )
            meta["name"] = meta["generateName"] + self._random_suffix()
        key = (meta.get("namespace", ""), meta["name"])
        if key in self.store[resource]:
            group = {"jobs": ".batch", "daemonsets": ".apps"}.get(resource, "")
            raise ApiError(
                409,
                "AlreadyExists",
                f'{resource}{group} "{meta["name"]}" already exists',
                {"name": meta["name"], "kind": resource},
            )
        obj["apiVersion"] = kind.api_version
        obj["kind"] = kind.kind
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339(self.now)
        meta["generation"] = 1
        for field in ("resourceVersion", "deletionTimestamp", "managedFields"):
            meta.pop(field, None)
        getattr(self, f"_default_{resource}")(obj)
        return self._write(resource, obj, "ADDED")

    def replace(self, resource: str, body: JSON, *, status_only: bool = False) -> JSON:
        """PUT semantics: optimistic concurrency on resourceVersion, status kept apart."""
        meta = body.get("metadata") or {}
        current = self.get(resource, meta.get("namespace", ""), meta.get("name", ""))
        expected = meta.get("resourceVersion")
        if expected and expected != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {resource} "{meta["name"]}": the object has '
                "been modified; please apply your changes to the latest version and try again",
                {"name": meta["name"], "kind": resource},
            )
        updated = copy.deepcopy(current)
        if status_only:
            updated["status"] = copy.deepcopy(body.get("status") or {})
        else:
            for field, value in body.items():
                if field not in ("status", "metadata", "apiVersion", "kind"):
                    updated[field] = copy.deepcopy(value)
            for field in ("labels", "annotations", "finalizers", "ownerReferences"):
                if field in meta:
                    updated["metadata"][field] = copy.deepcopy(meta[field])
                else:
                    updated["metadata"].pop(field, None)
            if updated.get("spec") != current.get("spec"):
                updated["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        if updated == current:
            return current
        return self._write(resource, updated, "MODIFIED")

    def delete(self, resource: str, namespace: str, name: str, propagation: str | None) -> JSON:
        obj = self.get(resource, namespace, name)
        uid = obj["metadata"]["uid"]
        if propagation is None:
            propagation = "Orphan" if resource == "jobs" else "Background"
        for dependent in self._dependents(resource, obj):
            if propagation == "Orphan":
                orphan = copy.deepcopy(dependent)
                orphan["metadata"]["ownerReferences"] = [
                    ref
                    for ref in orphan["metadata"].get("ownerReferences") or []
                    if ref.get("uid") != uid
                ]
                self._write("pods", orphan, "MODIFIED")
            else:
                self._delete_pod(dependent)
        gone = copy.deepcopy(obj)
        gone["metadata"]["deletionTimestamp"] = rfc3339(self.now)
        gone["metadata"]["deletionGracePeriodSeconds"] = 0
        if resource == "namespaces":
            gone["status"]["phase"] = "Terminating"
        return self._write(resource, gone, "DELETED")

    def _dependents(self, resource: str, obj: JSON) -> list[JSON]:
        if resource == "namespaces":
            name = obj["metadata"]["name"]
            for kind in ("jobs", "daemonsets"):
                for item in self.items(kind, name):
                    self.delete(kind, name, item["metadata"]["name"], "Background")
            return self.items("pods", name)
        if resource == "nodes":
            return [
                pod
                for pod in self.items("pods")
                if pod["spec"].get("nodeName") == obj["metadata"]["name"]
            ]
        if resource in ("jobs", "daemonsets"):
            return self._owned_pods(obj)
        return []

    def _owned_pods(self, owner: JSON) -> list[JSON]:
        uid = owner["metadata"]["uid"]
        return [
            pod
            for pod in self.items("pods", owner["metadata"]["namespace"])
            if any(ref.get("uid") == uid for ref in pod["metadata"].get("ownerReferences") or [])
        ]

    def _delete_pod(self, pod: JSON) -> None:
        gone = copy.deepcopy(pod)
        gone["metadata"]["deletionTimestamp"] = rfc3339(self.now)
        self._write("pods", gone, "DELETED")

    def _put(self, resource: str, obj: JSON) -> bool:
        """Write a controller's change if it changes anything; report whether it did."""
        meta = obj["metadata"]
        current = self.store[resource].get((meta.get("namespace", ""), meta["name"]))
        if current == obj:
            return False
        self._write(resource, obj, "MODIFIED")
        return True

    # --- defaults on create -------------------------------------------------------------

    def _default_namespaces(self, obj: JSON) -> None:
        name = obj["metadata"]["name"]
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}

    def _default_nodes(self, obj: JSON) -> None:
        obj.setdefault("spec", {})
        obj.setdefault("status", {})

    def _default_pods(self, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        if not spec.get("containers"):
            raise ApiError(
                422,
                "Invalid",
                f'Pod "{obj["metadata"]["name"]}" is invalid: spec.containers: Required value',
            )
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("dnsPolicy", "ClusterFirst")
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}

    def _default_jobs(self, obj: JSON) -> None:
        name = obj["metadata"]["name"]
        spec = obj.setdefault("spec", {})
        template = spec.setdefault("template", {})
        pod_spec = template.setdefault("spec", {})
        if pod_spec.get("restartPolicy") not in ("Never", "OnFailure"):
            raise ApiError(
                422,
                "Invalid",
                f'Job.batch "{name}" is invalid: spec.template.spec.restartPolicy: Required '
                'value: valid values: "OnFailure", "Never"',
            )
        if not pod_spec.get("containers"):
            raise ApiError(
                422,
                "Invalid",
                f'Job.batch "{name}" is invalid: spec.template.spec.containers: Required value',
            )
        uid = obj["metadata"]["uid"]
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        labels.update(
            {
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": name,
                "controller-uid": uid,
                "job-name": name,
            }
        )
        obj["status"] = {}

    def _default_daemonsets(self, obj: JSON) -> None:
        name = obj["metadata"]["name"]
        spec = obj.setdefault("spec", {})
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        selector = spec.get("selector")
        if not selector or not match_labels_selector(selector, labels):
            raise ApiError(
                422,
                "Invalid",
                f'DaemonSet.apps "{name}" is invalid: spec.template.metadata.labels: Invalid '
                "value: selector does not match template labels",
            )
        if not (template.get("spec") or {}).get("containers"):
            raise ApiError(
                422,
                "Invalid",
                f'DaemonSet.apps "{name}" is invalid: spec.template.spec.containers: Required '
                "value",
            )
        spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
        spec.setdefault("revisionHistoryLimit", 10)
        obj["status"] = {
            "currentNumberScheduled": 0,
            "desiredNumberScheduled": 0,
            "numberMisscheduled": 0,
            "numberReady": 0,
        }
