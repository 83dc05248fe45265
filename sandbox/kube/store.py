"""The object store of one simulated cluster: resource versions, watch history, API defaults.

Every change gets the next resourceVersion and an entry in the history that watches replay;
compaction (as etcd does) makes older versions answer 410 Gone. Callers hold the simulator's lock.
"""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sandbox.kube.kinds import KINDS, Cause, Kind
from sandbox.kube.kinds.base import owned_pods
from sandbox.kube.objects import JSON
from sandbox.kube.validation import name_causes


@dataclass(frozen=True)
class WatchEvent:
    rv: int
    type: str
    resource: str
    obj: JSON
    previous: JSON | None


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
    kind = KINDS[resource]
    return ApiError(
        404,
        "NotFound",
        f'{kind.qualified} "{name}" not found',
        {"name": name, "group": kind.group, "kind": resource},
    )


def invalid(kind: Kind, name: str, causes: list[Cause]) -> ApiError:
    """422 Invalid with causes, worded as apierrors.NewInvalid words it."""
    messages = [f"{field}: {message}" for _, field, message in causes]
    shown = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
    qualified = f"{kind.kind}.{kind.group}" if kind.group else kind.kind
    return ApiError(
        422,
        "Invalid",
        f'{qualified} "{name}" is invalid: {shown}',
        {
            "name": name,
            "group": kind.group,
            "kind": kind.kind,
            "causes": [
                {"reason": reason, "message": message, "field": field}
                for reason, field, message in causes
            ],
        },
    )


Manage = Callable[[JSON | None, JSON], None]
"""Records field ownership on a write: called with (old or None, new) just before it is stored."""


