"""Validation as the API server does it: the schema's types first, then each kind's rules.

Field errors carry the same reason, field path and message text as apimachinery's field.Error
(k8s.io/apimachinery/pkg/util/validation/field/errors.go), so a 422 reads like a real one.
The rules cited are from k8s.io/kubernetes pkg/apis/core/validation/validation.go.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sandbox.kube import quantity
from sandbox.kube.kinds.base import JSON, Cause
from sandbox.kube.schema import field_schema, item_schema, resolve, types

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_RE = re.compile(rf"^{_LABEL}$")
_SUBDOMAIN_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value).lower()


def required(path: str, detail: str = "") -> Cause:
    return ("FieldValueRequired", path, "Required value" + (f": {detail}" if detail else ""))


def invalid(path: str, value: Any, detail: str) -> Cause:
    return ("FieldValueInvalid", path, f"Invalid value: {_show(value)}: {detail}")


def not_supported(path: str, value: Any, supported: list[str]) -> Cause:
    options = ", ".join(json.dumps(option) for option in supported)
    return (
        "FieldValueNotSupported",
        path,
        f"Unsupported value: {_show(value)}: supported values: {options}",
    )


def too_long(path: str, limit: int) -> Cause:
    return ("FieldValueTooLong", path, f"Too long: may not be more than {limit} bytes")


def name_causes(name: str, rule: str, path: str = "metadata.name") -> list[Cause]:
    """ValidateObjectMeta's name check: RFC 1123 label or subdomain."""
    if rule == "label":
        if len(name) > 63:
            return [invalid(path, name, "must be no more than 63 characters")]
        return [] if _LABEL_RE.match(name) else [invalid(path, name, LABEL_MESSAGE)]
    if len(name) > 253:
        return [invalid(path, name, "must be no more than 253 characters")]
    return [] if _SUBDOMAIN_RE.match(name) else [invalid(path, name, SUBDOMAIN_MESSAGE)]


# --- the schema: types and unknown fields ----------------------------------------------------


def schema_problems(value: Any, schema: JSON, path: str = "") -> tuple[list[str], list[str]]:
    """(unknown field paths, type errors) of a document against a kind's schema."""
    unknown: list[str] = []
    wrong: list[str] = []
    _walk(value, schema, path, unknown, wrong)
    return unknown, wrong


def _walk(value: Any, schema: JSON, path: str, unknown: list[str], wrong: list[str]) -> None:
    resolved = resolve(schema)
    if value is None or not resolved:
        return
    allowed = types(resolved)
    if "oneOf" in resolved:  # int-or-string, quantity: scalar either way
        if isinstance(value, dict | list):
            wrong.append(f"{path}: expected a string or number, got {type(value).__name__}")
        return
    if "object" in allowed and isinstance(value, dict):
        properties = resolved.get("properties")
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            unknown_key = properties is not None and key not in properties
            if unknown_key and resolved.get("additionalProperties") is False:
                unknown.append(child)
                continue
            _walk(item, field_schema(resolved, key), child, unknown, wrong)
        return
    if "array" in allowed and isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, item_schema(resolved), f"{path}[{index}]", unknown, wrong)
        return
    expected = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
    }
    if allowed and not any(expected.get(kind, False) for kind in allowed):
        wanted = " or ".join(sorted(allowed))
        wrong.append(f"{path}: expected {wanted}, got {type(value).__name__}")


def drop_unknown(value: Any, schema: JSON) -> Any:
    """The document without the fields the schema does not know (fieldValidation Ignore/Warn)."""
    resolved = resolve(schema)
    if isinstance(value, dict) and "object" in types(resolved):
        properties = resolved.get("properties")
        return {
            key: drop_unknown(item, field_schema(resolved, key))
            for key, item in value.items()
            if properties is None
            or key in properties
            or resolved.get("additionalProperties") is not False
        }
    if isinstance(value, list):
        return [drop_unknown(item, item_schema(resolved)) for item in value]
    return value


# --- pods and pod templates -------------------------------------------------------------------


def _native(resource: str) -> bool:
    """IsNativeResource: no domain, or a *kubernetes.io/ domain."""
    return "/" not in resource or "kubernetes.io/" in resource


def _overcommit_allowed(resource: str) -> bool:
    """IsOvercommitAllowed: native, non-hugepages resources only (GPUs must request = limit)."""
    return _native(resource) and not resource.startswith("hugepages-")


def _integer_resource(resource: str) -> bool:
    """IsIntegerResourceName: extended resources (nvidia.com/gpu) and pods-like counts."""
    return not _native(resource) and not resource.startswith("requests.")


def resources_causes(resources: JSON, path: str) -> list[Cause]:
    """ValidateContainerResourceRequirements (validation.go)."""
    causes: list[Cause] = []
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    parsed: dict[str, dict[str, float]] = {"limits": {}, "requests": {}}
    for part, values in (("limits", limits), ("requests", requests)):
        for name, amount in values.items():
            where = f"{path}.{part}[{name}]"
            if "/" in name and not _QUALIFIED_NAME.match(name.split("/", 1)[1]):
                causes.append(invalid(where, name, "must be a qualified name"))
            try:
                number = quantity.value(amount)
            except quantity.QuantityError as error:
                causes.append(invalid(where, amount, str(error)))
                continue
            parsed[part][name] = number
            if number < 0:
                causes.append(
                    invalid(where, quantity.canonical(amount), "must be greater than or equal to 0")
                )
            if _integer_resource(name) and not quantity.is_whole(amount):
                causes.append(invalid(where, quantity.canonical(amount), "must be an integer"))
    for name, number in parsed["requests"].items():
        limit = parsed["limits"].get(name)
        shown = quantity.canonical(requests[name])
        if limit is None:
            if not _overcommit_allowed(name):
                causes.append(
                    required(f"{path}.limits", "Limit must be set for non overcommitable resources")
                )
        elif number != limit and not _overcommit_allowed(name):
            causes.append(
                invalid(
                    f"{path}.requests",
                    shown,
                    f"must be equal to {name} limit of {quantity.canonical(limits[name])}",
                )
            )
        elif number > limit:
            causes.append(
                invalid(
                    f"{path}.requests",
                    shown,
                    f"must be less than or equal to {name} limit of "
                    f"{quantity.canonical(limits[name])}",
                )
            )
    return causes


def pod_spec_causes(spec: JSON, path: str, restart_policies: list[str]) -> list[Cause]:
    """ValidatePodSpec, the parts a GPU workload meets: containers, resources, restartPolicy."""
    causes: list[Cause] = []
    containers = spec.get("containers") or []
    if not containers:
        causes.append(required(f"{path}.containers"))
    seen: set[str] = set()
    for index, container in enumerate(containers):
        where = f"{path}.containers[{index}]"
        name = container.get("name") or ""
        if not name:
            causes.append(required(f"{where}.name"))
        elif not _LABEL_RE.match(name) or len(name) > 63:
            causes.append(invalid(f"{where}.name", name, LABEL_MESSAGE))
        elif name in seen:
            causes.append(
                ("FieldValueDuplicate", f"{where}.name", f"Duplicate value: {json.dumps(name)}")
            )
        seen.add(name)
        if not container.get("image"):
            causes.append(required(f"{where}.image"))
        causes += resources_causes(container.get("resources") or {}, f"{where}.resources")
    policy = spec.get("restartPolicy")
    if policy not in restart_policies:
        causes.append(not_supported(f"{path}.restartPolicy", policy, restart_policies))
    return causes
