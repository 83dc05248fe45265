"""What a Kubernetes kind is to the simulator: where it is served and how it behaves.

Each kind's module declares one `Kind`; routing, discovery, OpenAPI and printing are derived from
these declarations (one place per kind, the shape moto gives each service resource).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

JSON = dict[str, Any]
Cause = tuple[str, str, str]
"""(reason, field, message), e.g. ("FieldValueInvalid", "metadata.name", "Invalid value: …")."""


@dataclass(frozen=True)
class Column:
    """A server-side printing column (pkg/printers/internalversion/printers.go)."""

    name: str
    type: str = "string"
    description: str = ""
    priority: int = 0
    format: str = ""

    def definition(self) -> JSON:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


class Objects(Protocol):
    """What a kind may read to find its dependents."""

    def items(self, resource: str, namespace: str = "") -> list[JSON]: ...

    def namespaced_items(self, namespace: str) -> list[tuple[str, JSON]]: ...


Dependent = tuple[str, JSON, bool]
"""(resource, object, owned): owned dependents are kept (orphaned) under propagation Orphan."""


def _no_dependents(objects: Objects, obj: JSON) -> list[Dependent]:
    return []


def owned_pods(objects: Objects, owner: JSON) -> list[Dependent]:
    """The pods whose ownerReferences name this object (a Job's or a DaemonSet's pods)."""
    uid = owner["metadata"]["uid"]
    return [
        ("pods", pod, True)
        for pod in objects.items("pods", owner["metadata"]["namespace"])
        if any(ref.get("uid") == uid for ref in pod["metadata"].get("ownerReferences") or [])
    ]


def _no_defaults(obj: JSON) -> None:
    """A kind without API defaults."""


def _no_causes(obj: JSON) -> list[Cause]:
    return []


def _name_and_age(obj: JSON, now: float) -> list[Any]:
    return [obj["metadata"]["name"], age(obj, now)]


NAME = Column("Name", format="name")
AGE = Column("Age", description="CreationTimestamp: when the object was created (server time).")
WORKLOAD_WIDE = (
    Column("Containers", priority=1),
    Column("Images", priority=1),
    Column("Selector", priority=1),
)
"""The `-o wide` columns printers.go ends every workload's table with (DaemonSet, Job):
layoutContainerCells' names and images, then the selector. Cells: `workload_cells`."""


def workload_cells(obj: JSON) -> list[str]:
    """WORKLOAD_WIDE's cells: the pod template's container names and images, the selector."""
    containers = dig(obj, "spec.template.spec.containers") or []
    selector = dig(obj, "spec.selector.matchLabels") or {}
    return [
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
        ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
    ]


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    listable: bool = True
    """False for create-only review kinds (SelfSubjectAccessReview): nothing is stored."""
    subresources: tuple[str, ...] = ()
    """Served subresources: `status` (GET, PUT, PATCH) and, for pods, `log`."""
    field_labels: dict[str, Callable[[JSON], str]] = field(default_factory=dict)
    """Field selectors the kind supports beyond metadata.name/namespace, and each value."""
    columns: tuple[Column, ...] = (NAME, AGE)
    row: Callable[[JSON, float], list[Any]] = _name_and_age
    defaults: Callable[[JSON], None] = _no_defaults
    """The API server's defaulting on create/update (pkg/apis/<group>/v1/defaults.go)."""
    validate: Callable[[JSON], list[Cause]] = _no_causes
    """The kind's own validation (pkg/apis/<group>/validation), beyond the schema's types."""
    dependents: Callable[[Objects, JSON], list[Dependent]] = _no_dependents
    """What goes when this object goes (garbage collection, namespace and node lifecycle)."""
    default_propagation: str = "Background"
    """propagationPolicy when a DELETE names none (batch/v1 Jobs orphan their pods)."""
    name_rule: str = "subdomain"
    """How metadata.name is validated: subdomain (RFC 1123), label, or path segment."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def path_prefix(self) -> str:
        """`api/v1` or `apis/<group>/<version>`."""
        return f"apis/{self.group}/{self.version}" if self.group else f"api/{self.version}"

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """`jobs.batch`, `pods`: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def verbs(self) -> list[str]:
        if not self.listable:
            return ["create"]
        return ["create", "delete", "get", "list", "patch", "update", "watch"]


def parse_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration: what kubectl shows in AGE and DURATION."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        return f"{minutes}m{whole % 60}s" if whole % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = hours // 24 // 365, (hours // 24) % 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // 24 // 365}y"


def since(stamp: str | None, now: float) -> str:
    """translateTimestampSince: '<unknown>' for no time."""
    return human_duration(now - parse_time(stamp)) if stamp else "<unknown>"


def age(obj: JSON, now: float) -> str:
    return since(obj["metadata"].get("creationTimestamp"), now)


def text(value: Any) -> str:
    """A field's value as a field selector compares it (Go's fmt.Sprint)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def dig(obj: JSON, path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