def _without_managed(obj: JSON) -> JSON:
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "managedFields"}
    return {**obj, "metadata": meta}


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
        self.store: dict[str, dict[tuple[str, str], JSON]] = {
            name: {} for name, kind in KINDS.items() if kind.listable
        }
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

    def create(
        self, resource: str, body: JSON, namespace: str = "", manage: Manage | None = None
    ) -> JSON:
        """POST semantics: generated names, defaults and validation of the kind."""
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
        causes = name_causes(meta["name"], kind.name_rule)
        if causes:
            raise invalid(kind, meta["name"], causes)
        key = (meta.get("namespace", ""), meta["name"])
        if key in self.store[resource]:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{kind.qualified} "{meta["name"]}" already exists',
                {"name": meta["name"], "group": kind.group, "kind": resource},
            )
        obj["apiVersion"] = kind.api_version
        obj["kind"] = kind.kind
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339(self.now)
        meta["generation"] = 1
        for field in ("resourceVersion", "deletionTimestamp"):
            meta.pop(field, None)
        kind.defaults(obj)
        causes = kind.validate(obj)
        if causes:
            raise invalid(kind, meta["name"], causes)
        if manage is not None:
            manage(None, obj)
        return self._write(resource, obj, "ADDED")

    def replace(
        self,
        resource: str,
        body: JSON,
        *,
        status_only: bool = False,
        manage: Manage | None = None,
    ) -> JSON:
        """PUT semantics: optimistic concurrency on resourceVersion, status kept apart."""
        meta = body.get("metadata") or {}
        current = self.get(resource, meta.get("namespace", ""), meta.get("name", ""))
        expected = meta.get("resourceVersion")
        if expected and expected != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {KINDS[resource].qualified} "{meta["name"]}": '
                "the object has been modified; please apply your changes to the latest version "
                "and try again",
                {"name": meta["name"], "group": KINDS[resource].group, "kind": resource},
            )
        updated = copy.deepcopy(current)
        if status_only:
            updated["status"] = copy.deepcopy(body.get("status") or {})
        else:
            for field in [
                f for f in updated if f not in ("status", "metadata", "apiVersion", "kind")
            ]:
                if field not in body:
                    updated.pop(field)
            for field, value in body.items():
                if field not in ("status", "metadata", "apiVersion", "kind"):
                    updated[field] = copy.deepcopy(value)
            for field in (
                "labels",
                "annotations",
                "finalizers",
                "ownerReferences",
                "managedFields",
            ):
                if field in meta:
                    updated["metadata"][field] = copy.deepcopy(meta[field])
                elif field != "managedFields":
                    updated["metadata"].pop(field, None)
            kind = KINDS[resource]
            kind.defaults(updated)
            causes = kind.validate(updated)
            if causes:
                raise invalid(kind, meta["name"], causes)
            if updated.get("spec") != current.get("spec"):
                updated["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        if _without_managed(updated) == _without_managed(current):
            return current
        if manage is not None:
            manage(current, updated)
        return self._write(resource, updated, "MODIFIED")

    def delete(self, resource: str, namespace: str, name: str, propagation: str | None) -> JSON:
        """DELETE: the object goes at once; its kind says what goes with it (or is orphaned)."""
        obj = self.get(resource, namespace, name)
        kind = KINDS[resource]
        uid = obj["metadata"]["uid"]
        propagation = propagation or kind.default_propagation
        for plural, dependent, owned in kind.dependents(self, obj):
            meta = dependent["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            if self.store[plural].get(key, {}).get("metadata", {}).get("uid") != meta["uid"]:
                continue  # already gone with an earlier dependent
            if owned and propagation == "Orphan":
                orphan = copy.deepcopy(dependent)
                orphan["metadata"]["ownerReferences"] = [
                    ref for ref in meta.get("ownerReferences") or [] if ref.get("uid") != uid
                ]
                self._write(plural, orphan, "MODIFIED")
            elif plural == "pods":
                self._delete_pod(dependent)
            else:
                self.delete(plural, key[0], key[1], "Background")
        gone = copy.deepcopy(obj)
        gone["metadata"]["deletionTimestamp"] = rfc3339(self.now)
        gone["metadata"]["deletionGracePeriodSeconds"] = 0
        if resource == "namespaces":
            gone["status"]["phase"] = "Terminating"
        return self._write(resource, gone, "DELETED")

    def namespaced_items(self, namespace: str) -> list[tuple[str, JSON]]:
        """Every object in a namespace, pods last (their owners may take them first)."""
        plurals = sorted((p for p in self.store if KINDS[p].namespaced), key=lambda p: p == "pods")
        return [(plural, obj) for plural in plurals for obj in self.items(plural, namespace)]

    def _owned_pods(self, owner: JSON) -> list[JSON]:
        return [pod for _, pod, _ in owned_pods(self, owner)]

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

    # --- events ---------------------------------------------------------------------------

    def record_event(
        self, involved: JSON, kind: str, reason: str, message: str, component: str, host: str = ""
    ) -> None:
        """An Event about `involved`, as client-go's recorder writes one (repeats counted)."""
        if self.dry_run:
            return
        meta = involved["metadata"]
        namespace = meta.get("namespace") or "default"
        stamp = rfc3339(self.now)
        for event in self.items("events", namespace):
            ref = event["involvedObject"]
            if (ref.get("uid"), event["reason"], event["message"]) == (
                meta.get("uid"),
                reason,
                message,
            ):
                repeated = copy.deepcopy(event)
                repeated["count"] = event.get("count", 1) + 1
                repeated["lastTimestamp"] = stamp
                self._write("events", repeated, "MODIFIED")
                return
        source = {"component": component, **({"host": host} if host else {})}
        self.create(
            "events",
            {
                "metadata": {"name": f"{meta['name']}.{self._random.getrandbits(64):016x}"},
                "involvedObject": {
                    "kind": involved.get("kind", ""),
                    "namespace": meta.get("namespace", ""),
                    "name": meta["name"],
                    "uid": meta.get("uid", ""),
                    "apiVersion": involved.get("apiVersion", ""),
                    "resourceVersion": meta.get("resourceVersion", ""),
                },
                "reason": reason,
                "message": message,
                "source": source,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
                "type": kind,
                "eventTime": None,
                "reportingComponent": component,
                "reportingInstance": host,
            },
            namespace,
        )
